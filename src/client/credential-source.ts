import type { Config } from '../config';
import { AppError, isAppError } from '../errors';
import type { OAuth2Provider, Provider } from '../providers/registry';
import type { Connection } from '../store';
import { isUnreadableCredential } from '../store/credential-errors';
import { resolveConnectionTarget } from './connection-target';
import {
  createRefreshCoordinator,
  reauthRequired,
  type RefreshCoordinator,
  type RefreshCoordinatorDeps,
} from './refresh-coordinator';
import { keepAliveSince } from '../store/keep-alive-index';
import { hasUsableAccessToken, isDueForRefresh } from './refresh-policy';
import { resolveRefreshSettings, type RefreshSettings } from './refresh-settings';
import type { AuthHeader, CredentialSource, KeepAliveOutcome, KeepAliveRefresher, ResolvedCredential } from './types';

export interface CredentialSourceDeps extends Omit<RefreshCoordinatorDeps, 'settings'> {
  config: Config;
  /** Overrides of the lock TTL, waits and cooldown (tests shorten them); defaults come from the config. */
  refresh?: Partial<RefreshSettings>;
}

/** The header a connection's credential goes in: Bearer for oauth2, the provider's format for api_key. */
export function authHeaderFor(provider: Provider, connection: Connection): AuthHeader | null {
  if (provider.authMode === 'api_key') {
    const key = connection.credentials.apiKey;
    return key ? { name: provider.apiKey.header, value: provider.apiKey.format.replace('{key}', () => key) } : null;
  }
  const token = connection.credentials.accessToken;
  return token ? { name: 'Authorization', value: `${connection.credentials.tokenType ?? 'Bearer'} ${token}` } : null;
}

/**
 * The credential source every caller uses. It refreshes proactively within the provider's
 * margin (RFC 6749 §6), once after a provider 401 (RFC 6750 §3.1 `invalid_token`), never in a
 * loop, and one refresh at a time per connection across every instance (see
 * {@link createRefreshCoordinator}). The keep-alive sweep refreshes through the same coordinator.
 */
export function createCredentialSource(deps: CredentialSourceDeps): CredentialSource & KeepAliveRefresher {
  const settings = resolveRefreshSettings(deps.config, deps.refresh);
  const coordinator = createRefreshCoordinator({ ...deps, settings });

  const load = async (provider: Provider, connectionId: string): Promise<Connection> => {
    const connection = await deps.store.getConnection(provider.id, connectionId);
    if (!connection) throw new AppError('connection_not_found', `No ${provider.id} connection "${connectionId}"`);
    if (connection.status === 'reauth_required') throw reauthRequired(provider, connectionId);
    return connection;
  };

  const resolve = (provider: Provider, connection: Connection): ResolvedCredential => {
    const header = authHeaderFor(provider, connection);
    if (!header)
      throw new AppError(
        'reauth_required',
        `The ${provider.displayName} connection has no usable credential; reconnect it`,
      );
    return { connection, header, target: resolveConnectionTarget(provider, connection) };
  };

  return {
    async getCredential(provider, connectionId, reqId) {
      const connection = await load(provider, connectionId);
      if (provider.authMode !== 'oauth2' || !isDueForRefresh(provider, connection, deps.clock.now())) {
        return resolve(provider, connection);
      }
      try {
        return resolve(provider, await coordinator.refresh(provider, connection, { kind: 'expiry', reqId }));
      } catch (err) {
        // A proactive refresh that fails while the token still works is no reason to fail the call.
        if (isAppError(err) && err.code === 'provider_error' && hasUsableAccessToken(connection, deps.clock.now())) {
          return resolve(provider, connection);
        }
        throw err;
      }
    },

    async refreshAfterUnauthorized(provider, connectionId, rejected, reqId) {
      if (provider.authMode !== 'oauth2') return null;
      const connection = await load(provider, connectionId);
      const rejectedToken = rejected.connection.credentials.accessToken;
      const stored = connection.credentials.accessToken;
      if (stored && stored !== rejectedToken) return resolve(provider, connection);
      if (!connection.credentials.refreshToken) return null;
      const sinceRefresh =
        connection.lastRefreshedAt === null ? Infinity : deps.clock.now() - connection.lastRefreshedAt;
      if (sinceRefresh < settings.minRefreshIntervalMs) {
        // The provider refuses a token it issued moments ago: refreshing again would only loop.
        deps.logger.info(
          { reqId, provider: provider.id, connectionId },
          'provider answered 401 to a fresh token; not refreshing again',
        );
        return null;
      }
      return resolve(
        provider,
        await coordinator.refresh(provider, connection, { kind: 'unauthorized', rejectedToken, reqId }),
      );
    },

    async forceRefresh(provider, connectionId, reqId) {
      const connection = await load(provider, connectionId);
      if (provider.authMode !== 'oauth2') return connection;
      return coordinator.refresh(provider, connection, { kind: 'force', reqId });
    },

    // Nothing is cached between calls: every call reads the store, so a reconnect or delete is seen at once.
    invalidate() {},

    keepAlive: (provider, connectionId, idleSince) =>
      keepAliveOnce(deps, coordinator, provider, connectionId, idleSince),
  };
}

/** See {@link KeepAliveRefresher.keepAlive}. */
async function keepAliveOnce(
  deps: CredentialSourceDeps,
  coordinator: RefreshCoordinator,
  provider: OAuth2Provider,
  connectionId: string,
  idleSince: number,
): Promise<KeepAliveOutcome> {
  try {
    const connection = await deps.store.getConnection(provider.id, connectionId);
    if (!connection || connection.status !== 'active' || !connection.credentials.refreshToken) {
      return { result: 'skipped', connection };
    }
    if (keepAliveSince(connection) > idleSince) return { result: 'skipped', connection };
    // Refreshed here, or (read under the lock) by a peer in the instant since the read above.
    const refreshed = await coordinator.refresh(provider, connection, { kind: 'keep_alive', idleSince });
    return { result: 'refreshed', connection: refreshed };
  } catch (err) {
    if (isAppError(err) && err.code === 'reauth_required') return { result: 'reauth_required' };
    // Gone, or sealed with a key no longer configured (the start-up report names those): nothing to
    // refresh until it is written again, which schedules it anew.
    if (isAppError(err) && err.code === 'connection_not_found') return { result: 'skipped', connection: null };
    if (isUnreadableCredential(err)) return { result: 'skipped', connection: null };
    return { result: 'failed', code: isAppError(err) ? err.code : 'internal_error' };
  }
}
