import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';

/** The header a request id comes in on and goes back out on. */
export const REQUEST_ID_HEADER = 'X-Request-Id';

/** What an incoming request id may look like; anything else is replaced (no log injection, no huge ids). */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** The request id: the caller's `X-Request-Id` when it is sane, otherwise a fresh UUID. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

/** The id the access log gave the request `res` answers (see {@link createAccessLog}); the Express side's. */
export function requestIdOfAnswer(res: ServerResponse): string | undefined {
  const id = res.getHeader(REQUEST_ID_HEADER);
  return typeof id === 'string' ? id : undefined;
}

const OPS_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export interface AccessLogDeps {
  logger: Logger;
  metrics: Metrics;
  /** The client's address, `TRUST_PROXY` honoured (the same function Express's `req.ip` uses). */
  clientAddress: (req: IncomingMessage) => string | undefined;
  /** The name of the API key that authenticated the request, once known (never the key). */
  apiKeyOf?: (req: IncomingMessage) => string | undefined;
}

/** What one side of the listener knows about a request once it is over. */
export interface AccessLogSide {
  /** The URL as it may be logged (see {@link pathWithQueryNames} and {@link pathWithSafeQuery}). */
  urlOf: (req: IncomingMessage) => string;
  /** The route pattern for the metric label, never the raw path (no ids in labels). */
  routeOf: (req: IncomingMessage) => string;
  /**
   * False when the side writes `X-Request-Id` itself, with the rest of each answer's headers (the
   * proxy: a `setHeader` before `writeHead` would take Node's slow path of merging headers one
   * by one on every call). True or absent: the access log sets it at once, on every answer.
   */
  setsIdHeader?: boolean;
}

/**
 * The one access log of Latchkey, for Express routes and the proxy alike: one JSON line per
 * exchange with the request id (the caller's sane `X-Request-Id` or a new UUID, echoed back), the
 * method, the loggable URL, the client address, the status and the duration; never a header or
 * a body. Level: error for 5xx, warn for 4xx, debug for successful probes, info otherwise. A
 * caller that closes before the answer is complete is logged as 499 (nginx's convention); an
 * answer the provider broke off after its headers were relayed, as 502.
 *
 * @returns `start(req, res, side)`, which returns the request id for the lines logged meanwhile
 */
export function createAccessLog(deps: AccessLogDeps) {
  const { logger, metrics } = deps;
  return function start(req: IncomingMessage, res: ServerResponse, side: AccessLogSide): string {
    const reqId = requestIdOf(req.headers['x-request-id']);
    if (side.setsIdHeader !== false) res.setHeader(REQUEST_ID_HEADER, reqId);
    const started = performance.now();
    const record = (status: number) => {
      const seconds = (performance.now() - started) / 1000;
      const method = req.method ?? 'GET';
      metrics.httpDuration.observe({ route: side.routeOf(req), method, status: String(status) }, seconds);
      const level = levelFor(req, status);
      if (!logger.isLevelEnabled(level)) return;
      const url = side.urlOf(req);
      logger[level](
        {
          reqId,
          req: { method, url, remoteAddress: deps.clientAddress(req) },
          res: { statusCode: status },
          responseTime: Math.round(seconds * 1000),
          apiKey: deps.apiKeyOf?.(req),
        },
        `${method} ${url} ${status}`,
      );
    };
    // On 'finish': the line is written before the connection closes.
    const onFinish = () => {
      res.off('close', onClose);
      record(res.statusCode);
    };
    const onClose = () => {
      res.off('finish', onFinish);
      record(brokenByUpstream.has(res) ? 502 : 499);
    };
    // `on`, not `once`: each event comes at most once, and each handler removes the other.
    res.on('finish', onFinish);
    res.on('close', onClose);
    return reqId;
  };
}

export type AccessLog = ReturnType<typeof createAccessLog>;

/** Answers cut short because the provider's answer broke off after its headers were relayed. */
const brokenByUpstream = new WeakSet<ServerResponse>();

/**
 * Marks `res` as cut short by the provider (its answer broke off after the headers went out):
 * the access log then records 502, Latchkey's upstream failure, instead of 499.
 */
export function markBrokenByUpstream(res: ServerResponse): void {
  brokenByUpstream.add(res);
}

function levelFor(req: IncomingMessage, status: number): 'error' | 'warn' | 'info' | 'debug' {
  if (status >= 500) return 'error';
  if (status >= 400) return 'warn';
  // Probes poll every few seconds: their successes are noise at info.
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return OPS_PATHS.has(q < 0 ? url : url.slice(0, q)) ? 'debug' : 'info';
}

const MAX_LOGGED_URL = 1000;

function splitQuery(url: string): { path: string; query: string | null } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: null } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

/** A query parameter's name, made safe for a log line (a name can be chosen by the caller too). */
function loggableName(raw: string): string {
  return encodeURIComponent(decodeName(raw).slice(0, 100));
}

/**
 * The path and the query's parameter names, never their values (SECURITY.md 22): a proxied
 * call's query is the provider's, and any of its parameters may carry a secret
 * (`hapikey`, `client-secret`, …) under a name no list can foresee.
 */
export function pathWithQueryNames(url: string): string {
  const { path, query } = splitQuery(url);
  if (query === null) return path.slice(0, MAX_LOGGED_URL);
  const names = query
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return loggableName(eq < 0 ? pair : pair.slice(0, eq));
    });
  return (names.length ? `${path}?${names.join('&')}` : path).slice(0, MAX_LOGGED_URL);
}

/**
 * The path and the query with the values of `safe` parameters only (an allowlist: values of
 * anything else are dropped, only the name is kept), for Latchkey's own routes.
 */
export function pathWithSafeQuery(url: string, safe: ReadonlySet<string>): string {
  const { path, query } = splitQuery(url);
  if (query === null) return path.slice(0, MAX_LOGGED_URL);
  const parts = query
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = decodeName(eq < 0 ? pair : pair.slice(0, eq));
      if (eq >= 0 && safe.has(name))
        return `${encodeURIComponent(name)}=${encodeURIComponent(decodeName(pair.slice(eq + 1)))}`;
      return loggableName(eq < 0 ? pair : pair.slice(0, eq));
    });
  return (parts.length ? `${path}?${parts.join('&')}` : path).slice(0, MAX_LOGGED_URL);
}
