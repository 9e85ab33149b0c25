import type { SsoOidcStandIn } from './ssoOidcStandIn.js';
import { JsonService, JsonServiceError, type JsonRequest } from './jsonService.js';
import type { StsStandIn } from './stsStandIn.js';

/**
 * A stand-in for the AWS access portal API (`portal.sso.REGION.amazonaws.com`): GetRoleCredentials
 * with the bearer token the OIDC stand-in issued. The role credentials are minted in the STS
 * stand-in, so AssumeRole on top of them and the real clients' calls work as against AWS.
 */
export interface SsoPortalStandInOptions {
  oidc: SsoOidcStandIn;
  sts: StsStandIn;
  /** The permission set's session duration. Default 3600 s (IAM Identity Center's default, 1 h). */
  roleSeconds?: number;
  /** The RoleSessionName the portal gives: the person's user name. */
  userName?: string;
  port?: number;
}

export interface SsoPortalCall {
  operation: 'GetRoleCredentials';
  accountId?: string;
  roleName?: string;
  /** 401 UnauthorizedException or 403 ForbiddenException, when answered with one. */
  error?: string;
}

export interface SsoPortalStandIn {
  readonly url: string;
  readonly port: number;
  readonly calls: readonly SsoPortalCall[];
  /** Gives the signed-in person access to a permission set in an account; returns the IAM role ARN behind it. */
  addAssignment(accountId: string, roleName: string): string;
  count(): number;
  close(): Promise<void>;
}

/** What IAM Identity Center names the role of a permission set in each account. */
export function ssoRoleArn(accountId: string, roleName: string): string {
  return `arn:aws:iam::${accountId}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_${roleName}_0123456789abcdef`;
}

class PortalStandIn implements SsoPortalStandIn {
  readonly calls: SsoPortalCall[] = [];
  private readonly assignments = new Set<string>();
  readonly service = new JsonService((request) => this.route(request));

  constructor(private readonly options: SsoPortalStandInOptions) {}

  get url(): string {
    return this.service.url;
  }
  get port(): number {
    return this.service.port;
  }

  addAssignment(accountId: string, roleName: string): string {
    const arn = ssoRoleArn(accountId, roleName);
    this.options.sts.addRole({ arn, maxSessionDurationSeconds: 43_200 });
    this.assignments.add(`${accountId}/${roleName}`);
    return arn;
  }

  count(): number {
    return this.calls.filter((c) => c.error === undefined).length;
  }

  close(): Promise<void> {
    return this.service.close();
  }

  private route(request: JsonRequest): unknown {
    if (request.method !== 'GET' || request.path !== '/federation/credentials') {
      throw new JsonServiceError(404, 'UnknownOperationException', { message: `no operation at ${request.method} ${request.path}` });
    }
    const accountId = request.query.get('account_id') ?? undefined;
    const roleName = request.query.get('role_name') ?? undefined;
    const call: SsoPortalCall = { operation: 'GetRoleCredentials', ...(accountId ? { accountId } : {}), ...(roleName ? { roleName } : {}) };
    this.calls.push(call);
    const header = request.headers['x-amz-sso_bearer_token'];
    const token = typeof header === 'string' ? this.options.oidc.accessToken(header) : undefined;
    if (!token) {
      call.error = 'UnauthorizedException';
      throw new JsonServiceError(401, 'UnauthorizedException', { message: 'Session token not found or invalid' });
    }
    if (!accountId || !roleName || !this.assignments.has(`${accountId}/${roleName}`)) {
      call.error = 'ForbiddenException';
      throw new JsonServiceError(403, 'ForbiddenException', { message: 'No access' });
    }
    const key = this.options.sts.issueRoleSession(ssoRoleArn(accountId, roleName), this.options.userName ?? 'jane.doe', this.options.roleSeconds ?? 3600);
    return {
      roleCredentials: {
        accessKeyId: key.accessKeyId,
        secretAccessKey: key.secretAccessKey,
        sessionToken: key.sessionToken,
        // Epoch milliseconds, as the portal sends it.
        expiration: key.expiration.getTime(),
      },
    };
  }
}

/** Starts an access portal stand-in on 127.0.0.1 (a random port unless one is given). */
export async function startSsoPortalStandIn(options: SsoPortalStandInOptions): Promise<SsoPortalStandIn> {
  const standIn = new PortalStandIn(options);
  await standIn.service.listen(options.port ?? 0);
  return standIn;
}
