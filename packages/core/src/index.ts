export * from './errors.js';
export * from './credentials.js';
export * from './clock.js';
export * from './keyring/keyring.js';
export * from './keyring/memoryKeyring.js';
export * from './sts/stsGateway.js';
