import { Router } from 'express';
import type { CredentialSource } from '../client';
import type { ProviderRegistry } from '../providers/registry';

/** POST /connections/:provider/:connectionId/refresh and GET …/token (to be built). */
export function tokenRoutes(_deps: { providers: ProviderRegistry; credentials: CredentialSource }): Router {
  return Router();
}
