import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import type { Config } from '../config';
import type { RateLimiter } from '../guards/rate-limit';

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

/**
 * Express adapter of a {@link RateLimiter}: counts the request against `keyOf(req, res)` and
 * answers the limiter's error through the error middleware.
 */
export function rateLimitMiddleware(
  limiter: RateLimiter,
  keyOf: (req: Request, res: Response) => string,
): RequestHandler {
  return (req, res, next) => {
    limiter.hit(keyOf(req, res)).then(() => next(), next);
  };
}
