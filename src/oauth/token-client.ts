import type { AxiosInstance, AxiosResponse } from 'axios';
import { AppError } from '../errors';
import type { OAuth2Provider } from '../providers/registry';
import { parseTokenResponse, type TokenSet } from './token-response';

/** An OAuth error answer of the token endpoint (RFC 6749 §5.2), such as `invalid_grant`. */
export class TokenEndpointError extends AppError {
  constructor(
    readonly oauthError: string,
    readonly httpStatus: number,
    description?: string,
  ) {
    super('provider_error', `The provider refused the token request (${oauthError})`, {
      provider: { error: oauthError, description, status: httpStatus },
    });
    this.name = 'TokenEndpointError';
  }
}

export interface TokenClientDeps {
  http: AxiosInstance;
  timeoutMs: number;
  now: () => number;
}

/** `application/x-www-form-urlencoded` encoding of one value (`+` for space, as §2.3.1 requires). */
export function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

/**
 * HTTP Basic client authentication per RFC 6749 §2.3.1: the client id and secret are
 * form-urlencoded *before* base64, so a secret holding `+` or `/` survives strict servers.
 */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`;
}

/** Sends a token request shaped by the provider's data: body format and client authentication. */
export async function requestToken(
  provider: OAuth2Provider,
  params: Record<string, string>,
  deps: TokenClientDeps,
): Promise<TokenSet> {
  const { bodyFormat, clientAuth } = provider.tokenRequest;
  const fields: Record<string, string> = { ...params };
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (clientAuth === 'basic') {
    headers.Authorization = basicAuthorization(provider.clientId ?? '', provider.clientSecret ?? '');
  } else {
    fields.client_id = provider.clientId ?? '';
    fields.client_secret = provider.clientSecret ?? '';
  }
  const body = bodyFormat === 'json' ? JSON.stringify(fields) : new URLSearchParams(fields).toString();
  headers['Content-Type'] = bodyFormat === 'json' ? 'application/json' : 'application/x-www-form-urlencoded';

  let response: AxiosResponse;
  try {
    response = await deps.http.request({
      method: 'POST',
      url: provider.tokenUrl,
      data: body,
      headers,
      timeout: deps.timeoutMs,
      maxRedirects: 0,
      validateStatus: () => true,
      transformResponse: (raw: unknown) => raw,
      responseType: 'text',
    });
  } catch (err) {
    const timedOut =
      (err as { code?: string }).code === 'ECONNABORTED' || (err as { code?: string }).code === 'ETIMEDOUT';
    throw new AppError(
      'provider_error',
      timedOut ? "The provider's token endpoint timed out" : "The provider's token endpoint is unreachable",
      {
        cause: err,
        retryAfter: 5,
      },
    );
  }
  const parsed = parseJson(response.data);
  if (response.status >= 200 && response.status < 300) {
    if (parsed === undefined) throw new AppError('provider_error', "The provider's token response is not JSON");
    return parseTokenResponse(parsed, deps.now(), provider.tokenResponseMetadata);
  }
  const oauth = parsed as { error?: unknown; error_description?: unknown } | undefined;
  if (response.status < 500 && oauth && typeof oauth.error === 'string') {
    throw new TokenEndpointError(
      oauth.error.slice(0, 100),
      response.status,
      typeof oauth.error_description === 'string' ? oauth.error_description.slice(0, 300) : undefined,
    );
  }
  throw new AppError('provider_error', `The provider's token endpoint answered ${response.status}`, {
    retryAfter: retryAfterSeconds(response.headers['retry-after']) ?? 5,
    provider: { status: response.status },
  });
}

/** Authorization code grant (RFC 6749 §4.1.3), with the PKCE verifier when one was sent. */
export function exchangeCode(
  provider: OAuth2Provider,
  input: { code: string; redirectUri: string; codeVerifier?: string },
  deps: TokenClientDeps,
): Promise<TokenSet> {
  const params: Record<string, string> = {
    grant_type: 'authorization_code',
    code: input.code,
    redirect_uri: input.redirectUri,
  };
  if (input.codeVerifier) params.code_verifier = input.codeVerifier;
  return requestToken(provider, params, deps);
}

/** Refresh grant (RFC 6749 §6). */
export function refreshTokenGrant(
  provider: OAuth2Provider,
  refreshToken: string,
  deps: TokenClientDeps,
): Promise<TokenSet> {
  return requestToken(provider, { grant_type: 'refresh_token', refresh_token: refreshToken }, deps);
}

function parseJson(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw ?? undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

export function retryAfterSeconds(header: unknown): number | undefined {
  if (typeof header !== 'string') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}
