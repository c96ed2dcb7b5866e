import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { BackfillStep } from './connection-listing';
import type { KeepAliveBackfillPlan } from './keep-alive-index';
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
  /**
   * Also schedules, after the listing index in every pass, the keep-alive of connections that have
   * no due time yet (issue 11 part 6), each at the time the plan gives (jittered when overdue).
   */
  keepAlive?: KeepAliveBackfillPlan;
  onError?: (err: unknown) => void;
  onPass?: (indexed: number) => void;
  /** After the keep-alive part of a pass, with the connections it scheduled. */
  onKeepAlivePass?: (scheduled: number) => void;
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
 * listing answers from the legacy set (see {@link Store.queryConnections}). With `keepAlive`, each
 * pass then gives the connections without a keep-alive due time one, the same way (its own cursor).
 */
export function startIndexBackfill(store: Store, options: IndexBackfillOptions = {}): IndexBackfill {
  const batch = options.batch ?? 500;
  const lockTtlMs = options.lockTtlMs ?? 30_000;
  const retryMs = options.retryMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 60 * 60_000;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  /** The pass in flight found its lock gone: it is not released (it may be someone else's now). */
  let lost = false;
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
    lost = false;
    try {
      token = await store.acquireLock(LOCK, lockTtlMs);
      if (!token) return schedule(retryMs);
      const indexed = await walk(() => store.backfillConnectionIndex(batch), token);
      if (indexed === null) return schedule(retryMs);
      if (closed) return;
      options.onPass?.(indexed);
      const plan = options.keepAlive;
      if (plan) {
        const scheduled = await walk(() => store.keepAlive.backfillStep(batch, plan), token);
        if (scheduled === null) return schedule(retryMs);
        if (closed) return;
        options.onKeepAlivePass?.(scheduled);
      }
      settleFirst();
      schedule(intervalMs);
    } catch (err) {
      options.onError?.(err);
      schedule(retryMs);
    } finally {
      if (token && !lost) await store.releaseLock(LOCK, token).catch(() => false);
    }
  }

  /**
   * Runs `step` until it ends a pass or the backfill closes, pushing the lock back after each
   * step and yielding to I/O between them: how many connections it (re)indexed, or null when the
   * lock was lost (another instance goes on from the cursor kept in the store).
   */
  async function walk(step: () => Promise<BackfillStep>, token: string): Promise<number | null> {
    let indexed = 0;
    while (!closed) {
      const done = await step();
      indexed += done.indexed;
      if (done.passDone) break;
      if (!(await store.extendLock(LOCK, token, lockTtlMs))) {
        lost = true;
        return null;
      }
      await yieldToIo();
    }
    return indexed;
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
