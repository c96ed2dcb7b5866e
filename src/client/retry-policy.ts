import type { AxiosResponse } from 'axios';

/** Bounds of the retries of 429 and 5xx answers. */
export interface RetryOptions {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** First backoff; doubled on each retry, with jitter. */
  baseDelayMs: number;
  /** Longest single wait; a `Retry-After` asking for more is handed back to the caller instead. */
  maxDelayMs: number;
  /** Longest time spent on one call, waits included. */
  maxTotalMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { maxAttempts: 3, baseDelayMs: 250, maxDelayMs: 5000, maxTotalMs: 15_000 };

/** RFC 9110 §9.2.2: the methods whose repetition has the same effect as one request. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** 429 (RFC 6585 §4) and the 5xx answers that say "try later"; 501 and 505 will not change. */
const RETRYABLE_STATUSES = new Set([429, 500, 502, 503, 504]);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method.toUpperCase());
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) in milliseconds: delay-seconds or an HTTP-date. Undefined
 * when absent or unreadable.
 */
export function retryAfterMs(header: unknown, now: number): number | undefined {
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export interface RetryState {
  /** Attempts made so far (1 after the first). */
  attempt: number;
  /** Time spent on the call so far, waits included. */
  elapsedMs: number;
}

/**
 * The wait before the next attempt, or null when the answer goes back to the caller: not
 * retryable, a non-idempotent method (never repeated: the provider may have acted on it),
 * attempts used up, a `Retry-After` longer than we wait, or the time budget spent.
 */
export function nextRetryDelay(
  response: Pick<AxiosResponse, 'status' | 'headers'>,
  method: string,
  state: RetryState,
  options: RetryOptions,
  now: number,
  random: () => number = Math.random,
): number | null {
  if (!RETRYABLE_STATUSES.has(response.status) || !isIdempotent(method)) return null;
  if (state.attempt >= options.maxAttempts) return null;
  const hinted = retryAfterMs(response.headers?.['retry-after'], now);
  if (hinted !== undefined && hinted > options.maxDelayMs) return null;
  const backoff = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (state.attempt - 1));
  const delay = hinted ?? Math.round(backoff * (0.5 + random() / 2));
  return state.elapsedMs + delay > options.maxTotalMs ? null : delay;
}
