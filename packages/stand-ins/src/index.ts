/** Test fixtures other packages and processes rely on: the local STS stand-in and its SigV4 verifier. */
export * from './sigv4.js';
export * from './stsStandIn.js';
export * from './webIdentityTokens.js';
export * from './containerCredentialsStandIn.js';
export * from './federationStandIn.js';
export * from './iamStandIn.js';
export * from './jsonService.js';
export * from './ssoOidcStandIn.js';
export * from './ssoPortalStandIn.js';
