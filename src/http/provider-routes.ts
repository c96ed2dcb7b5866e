import { Router } from 'express';
import { canUseProvider } from '../guards/access';
import type { Provider, ProviderRegistry } from '../providers/registry';
import { requireAccess } from './api-auth';

/** One entry of `GET /providers` (CONTRACT "Additions": `GET /providers`), snake_case on the wire. */
export interface ProviderView {
  id: string;
  display_name: string;
  auth_mode: Provider['authMode'];
  /** Its credentials are set: oauth2 client id and secret; always true for api_key. */
  configured: boolean;
  /** False for entries built from best-known facts, and for PROVIDERS_FILE entries that do not say `verified: true`. */
  verified: boolean;
  connection_config: Array<{ name: string; label: string; pattern: string; required: boolean }>;
}

export function toProviderView(p: Provider): ProviderView {
  return {
    id: p.id,
    display_name: p.displayName,
    auth_mode: p.authMode,
    configured: p.configured,
    verified: p.verified,
    connection_config: Object.entries(p.connectionConfig).map(([name, c]) => ({
      name,
      label: c.label,
      pattern: c.pattern,
      required: c.required,
    })),
  };
}

/**
 * `GET /providers`: what a host application needs to draw its own Connect buttons, for every
 * provider that is not switched off (configured or not: `configured` says which). A key limited
 * to some providers sees only those. Mounted behind the API key; `read` access.
 */
export function providerRoutes(deps: { providers: ProviderRegistry }): Router {
  const router = Router();
  router.get('/providers', requireAccess('read'), (_req, res) => {
    const scope = res.locals.apiKey!;
    const providers = deps.providers.list().filter((p) => !p.switchedOff && canUseProvider(scope, p.id));
    res.json({ providers: providers.map(toProviderView) });
  });
  return router;
}
