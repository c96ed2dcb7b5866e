import type { AxiosInstance } from 'axios';
import type { Clock } from '../clock';
import { AppError, isAppError } from '../errors';
import type { EventSink } from '../events';
import { withRequestId, type Logger } from '../logger';
import type { Metrics } from '../metrics';
import { refreshTokenGrant, TokenEndpointError } from '../oauth/token-client';
import { withConnectionEndpoints } from './connection-target';
import type { TokenSet } from '../oauth/token-response';
import type { OAuth2Provider } from '../providers/registry';
import type { Connection, ConnectionInput, Store } from '../store';
import { keepAliveSince } from '../store/keep-alive-index';
import { acquireRefreshLock, cooldownName, refreshLockName, type LockHold } from './refresh-lock';
import type { RefreshSettings } from './refresh-settings';
import { createSingleFlight } from './single-flight';

/**
 * Why a refresh is wanted; it decides whether a peer's newer write already answers the need.
 * `keep_alive`: the background sweep's, for a connection idle since `idleSince` or earlier.
 */
export type RefreshReason = (
  | { kind: 'expiry' }
  | { kind: 'force' }
  | { kind: 'unauthorized'; rejectedToken: string | undefined }
  | { kind: 'keep_alive'; idleSince: number }
) & {
  /** The request the refresh serves, if any: its lines carry this id. */
  reqId?: string;
};

export interface RefreshCoordinatorDeps {
  store: Store;
  clock: Clock;
  http: AxiosInstance;
  events: EventSink;
  logger: Logger;
  metrics: Metrics;
  settings: RefreshSettings;
}

export interface RefreshCoordinator {
  /**
   * Refreshes `seen` (a connection as the caller read it) or returns the newer connection a peer
   * stored meanwhile. Throws `reauth_required` (409), `connection_not_found` (404) or
   * `provider_error` (502 with Retry-After); the stored credentials are kept on a 502.
   */
  refresh(provider: OAuth2Provider, seen: Connection, reason: RefreshReason): Promise<Connection>;
}

/**
 * One refresh at a time per connection, across every instance (SECURITY.md §13–16):
 * - in this process, concurrent callers share one run (single flight);
 * - across processes, a Redis lock with a holder-unique value, compare-and-delete release, and a
 *   heartbeat (compare-and-pexpire) while the token request is in flight;
 * - after taking the lock the holder re-reads the store, so a refresh a peer finished meanwhile
 *   is used, not repeated (a second refresh under strict rotation revokes the token family);
 * - the new credentials are written with a version check, so a holder whose lock lapsed can
 *   never overwrite newer credentials;
 * - waiters poll the store and take the new token as soon as it is written.
 */
export function createRefreshCoordinator(deps: RefreshCoordinatorDeps): RefreshCoordinator {
  const flights = createSingleFlight<Connection>();
  return {
    refresh(provider, seen, reason) {
      // Lines logged for the refresh carry the id of the request that started it.
      const own = reason.reqId ? { ...deps, logger: withRequestId(deps.logger, reason.reqId) } : deps;
      return flights.run(`${provider.id}:${seen.connectionId}`, () => coordinate(own, provider, seen, reason));
    },
  };
}

async function coordinate(
  deps: RefreshCoordinatorDeps,
  provider: OAuth2Provider,
  seen: Connection,
  reason: RefreshReason,
): Promise<Connection> {
  const { settings } = deps;
  const started = performance.now();
  let waited = false;
  for (;;) {
    const current = await readConnection(deps.store, provider, seen.connectionId);
    const settled = settledByPeer(provider, current, seen, reason);
    if (settled) {
      if (waited) deps.metrics.lockWaits.observe({ provider: provider.id }, (performance.now() - started) / 1000);
      return settled;
    }
    if (await deps.store.isLocked(cooldownName(provider.id, seen.connectionId))) throw coolingDown(provider, settings);

    const hold = await acquireRefreshLock(
      deps.store,
      refreshLockName(provider.id, seen.connectionId),
      settings.lockTtlMs,
      deps.logger,
    );
    if (hold) {
      if (waited) deps.metrics.lockWaits.observe({ provider: provider.id }, (performance.now() - started) / 1000);
      try {
        return await refreshHolding(deps, provider, seen, reason, hold);
      } finally {
        await hold.release();
      }
    }
    waited = true;
    if (performance.now() - started > settings.lockWaitMs) {
      throw new AppError(
        'provider_error',
        `Another instance is still refreshing the ${provider.displayName} connection`,
        {
          retryAfter: 1,
        },
      );
    }
    await pause(settings.lockPollMs);
  }
}

