import type { OAuth2Provider, Provider } from '../providers/registry';
import type { Connection } from '../store';
import type { ResolvedTarget } from './connection-target';

/** The header that authenticates a call to the provider's API. */
export interface AuthHeader {
  name: string;
  value: string;
}

export interface ResolvedCredential {
  connection: Connection;
  header: AuthHeader;
  /**
   * The connection's `apiBaseUrl` (the pin) and `apiHeaders`, resolved from its config and
   * metadata when the credential was read, so a cached credential carries them (connection-target.ts).
   */
  target?: ResolvedTarget;
}

/**
 * Where every caller (the proxy, the token route, TypeScript callers) gets a working credential.
 * Implementations refresh before expiry and after a provider 401, one refresh at a time per
 * connection across every instance.
 */
export interface CredentialSource {
  /**
   * A usable credential, refreshed first when the access token is within the provider's
   * `refreshMarginSeconds` of expiry. Throws AppError `connection_not_found`, `reauth_required`
   * (409) or `provider_error` (502, with Retry-After). `reqId`, when the call serves a request,
   * goes on the lines logged for it (a refresh it starts).
   */
  getCredential(provider: Provider, connectionId: string, reqId?: string): Promise<ResolvedCredential>;
  /**
   * After the provider answered 401 to `rejected`: refresh once (or take a newer token a peer
   * already stored) and return the new credential; null when nothing can be refreshed (api_key,
   * no refresh token). Callers retry once with the result and never call this twice per request.
   */
  refreshAfterUnauthorized(
    provider: Provider,
    connectionId: string,
    rejected: ResolvedCredential,
    reqId?: string,
  ): Promise<ResolvedCredential | null>;
  /** POST /connections/:provider/:id/refresh. */
  forceRefresh(provider: Provider, connectionId: string, reqId?: string): Promise<Connection>;
  /** Forget anything cached for the connection (after delete or reconnect). */
  invalidate(provider: string, connectionId: string): void;
}

/**
 * What one keep-alive look at a connection did (issue 11 part 3). `skipped`: nothing was sent to
 * the provider, because the connection is gone, cannot be refreshed (no refresh token, not
 * active), or was refreshed by someone since it fell due; `connection` is what was found.
 */
export type KeepAliveOutcome =
  | { result: 'refreshed'; connection: Connection }
  | { result: 'reauth_required' }
  | { result: 'failed'; code: string }
  | { result: 'skipped'; connection: Connection | null };

/** The keep-alive's way into the refresh coordinator: the same lock, re-read and write as every refresh. */
export interface KeepAliveRefresher {
  /**
   * Refreshes the connection if it is still idle since `idleSince` or earlier when read under the
   * refresh lock, so of every instance's sweep that claims it, one refresh is made. An
   * `invalid_grant` marks it `reauth_required` with its event, as any refresh does. Never throws
   * for the connection's sake; a store outage is a `failed` outcome.
   */
  keepAlive(provider: OAuth2Provider, connectionId: string, idleSince: number): Promise<KeepAliveOutcome>;
}
