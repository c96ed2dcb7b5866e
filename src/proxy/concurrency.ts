import { AppError } from '../errors';

/** What a caller over its cap is told to wait: calls in flight end within the upstream timeout, most far sooner. */
const RETRY_AFTER_SECONDS = 1;

/**
 * Proxied calls in flight per API key (PROXY_MAX_CONCURRENCY_PER_KEY), on this instance: one
 * tenant whose calls stall (a provider that hangs, callers that stop reading) holds at most this
 * many of Latchkey's upstream sockets and memory, so other keys keep getting through
 * (SECURITY.md 23). A call holds its slot from the moment it is authenticated until the
 * provider's answer is relayed or the call failed.
 */
export class KeyConcurrency {
  private readonly inFlight = new Map<string, number>();

  /** @param max calls in flight per key; 0 switches the cap off */
  constructor(private readonly max: number) {}

  /**
   * Takes a slot for `key`.
   *
   * @throws AppError `rate_limited` (429 with `Retry-After`, RFC 6585 §4) when the key is at its cap
   */
  acquire(key: string): void {
    if (this.max === 0) return;
    const n = this.inFlight.get(key) ?? 0;
    if (n >= this.max) {
      throw new AppError(
        'rate_limited',
        `Too many proxied calls in flight for this API key: at most ${this.max} at once`,
        { retryAfter: RETRY_AFTER_SECONDS },
      );
    }
    this.inFlight.set(key, n + 1);
  }

  /** Gives back a slot taken by {@link acquire}. */
  release(key: string): void {
    if (this.max === 0) return;
    const n = this.inFlight.get(key) ?? 0;
    if (n <= 1) this.inFlight.delete(key);
    else this.inFlight.set(key, n - 1);
  }

  /** Calls in flight for `key` (for tests and metrics). */
  count(key: string): number {
    return this.inFlight.get(key) ?? 0;
  }
}
