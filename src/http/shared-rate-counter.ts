import type { Clock } from '../clock';
import { isAppError } from '../errors';
import type { RateWindow, Store } from '../store';

export interface SharedRateCounterOptions {
  windowMs: number;
  limit: number;
  clock: Clock;
  /** Longest a local count waits before it is added to the shared one. */
  flushMs?: number;
  /** A local count this large is added to the shared one at once. */
  maxPending?: number;
  /**
   * When the store does not answer (AppError `store_unavailable`), count the hit in this
   * instance's own window (same limit, same length) instead of failing, and go back to the
   * shared count, adding the hits counted meanwhile, as soon as the store answers again (it is
   * asked within `flushMs`). Off by default: the store's error goes on (fail closed). For the
   * proxy in degraded mode, where a Redis outage must not stop calls on cached credentials.
   */
  localWhenStoreDown?: boolean;
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
  /** The store did not answer when last asked: hits are decided on this instance's count alone. */
  local: boolean;
}

/**
 * A fixed-window count shared by every instance through the store, without a store round trip
 * per hit on the hot path. Each key's first hit in a window, and every hit once this instance's
 * view of the count reaches half the limit, goes to the store and waits for it, so decisions near
 * the limit are exact; below that, hits are counted here and added to the shared count in
 * batches (within `flushMs`, or once `maxPending` accumulate), and nothing waits on the store.
 * The count can overshoot only by what other instances add within one flush interval while this
 * one still sees less than half the limit. With `localWhenStoreDown`, during a store outage each
 * instance enforces the limit on its own count, so the fleet may let through up to the limit per
 * instance.
 */
export class SharedRateCounter {
  private readonly windows = new Map<string, KeyWindow>();
  private readonly flushMs: number;
  private readonly maxPending: number;
  private counted = 0;

  constructor(
    private readonly store: Pick<Store, 'hit'>,
    private readonly options: SharedRateCounterOptions,
  ) {
    this.flushMs = options.flushMs ?? 100;
    this.maxPending = options.maxPending ?? 64;
  }

  /** Hits decided on this instance's count alone because the store did not answer. */
  get localHits(): number {
    return this.counted;
  }

  async hit(key: string): Promise<RateWindow> {
    const now = this.options.clock.now();
    const window = this.windows.get(key);
    if (!window || now >= window.resetAt) {
      if (window) this.forget(key, window);
      return this.exact(key, 1, now);
    }
    if (window.local) return this.countLocally(key, window, 1, now);
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
    let answer: RateWindow;
    try {
      answer = await this.store.hit(key, this.options.windowMs, by);
    } catch (err) {
      if (!this.options.localWhenStoreDown || !isStoreUnavailable(err)) throw err;
      let window = this.windows.get(key);
      if (!window || now >= window.resetAt) {
        if (window) this.forget(key, window);
        window = { resetAt: now + this.options.windowMs, shared: 0, pending: 0, inFlight: 0, local: true };
        this.windows.set(key, window);
      }
      return this.countLocally(key, window, by, now);
    }
    const window = this.windows.get(key);
    const resetAt = now + answer.resetMs;
    if (window && window.resetAt >= now) {
      window.shared = Math.max(window.shared, answer.count);
      window.resetAt = resetAt;
      window.local = false;
    } else {
      this.windows.set(key, { resetAt, shared: answer.count, pending: 0, inFlight: 0, local: false });
    }
    return answer;
  }

  /**
   * The store is down: the hit counts here, with what this instance already knew of the window,
   * and one attempt at a time adds the local count to the store, which ends local counting.
   */
  private countLocally(key: string, window: KeyWindow, by: number, now: number): RateWindow {
    window.local = true;
    window.pending += by;
    this.counted += by;
    if (!window.inFlight) window.timer ??= setTimeout(() => this.flush(key, window), this.flushMs).unref();
    return { count: estimate(window), resetMs: window.resetAt - now };
  }

  /**
   * Adds the local count to the shared one. A store failure here loses only these hits' count,
   * unless `localWhenStoreDown`: then they stay counted here and are tried again.
   */
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
        if (!window.local) return;
        window.local = false;
        if (window.pending && this.windows.get(key) === window) {
          window.timer ??= setTimeout(() => this.flush(key, window), this.flushMs).unref();
        }
      },
      (err: unknown) => {
        window.inFlight -= by;
        if (!this.options.localWhenStoreDown || !isStoreUnavailable(err) || this.windows.get(key) !== window) return;
        window.local = true;
        window.pending += by;
        window.timer ??= setTimeout(() => this.flush(key, window), this.flushMs).unref();
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

function isStoreUnavailable(err: unknown): boolean {
  return isAppError(err) && err.code === 'store_unavailable';
}

/** This instance's view of the count: the store's last answer plus what it has not yet seen from here. */
function estimate(window: KeyWindow): number {
  return window.shared + window.inFlight + window.pending;
}
