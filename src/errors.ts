/**
 * The one error model of Latchkey: domain code throws `AppError(code, message, { cause })`,
 * and one middleware turns it into the contract's `{ error: { code, message } }` body.
 */

/** The closed list of error codes of the public contract, with their HTTP status. */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_state: 400,
  unauthorized: 401,
  forbidden: 403,
  unknown_provider: 404,
  provider_not_enabled: 404,
  connection_not_found: 404,
  not_found: 404,
  reauth_required: 409,
  link_expired: 410,
  payload_too_large: 413,
  rate_limited: 429,
  internal_error: 500,
  provider_error: 502,
  store_unavailable: 503,
  upstream_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface AppErrorOptions {
  cause?: unknown;
  /** Seconds, sent as `Retry-After`. */
  retryAfter?: number;
  /** Provider's `error` / `error_description` / HTTP status, kept for logs (never secrets). */
  provider?: { error?: string; description?: string; status?: number };
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfter?: number;
  readonly provider?: AppErrorOptions['provider'];

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: sanitizeCause(options.cause) });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.retryAfter = options.retryAfter;
    this.provider = options.provider;
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/**
 * axios errors carry the request config, and with it the Authorization header and the token
 * request body (RFC 6819 §4.6.7: credentials must not leak through logs). Keep only what helps.
 */
export function sanitizeCause(cause: unknown): unknown {
  if (cause && typeof cause === 'object' && 'isAxiosError' in cause) {
    const e = cause as { message?: string; code?: string; response?: { status?: number } };
    const safe = new Error(e.message ?? 'HTTP request failed');
    (safe as Error & { code?: string; status?: number }).code = e.code;
    (safe as Error & { code?: string; status?: number }).status = e.response?.status;
    return safe;
  }
  return cause;
}

/** Turns body-parser and other library errors into the contract's codes; anything unknown is a 500. */
export function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = err as { type?: string; status?: number; statusCode?: number };
  if (e?.type === 'entity.too.large') return new AppError('payload_too_large', 'The request body is too large');
  if (e?.type === 'entity.parse.failed') return new AppError('invalid_request', 'The request body is not valid JSON');
  const status = e?.status ?? e?.statusCode;
  if (status === 400 || status === 415) return new AppError('invalid_request', 'The request is not valid');
  return new AppError('internal_error', 'An unexpected error occurred', { cause: err });
}