/** Under the lock: re-read, then (only if still needed) one token request and a version-checked write. */
async function refreshHolding(
  deps: RefreshCoordinatorDeps,
  provider: OAuth2Provider,
  seen: Connection,
  reason: RefreshReason,
  hold: LockHold,
): Promise<Connection> {
  const current = await readConnection(deps.store, provider, seen.connectionId);
  const settled = settledByPeer(provider, current, seen, reason);
  if (settled) return settled;
  const refreshToken = current.credentials.refreshToken;
  if (!refreshToken) {
    throw new AppError(
      'reauth_required',
      `The ${provider.displayName} connection has no refresh token; reconnect it to renew access`,
    );
  }
  if (!provider.enabled) {
    throw new AppError(
      'provider_not_enabled',
      `Provider "${provider.id}" is not enabled, so its tokens cannot be refreshed`,
    );
  }

  let tokens: TokenSet;
  try {
    // The token URL of a templated provider is built from the connection's own config.
    tokens = await refreshTokenGrant(withConnectionEndpoints(provider, current), refreshToken, {
      http: deps.http,
      timeoutMs: deps.settings.tokenRequestTimeoutMs,
      now: () => deps.clock.now(),
    });
  } catch (err) {
    if (err instanceof TokenEndpointError && err.oauthError === 'invalid_grant') {
      return handleInvalidGrant(deps, provider, seen.connectionId, refreshToken);
    }
    throw await handleProviderFailure(deps, provider, current, err);
  }
  if (hold.lost())
    deps.logger.warn(
      { provider: provider.id, connectionId: current.connectionId },
      'writing a refresh after the lock lapsed',
    );
  return storeRefreshed(deps, provider, current, tokens);
}

/**
 * The connection a peer already produced, when its write answers this caller's need: a newer
 * version with an access token (expiry, force), or an access token other than the rejected one
 * (401), or a refresh since it fell due (keep-alive). A connection marked `reauth_required`
 * answers 409 at once.
 */
function settledByPeer(
  provider: OAuth2Provider,
  current: Connection,
  seen: Connection,
  reason: RefreshReason,
): Connection | null {
  if (current.status === 'reauth_required') throw reauthRequired(provider, current.connectionId);
  const token = current.credentials.accessToken;
  if (reason.kind === 'unauthorized') return token && token !== reason.rejectedToken ? current : null;
  // Refreshed (or reconnected) since it fell due, by anyone: the grant was used, nothing to keep alive.
  if (reason.kind === 'keep_alive') return keepAliveSince(current) > reason.idleSince ? current : null;
  return current.version !== seen.version && token ? current : null;
}

/**
 * invalid_grant (RFC 6749 §5.2): re-read first, since another instance may have refreshed with
 * the same token and stored a new one. Only when the stored refresh token is still the one the
 * provider refused is the connection marked `reauth_required`, once, with its event.
 */
async function handleInvalidGrant(
  deps: RefreshCoordinatorDeps,
  provider: OAuth2Provider,
  connectionId: string,
  refusedToken: string,
): Promise<Connection> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const latest = await readConnection(deps.store, provider, connectionId);
    if (latest.status === 'reauth_required') throw reauthRequired(provider, connectionId);
    if (latest.credentials.refreshToken && latest.credentials.refreshToken !== refusedToken) {
      deps.metrics.refreshes.inc({ provider: provider.id, result: 'lost_race' });
      return latest;
    }
    // The event is recorded by the write itself: a mark lost to a concurrent writer records none.
    const event = { type: 'connection.reauth_required', detail: { code: 'invalid_grant' } } as const;
    const marked = await deps.store.updateConnection(
      { ...withoutVersion(latest), status: 'reauth_required', updatedAt: deps.clock.now() },
      latest.version,
      event,
    );
    if (!marked) continue;
    deps.metrics.refreshes.inc({ provider: provider.id, result: 'invalid_grant' });
    deps.events.emit(event.type, provider.id, connectionId, event.detail);
    deps.logger.warn(
      { provider: provider.id, connectionId },
      'the provider refused the refresh token (invalid_grant); the connection needs reconnecting',
    );
    throw reauthRequired(provider, connectionId);
  }
  throw reauthRequired(provider, connectionId);
}

/**
 * Token endpoint down, slow or refusing for another reason: keep the credentials, stay active,
 * start the cooldown (shared by every instance through the store), and answer 502 with Retry-After.
 */
