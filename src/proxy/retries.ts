import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { AppError } from '../errors';
import type { CallDeadline } from './deadline';
import type { CallOutcome } from './upstream-call';

/** The request header that asks for retries (CONTRACT "Additions", "Proxy"); never forwarded upstream. */
export const RETRIES_HEADER = 'latchkey-retries';

/** Methods whose repetition has the effect of one call (RFC 9110 §9.2.2), the only ones retried. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/** A 429 asking for a longer wait than this is passed through: the caller decides. */
export const MAX_RETRY_AFTER_MS = 10_000;

/** First backoff after a 502, 503, 504 or a connection failure; it doubles per retry. */
const BACKOFF_BASE_MS = 100;

/** A retry is made only when it can start this long before the deadline; otherwise the last answer stands. */
export const RETRY_HEADROOM_MS = 100;

/** Statuses retried after a backoff: the provider, or a gateway in front of it, failed. */
const RETRIED_AFTER_BACKOFF = new Set([502, 503, 504]);

/**
 * Errors of a call that never got an answer because the connection failed (refused, reset,
 * closed before the headers, could not be established in time), as opposed to an answer that
 * was not HTTP or the call's own deadline.
 */
const CONNECTION_FAILURES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * What is left of a call's `Latchkey-Retries`, and when to use it. A call without the header
 * shares {@link NO_RETRIES}, so the hot path allocates nothing.
 */
export class RetryBudget {
  /** Retries made so far. */
  made = 0;

  constructor(
    /** Retries still allowed. */
    public left: number,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * The wait before retrying a call the provider answered with `statusCode`, or -1 when the
   * answer is the final one and goes to the caller: a 429 is retried after its `Retry-After`
   * (seconds or an HTTP date, at most {@link MAX_RETRY_AFTER_MS}; none, or a longer one, passes
   * the 429 through), a 502, 503 or 504 after a backoff; anything else is final. A retry that
   * could not start {@link RETRY_HEADROOM_MS} before the deadline is not made.
   */
  waitForAnswer(statusCode: number, headers: IncomingHttpHeaders, remainingMs: number, nowMs = Date.now()): number {
    if (this.left <= 0) return -1;
    let wait: number;
    if (statusCode === 429) {
      const after = retryAfterMs(headers['retry-after'], nowMs);
      if (after === null || after > MAX_RETRY_AFTER_MS) return -1;
      wait = after;
    } else if (RETRIED_AFTER_BACKOFF.has(statusCode)) {
      wait = this.backoff();
    } else {
      return -1;
    }
    return this.fits(wait, remainingMs) ? wait : -1;
  }

  /** The wait before retrying a call whose connection failed, or -1 when the failure is final. */
  waitForFailure(error: Error, remainingMs: number): number {
    if (this.left <= 0 || !isConnectionFailure(error)) return -1;
    const wait = this.backoff();
    return this.fits(wait, remainingMs) ? wait : -1;
  }

  /** Counts a retry that is about to be made. */
  spend(): void {
    this.left--;
    this.made++;
  }

  /** True when a wait of `waitMs` still leaves the retry {@link RETRY_HEADROOM_MS} before the deadline. */
  fits(waitMs: number, remainingMs: number): boolean {
    return waitMs + RETRY_HEADROOM_MS < remainingMs;
  }

  /** 100, 200, 400 ms for the first, second, third retry, each drawn from its upper half (jitter). */
  private backoff(): number {
    const ceiling = BACKOFF_BASE_MS * 2 ** this.made;
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }
}

/** The budget of every call that asked for no retry (or whose method is not retried). */
export const NO_RETRIES: RetryBudget = new RetryBudget(0);

/**
 * The call's retry budget from its `Latchkey-Retries` header: 0–3, default 0. Only GET, HEAD,
 * OPTIONS, PUT and DELETE are ever retried; other methods take the header and are sent once.
 *
 * @throws AppError `invalid_request` for any value other than one digit 0–3 (also a repeated header)
 */
export function retriesFor(header: string | string[] | undefined, method: string): RetryBudget {
  if (header === undefined) return NO_RETRIES;
  if (typeof header !== 'string' || !/^[0-3]$/.test(header.trim())) {
    throw new AppError('invalid_request', 'Latchkey-Retries must be one of 0, 1, 2 or 3');
  }
  const n = Number(header.trim());
  return n === 0 || !IDEMPOTENT.has(method) ? NO_RETRIES : new RetryBudget(n);
}

/** An HTTP date starts with a day name (IMF-fixdate, RFC 850 and asctime alike, RFC 9110 §5.6.7). */
const HTTP_DATE = /^[A-Za-z]{3}/;

/**
 * `Retry-After` (RFC 9110 §10.2.3) in milliseconds from `nowMs`: delay-seconds or an HTTP date
 * (one in the past is 0); null when absent or not one of the two.
 */
export function retryAfterMs(value: string | string[] | undefined, nowMs: number): number | null {
  if (typeof value !== 'string') return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!HTTP_DATE.test(v)) return null;
  // Every HTTP date is in GMT; asctime's format does not say so, and Date.parse would read local time.
  const at = Date.parse(v.endsWith('GMT') ? v : `${v} GMT`);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : null;
}

/** True for a failure of the connection itself, worth one more try for an idempotent call. */
export function isConnectionFailure(error: Error): boolean {
  const code = (error as { code?: string }).code ?? (error.cause as { code?: string } | undefined)?.code;
  return code !== undefined && CONNECTION_FAILURES.has(code);
}

/** One attempt, as the proxy makes it (a function of the credential, so the retry after a 401 can swap it). */
export type SendAttempt<C> = (credential: C, holdUnauthorized: boolean) => Promise<CallOutcome>;

/**
 * Sends a call, then retries it while the provider's answer or the connection failure is one
 * {@link RetryBudget} retries and the deadline allows, waiting in between (the waits spend the
 * call's deadline too). A retried answer was held, never relayed (see `callUpstream`); the last
 * one is relayed as it comes. Returns the last attempt's outcome: a `retryable` outcome here
 * means its retry could no longer be made, and its held answer is the caller's. A provider 401
 * ends the sequence (`unauthorized`): the refresh-and-retry-once after a 401 is the caller's.
 */
export function sendWithRetries<C>(
  send: SendAttempt<C>,
  credential: C,
  holdUnauthorized: boolean,
  budget: RetryBudget,
  deadline: CallDeadline,
  res: ServerResponse,
): Promise<CallOutcome> {
  if (budget.left <= 0) return send(credential, holdUnauthorized);
  return retryLoop(send, credential, holdUnauthorized, budget, deadline, res);
}

async function retryLoop<C>(
  send: SendAttempt<C>,
  credential: C,
  holdUnauthorized: boolean,
  budget: RetryBudget,
  deadline: CallDeadline,
  res: ServerResponse,
): Promise<CallOutcome> {
  for (;;) {
    const outcome = await send(credential, holdUnauthorized);
    let wait: number;
    if (outcome.kind === 'retryable') wait = outcome.waitMs;
    else if (outcome.kind === 'failed') wait = budget.waitForFailure(outcome.error, deadline.remaining());
    else return outcome;
    // The held answer's body took time to arrive: the wait must still fit.
    if (wait < 0 || !budget.fits(wait, deadline.remaining())) return outcome;
    budget.spend();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (res.destroyed) return { kind: 'relayed', statusCode: 499 };
  }
}
