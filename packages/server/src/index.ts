export * from './credentialSource.js';
