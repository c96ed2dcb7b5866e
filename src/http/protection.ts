import type { RequestHandler } from 'express';
import type { Config } from '../config';
import type { Store } from '../store';

/** Security headers for browser routes (to be built with helmet). */
export function securityHeaders(): RequestHandler {
  return (_req, _res, next) => next();
}

/** Rate limits kept in the store, shared by every instance (to be built). */
export function rateLimit(_deps: { config: Config; store: Store }, _scope: 'browser' | 'service'): RequestHandler {
  return (_req, _res, next) => next();
}
