import type { AxiosInstance } from 'axios';
import type { Clock } from '../clock';
import type { Config } from '../config';
import { AppError } from '../errors';
import type { EventSink } from '../events';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { refreshTokenGrant, TokenEndpointError } from '../oauth/token-client';
import type { Provider } from '../providers/registry';
import type { Connection, Store } from '../store';
import type { AuthHeader, CredentialSource, ResolvedCredential } from './types';

export interface CredentialSourceDeps {
  config: Config;
  store: Store;
  clock: Clock;
  http: AxiosInstance;
  events: EventSink;
  logger: Logger;
  metrics: Metrics;
}

/** The header a connection's credential goes in: Bearer for oauth2, the provider's format for api_key. */
export function authHeaderFor(provider: Provider, connection: Connection): AuthHeader | null {
  if (provider.authMode === 'api_key') {
    const key = connection.credentials.apiKey;
    return key ? { name: provider.apiKey.header, value: provider.apiKey.format.replace('{key}', key) } : null;
  }
  const token = connection.credentials.accessToken;
  return token ? { name: 'Authorization', value: `${connection.credentials.tokenType ?? 'Bearer'} ${token}` } : null;
}

/**
 * BASELINE (to be replaced by the race-free coordinator): reads the store and refreshes when
 * the token is within the margin, without any locking.
 */
export function createCredentialSource(deps: CredentialSourceDeps): CredentialSource {
  const load = async (provider: Provider, connectionId: string): Promise<Connection> => {
    const connection = await deps.store.getConnection(provider.id, connectionId);
    if (!connection) throw new AppError('connection_not_found', `No ${provider.id} connection "${connectionId}"`);
    if (connection.status === 'reauth_required') {
      throw new AppError('reauth_required', `The ${provider.displayName} connection "${connectionId}" must be reconnected`);
    }
    return connection;
  };

  const refresh = async (provider: Provider, connection: Connection): Promise<Connection> => {
    if (provider.authMode !== 'oauth2' || !connection.credentials.refreshToken) return connection;
    try {
      const tokens = await refreshTokenGrant(provider, connection.credentials.refreshToken, {
        http: deps.http,
        timeoutMs: deps.config.tokenRequestTimeoutMs,
        now: () => deps.clock.now(),
      });
      const now = deps.clock.now();
      const updated = await deps.store.updateConnection(
        {
          ...connection,
          expiresAt: tokens.expiresAt,
          scopes: tokens.scopes ?? connection.scopes,
          updatedAt: now,
          lastRefreshedAt: now,
          credentials: {
            ...connection.credentials,
            accessToken: tokens.accessToken,
            tokenType: tokens.tokenType,
            refreshToken: tokens.refreshToken ?? connection.credentials.refreshToken,
          },
        },
        connection.version,
      );
      deps.events.emit('connection.refreshed', provider.id, connection.connectionId);
      return updated ?? (await load(provider, connection.connectionId));
    } catch (err) {
      if (err instanceof TokenEndpointError && err.oauthError === 'invalid_grant') {
        await deps.store.updateConnection({ ...connection, status: 'reauth_required', updatedAt: deps.clock.now() }, connection.version);
        throw new AppError('reauth_required', `The ${provider.displayName} connection must be reconnected`);
      }
      throw err;
    }
  };

  const resolve = (provider: Provider, connection: Connection): ResolvedCredential => {
    const header = authHeaderFor(provider, connection);
    if (!header) throw new AppError('reauth_required', `The ${provider.displayName} connection has no usable credential`);
    return { connection, header };
  };

  const dueForRefresh = (provider: Provider, c: Connection) =>
    provider.authMode === 'oauth2' &&
    (!c.credentials.accessToken || (c.expiresAt !== null && c.expiresAt - deps.clock.now() <= provider.refreshMarginSeconds * 1000));

  return {
    async getCredential(provider, connectionId) {
      let connection = await load(provider, connectionId);
      if (dueForRefresh(provider, connection)) connection = await refresh(provider, connection);
      return resolve(provider, connection);
    },
    async refreshAfterUnauthorized(provider, connectionId) {
      if (provider.authMode !== 'oauth2') return null;
      const connection = await load(provider, connectionId);
      if (!connection.credentials.refreshToken) return null;
      return resolve(provider, await refresh(provider, connection));
    },
    async forceRefresh(provider, connectionId) {
      return refresh(provider, await load(provider, connectionId));
    },
    invalidate() {},
  };
}
