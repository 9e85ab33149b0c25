/**
 * What the daemon's relay socket and `vault relay` agree on. No fastify here: the CLI's relay
 * imports it (`@vault/server/relay`) and must stay small.
 */
import { SERVER_VERSION } from '../version.js';

/** The relay socket's file name, beside `control.sock` in the daemon's state directory. */
export const RELAY_SOCKET_NAME = 'relay.sock';

/**
 * What `GET /relay` answers on the relay socket: how `vault relay` tells the daemon's relay socket
 * from any other socket (the control socket included) before it serves a request. Nothing secret.
 */
export const RELAY_HELLO_PATH = '/relay';
export const RELAY_SERVICE = 'vault-relay';
export const RELAY_HELLO = { Service: RELAY_SERVICE, Version: SERVER_VERSION } as const;

/**
 * The header in which `vault relay` names the container that asked (`ADDRESS:PORT`), for the
 * audit line. Only the relay sets it: containers never reach the relay socket, and the relay builds
 * the forwarded request's headers itself rather than copying the container's.
 */
export const RELAY_CLIENT_HEADER = 'x-vault-relay-client';

/** The container routes a relay forwards (session ids as newSessionId makes them). */
export const RELAYED_PATH = /^\/creds\/[0-9a-f]{1,64}(?:\/role-arn\/[^?#]+)?$/;
