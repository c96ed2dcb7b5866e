import type { Clock } from '../clock';
import type { Store } from '../store';
import { RATE_WINDOW_MS } from './rate-limit';

/**
 * Failed API-key attempts, counted per client address in fixed one-minute windows shared by
 * every instance through the store. Once an address goes over the limit, its further failures
 * answer 429 with `Retry-After` until its window ends; a right key from it is still served.
 *
 * Why not refuse the right key too: keys are long random secrets (guessing one is hopeless at
 * any rate), so the limit is there to bound what a flood of bad keys costs and to tell a
 * misconfigured client to stop, not to stop a guesser. Refusing right keys would let one client
 * with a stale key, or anyone sharing its address (a NAT, a proxy that TRUST_PROXY does not
 * name), lock every service behind that address out of Latchkey.
 *
 * Only failures reach the store, and only until the address is over the limit: from then on
 * this instance remembers the block in memory and answers without a round trip. Another
 * instance learns of it at the next failure it counts in the shared window.
 */
export interface FailedAttempts {
  /** Seconds left of this address's block (0: not blocked). In memory, no I/O. */
  blockedFor(address: string): number;
  /**
   * Counts one failure of `address`; resolves to the seconds of the block it caused (the
   * failure that goes over the limit, and every one after it in the window), else 0.
   */
  record(address: string): Promise<number>;
  /** Failures allowed per address per minute (0: unlimited). */
  readonly limit: number;
}

export interface FailedAttemptsOptions {
  store: Pick<Store, 'hit'>;
  clock: Clock;
  /** Failures allowed per address per minute; 0 turns the limit off. */
  limit: number;
  /** Addresses remembered at once, blocked or counted locally (a bound on memory). */
  maxAddresses?: number;
}

/** The store's key for an address's failures. */
export const failedAttemptsKey = (address: string): string => `auth-failures:ip:${address}`;

export function createFailedAttempts(options: FailedAttemptsOptions): FailedAttempts {
  const { store, clock, limit } = options;
  const maxAddresses = options.maxAddresses ?? 10_000;
  if (limit <= 0) return { blockedFor: () => 0, record: () => Promise.resolve(0), limit: 0 };

  /** Address → time its block ends. */
  const blocked = new Map<string, number>();
  /** Address → the local window, used only while the store does not answer. */
  const local = new Map<string, { count: number; resetAt: number }>();

  const bounded = <V>(map: Map<string, V>, key: string, value: V, expired: (v: V) => boolean) => {
    map.delete(key);
    if (map.size >= maxAddresses) {
      for (const [k, v] of map) if (expired(v)) map.delete(k);
      // Still full: forget the oldest (Map keeps insertion order).
      while (map.size >= maxAddresses) map.delete(map.keys().next().value!);
    }
    map.set(key, value);
  };

  const blockedFor = (address: string): number => {
    const until = blocked.get(address);
    if (until === undefined) return 0;
    const left = until - clock.now();
    if (left <= 0) {
      blocked.delete(address);
      return 0;
    }
    return Math.max(1, Math.ceil(left / 1000));
  };

  /** The shared count; the local one when the store does not answer (failures are still limited). */
  const count = async (address: string): Promise<{ count: number; resetMs: number }> => {
    try {
      return await store.hit(failedAttemptsKey(address), RATE_WINDOW_MS);
    } catch {
      const now = clock.now();
      let window = local.get(address);
      if (!window || window.resetAt <= now) {
        window = { count: 0, resetAt: now + RATE_WINDOW_MS };
        bounded(local, address, window, (w) => w.resetAt <= now);
      }
      window.count += 1;
      return { count: window.count, resetMs: window.resetAt - now };
    }
  };

  return {
    limit,
    blockedFor,
    async record(address) {
      const window = await count(address);
      if (window.count <= limit) return 0;
      const now = clock.now();
      bounded(blocked, address, now + window.resetMs, (until) => until <= now);
      return blockedFor(address);
    },
  };
}
