import { setImmediate as yieldToIo } from 'node:timers/promises';
import { OUTBOX_RECOVERY_AGE_MS } from './event-log';
import type { OutboxRecoveryStep } from './event-outbox';
import type { Store } from './types';

export interface OutboxRecoveryOptions {
  /** Marks looked at per step. */
  batch?: number;
  /** Steps per pass at most, so one pass stays bounded; the rest waits for the next pass. */
  maxSteps?: number;
  /** Between passes (the first runs at start). */
  intervalMs?: number;
  /** Only marks older than this are a crashed writer's; a younger one may still be relaying. */
  olderThanMs?: number;
  /** The lock's TTL, pushed back after every step. */
  lockTtlMs?: number;
  onError?: (err: unknown) => void;
  /** A pass that found something: events relayed, marks dropped. */
  onRecovered?: (found: Omit<OutboxRecoveryStep, 'more'>) => void;
}

export interface OutboxRecovery {
  /** Runs one pass now (after the one in flight, if any); resolves when it is done. For tests and ops. */
  runNow(): Promise<void>;
  /** Stops: the step in flight finishes, the lock is released, no timer is left. */
  close(): Promise<void>;
}

const LOCK = 'event-outbox-recovery';

/**
 * Moves to the log the events that crashed writers left in connection outboxes (see
 * event-outbox.ts), at start and then every `intervalMs`. One instance at a time works (a lock:
 * two would only race to relay the same entries, harmless but wasted); an instance finding the
 * lock held skips that pass. A pass is bounded (`maxSteps` × `batch` marks), yields to I/O between
 * steps, and stops at the first failure (the store is down: the next pass tries again).
 */
export function startOutboxRecovery(store: Store, options: OutboxRecoveryOptions = {}): OutboxRecovery {
  const batch = options.batch ?? 100;
  const maxSteps = options.maxSteps ?? 20;
  const intervalMs = options.intervalMs ?? 30_000;
  const olderThanMs = options.olderThanMs ?? OUTBOX_RECOVERY_AGE_MS;
  const lockTtlMs = options.lockTtlMs ?? 30_000;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const schedule = () => {
    if (timer) clearTimeout(timer);
    if (closed) return;
    timer = setTimeout(() => void runNow(), intervalMs);
    timer.unref();
  };

  function runNow(): Promise<void> {
    if (timer) clearTimeout(timer);
    running = running.then(pass).finally(schedule);
    return running;
  }

  async function pass(): Promise<void> {
    if (closed) return;
    let token: string | null = null;
    const found = { relayed: 0, cleared: 0 };
    try {
      token = await store.acquireLock(LOCK, lockTtlMs);
      if (!token) return;
      for (let step = 0; step < maxSteps && !closed; step++) {
        const done = await store.recoverEventOutboxes(olderThanMs, batch);
        found.relayed += done.relayed;
        found.cleared += done.cleared;
        if (!done.more || !(await store.extendLock(LOCK, token, lockTtlMs))) break;
        await yieldToIo();
      }
    } catch (err) {
      options.onError?.(err);
    } finally {
      if (found.relayed || found.cleared) options.onRecovered?.(found);
      if (token) await store.releaseLock(LOCK, token).catch(() => false);
    }
  }

  void runNow();
  return {
    runNow,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
