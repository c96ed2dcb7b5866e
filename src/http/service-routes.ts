import { Router } from 'express';
import type { CredentialSource } from '../client';
import type { FlowDeps } from '../connect/authorization-flow';
import { createConnectSession } from '../connect/connect-sessions';
import { AppError } from '../errors';
import { revokeCredentials, type RevocationResult } from '../oauth/token-revocation';
import { withConnectionEndpoints } from '../client/connection-target';
import type { OAuth2Provider, Provider } from '../providers/registry';
import { isUnreadableCredential, type Connection } from '../store';
import { jsonBody, singleValuedQuery } from './body-parsing';
import { requireAccess } from './api-auth';
import { toConnectionView } from './views';
import { listConnectionPage } from './connection-page';
import {
  ConnectionParamsSchema,
  ListConnectionsQuerySchema,
  parseRequest,
  type ConnectionListWire,
} from '../wire/api-schemas';

export interface ServiceRouteDeps extends FlowDeps {
  /** Told about every delete, so no cached credential outlives its connection. */
  credentials: CredentialSource;
}

/** The header of a 204 that says what became of the grant at the provider (a 204 has no body). */
export const REVOCATION_HEADER = 'Latchkey-Revocation';

/** `:provider/:connectionId`, checked with the wire schema; 400 `invalid_request` naming the parameter. */
export function parseConnectionParams(params: Record<string, string | string[] | undefined>): {
  provider: string;
  connectionId: string;
} {
  return parseRequest(ConnectionParamsSchema, params, 'path');
}

/**
 * What `Latchkey-Revocation` says: RFC 7009's outcome, or `not_possible` when the stored
 * credentials could not be opened (sealed with a key that is no longer configured), so there was
 * no token to revoke; the grant may live on at the provider until it expires or is revoked there.
 */
export type DeletionRevocation = RevocationResult | 'not_possible';

/**
 * Deletes a connection: revokes its grant at the provider first when the provider has a
 * `revocationUrl` (RFC 7009), then deletes it whatever the provider said — a user who
 * disconnects must be disconnected even while the provider is down — drops any cached
 * credential; the delete records `connection.deleted` (with the revocation's outcome) in the same
 * step. A connection whose credentials no configured key opens is deleted too, without
 * revocation (SECURITY.md 26).
 *
 * @throws AppError `connection_not_found` (404), `store_unavailable` (503)
 */
export async function deleteConnection(
  deps: ServiceRouteDeps,
  provider: Provider,
  connectionId: string,
): Promise<DeletionRevocation> {
  const info = await deps.store.getConnectionInfo(provider.id, connectionId);
  if (!info) throw new AppError('connection_not_found', `No ${provider.id} connection "${connectionId}"`);
  let revocation: DeletionRevocation = 'not_supported';
  if (provider.authMode === 'oauth2') {
    const connection = await deps.store.getConnection(provider.id, connectionId).catch((err: unknown) => {
      if (isUnreadableCredential(err)) return 'unreadable' as const;
      throw err;
    });
    revocation =
      connection === 'unreadable'
        ? 'not_possible'
        : connection
          ? await revokeCredentials(revocationEndpoints(provider, connection), connection.credentials, {
              http: deps.http,
              timeoutMs: deps.config.tokenRequestTimeoutMs,
            })
          : 'not_supported';
  }
  // Recorded by the delete itself, and only when it deleted (a concurrent delete records its own).
  const event = { type: 'connection.deleted', detail: { revocation } } as const;
  const deleted = await deps.store.deleteConnection(provider.id, connectionId, event);
  deps.credentials.invalidate(provider.id, connectionId);
  if (deleted) deps.events.emit(event.type, provider.id, connectionId, event.detail);
  return revocation;
}

/** The provider with the connection's own revocation URL; one that cannot be built means no revocation. */
function revocationEndpoints(provider: OAuth2Provider, connection: Connection): OAuth2Provider {
  try {
    return withConnectionEndpoints(provider, connection);
  } catch {
    return { ...provider, revocationUrl: null };
  }
}

/** Connect sessions, reading and deleting connections; mounted behind the API-key check. */
export function serviceRoutes(deps: ServiceRouteDeps): Router {
  const router = Router();
  const json = jsonBody({ limit: '64kb' });
  // Every service route reads its query once: a parameter given twice is refused, not half-read.
  router.use(['/connect-sessions', '/connections'], singleValuedQuery);

  // The provider a connect session is for, and the one a list asks for: checked against the key's.
  const sessionAccess = requireAccess('full', (req) =>
    typeof req.body?.provider === 'string' ? (req.body.provider as string) : undefined,
  );
  const listAccess = requireAccess('read', (req) =>
    typeof req.query.provider === 'string' && req.query.provider ? req.query.provider : undefined,
  );

  router.post('/connect-sessions', json, sessionAccess, async (req, res) => {
    res.status(201).json(await createConnectSession(deps, req.body));
  });

  router.get('/connections', listAccess, async (req, res) => {
    // An empty value is no value (`?provider=` lists every provider, as in the first release).
    const given = Object.fromEntries(Object.entries(req.query).filter(([, v]) => v !== ''));
    const query = parseRequest(ListConnectionsQuerySchema, given, 'query');
    if (query.provider) deps.providers.require(query.provider);
    // A key limited to providers sees only theirs: the store queries only their indexes.
    const page = await listConnectionPage(deps.store, res.locals.apiKey!, query);
    const body: ConnectionListWire = {
      connections: page.connections.map(toConnectionView),
      next_cursor: page.nextCursor,
    };
    res.json(body);
  });

  router.get('/connections/:provider/:connectionId', requireAccess('read'), async (req, res) => {
    const { provider, connectionId } = parseConnectionParams(req.params);
    deps.providers.require(provider);
    // The plaintext fields: answers even when no configured key opens the credentials.
    const connection = await deps.store.getConnectionInfo(provider, connectionId);
    if (!connection) throw new AppError('connection_not_found', `No ${provider} connection "${connectionId}"`);
    res.json(toConnectionView(connection));
  });

  router.delete('/connections/:provider/:connectionId', requireAccess('full'), async (req, res) => {
    const { provider, connectionId } = parseConnectionParams(req.params);
    // Also for a provider switched off: its stored connections can still be deleted.
    const revocation = await deleteConnection(deps, deps.providers.requireKnown(provider), connectionId);
    res.setHeader(REVOCATION_HEADER, revocation);
    res.setHeader('Cache-Control', 'no-store');
    res.status(204).end();
  });

  return router;
}
