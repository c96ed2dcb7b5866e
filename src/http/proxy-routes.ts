import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import type { CredentialSource } from '../client';
import type { Clock } from '../clock';
import type { Config } from '../config';
import { AppError, isAppError } from '../errors';
import { REQUEST_ID_HEADER } from './request-logging';
import { runWithRequestId, type Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { ProviderRegistry } from '../providers/registry';
import { recordProxyRequest } from '../proxy/access-log';
import { CredentialCache } from '../proxy/credential-cache';
import { sendProxyError } from '../proxy/proxy-error';
import { createProxyHandler, PROXY_PREFIX, type RawHandler } from '../proxy/proxy-handler';
import { UpstreamAgents } from '../proxy/upstream-agents';

export interface ProxyRoutesDeps {
  config: Pick<Config, 'proxyBodyLimitBytes' | 'upstreamTimeoutMs'>;
  providers: ProviderRegistry;
  credentials: CredentialSource;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  /**
   * Express-style middleware run, in order, before a proxied call: the API-key check, the rate
   * limit. They get the raw Node request and response (plus `res.locals`), so they must not rely
   * on Express's request/response helpers. The proxy writes its own access log line.
   */
  guards: RequestHandler[];
  /** Reuse of a decrypted credential, in ms (default 1000; 0: off). See {@link CredentialCache}. */
  credentialCacheTtlMs?: number;
}

export interface ProxyRoutes {
  /** `ALL /proxy/:provider/*` on the raw request, guards first. Mount with {@link mountAhead}. */
  handle: RawHandler;
  /**
   * The credential source every other route of the app should use: the same one, except that a
   * refresh or an invalidation through it also drops the proxy's cached credential.
   */
  credentials: CredentialSource;
  /** Closes the keep-alive sockets to the providers. */
  close(): Promise<void>;
}

/** Runs Express-style middleware on a raw request; `done` when all called `next()`, `fail` on `next(err)`. */
function runGuards(
  guards: RequestHandler[],
  req: IncomingMessage,
  res: ServerResponse,
  done: () => void,
  fail: (err: unknown) => void,
): void {
  let i = 0;
  const next: NextFunction = (err?: unknown) => {
    if (err !== undefined && err !== null) return fail(err);
    const guard = guards[i++];
    if (!guard) return done();
    try {
      guard(req as Request, res as Response, next);
    } catch (thrown) {
      fail(thrown);
    }
  };
  next();
}

/**
 * The service API's proxy (CONTRACT "Service API"), built for the hot path: a raw Node handler
 * with undici keep-alive pools per provider origin and a short-lived credential cache, because
 * Express's per-request machinery alone costs more CPU than the rest of a proxied call.
 */
export function proxyRoutes(deps: ProxyRoutesDeps): ProxyRoutes {
  const cache = new CredentialCache(deps.credentials, { ttlMs: deps.credentialCacheTtlMs ?? 1000, clock: deps.clock });
  const agents = new UpstreamAgents({ connectTimeoutMs: Math.min(deps.config.upstreamTimeoutMs, 10_000) });
  const proxy = createProxyHandler({
    providers: deps.providers,
    credentials: cache,
    agents,
    metrics: deps.metrics,
    logger: deps.logger,
    bodyLimitBytes: deps.config.proxyBodyLimitBytes,
    upstreamTimeoutMs: deps.config.upstreamTimeoutMs,
  });
  const refuse = (res: ServerResponse) => (err: unknown) => {
    const error = isAppError(err)
      ? err
      : new AppError('internal_error', 'An unexpected error occurred', { cause: err });
    if (error.status >= 500)
      deps.logger.error(
        { reqId: res.getHeader(REQUEST_ID_HEADER), err: error.cause ?? error, code: error.code },
        error.message,
      );
    sendProxyError(res, error);
  };
  return {
    handle: (req, res) => {
      const reqId = recordProxyRequest(req, res, deps.logger, deps.metrics);
      const withLocals = res as ServerResponse & { locals?: Record<string, unknown> };
      withLocals.locals ??= Object.create(null) as Record<string, unknown>;
      // Lines logged on the way (the credential source's) carry the request id too.
      runWithRequestId(reqId, () => runGuards(deps.guards, req, res, () => proxy(req, res), refuse(res)));
    },
    credentials: cache.notifying(),
    close: () => agents.close(),
  };
}

/** `/proxy/…`, also in absolute form (`GET http://host/proxy/…`), which the proxy then refuses. */
const PROXY_TARGET = /^(?:[a-z][a-z0-9+.-]*:\/\/[^/?#]*)?\/proxy\//i;

/** True for a request target the proxy answers; case-insensitive like Express's router. */
export function isProxyTarget(url: string | undefined): boolean {
  return url !== undefined && (url.startsWith(PROXY_PREFIX) || PROXY_TARGET.test(url));
}

/**
 * Serves proxy requests before Express's router sees them (no prototype swaps, no middleware
 * walk); every other request goes through the app as usual.
 */
export function mountAhead(app: Express, handler: RawHandler): void {
  const express = app as Express & { handle: (req: IncomingMessage, res: ServerResponse, next?: NextFunction) => void };
  const handleByExpress = express.handle.bind(app);
  express.handle = (req, res, next) => (isProxyTarget(req.url) ? handler(req, res) : handleByExpress(req, res, next));
}
