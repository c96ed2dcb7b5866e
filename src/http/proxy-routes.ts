import { Router } from 'express';
import type { CredentialSource } from '../client';
import type { Config } from '../config';
import type { Metrics } from '../metrics';
import type { ProviderRegistry } from '../providers/registry';

/** ALL /proxy/:provider/* (to be built). */
export function proxyRoutes(_deps: { config: Config; providers: ProviderRegistry; credentials: CredentialSource; metrics: Metrics }): Router {
  return Router();
}
