import type { Clock } from '../clock';
import type { RateWindow, Store } from '../store';

export interface SharedRateCounterOptions {
  windowMs: number;
  limit: number;
  clock: Clock;
  /** Longest a local count waits before it is added to the shared one. */
  flushMs?: number;
  /** A local count this large is added to the shared one at once. */
  maxPending?: number;
}

interface KeyWindow {
  resetAt: number;
  /** The shared count as the store last answered it. */
  shared: number;
  /** Hits counted here and not yet added to the shared count. */
  pending: number;
  /** Hits on their way to the shared count (sent, not yet answered). */
  inFlight: number;
  timer?: NodeJS.Timeout;
}

/**
 * A fixed-window count shared by every instance through the store, without a store round trip
 * per hit on the hot path. Each key's first hit in a window, and every hit once this instance's
 * view of the count reaches half the limit, goes to the store and waits for it, so decisions near
 * the limit are exact; below that, hits are counted here and added to the shared count in
 * batches (within `flushMs`, or once `maxPending` accumulate), and nothing waits on the store.
 * The count can overshoot only by what other instances add within one flush interval while this
 * one still sees less than half the limit.
 */
export class SharedRateCounter {
  private readonly windows = new Map<string, KeyWindow>();
  private readonly flushMs: number;
  private readonly maxPending: number;

  constructor(
    private readonly store: Pick<Store, 'hit'>,
    private readonly options: SharedRateCounterOptions,
  ) {
    this.flushMs = options.flushMs ?? 100;
    this.maxPending = options.maxPending ?? 64;
  }

  async hit(key: string): Promise<RateWindow> {
    const now = this.options.clock.now();
    const window = this.windows.get(key);
    if (!window || now >= window.resetAt) {
      if (window) this.forget(key, window);
      return this.exact(key, 1, now);
    }
    if ((estimate(window) + 1) * 2 >= this.options.limit) {
      const by = window.pending + 1;
      window.pending = 0;
      return this.exact(key, by, now);
    }
    window.pending++;
    if (window.pending >= this.maxPending) this.flush(key, window);
    else window.timer ??= setTimeout(() => this.flush(key, window), this.flushMs).unref();
    return { count: estimate(window), resetMs: window.resetAt - now };
  }

  private async exact(key: string, by: number, now: number): Promise<RateWindow> {
    const answer = await this.store.hit(key, this.options.windowMs, by);
    const window = this.windows.get(key);
    const resetAt = now + answer.resetMs;
    if (window && window.resetAt >= now) {
      window.shared = Math.max(window.shared, answer.count);
      window.resetAt = resetAt;
    } else {
      this.windows.set(key, { resetAt, shared: answer.count, pending: 0, inFlight: 0 });
    }
    return answer;
  }

  /** Adds the local count to the shared one; a store failure here loses only these hits' count. */
  private flush(key: string, window: KeyWindow): void {
    if (window.timer) clearTimeout(window.timer);
    window.timer = undefined;
    const by = window.pending;
    if (!by) return;
    window.pending = 0;
    window.inFlight += by;
    this.store.hit(key, this.options.windowMs, by).then(
      (answer) => {
        window.inFlight -= by;
        window.shared = Math.max(window.shared, answer.count);
      },
      () => {
        window.inFlight -= by;
      },
    );
  }

  /** Clears every pending flush timer (shutdown); counts not yet added to the shared one are dropped. */
  close(): void {
    for (const [key, window] of this.windows) this.forget(key, window);
  }

  private forget(key: string, window: KeyWindow): void {
    if (window.timer) clearTimeout(window.timer);
    this.windows.delete(key);
  }
}

/** This instance's view of the count: the store's last answer plus what it has not yet seen from here. */
function estimate(window: KeyWindow): number {
  return window.shared + window.inFlight + window.pending;
}
