import type { OAuth2Provider } from '../providers/registry';
import type { Credentials } from '../store';
import { basicAuthorization, type TokenClientDeps } from './token-client';

export type RevocationResult = 'revoked' | 'failed' | 'not_supported';

/**
 * Revokes a connection's grant at the provider's `revocationUrl` (RFC 7009 §2.1): the refresh
 * token when there is one — the server then also drops the access tokens of the same grant —
 * otherwise the access token, with the same client authentication and body format as the
 * provider's token requests. Only a 200 counts as revoked (§2.2: unknown tokens get 200 too).
 * Never throws: a provider that is down must not keep a connection from being deleted.
 */
export async function revokeCredentials(
  provider: OAuth2Provider,
  credentials: Credentials,
  deps: Omit<TokenClientDeps, 'now'>,
): Promise<RevocationResult> {
  const token = credentials.refreshToken ?? credentials.accessToken;
  if (!provider.revocationUrl || !token) return 'not_supported';
  const fields: Record<string, string> = {
    token,
    token_type_hint: credentials.refreshToken ? 'refresh_token' : 'access_token',
  };
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (provider.tokenRequest.clientAuth === 'basic') {
    headers.Authorization = basicAuthorization(provider.clientId ?? '', provider.clientSecret ?? '');
  } else {
    fields.client_id = provider.clientId ?? '';
    fields.client_secret = provider.clientSecret ?? '';
  }
  const json = provider.tokenRequest.bodyFormat === 'json';
  headers['Content-Type'] = json ? 'application/json' : 'application/x-www-form-urlencoded';
  try {
    const response = await deps.http.request({
      method: 'POST',
      url: provider.revocationUrl,
      data: json ? JSON.stringify(fields) : new URLSearchParams(fields).toString(),
      headers,
      timeout: deps.timeoutMs,
      maxRedirects: 0,
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: (raw: unknown) => raw,
    });
    return response.status === 200 ? 'revoked' : 'failed';
  } catch {
    // The axios error carries the request body (the token and the client secret): drop it here.
    return 'failed';
  }
}
