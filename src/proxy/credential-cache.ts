export * from '../client/credential-cache';
