export * from './signinEndpoint.js';
export * from './signinToken.js';
export * from './federationToken.js';
