import { AppError } from '../errors';

/**
 * What an API key may do (CONTRACT "API keys with a scope", SECURITY.md 24): `read` lists and
 * reads connections, events and providers; `proxy` may also call the provider through `/proxy`
 * and take a token (`GET …/token`); `full` may do everything (connect sessions, refresh, delete,
 * metadata, imports). Each level includes the ones below it.
 */
export type Access = 'read' | 'proxy' | 'full';

const RANK: Record<Access, number> = { read: 1, proxy: 2, full: 3 };

/** Who is asking, as far as authorization cares. */
export interface Scope {
  name: string;
  access: Access;
  /** Providers the key is limited to; null: every provider. */
  providers: readonly string[] | null;
}

export interface Need {
  access: Access;
  /**
   * The provider the route is about. Undefined: the route is about no one provider (a list,
   * which the caller filters with {@link canUseProvider}). Null: the route names no valid
   * provider, which a key limited to providers may not use.
   */
  provider?: string | null;
}

/** True when a key may see and use `provider`'s connections. */
export function canUseProvider(scope: Scope, provider: string): boolean {
  return scope.providers === null || scope.providers.includes(provider);
}

/**
 * Checks that `scope` may do what a route needs; the one check both the Express routes and the
 * raw proxy call. The message says what access the key has and what the route needs (the key's
 * name, never its secret).
 *
 * @throws AppError `forbidden` (403)
 */
export function authorize(scope: Scope, need: Need): void {
  if (RANK[scope.access] < RANK[need.access]) {
    throw new AppError(
      'forbidden',
      `API key "${scope.name}" has ${scope.access} access; this route needs ${need.access} access`,
    );
  }
  if (need.provider === undefined || scope.providers === null) return;
  if (need.provider === null || !scope.providers.includes(need.provider)) {
    const which = need.provider ? `provider "${need.provider.slice(0, 64)}"` : 'this provider';
    throw new AppError(
      'forbidden',
      `API key "${scope.name}" is limited to ${scope.providers.join(', ')}; it may not use ${which}`,
    );
  }
}

/** The access a request method needs when a route states none: reads need `read`, anything else `full`. */
export function accessForMethod(method: string | undefined): Access {
  return method === 'GET' || method === 'HEAD' ? 'read' : 'full';
}
