import type { OAuth2Provider } from '../providers/registry';

export interface AuthorizationRequest {
  state: string;
  redirectUri: string;
  codeChallenge?: string;
}

/**
 * The provider's authorization URL (RFC 6749 §4.1.1): the provider's own parameters first, then
 * the protocol ones, which a catalog entry can never override.
 */
export function buildAuthorizationUrl(provider: OAuth2Provider, request: AuthorizationRequest): string {
  const url = new URL(provider.authorizationUrl);
  for (const [name, value] of Object.entries(provider.authorizationParams)) url.searchParams.set(name, value);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', provider.clientId ?? '');
  url.searchParams.set('redirect_uri', request.redirectUri);
  if (provider.scopes.length) url.searchParams.set('scope', provider.scopes.join(provider.scopeSeparator));
  url.searchParams.set('state', request.state);
  if (request.codeChallenge) {
    url.searchParams.set('code_challenge', request.codeChallenge);
    url.searchParams.set('code_challenge_method', 'S256');
  }
  return url.toString();
}
