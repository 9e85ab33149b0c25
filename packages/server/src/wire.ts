import { formatExpiration, type TemporaryCredentials, type VaultErrorCode } from '@vault/core';

/**
 * The credential server's wire formats, in one place: what the ECS container route, the IMDS
 * credential route and every rejection put on the wire, with the JSON schemas the routes declare.
 * Credential bodies are serialized once per set of credentials (see PreparedCredentials) and sent
 * as bytes, so the hot path never builds JSON.
 */

/** What the container endpoint returns; every SDK's container provider reads these names. */
export interface EcsCredentialsBody {
  AccessKeyId: string;
  SecretAccessKey: string;
  Token: string;
  /** `YYYY-MM-DDTHH:MM:SSZ`; Go treats a body without it as never expiring. */
  Expiration: string;
  AccountId?: string;
}

/** What EC2 instance metadata returns for a role; Go requires `Code`, botocore reads `Expiration`. */
export interface ImdsCredentialsBody {
  Code: 'Success';
  LastUpdated: string;
  Type: 'AWS-HMAC';
  AccessKeyId: string;
  SecretAccessKey: string;
  Token: string;
  Expiration: string;
}

/**
 * Codes of rejections by the HTTP layer itself (guards, routing). Failures of the credential chain
 * carry the VaultError code of what went wrong instead.
 */
export type WireErrorCode =
  | VaultErrorCode
  | 'ACCESS_DENIED'
  | 'UNAUTHORIZED'
  | 'HOST_NOT_ALLOWED'
  | 'PEER_NOT_ALLOWED'
  | 'USER_NOT_ALLOWED'
  | 'ORIGIN_NOT_ALLOWED'
  | 'BODY_NOT_ALLOWED'
  | 'BAD_REQUEST'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'HEADERS_TOO_LARGE'
  | 'REQUEST_TIMEOUT';

/** Every error on the wire, credential routes and control API alike. */
export interface ErrorBody {
  Code: WireErrorCode | string;
  Message: string;
  /** Control API only: the VaultError hint, so the CLI can show what to do. */
  Hint?: string;
}

/** Credentials that carry the ARN they were assumed as (AssumedRoleCredentials) reveal the account. */
type MaybeAssumed = TemporaryCredentials & { assumedRoleArn?: string };

const ACCOUNT_IN_ARN = /^arn:[\w-]+:(?:sts|iam)::(\d{12}):/;

/** The 12-digit account of an assumed role, when the credentials say who they are. */
export function accountIdOf(credentials: MaybeAssumed): string | undefined {
  const arn = credentials.assumedRoleArn;
  if (!arn) return undefined;
  return ACCOUNT_IN_ARN.exec(arn)?.[1];
}

export function toEcsCredentialsBody(credentials: MaybeAssumed): EcsCredentialsBody {
  const body: EcsCredentialsBody = {
    AccessKeyId: credentials.accessKeyId,
    SecretAccessKey: credentials.secretAccessKey,
    Token: credentials.sessionToken,
    Expiration: formatExpiration(credentials.expiration),
  };
  const accountId = accountIdOf(credentials);
  if (accountId) body.AccountId = accountId;
  return body;
}

export function toImdsCredentialsBody(credentials: TemporaryCredentials, lastUpdated: Date): ImdsCredentialsBody {
  return {
    Code: 'Success',
    LastUpdated: formatExpiration(lastUpdated),
    Type: 'AWS-HMAC',
    AccessKeyId: credentials.accessKeyId,
    SecretAccessKey: credentials.secretAccessKey,
    Token: credentials.sessionToken,
    Expiration: formatExpiration(credentials.expiration),
  };
}

/** Prepared bytes for the container route (built once per set of credentials). */
export function serializeEcsCredentials(credentials: MaybeAssumed): Buffer {
  return Buffer.from(JSON.stringify(toEcsCredentialsBody(credentials)), 'utf8');
}

/** Prepared bytes for the IMDS credential route (built once per set of credentials). */
export function serializeImdsCredentials(credentials: TemporaryCredentials, lastUpdated: Date): Buffer {
  return Buffer.from(JSON.stringify(toImdsCredentialsBody(credentials, lastUpdated)), 'utf8');
}

export function errorBody(code: WireErrorCode | string, message: string, hint?: string): ErrorBody {
  return hint === undefined ? { Code: code, Message: message } : { Code: code, Message: message, Hint: hint };
}

const EXPIRATION_FORMAT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/** Guard for a container-endpoint body, as a strict SDK would check it. */
export function isEcsCredentialsBody(value: unknown): value is EcsCredentialsBody {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.AccessKeyId === 'string' &&
    typeof v.SecretAccessKey === 'string' &&
    typeof v.Token === 'string' &&
    typeof v.Expiration === 'string' &&
    EXPIRATION_FORMAT.test(v.Expiration) &&
    (v.AccountId === undefined || typeof v.AccountId === 'string')
  );
}

/** Mapper back to vault's in-memory shape (tests, and clients of the daemon). */
export function fromEcsCredentialsBody(body: EcsCredentialsBody): TemporaryCredentials {
  return {
    accessKeyId: body.AccessKeyId,
    secretAccessKey: body.SecretAccessKey,
    sessionToken: body.Token,
    expiration: new Date(body.Expiration),
  };
}

// --- JSON schemas the routes declare. Bodies that are sent as prepared bytes bypass the serializer;
// the schemas still document the shape and strip anything unexpected from object replies.

export const errorBodySchema = {
  type: 'object',
  required: ['Code', 'Message'],
  additionalProperties: false,
  properties: {
    Code: { type: 'string' },
    Message: { type: 'string' },
    Hint: { type: 'string' },
  },
} as const;

export const ecsCredentialsSchema = {
  type: 'object',
  required: ['AccessKeyId', 'SecretAccessKey', 'Token', 'Expiration'],
  additionalProperties: false,
  properties: {
    AccessKeyId: { type: 'string' },
    SecretAccessKey: { type: 'string' },
    Token: { type: 'string' },
    Expiration: { type: 'string' },
    AccountId: { type: 'string' },
  },
} as const;

export const imdsCredentialsSchema = {
  type: 'object',
  required: ['Code', 'LastUpdated', 'Type', 'AccessKeyId', 'SecretAccessKey', 'Token', 'Expiration'],
  additionalProperties: false,
  properties: {
    Code: { type: 'string' },
    LastUpdated: { type: 'string' },
    Type: { type: 'string' },
    AccessKeyId: { type: 'string' },
    SecretAccessKey: { type: 'string' },
    Token: { type: 'string' },
    Expiration: { type: 'string' },
  },
} as const;

/** Response schemas shared by every route: errors are always `{Code, Message}`. */
export const errorResponses = {
  '4xx': errorBodySchema,
  '5xx': errorBodySchema,
} as const;
