import type { Logger } from '../logger';
import type { Store } from '../store';

/** A held refresh lock: extended in the background until released. */
export interface LockHold {
  /** True once an extension found the lock gone (expired, or taken by another holder). */
  lost(): boolean;
  /** Compare-and-delete; a store outage leaves the lock to expire by its TTL. */
  release(): Promise<void>;
}

/** The lock name of a connection's refresh. */
export function refreshLockName(provider: string, connectionId: string): string {
  return `refresh:${provider}:${connectionId}`;
}

/** The name of the marker that holds refreshes back after a failed token request. */
export function cooldownName(provider: string, connectionId: string): string {
  return `refresh-cooldown:${provider}:${connectionId}`;
}

/**
 * Takes the lock (a value unique to this holder, SET NX PX) or returns null when another
 * instance holds it. While held, the lock is pushed `ttlMs` ahead every third of its TTL with a
 * compare-and-pexpire, so a token endpoint slower than the TTL cannot let a second holder in and
 * make it send a refresh token that is about to be rotated away. Only a dead (or partitioned)
 * holder's lock lapses; that is what the TTL is for.
 */
export async function acquireRefreshLock(
  store: Store,
  name: string,
  ttlMs: number,
  logger: Logger,
): Promise<LockHold | null> {
  const token = await store.acquireLock(name, ttlMs);
  if (!token) return null;
  let lost = false;
  let extending = false;
  const timer = setInterval(
    () => {
      if (extending) return;
      extending = true;
      store
        .extendLock(name, token, ttlMs)
        .then(
          (held) => {
            if (held) return;
            lost = true;
            clearInterval(timer);
            logger.warn(
              { lock: name },
              'refresh lock lapsed while its holder was still working; the version check guards the write',
            );
          },
          () => {}, // a store blip: try again on the next beat, the TTL still has two thirds left
        )
        .finally(() => {
          extending = false;
        });
    },
    Math.max(10, Math.floor(ttlMs / 3)),
  );
  return {
    lost: () => lost,
    async release() {
      clearInterval(timer);
      await store.releaseLock(name, token).catch(() => false);
    },
  };
}
