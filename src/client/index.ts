export * from './types';
export { authHeaderFor, createCredentialSource, type CredentialSourceDeps } from './credential-source';
