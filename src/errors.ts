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
  credential_unreadable: 409,
  connection_incomplete: 409,
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
 * Fields through which an error object carries what it was handling: a request or response body
 * (body-parser's `body`, axios's `response.data`, `rawBody`), headers (the Authorization header
 * of an axios `config` or `request`), Node's parser `rawPacket` (the raw request bytes) and
 * ioredis's `command` (the arguments: keys and sealed values) or `args`.
 */
const CARRIER_FIELDS = [
  'body',
  'rawBody',
  'data',
  'headers',
  'config',
  'request',
  'response',
  'rawPacket',
  'command',
  'args',
] as const;

/** body-parser types whose message quotes the body (a JSON parse error shows the text around the fault). */
const MESSAGE_QUOTES_BODY = new Set(['entity.parse.failed', 'entity.verify.failed']);

const MAX_CAUSE_DEPTH = 5;
const MAX_MESSAGE = 500;

type Carrier = Error & Partial<Record<(typeof CARRIER_FIELDS)[number], unknown>>;

function carriesInput(err: object): boolean {
  return 'isAxiosError' in err || CARRIER_FIELDS.some((f) => (err as Record<string, unknown>)[f] !== undefined);
}

/** The text of a body-like field, to check that a message does not quote it. */
function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  return undefined;
}

/**
 * The message, unless it may quote what the error carried: a `SyntaxError` or a parse failure
 * (JSON.parse quotes the text around the fault), or any 12 characters of the message found in
 * a body the error carries.
 */
function safeMessage(err: Carrier & { type?: unknown }): string | undefined {
  const message = typeof err.message === 'string' ? err.message.slice(0, MAX_MESSAGE) : undefined;
  if (!message) return undefined;
  if (err.name === 'SyntaxError' || err instanceof SyntaxError) return undefined;
  if (typeof err.type === 'string' && MESSAGE_QUOTES_BODY.has(err.type)) return undefined;
  for (const field of ['body', 'rawBody', 'data', 'rawPacket'] as const) {
    const text = textOf(err[field]);
    if (!text) continue;
    for (let i = 0; i + 12 <= message.length; i++) if (text.includes(message.slice(i, i + 12))) return undefined;
  }
  return message;
}

/** The stack's frames only (its first line repeats the message). */
function framesOf(stack: unknown): string {
  if (typeof stack !== 'string') return '';
  const at = stack.indexOf('\n    at ');
  return at < 0 ? '' : stack.slice(at);
}

/**
 * The cause sanitiser: every error that carries its input (a field of {@link CARRIER_FIELDS},
 * or an axios error) becomes a plain `Error` with only its name, its message when it cannot
 * quote that input, `code`, `status` (or `statusCode`, or the response's status), `type` and
 * ioredis's command name; its stack keeps the frames. Causes are sanitised the same way, to
 * any depth (pino prints a cause's message and stack with its error's). Anything else is
 * returned as it is. RFC 6819 §4.6.7: credentials must not leak through logs; SECURITY.md 21.
 */
export function sanitizeCause(cause: unknown, depth = 0): unknown {
  if (!cause || typeof cause !== 'object') return cause;
  const err = cause as Carrier & Record<string, unknown>;
  const inner = 'cause' in err ? err.cause : undefined;
  const cleanInner = inner === undefined || depth >= MAX_CAUSE_DEPTH ? undefined : sanitizeCause(inner, depth + 1);
  const aggregated = Array.isArray(err.errors) ? err.errors.map((e) => sanitizeCause(e, depth + 1)) : undefined;
  if (!carriesInput(err)) {
    const changed = cleanInner !== inner || aggregated?.some((e, i) => e !== (err.errors as unknown[])[i]);
    if (!changed) return cause;
    // A clean error around a dirty cause: a copy with the cause replaced, the original untouched.
    const copy = Object.assign(Object.create(Object.getPrototypeOf(err) as object) as Error, err);
    for (const key of ['name', 'message', 'stack'] as const)
      if (typeof err[key] === 'string') Object.defineProperty(copy, key, { value: err[key], writable: true });
    if (aggregated) (copy as unknown as { errors: unknown[] }).errors = aggregated;
    if (cleanInner === undefined) delete (copy as { cause?: unknown }).cause;
    else Object.defineProperty(copy, 'cause', { value: cleanInner, writable: true, configurable: true });
    return copy;
  }
  const response = err.response as { status?: unknown } | undefined;
  const command = err.command as { name?: unknown } | undefined;
  const name = typeof err.name === 'string' && err.name ? err.name.slice(0, 100) : 'Error';
  const hadMessage = typeof err.message === 'string' && err.message !== '';
  const message = safeMessage(err) ?? (hadMessage ? `${name} (message withheld: it may quote the request)` : '');
  const safe = new Error(message, cleanInner === undefined ? undefined : { cause: cleanInner }) as Error &
    Record<string, unknown>;
  safe.name = name;
  const code = err.code;
  if (typeof code === 'string' || typeof code === 'number') safe.code = code;
  const status = [err.status, err.statusCode, response?.status].find((s) => typeof s === 'number');
  if (status !== undefined) safe.status = status;
  if (typeof err.type === 'string') safe.type = err.type;
  if (typeof command?.name === 'string') safe.command = command.name;
  safe.stack = `${name}: ${message}${framesOf(err.stack)}`;
  if (aggregated) safe.errors = aggregated;
  return safe;
}

