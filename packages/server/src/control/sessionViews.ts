import { formatExpiration, type Clock } from '@vault/core';
import { LISTEN_HOST } from '../buildServer.js';
import { containerPath } from '../routes/container.js';
import type { Session } from '../sessions/session.js';
import type { SessionEnvironment, SessionSummary } from './types.js';

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** How the control API shows a session: a summary (no token, no secret), and the variables that point a client at it. */
export interface SessionViews {
  summarize(session: Session): SessionSummary;
  environment(session: Session): SessionEnvironment;
}

/** `credentialHost` is the credential listener's Host (it names the port, known once it listens). */
export function sessionViews(clock: Clock, credentialHost: () => string): SessionViews {
  const baseUrl = () => `http://${credentialHost()}`;

  const summarize = (session: Session): SessionSummary => {
    const now = clock.now();
    const summary: SessionSummary = {
      id: session.id,
      profile: session.profile,
      kind: session.kind,
      state: session.state,
      lazy: session.lazy,
      uri: `${baseUrl()}${containerPath(session.id)}`,
      createdAt: iso(session.createdAt),
      requestsServed: session.requestsServed,
      refreshFailures: session.credentials.failures,
    };
    if (session.imds) summary.imdsEndpoint = `http://${LISTEN_HOST}:${session.imds.port}/`;
    if (session.region) summary.region = session.region;
    if (session.request.noSession) summary.noSession = true;
    const latest = session.credentials.latest;
    if (latest) {
      summary.credentialExpiration = formatExpiration(new Date(latest.expiresAt));
      summary.credentialSecondsLeft = Math.max(0, Math.floor((latest.expiresAt - now) / 1000));
    }
    const mfa = session.mfaExpiration();
    if (mfa) {
      summary.mfaExpiration = formatExpiration(mfa);
      summary.mfaSecondsLeft = Math.max(0, Math.floor((mfa.getTime() - now) / 1000));
    }
    if (session.credentials.nextAttemptAt > now) summary.nextRetryAt = iso(session.credentials.nextAttemptAt);
    const lastError = session.lastError;
    if (lastError) summary.lastError = { code: lastError.code, message: lastError.message, at: iso(lastError.at) };
    return summary;
  };

  const environment = (session: Session): SessionEnvironment => {
    const env: SessionEnvironment = {};
    if (session.kind === 'imds' && session.imds) {
      // The trailing slash matters: the AWS CLI v2's bundled botocore appends `latest/api/token` to
      // the endpoint without a separator; every other SDK accepts it.
      env.AWS_EC2_METADATA_SERVICE_ENDPOINT = `http://${LISTEN_HOST}:${session.imds.port}/`;
      // botocore's IMDS client honours proxies; both spellings because either may win.
      env.NO_PROXY = LISTEN_HOST;
      env.no_proxy = LISTEN_HOST;
    } else {
      env.AWS_CONTAINER_CREDENTIALS_FULL_URI = `${baseUrl()}${containerPath(session.id)}`;
      env.AWS_CONTAINER_AUTHORIZATION_TOKEN = session.token;
    }
    if (session.region) {
      env.AWS_REGION = session.region;
      env.AWS_DEFAULT_REGION = session.region;
    }
    env.AWS_VAULT = session.profile;
    return env;
  };

  return { summarize, environment };
}
