import { errorResponses } from '../wire.js';

// The JSON schemas of the control API: what a request may hold, and what an answer may carry (the
// serializer drops anything not listed, so a summary cannot leak a token or a secret).

export const port12 = { type: 'integer', minimum: 1 } as const;

const sessionSummaryProperties = {
  id: { type: 'string' },
  profile: { type: 'string' },
  kind: { type: 'string' },
  state: { type: 'string' },
  lazy: { type: 'boolean' },
  noSession: { type: 'boolean' },
  uri: { type: 'string' },
  imdsEndpoint: { type: 'string' },
  region: { type: 'string' },
  createdAt: { type: 'string' },
  requestsServed: { type: 'integer' },
  credentialExpiration: { type: 'string' },
  credentialSecondsLeft: { type: 'integer' },
  mfaExpiration: { type: 'string' },
  mfaSecondsLeft: { type: 'integer' },
  refreshFailures: { type: 'integer' },
  nextRetryAt: { type: 'string' },
  lastError: {
    type: 'object',
    additionalProperties: false,
    properties: { code: { type: 'string' }, message: { type: 'string' }, at: { type: 'string' } },
  },
} as const;

/** A profile's credentials as the control API hands them to a command (POST /credentials, by-profile). */
export const credentialsProperties = {
  sessionId: { type: 'string' },
  profile: { type: 'string' },
  region: { type: 'string' },
  accessKeyId: { type: 'string' },
  secretAccessKey: { type: 'string' },
  sessionToken: { type: 'string' },
  expiration: { type: 'string' },
} as const;

/** A summary has no token and no secret: the serializer drops anything not listed here. */
export const sessionSummarySchema = { type: 'object', additionalProperties: false, properties: sessionSummaryProperties } as const;
export const envSchema = { type: 'object', additionalProperties: { type: 'string' } } as const;
export const createdSessionSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { ...sessionSummaryProperties, token: { type: 'string' }, env: envSchema },
} as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{1,64}$' } },
} as const;

export const createSessionBodySchema = {
  type: 'object',
  required: ['profile', 'kind'],
  additionalProperties: false,
  properties: {
    profile: { type: 'string', minLength: 1, maxLength: 256 },
    mfaToken: { type: 'string', minLength: 1, maxLength: 64 },
    // AssumeRole accepts 15 min to 12 h.
    durationSeconds: { type: 'integer', minimum: 900, maximum: 43_200 },
    region: { type: 'string', pattern: '^[a-z0-9-]{1,32}$' },
    kind: { type: 'string', enum: ['ecs', 'imds'] },
    lazy: { type: 'boolean' },
    noSession: { type: 'boolean' },
    ownerPid: { type: 'integer', minimum: 1, maximum: 4_194_304 },
  },
} as const;

export const renewBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { mfaToken: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

export const stoppedSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { stopped: { type: 'array', items: { type: 'string' } } },
} as const;

/** A route's schema: its answers, the error answers every route shares, and `extra` (body, params). */
export const routeSchema = (response: object, extra: Record<string, unknown> = {}) => ({ response: { ...response, ...errorResponses }, ...extra });
