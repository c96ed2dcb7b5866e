import type { Clock } from '../clock';
import { AppError, isAppError } from '../errors';
import { SharedRateCounter } from '../http/shared-rate-counter';
import type { RateWindow, Store } from '../store';

/** Length of a rate-limit window. */
export const RATE_WINDOW_MS = 60_000;

/**
 * A fixed-window limit shared by every instance through the store. `hit(key)` resolves when the
 * request may go on and rejects with AppError `rate_limited` (429 with `Retry-After`, RFC 6585
 * §4, the seconds left in the window) or `store_unavailable` (the store did not answer: fail
 * closed). A plain function of a key, so the Express routes and the raw proxy share it.
 */
export interface RateLimiter {
  hit(key: string): Promise<void>;
  /** Stops the timers of batched counts. */
  close(): void;
}

export interface RateLimiterOptions {
  store: Pick<Store, 'hit'>;
  clock: Clock;
  /** Requests per window; 0 turns the limiter off. */
  limit: number;
  /**
   * Batch hits far below the limit instead of a store round trip each (see
   * {@link SharedRateCounter}): for the service API, where the proxy's hot path runs.
   */
  batched: boolean;
  /**
   * While the store does not answer, count hits on this instance against the same limit instead
   * of failing (degraded mode: the proxy keeps serving cached credentials). Batched only.
   */
  localWhenStoreDown?: boolean;
}

/** The service API counts against the API key's name, never its secret. */
export const serviceRateKey = (keyName: string): string => `service:key:${keyName}`;

/** Browser routes count against the client's address. */
export const browserRateKey = (address: string | undefined): string => `browser:ip:${address ?? 'unknown'}`;

const allow = (): Promise<void> => Promise.resolve();

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { limit } = options;
  if (limit <= 0) return { hit: allow, close: () => {} };
  const counter = options.batched
    ? new SharedRateCounter(options.store, {
        windowMs: RATE_WINDOW_MS,
        limit,
        clock: options.clock,
        localWhenStoreDown: options.localWhenStoreDown,
      })
    : null;
  const count = (key: string): Promise<RateWindow> =>
    counter ? counter.hit(key) : options.store.hit(key, RATE_WINDOW_MS);
  return {
    hit: (key) =>
      count(key).then(
        (window) => {
          if (window.count <= limit) return;
          const retryAfter = Math.max(1, Math.ceil(window.resetMs / 1000));
          throw new AppError(
            'rate_limited',
            `Too many requests: at most ${limit} a minute. Try again in ${retryAfter} s.`,
            { retryAfter },
          );
        },
        (err: unknown) => {
          throw isAppError(err)
            ? err
            : new AppError('store_unavailable', 'The credential store is unavailable', { cause: err });
        },
      ),
    close: () => counter?.close(),
  };
}
