import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import helmet from 'helmet';
import { systemClock, type Clock } from '../clock';
import type { Config } from '../config';
import { AppError, isAppError } from '../errors';
import type { Store } from '../store';
import { SharedRateCounter } from './shared-rate-counter';

/** Length of a rate-limit window. */
export const RATE_WINDOW_MS = 60_000;

/** The per-response nonce a page puts on its inline `<script>` (CSP Level 3 §6.7.2.2). */
export function cspNonceOf(res: { locals: Record<string, unknown> }): string {
  return String(res.locals.cspNonce ?? '');
}

/**
 * Where a form on a Latchkey page may go, redirects included (browsers check `form-action` on
 * the 303 that follows a POST): Latchkey itself and the origins `return_to` may point at.
 */
function formTargets(config: Pick<Config, 'allowedReturnOrigins'>): string[] {
  return ["'self'", ...config.allowedReturnOrigins];
}

/**
 * Security headers for the browser routes, with helmet. The CSP allows nothing but Latchkey's
 * own origin: the pages load their styles and scripts from `/assets/` and have no inline code.
 * Should a page ever need an inline `<script>`, it must carry this response's nonce
 * (`res.locals.cspNonce`, see {@link cspNonceOf}). Pages are never framed (`frame-ancestors
 * 'none'`: the consent step must not be click-jacked, RFC 6749 §10.13, RFC 9700 §4.16).
 *
 * Two defaults of helmet are relaxed on purpose: `Cross-Origin-Opener-Policy` stays
 * `unsafe-none`, or the popup opened by connect.js would lose `window.opener` and could not post
 * its result; and `/connect.js` is served `Cross-Origin-Resource-Policy: cross-origin`, since it
 * is meant to be embedded by other origins.
 */
export function securityHeaders(config: Pick<Config, 'publicUrl' | 'allowedReturnOrigins'>): RequestHandler {
  const https = config.publicUrl.startsWith('https:');
  const nonce = (_req: unknown, res: ServerResponse) =>
    `'nonce-${cspNonceOf(res as unknown as { locals: Record<string, unknown> })}'`;
  const helmetFor = (resourcePolicy: 'same-origin' | 'cross-origin') =>
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'", nonce],
          scriptSrcAttr: ["'none'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'"],
          fontSrc: ["'self'"],
          connectSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
          frameAncestors: ["'none'"],
          formAction: formTargets(config),
          ...(https ? { upgradeInsecureRequests: [] } : {}),
        },
      },
      crossOriginOpenerPolicy: { policy: 'unsafe-none' },
      crossOriginResourcePolicy: { policy: resourcePolicy },
      referrerPolicy: { policy: 'no-referrer' },
      strictTransportSecurity: https ? { maxAge: 31_536_000, includeSubDomains: false } : false,
      xFrameOptions: { action: 'deny' },
    });
  const pages = helmetFor('same-origin');
  const embeddable = helmetFor('cross-origin');
  return (req, res, next) => {
    res.locals.cspNonce = randomBytes(16).toString('base64');
    (req.path === '/connect.js' ? embeddable : pages)(req, res, next);
  };
}

export interface RateLimitDeps {
  config: Pick<Config, 'rateLimitPerMinute' | 'serviceRateLimitPerMinute'>;
  store: Pick<Store, 'hit'>;
  clock?: Clock;
}

/** Who a request counts against: the client IP on browser routes, the API key on the service API. */
function rateKeyOf(req: Request, locals: Record<string, unknown>, scope: 'browser' | 'service'): string {
  if (scope === 'service') return `service:key:${String(locals.apiKeyId ?? 'none')}`;
  // req.ip honours TRUST_PROXY: behind a proxy it is the client, not the proxy.
  return `browser:ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;
}

/**
 * At most `RATE_LIMIT_PER_MINUTE` requests per minute per client IP (browser routes), or
 * `SERVICE_RATE_LIMIT_PER_MINUTE` per API key (service API; mount it after the API-key
 * middleware, which sets `res.locals.apiKeyId`). The count is a fixed window in the store, so
 * every instance on the same Redis shares it; on the service API (the proxy's hot path) hits far
 * below the limit are batched (see {@link SharedRateCounter}). Over the limit: 429
 * `rate_limited` with `Retry-After` (RFC 6585 §4), the seconds left in the window.
 *
 * When the store does not answer, the request fails closed with 503 `store_unavailable`
 * (within the store's command timeout): every rate-limited route needs the store anyway.
 * A limit of 0 turns the limiter off.
 */
export function rateLimit(deps: RateLimitDeps, scope: 'browser' | 'service'): RequestHandler {
  const limit = scope === 'service' ? deps.config.serviceRateLimitPerMinute : deps.config.rateLimitPerMinute;
  if (limit <= 0) return (_req, _res, next) => next();
  const counter =
    scope === 'service'
      ? new SharedRateCounter(deps.store, { windowMs: RATE_WINDOW_MS, limit, clock: deps.clock ?? systemClock })
      : { hit: (key: string) => deps.store.hit(key, RATE_WINDOW_MS) };
  return (req, res, next) => {
    counter.hit(rateKeyOf(req, res.locals, scope)).then(
      (window) => {
        if (window.count <= limit) return next();
        const retryAfter = Math.max(1, Math.ceil(window.resetMs / 1000));
        next(
          new AppError('rate_limited', `Too many requests: at most ${limit} a minute. Try again in ${retryAfter} s.`, {
            retryAfter,
          }),
        );
      },
      (err: unknown) =>
        next(
          isAppError(err)
            ? err
            : new AppError('store_unavailable', 'The credential store is unavailable', { cause: err }),
        ),
    );
  };
}
