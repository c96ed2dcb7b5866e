import { Router } from 'express';
import type { CredentialSource } from '../client';
import type { ProviderRegistry } from '../providers/registry';
import { singleValuedQuery } from './body-parsing';
import { requireAccess } from './api-auth';
import { parseConnectionParams } from './service-routes';
import { toConnectionView } from './views';
import type { TokenWire } from '../wire/api-schemas';
import { requestIdOfAnswer } from '../wire/access-log';

/** `GET …/token`'s answer (wire/api-schemas.ts `TokenSchema`). */
export type TokenResponseView = TokenWire;

/**
 * `POST /connections/:provider/:connectionId/refresh` forces a refresh and answers the
 * Connection; `GET …/token` answers a working access token, refreshed first when within the
 * provider's margin. Both go through the one credential source, so they share its lock,
 * single flight, cooldown and `reauth_required` handling. Mounted behind the API key.
 */
export function tokenRoutes(deps: { providers: ProviderRegistry; credentials: CredentialSource }): Router {
  const router = Router();
  router.use('/connections', singleValuedQuery);

  router.post('/connections/:provider/:connectionId/refresh', requireAccess('full'), async (req, res) => {
    const { provider, connectionId } = parseConnectionParams(req.params);
    const connection = await deps.credentials.forceRefresh(
      deps.providers.require(provider),
      connectionId,
      requestIdOfAnswer(res),
    );
    res.set('Cache-Control', 'no-store').json(toConnectionView(connection));
  });

  router.get('/connections/:provider/:connectionId/token', requireAccess('proxy'), async (req, res) => {
    const { provider, connectionId } = parseConnectionParams(req.params);
    const { connection } = await deps.credentials.getCredential(
      deps.providers.require(provider),
      connectionId,
      requestIdOfAnswer(res),
    );
    const body: TokenResponseView =
      connection.authMode === 'api_key'
        ? { access_token: connection.credentials.apiKey ?? '', token_type: 'api_key', expires_at: null }
        : {
            access_token: connection.credentials.accessToken ?? '',
            token_type: connection.credentials.tokenType ?? 'Bearer',
            expires_at: connection.expiresAt === null ? null : new Date(connection.expiresAt).toISOString(),
          };
    // RFC 6749 §5.1: an answer carrying a token must not be cached.
    res.set('Cache-Control', 'no-store').set('Pragma', 'no-cache').json(body);
  });

  return router;
}
