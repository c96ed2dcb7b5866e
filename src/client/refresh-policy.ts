import type { Provider } from '../providers/registry';
import type { Connection } from '../store';

/**
 * The margin actually applied: the provider's `refreshMarginSeconds`, but never more than half
 * the token's lifetime. Tokens living shorter than the margin would otherwise look due the
 * moment they arrive, and every call would refresh (SECURITY.md §19: no refresh storm).
 */
export function effectiveMarginMs(provider: Provider, connection: Connection): number {
  if (provider.authMode !== 'oauth2') return 0;
  const margin = provider.refreshMarginSeconds * 1000;
  if (connection.expiresAt === null) return margin;
  const issuedAt = connection.lastRefreshedAt ?? connection.updatedAt;
  const lifetime = connection.expiresAt - issuedAt;
  return lifetime > 0 ? Math.min(margin, Math.floor(lifetime / 2)) : margin;
}

/**
 * True when an oauth2 connection should be refreshed before use: it has no access token (the
 * store drops expired ones), or the token expires within the margin. A token without
 * `expires_in` is never due by time; only a 401 refreshes it.
 */
export function isDueForRefresh(provider: Provider, connection: Connection, now: number): boolean {
  if (provider.authMode !== 'oauth2') return false;
  if (!connection.credentials.accessToken) return true;
  if (connection.expiresAt === null) return false;
  return connection.expiresAt - now <= effectiveMarginMs(provider, connection);
}

/** True while the stored access token can still be sent (the store never returns an expired one). */
export function hasUsableAccessToken(connection: Connection, now: number): boolean {
  return Boolean(connection.credentials.accessToken) && (connection.expiresAt === null || connection.expiresAt > now);
}
