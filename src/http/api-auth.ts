import type { RequestHandler } from 'express';
import type { ApiKeyIdentity, Authenticate } from '../guards/api-keys';

declare module 'express-serve-static-core' {
  interface Locals {
    /** Who called, set by {@link requireApiKey} on the service API. */
    apiKey?: ApiKeyIdentity;
  }
}

/** Express adapter of {@link Authenticate}: `res.locals.apiKey` on success, the 401 through the error middleware. */
export function requireApiKey(authenticate: Authenticate): RequestHandler {
  return (req, res, next) => {
    res.locals.apiKey = authenticate(req.headers);
    next();
  };
}
