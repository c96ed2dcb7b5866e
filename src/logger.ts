import { AsyncLocalStorage } from 'node:async_hooks';
import pino, { type Logger } from 'pino';
import { sanitizeCause } from './errors';

export type { Logger };

/** Names of fields that hold a secret wherever they appear (as a field of the line, or one level down). */
const SECRET_FIELDS = [
  'access_token',
  'refresh_token',
  'id_token',
  'client_secret',
  'code_verifier',
  'api_key',
  'apiKey',
  'accessToken',
  'refreshToken',
  'idToken',
  'clientSecret',
  'codeVerifier',
  'password',
  'token',
  'authorization',
  'cookie',
];

/**
 * Parameters of a query or body that are secret only there: `code` and `state` are also the
 * names of harmless fields (an error's `code`), so they are blanked under `query` / `body` only.
 */
const SECRET_PARAMS = ['code', 'state', ...SECRET_FIELDS];

/** Header names whose values are credentials (lower-case, as Node gives them). */
const SECRET_HEADERS = ['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'api-token', 'x-api-key'];

/** Keys under which a log line carries an error. */
const ERROR_KEYS = ['err', 'error', 'cause'];
/** The error itself and its causes, as deep as a path can say without a wildcard in the middle. */
const CAUSE_CHAIN = ['', '.cause', '.cause.cause', '.cause.cause.cause'];
/** Fields of an error that hold its input (see `sanitizeCause` in errors.ts). */
const ERROR_CARRIER_FIELDS = [
  'body',
  'rawBody',
  'data',
  'headers',
  'config',
  'request',
  'response',
  'rawPacket',
  'command.args',
  'args',
];

/**
 * Paths pino blanks in every log line: credentials in headers, bodies and errors (SECURITY.md
 * §8, RFC 6819 §4.6.7). The redaction is a safety net; code never logs a secret on purpose, and
 * the access log carries neither headers nor bodies nor the query of a flow route.
 */
export const REDACT_PATHS = [
  ...SECRET_HEADERS.flatMap((h) => [
    `req.headers["${h}"]`,
    `res.headers["${h}"]`,
    `headers["${h}"]`,
    `*.headers["${h}"]`,
  ]),
  // A line's own `apiKey` is the name of the service API key that called (the access log and the
  // error reporter write it), never the key: it is kept. One level down it is blanked like the rest.
  ...SECRET_FIELDS.flatMap((f) => (f === 'apiKey' ? [`*.${f}`] : [f, `*.${f}`])),
  ...SECRET_PARAMS.flatMap((p) => [`query.${p}`, `*.query.${p}`, `body.${p}`, `*.body.${p}`]),
  // Errors carry what they were handling: body-parser's raw body, axios's request config (the
  // Authorization header, the token request body) and response, Node's raw request bytes,
  // ioredis's command arguments. The cause sanitiser drops these before an error is logged;
  // this blanks them should one get through, on the error and on its causes.
  // One level down (`*.err`) only on the error itself: each wildcard path costs every line a walk.
  ...ERROR_KEYS.flatMap((e) => [
    ...CAUSE_CHAIN.flatMap((chain) => ERROR_CARRIER_FIELDS.map((f) => `${e}${chain}.${f}`)),
    ...ERROR_CARRIER_FIELDS.map((f) => `*.${e}.${f}`),
  ]),
  '*.config.headers',
  '*.config.data',
];

/**
 * The request a log line belongs to. pino-http binds `reqId` on `req.log`; loggers that know
 * nothing of the request (the credential source, the error reporter) get it from here, so every
 * line written while a request is handled carries its id.
 */
const requestContext = new AsyncLocalStorage<{ reqId: string }>();

/** Runs `fn` (and everything it starts) as part of the request `reqId`. */
export function runWithRequestId<T>(reqId: string, fn: () => T): T {
  return requestContext.run({ reqId }, fn);
}

/** The id of the request being handled, if any. */
export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.reqId;
}

const chindingsOf = (logger: unknown): string =>
  String((logger as Record<symbol, unknown>)[pino.symbols.chindingsSym] ?? '');

/** Adds `reqId` unless the logger already has it bound (a duplicate key would be invalid for many parsers). */
function requestIdMixin(_merge: object, _level: number, logger: unknown): object {
  const reqId = currentRequestId();
  if (!reqId || chindingsOf(logger).includes('"reqId":')) return {};
  return { reqId };
}

function serializeError(value: unknown): unknown {
  return pino.stdSerializers.err(sanitizeCause(value) as Error);
}

/**
 * The process logger: JSON lines on `destination` (stdout by default) with an ISO time, the
 * service name, the request id when there is one, and every {@link REDACT_PATHS} blanked.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'latchkey' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Every logged error goes through the cause sanitiser first, whoever logs it.
      serializers: { err: serializeError, error: serializeError },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin: requestIdMixin,
    },
    // Synchronous writes to stdout: lines stay in order even when the process exits right after
    // logging (an asynchronous writer lets the exit-time flush overtake a write in flight).
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
