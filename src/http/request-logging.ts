import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import { pinoHttp } from 'pino-http';
import { runWithRequestId, type Logger } from '../logger';
import type { Metrics } from '../metrics';

/** Request durations by route pattern (the pattern, never the raw path: no ids in labels). */
export function requestMetrics(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.httpDuration.startTimer();
    res.once('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      end({ route, method: req.method, status: String(res.statusCode) });
    });
    next();
  };
}

/** The header a request id comes in on and goes back out on. */
export const REQUEST_ID_HEADER = 'X-Request-Id';

/** What an incoming request id may look like; anything else is replaced (no log injection, no huge ids). */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Query parameters whose values never reach a log line, on any route (lower-cased): OAuth codes
 * and states (RFC 6749 §4.1.2), tokens, keys.
 */
const SECRET_QUERY_PARAMS = new Set([
  'code',
  'state',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'api_key',
  'apikey',
  'key',
  'client_secret',
  'code_verifier',
  'password',
  'secret',
  'signature',
  'sig',
]);

const MAX_LOGGED_URL = 1000;

/** The request id: the caller's `X-Request-Id` when it is sane, otherwise a fresh UUID. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

/** `/auth/…` and `/callback…` carry codes, states, connect-session tokens and return URLs in the query. */
function isFlowPath(path: string): boolean {
  return path === '/callback' || path.startsWith('/callback/') || path === '/auth' || path.startsWith('/auth/');
}

/**
 * The URL as it may be logged: the path alone on the flow routes, elsewhere the query with the
 * value of every {@link SECRET_QUERY_PARAMS} replaced by `[redacted]` (RFC 6819 §4.6.7: codes
 * and tokens must not end up in logs).
 */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (q < 0 || isFlowPath(path)) return path.slice(0, MAX_LOGGED_URL);
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq < 0 ? pair : pair.slice(0, eq);
      return SECRET_QUERY_PARAMS.has(decodeName(rawName).toLowerCase()) ? `${rawName}=[redacted]` : pair;
    })
    .join('&');
  return `${path}?${query}`.slice(0, MAX_LOGGED_URL);
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

/** `GET /connections 200`: the line's message, readable without a log viewer. */
function summarize(req: IncomingMessage, res: ServerResponse): string {
  return `${req.method} ${loggableUrl((req as Request).originalUrl ?? req.url ?? '')} ${res.statusCode}`;
}

const OPS_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

function levelFor(req: IncomingMessage, res: ServerResponse, err?: Error): 'error' | 'warn' | 'info' | 'debug' {
  if (err || res.statusCode >= 500) return 'error';
  if (res.statusCode >= 400) return 'warn';
  // Probes poll every few seconds: their successes are noise at info.
  return OPS_PATHS.has((req.url ?? '').split('?')[0]!) ? 'debug' : 'info';
}

/**
 * The access log, one JSON line per request, built with pino-http. Each request gets an id (the
 * caller's sane `X-Request-Id`, or a new UUID) echoed in the `X-Request-Id` response header,
 * bound on `req.log`, and given to every other line logged while the request is handled. The
 * line holds method, loggable URL ({@link loggableUrl}), client IP, status and duration: no
 * headers, no bodies.
 */
export function requestLogging(logger: Logger): RequestHandler {
  const middleware = pinoHttp({
    logger,
    quietReqLogger: true,
    genReqId: (req, res) => {
      const id = requestIdOf(req.headers['x-request-id']);
      res.setHeader(REQUEST_ID_HEADER, id);
      return id;
    },
    customLogLevel: levelFor,
    customSuccessMessage: summarize,
    customErrorMessage: summarize,
    // A 5xx is already an error line; the stack of pino-http's stand-in Error says nothing.
    customErrorObject: (_req, _res, error, fields: Record<string, unknown>) =>
      error.message.startsWith('failed with status code') ? { ...fields, err: undefined } : fields,
    serializers: {
      req: (req: { raw: Request }) => ({
        method: req.raw.method,
        url: loggableUrl(req.raw.originalUrl ?? req.raw.url ?? ''),
        remoteAddress: req.raw.ip ?? req.raw.socket?.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
  return (req, res, next) => {
    middleware(req, res);
    runWithRequestId(String(req.id), next);
  };
}
