import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { Store } from './types';

export interface IndexBackfillOptions {
  /** Connections indexed per step (each step is one SSCAN and one read of each). */
  batch?: number;
  /** The lock's TTL, pushed back after every step; another instance takes over once it lapses. */
  lockTtlMs?: number;
  /** When the lock is held elsewhere: how long until this instance looks again. */
  retryMs?: number;
  /**
   * Between passes. Every pass re-indexes every connection, catching up connections written by an
   * instance of the first release during a rolling upgrade (it keeps the legacy set, not the index).
   */
  intervalMs?: number;
  onError?: (err: unknown) => void;
  onPass?: (indexed: number) => void;
}

export interface IndexBackfill {
  /** Resolves when this instance finished its first pass (or stopped). For tests and ops. */
  readonly firstPass: Promise<void>;
  /** Stops: the step in flight finishes, the lock is released, no timer is left. */
  close(): Promise<void>;
}

const LOCK = 'connection-index-backfill';

/**
 * Builds and keeps up the listing index (issue 11 part 6) for stores written by the first release:
 * one instance at a time (a lock), in bounded steps that yield to I/O between them, resuming where
 * any instance stopped (the cursor is kept in the store), idempotent. Until a first pass has ended,
 * listing answers from the legacy set (see {@link Store.queryConnections}).
 */
export function startIndexBackfill(store: Store, options: IndexBackfillOptions = {}): IndexBackfill {
  const batch = options.batch ?? 500;
  const lockTtlMs = options.lockTtlMs ?? 30_000;
  const retryMs = options.retryMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 60 * 60_000;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let settleFirst!: () => void;
  const firstPass = new Promise<void>((resolve) => (settleFirst = resolve));

  const schedule = (ms: number) => {
    if (closed) return;
    timer = setTimeout(() => {
      running = pass().finally(() => (running = undefined));
    }, ms);
    timer.unref();
  };

  async function pass(): Promise<void> {
    let token: string | null = null;
    try {
      token = await store.acquireLock(LOCK, lockTtlMs);
      if (!token) return schedule(retryMs);
      let indexed = 0;
      while (!closed) {
        const step = await store.backfillConnectionIndex(batch);
        indexed += step.indexed;
        if (step.passDone) {
          options.onPass?.(indexed);
          settleFirst();
          break;
        }
        if (!(await store.extendLock(LOCK, token, lockTtlMs))) {
          token = null;
          return schedule(retryMs);
        }
        await yieldToIo();
      }
      schedule(intervalMs);
    } catch (err) {
      options.onError?.(err);
      schedule(retryMs);
    } finally {
      if (token) await store.releaseLock(LOCK, token).catch(() => false);
    }
  }

  running = pass().finally(() => (running = undefined));
  return {
    firstPass,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await running;
      settleFirst();
    },
  };
}