/** What a library's 4xx says to the caller, by its status; its own message may quote the request. */
const CLIENT_ERROR_BY_STATUS: Record<number, { code: ErrorCode; message: string }> = {
  400: { code: 'invalid_request', message: 'The request is not valid' },
  401: { code: 'unauthorized', message: 'The request needs credentials' },
  403: { code: 'forbidden', message: 'The request is not allowed' },
  404: { code: 'not_found', message: 'Not found' },
  413: { code: 'payload_too_large', message: 'The request body is too large' },
  415: { code: 'invalid_request', message: 'The request body has a type, charset or encoding that is not accepted' },
  429: { code: 'rate_limited', message: 'Too many requests' },
};

/**
 * body-parser's (and raw-body's) failures, by `type`, in words the caller can act on. Every
 * one of them is the caller's request, never Latchkey's failure (SECURITY.md 21).
 */
const BODY_ERROR_MESSAGES: Record<string, (e: { limit?: unknown; encoding?: unknown }) => string> = {
  'entity.parse.failed': () => 'The request body is not valid JSON',
  'entity.too.large': (e) =>
    typeof e.limit === 'number'
      ? `The request body is too large (at most ${e.limit} bytes)`
      : 'The request body is too large',
  'parameters.too.many': () => 'The form has too many fields',
  'querystring.parse.rangeError': () => 'The form is nested too deeply',
  'charset.unsupported': () => 'The request body has a charset that is not accepted: send it as UTF-8',
  'encoding.unsupported': () =>
    'The request body has a Content-Encoding that is not accepted: send it uncompressed (or gzip, deflate, br)',
  'request.aborted': () => 'The request body was not received completely',
  'request.size.invalid': () => 'The request body does not have the length its Content-Length header announced',
};

/**
 * Turns body-parser and other library errors into the contract's codes: an error with a 4xx
 * `status` (or `statusCode`) is mapped by that status, with a message of Latchkey's own (the
 * library's may quote the request); anything else is a 500 whose cause is sanitised.
 */
export function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = (err ?? {}) as { type?: unknown; code?: unknown; status?: unknown; statusCode?: unknown; limit?: unknown };
  const status = [e.status, e.statusCode].find((s) => typeof s === 'number') as number | undefined;
  if (status !== undefined && status >= 400 && status < 500) {
    const mapped = CLIENT_ERROR_BY_STATUS[status] ?? CLIENT_ERROR_BY_STATUS[400]!;
    const byType = typeof e.type === 'string' ? BODY_ERROR_MESSAGES[e.type] : undefined;
    // zlib's own error, passed on by body-parser with status 400 and no type of its own.
    const undecodable = typeof e.code === 'string' && e.code.startsWith('Z_');
    const message = byType
      ? byType(e)
      : undecodable
        ? 'The request body could not be read: it is not encoded as its Content-Encoding says'
        : mapped.message;
    return new AppError(mapped.code, message, { cause: err });
  }
  return new AppError('internal_error', 'An unexpected error occurred', { cause: err });
}
