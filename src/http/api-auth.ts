import type { Request, RequestHandler } from 'express';
import { accessForMethod, authorize, type Access } from '../guards/access';
import type { ApiKeyGuard, ApiKeyIdentity } from '../guards/api-keys';

declare module 'express-serve-static-core' {
  interface Locals {
    /** Who called, set by {@link requireApiKey} on the service API. */
    apiKey?: ApiKeyIdentity;
  }
}

/** Express adapter of {@link ApiKeyGuard}: `res.locals.apiKey` on success, the 401/429 through the error middleware. */
export function requireApiKey(guard: ApiKeyGuard): RequestHandler {
  return (req, res, next) => {
    guard(req).then((identity) => {
      res.locals.apiKey = identity;
      next();
    }, next);
  };
}

/** The provider a service route is about: its `:provider` parameter. */
const providerParam = (req: Request): string | undefined =>
  typeof req.params?.provider === 'string' ? req.params.provider : undefined;

/**
 * Express adapter of {@link authorize} for one route: the key set by {@link requireApiKey} must
 * have `access`, and, when the route is about a provider (`providerOf`, by default its
 * `:provider` parameter), be allowed that provider. 403 `forbidden` otherwise.
 */
export function requireAccess(
  access: Access,
  providerOf: (req: Request) => string | null | undefined = providerParam,
): RequestHandler {
  return (req, res, next) => {
    authorize(identityOf(res.locals.apiKey), { access, provider: providerOf(req) });
    next();
  };
}

const PROVIDER_SEGMENT = /^\/([^/]+)(?:\/|$)/;

/**
 * The floor under every service route, mounted with the key check: a read needs `read`, any
 * other method `full`, and under `/connections/:provider/…` the key must be allowed that
 * provider. A route added without {@link requireAccess} is then closed to keys that could not
 * use it anyway; routes that need more (the token route needs `proxy`) say so themselves.
 */
export function serviceAccessFloor(): RequestHandler {
  return (req, res, next) => {
    const segment = req.baseUrl === '/connections' ? PROVIDER_SEGMENT.exec(req.path)?.[1] : undefined;
    authorize(identityOf(res.locals.apiKey), {
      access: accessForMethod(req.method),
      provider: segment === undefined ? undefined : decodeSegment(segment),
    });
    next();
  };
}

function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

function identityOf(identity: ApiKeyIdentity | undefined): ApiKeyIdentity {
  // Mounted behind requireApiKey; a route reached without it is a wiring mistake: fail closed.
  if (!identity) throw new Error('requireAccess used on a route without requireApiKey');
  return identity;
}
