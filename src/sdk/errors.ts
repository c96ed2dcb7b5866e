import type { ErrorCode } from '../errors';

/** The contract's error codes, plus two of the client's own. */
export type LatchkeyErrorCode = ErrorCode | 'network_error' | 'invalid_response';

/**
 * One of Latchkey's own errors (`{ error: { code, message } }` with `Latchkey-Error`), or the
 * client failing to reach Latchkey (`network_error`) or to read its answer (`invalid_response`).
 * A provider's error answer through the proxy is never one of these: it comes back as a
 * {@link ProxyResponse} with the provider's status.
 */
export class LatchkeyError extends Error {
  override readonly name = 'LatchkeyError';

  constructor(
    readonly code: LatchkeyErrorCode,
    message: string,
    /** The HTTP status Latchkey answered; 0 when it could not be reached. */
    readonly status: number,
    /** Seconds to wait before trying again, from `Retry-After` (rate limits, provider or store outages). */
    readonly retryAfter?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** True when trying again later may succeed (429, 502, 503, 504, or Latchkey unreachable). */
  get retryable(): boolean {
    return ['rate_limited', 'provider_error', 'store_unavailable', 'upstream_timeout', 'network_error'].includes(
      this.code,
    );
  }
}
