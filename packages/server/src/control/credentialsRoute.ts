import type { FastifyInstance } from 'fastify';
import { formatExpiration, VaultError } from '@vault/core';
import type { PreparedCredentials } from '../sessions/refreshingCredentials.js';
import type { SessionRegistry } from '../sessions/sessionRegistry.js';
import { errorResponses } from '../wire.js';
import { credentialsProperties } from './schemas.js';
import type { ResolveCredentialsBody, ResolvedCredentialsResponse } from './types.js';

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['profile', 'environment'],
  properties: {
    profile: { type: 'string', minLength: 1, maxLength: 256 },
    region: { type: 'string', minLength: 1, maxLength: 64 },
    durationSeconds: { type: 'integer', minimum: 900, maximum: 129_600 },
    noSession: { type: 'boolean' },
    mfaToken: { type: 'string', pattern: '^[0-9]{6}$' },
    environment: { type: 'string', maxLength: 8192 },
    backend: { type: 'string', maxLength: 32 },
    preferSession: { type: 'boolean' },
  },
} as const;

const responseSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { ...credentialsProperties, source: { type: 'string' } },
} as const;

/**
 * `POST /credentials`: what `vault exec` and `vault export` ask a running daemon instead of
 * opening the keyring themselves. The daemon holds the unlocked keyring (and, for the file
 * backend, what it has decrypted), so a command pays no KDF, no keychain round trip and no SDK
 * load. A live session of the profile answers first when the command asks for that (export);
 * otherwise the daemon's credential chain resolves the profile from the keyring's cached credentials,
 * calling STS only when they have run out.
 */
export function credentialsRoute(app: FastifyInstance, registry: SessionRegistry): void {
  app.post('/credentials', {
    schema: { body: bodySchema, response: { 200: responseSchema, ...errorResponses } },
    handler: async (request): Promise<ResolvedCredentialsResponse> => {
      const body = request.body as ResolveCredentialsBody;
      if (body.preferSession && body.durationSeconds === undefined && body.noSession !== true && body.mfaToken === undefined) {
        // A session that cannot answer (needs MFA, STS down) leaves the keyring path to say why, or to work.
        const live = await liveSessionCredentials(registry, body.profile).catch(() => undefined);
        if (live) return { ...live, ...(body.region ? { region: body.region } : {}) };
      }
      const factory = registry.sourceFactory;
      if (!factory.resolve) {
        throw new VaultError('DAEMON_MISMATCH', 'this vault daemon does not resolve credentials for commands', { hint: 'the command resolves them itself' });
      }
      const { credentials, region } = await factory.resolve({
        profile: body.profile,
        environment: body.environment,
        ...(body.region === undefined ? {} : { region: body.region }),
        ...(body.durationSeconds === undefined ? {} : { durationSeconds: body.durationSeconds }),
        ...(body.noSession === undefined ? {} : { noSession: body.noSession }),
        ...(body.mfaToken === undefined ? {} : { mfaToken: body.mfaToken }),
        ...(body.backend === undefined ? {} : { backend: body.backend }),
      });
      registry.audit.credentialsResolved(body.profile);
      return {
        profile: body.profile,
        ...(region ? { region } : {}),
        accessKeyId: credentials.accessKeyId,
        secretAccessKey: credentials.secretAccessKey,
        sessionToken: credentials.sessionToken,
        expiration: formatExpiration(credentials.expiration),
        source: 'keyring',
      };
    },
  });
}

/**
 * The served credentials of the first live session of `profile` that has some: undefined when
 * the daemon has no session for it, the first session's error when none can answer.
 */
export async function liveSessionCredentials(registry: SessionRegistry, profile: string): Promise<ResolvedCredentialsResponse | undefined> {
  let firstError: unknown;
  const candidates = registry.byProfile(profile).filter((s) => s.state !== 'stopped');
  for (const session of candidates) {
    let prepared: PreparedCredentials | undefined = session.currentCredentials();
    if (!prepared) {
      try {
        prepared = await session.credentialsFor();
      } catch (error) {
        firstError ??= error;
        continue;
      }
    }
    session.requestsServed++;
    registry.audit.credentialsExported(session);
    const c = prepared.credentials;
    return {
      profile: session.profile,
      ...(session.region ? { region: session.region } : {}),
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      expiration: formatExpiration(c.expiration),
      source: 'session',
      sessionId: session.id,
    };
  }
  if (candidates.length > 0) throw firstError;
  return undefined;
}
