import pino, { type Logger } from 'pino';
import { sanitizeCause } from './errors';

export type { Logger };

/**
 * Names whose values are secrets wherever they appear in a log line, at any depth, compared
 * without regard to case: tokens, keys, passwords, credential headers (lower-case, as Node
 * gives them).
 */
const SECRET_KEYS = new Set(
  [
    'access_token',
    'refresh_token',
    'id_token',
    'client_secret',
    'code_verifier',
    'api_key',
    'apikey',
    'accesstoken',
    'refreshtoken',
    'idtoken',
    'clientsecret',
    'codeverifier',
    'password',
    'secret',
    'token',
    'authorization',
    'proxy-authorization',
    'cookie',
    'set-cookie',
    'api-token',
    'x-api-key',
  ].map((k) => k.toLowerCase()),
);

/**
 * Parameters of a query or body that are secret only there: `code` and `state` are also the
 * names of harmless fields (an error's `code`), so they are blanked under `query` / `body` only.
 */
const SECRET_PARAMS = new Set(['code', 'state']);

/**
 * Fields that hold what a library was handling when it failed (body-parser's raw body, axios's
 * request config and response, Node's raw request bytes, ioredis's command arguments): blanked
 * wherever they appear. Code never logs a body on purpose.
 */
const INPUT_CARRIERS = new Set(['body', 'rawbody', 'data', 'config', 'request', 'response', 'rawpacket', 'args']);
/** Keys under which a line carries an error; inside one, its `headers` are input too and go whole. */
const ERROR_KEYS = new Set(['err', 'error', 'cause']);

const REDACTED = '[redacted]';
const MAX_DEPTH = 8;

/**
 * A copy of a log line's fields with every secret blanked (SECURITY.md 8, 22; RFC 6819
 * §4.6.7): values under {@link SECRET_KEYS} at any depth, `code` / `state` under a query or a
 * body, and every {@link INPUT_CARRIERS} field; errors anywhere go through the cause sanitiser
 * first. A line's own `apiKey` is the name of the service API key that called (the access log
 * and the error reporter write it), never the key, and is kept. One walk of the line, instead of
 * a redaction path per secret name: pino's wildcard paths cost every line more than a
 * proxied call.
 */
export function scrubLogFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in fields) {
    const value = fields[key];
    out[key] = key === 'apiKey' && typeof value === 'string' ? value : scrubValue(key, value, '', 0);
  }
  return out;
}

function scrubValue(key: string, value: unknown, parent: string, depth: number, inError = false): unknown {
  const lower = key.toLowerCase();
  if (SECRET_KEYS.has(lower) || INPUT_CARRIERS.has(lower) || (inError && lower === 'headers')) {
    return value === undefined ? undefined : REDACTED;
  }
  if (SECRET_PARAMS.has(lower) && (parent === 'query' || parent === 'body')) return REDACTED;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (value instanceof Error) return scrubValue(key, serializeError(value), parent, depth, true);
  if (Buffer.isBuffer(value)) return REDACTED;
  const nested = inError || ERROR_KEYS.has(lower);
  if (Array.isArray(value)) return value.map((item) => scrubValue('', item, lower, depth + 1, nested));
  const out: Record<string, unknown> = {};
  for (const k in value as Record<string, unknown>) {
    out[k] = scrubValue(k, (value as Record<string, unknown>)[k], lower, depth + 1, nested);
  }
  return out;
}

/**
 * `logger` with the request's id bound, for the lines a component logs on a request's behalf
 * (a refresh it started, a lock it waited for). The id is passed explicitly rather than taken
 * from an AsyncLocalStorage: on Node 20 that switches promise hooks on for every promise of
 * every request, a measurable share of a proxied call's CPU (issue 13's profile).
 */
export function withRequestId(logger: Logger, reqId: string | undefined): Logger {
  return reqId ? logger.child({ reqId }) : logger;
}

function serializeError(value: unknown): unknown {
  return value instanceof Error ? pino.stdSerializers.err(sanitizeCause(value) as Error) : value;
}

/**
 * The process logger: JSON lines on `destination` (stdout by default) with an ISO time, the
 * service name, and every secret blanked ({@link scrubLogFields}). Lines about a request carry
 * its `reqId` because their writer passes it ({@link withRequestId}).
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'latchkey' },
      // Every line's fields are scrubbed, and every logged error goes through the cause sanitiser.
      formatters: { log: scrubLogFields },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    // Synchronous writes to stdout: lines stay in order even when the process exits right after
    // logging (an asynchronous writer lets the exit-time flush overtake a write in flight).
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
