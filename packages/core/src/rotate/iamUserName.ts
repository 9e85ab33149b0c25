import { awsErrorCode } from './awsFailure.js';
import type { Credentials } from '../credentials.js';
import type { IamGateway, IamTarget } from './iamGateway.js';

/**
 * The IAM user a key belongs to: iam:GetUser, or — when the user may not call it — the user ARN in
 * its AccessDenied message ("User: arn:aws:iam::…:user/NAME is not authorized to perform: …"),
 * as aws-vault reads it.
 */
export async function iamUserName(iam: IamGateway, credentials: Credentials, target: IamTarget): Promise<string> {
  try {
    const user = await iam.getUser(credentials, target);
    if (user.userName) return user.userName;
    throw Object.assign(new Error('GetUser returned no UserName'), { name: 'MalformedResponse' });
  } catch (error) {
    const code = awsErrorCode(error);
    if (code === 'AccessDenied' || code === 'AccessDeniedException') {
      const name = userNameInDenial((error as Error).message ?? '');
      if (name !== undefined) return name;
    }
    throw error;
  }
}

export function userNameInDenial(message: string): string | undefined {
  return /User: arn:[a-z-]+:iam::\d{12}:user\/(?:\S*\/)?([\w+=,.@-]+) is not authorized/.exec(message)?.[1];
}
