import type { FastifyInstance } from 'fastify';
import { VaultError } from '@vault/core';
import type { SessionRegistry } from '../sessions/sessionRegistry.js';
import { liveSessionCredentials } from './credentialsRoute.js';
import { credentialsProperties, routeSchema } from './schemas.js';
import type { ProfileCredentialsResponse } from './types.js';

/** `GET /sessions/by-profile/:profile/credentials`: a live session's credentials for a profile (credential_process), from its cache. */
export function profileCredentialsRoute(app: FastifyInstance, registry: SessionRegistry): void {
  app.get('/sessions/by-profile/:profile/credentials', {
    schema: routeSchema({
      200: { type: 'object', additionalProperties: false, properties: credentialsProperties },
    }),
    handler: async (request): Promise<ProfileCredentialsResponse> => {
      const profile = (request.params as { profile: string }).profile;
      const live = await liveSessionCredentials(registry, profile);
      if (!live) {
        throw new VaultError('SESSION_NOT_FOUND', `no daemon session for profile ${profile}`, {
          hint: `start one with \`vault session start ${profile}\``,
        });
      }
      const { source: _source, sessionId, ...credentials } = live;
      return { sessionId: sessionId!, ...credentials };
    },
  });
}
