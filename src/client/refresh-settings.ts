import type { Config } from '../config';

/** The knobs of the refresh coordinator. Every one has a safe default derived from the config. */
export interface RefreshSettings {
  /** Timeout of one token request (axios `timeout`). */
  tokenRequestTimeoutMs: number;
  /**
   * TTL of the per-connection refresh lock. The holder extends it every third of its life while
   * the token request is in flight, so it only lapses when the holder died or lost Redis.
   */
  lockTtlMs: number;
  /** How long a caller waits for another holder before answering 502 (covers a live holder's request and a dead one's TTL). */
  lockWaitMs: number;
  /** Interval at which a waiter re-reads the store while another instance holds the lock. */
  lockPollMs: number;
  /** After a failed token request, calls answer 502 at once for this long instead of hammering the provider. */
  cooldownMs: number;
  /**
   * A 401 on an access token obtained by a refresh less than this long ago does not trigger another
   * refresh: the provider is rejecting the new token, and refreshing again would loop.
   */
  minRefreshIntervalMs: number;
}

/**
 * Settings from explicit overrides, then `REFRESH_LOCK_TTL_MS` / `REFRESH_COOLDOWN_MS`, then
 * defaults. By default the lock outlives the token request by 5 s, so even without the
 * heartbeat a holder's request times out before its lock can expire.
 */
export function resolveRefreshSettings(config: Config, overrides: Partial<RefreshSettings> = {}): RefreshSettings {
  const tokenRequestTimeoutMs = overrides.tokenRequestTimeoutMs ?? config.tokenRequestTimeoutMs;
  const lockTtlMs = overrides.lockTtlMs ?? config.refreshLockTtlMs ?? tokenRequestTimeoutMs + 5000;
  return {
    tokenRequestTimeoutMs,
    lockTtlMs,
    lockWaitMs: overrides.lockWaitMs ?? tokenRequestTimeoutMs + lockTtlMs + 2000,
    lockPollMs: overrides.lockPollMs ?? 20,
    cooldownMs: overrides.cooldownMs ?? config.refreshCooldownMs,
    minRefreshIntervalMs: overrides.minRefreshIntervalMs ?? 30_000,
  };
}