async function handleProviderFailure(
  deps: RefreshCoordinatorDeps,
  provider: OAuth2Provider,
  current: Connection,
  err: unknown,
): Promise<AppError> {
  const { connectionId } = current;
  deps.metrics.refreshes.inc({ provider: provider.id, result: 'provider_error' });
  deps.events.emit('connection.refresh_failed', provider.id, connectionId, {
    code: isAppError(err) ? err.code : 'provider_error',
  });
  if (deps.settings.cooldownMs > 0) {
    await deps.store.acquireLock(cooldownName(provider.id, connectionId), deps.settings.cooldownMs).catch(() => null);
  }
  const known = isAppError(err) ? err : undefined;
  deps.logger.warn(
    { provider: provider.id, connectionId, upstream: known?.provider, err: known ? undefined : err },
    'token refresh failed; keeping the current credentials',
  );
  return new AppError(
    'provider_error',
    `Refreshing the ${provider.displayName} connection failed: ${known?.message ?? 'unexpected error'}`,
    {
      cause: err,
      retryAfter: retryAfterOf(deps.settings),
      provider: known?.provider,
    },
  );
}

/**
 * RFC 6749 §6: a response without `refresh_token` means the old one stays valid; one with it
 * replaces the old one (rotation). Written only if nobody wrote since `current` was read.
 */
async function storeRefreshed(
  deps: RefreshCoordinatorDeps,
  provider: OAuth2Provider,
  current: Connection,
  tokens: TokenSet,
): Promise<Connection> {
  const now = deps.clock.now();
  const input: ConnectionInput = {
    ...withoutVersion(current),
    status: 'active',
    scopes: tokens.scopes ?? current.scopes,
    expiresAt: tokens.expiresAt,
    updatedAt: now,
    lastRefreshedAt: now,
    credentials: {
      ...current.credentials,
      accessToken: tokens.accessToken,
      tokenType: tokens.tokenType,
      refreshToken: tokens.refreshToken ?? current.credentials.refreshToken,
      idToken: tokens.idToken ?? current.credentials.idToken,
    },
  };
  const refreshed = { type: 'connection.refreshed', detail: { rotated: Boolean(tokens.refreshToken) } } as const;
  const written = await writeWithRetry(() => deps.store.updateConnection(input, current.version, refreshed));
  if (!written) {
    // Someone wrote while we refreshed: only possible after our lock lapsed, or a reconnect. Theirs wins.
    deps.metrics.refreshes.inc({ provider: provider.id, result: 'lost_race' });
    deps.logger.warn(
      { provider: provider.id, connectionId: current.connectionId },
      'refreshed credentials not written: a newer version exists',
    );
    const latest = await readConnection(deps.store, provider, current.connectionId);
    if (latest.status === 'reauth_required') throw reauthRequired(provider, current.connectionId);
    return latest;
  }
  deps.metrics.refreshes.inc({ provider: provider.id, result: 'success' });
  deps.events.emit(refreshed.type, provider.id, current.connectionId, refreshed.detail);
  deps.logger.info(
    { provider: provider.id, connectionId: current.connectionId, rotated: Boolean(tokens.refreshToken) },
    'connection refreshed',
  );
  return written;
}

/** The provider already rotated the token: losing the answer to a store blip would cost the connection, so try a few times. */
async function writeWithRetry(write: () => Promise<Connection | null>): Promise<Connection | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (!(isAppError(err) && err.code === 'store_unavailable') || attempt >= 3) throw err;
      await pause(100 * attempt);
    }
  }
}

async function readConnection(store: Store, provider: OAuth2Provider, connectionId: string): Promise<Connection> {
  const connection = await store.getConnection(provider.id, connectionId);
  if (!connection) throw new AppError('connection_not_found', `No ${provider.id} connection "${connectionId}"`);
  return connection;
}

function coolingDown(provider: OAuth2Provider, settings: RefreshSettings): AppError {
  return new AppError(
    'provider_error',
    `The ${provider.displayName} token endpoint failed moments ago; try again shortly`,
    {
      retryAfter: retryAfterOf(settings),
    },
  );
}

function retryAfterOf(settings: RefreshSettings): number {
  return Math.max(1, Math.ceil(settings.cooldownMs / 1000));
}

export function reauthRequired(provider: { displayName: string }, connectionId: string): AppError {
  return new AppError(
    'reauth_required',
    `The ${provider.displayName} connection "${connectionId}" must be reconnected`,
  );
}

function withoutVersion(connection: Connection): ConnectionInput {
  const { version: _version, ...input } = connection;
  return input;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
