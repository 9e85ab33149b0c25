export * from './iamGateway.js';
export * from './sdkIamGateway.js';
export * from './iamUserName.js';
export * from './waitForKey.js';
export * from './rotateKey.js';
