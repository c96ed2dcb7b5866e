import type { IncomingMessage } from 'node:http';
import type { Request, RequestHandler } from 'express';
import { pathWithSafeQuery, type AccessLog, type AccessLogSide } from '../wire/access-log';

/**
 * Query parameters of Latchkey's own routes whose values may be logged (an allowlist,
 * SECURITY.md 22): filters and paging. Any other parameter is logged by name only.
 */
const SAFE_QUERY_PARAMS = new Set(['provider', 'status', 'type', 'limit', 'cursor', 'connection_id', 'mode']);

/** `/auth/…` and `/callback…` carry codes, states, connect-session tokens and return URLs in the query. */
function isFlowPath(path: string): boolean {
  return path === '/callback' || path.startsWith('/callback/') || path === '/auth' || path.startsWith('/auth/');
}

/**
 * A URL of the Express side as it may be logged: the path alone on the flow routes, elsewhere
 * the query with the values of {@link SAFE_QUERY_PARAMS} only (RFC 6819 §4.6.7: codes and tokens
 * must not end up in logs).
 */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (isFlowPath(path)) return path.slice(0, 1000);
  return pathWithSafeQuery(url, SAFE_QUERY_PARAMS);
}

const EXPRESS_SIDE: AccessLogSide = {
  urlOf: (req: IncomingMessage) => loggableUrl((req as Request).originalUrl ?? req.url ?? ''),
  routeOf: (req: IncomingMessage) => {
    const r = req as Request;
    return r.route?.path ? `${r.baseUrl}${String(r.route.path)}` : 'unmatched';
  },
};

/**
 * The Express side of the one access log. The request id it gives the request goes out as
 * `X-Request-Id`; lines written on the request's behalf take it from there (`requestIdOfAnswer`).
 */
export function requestLogging(accessLog: AccessLog): RequestHandler {
  return (req, res, next) => {
    accessLog(req, res, EXPRESS_SIDE);
    next();
  };
}
