import type { SandboxContext } from './context';
import { verifierMatchesChallenge } from './pkce';
import type { AuthorizationCode } from './token-store';

/** The successful access token response of RFC 6749 §5.1. */
export interface TokenResponseBody {
  access_token: string;
  refresh_token?: string;
  token_type: 'Bearer';
  expires_in?: number | string;
  scope: string;
}

/** An error response of RFC 6749 §5.2. */
export interface OAuthErrorBody {
  error: string;
  error_description: string;
}

/** Outcome of processing a grant on the token endpoint. */
export type GrantResult = { ok: true; body: TokenResponseBody } | { ok: false; body: OAuthErrorBody };

/** Parameters of the authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.5). */
export interface AuthorizationCodeParams {
  code?: string;
  redirect_uri?: string;
  code_verifier?: string;
}

/** Parameters of the refresh token grant (RFC 6749 §6). */
export interface RefreshTokenParams {
  refresh_token?: string;
  scope?: string;
}

function grantError(error: string, description: string): GrantResult {
  return { ok: false, body: { error, error_description: description } };
}

/** Writes `expires_in` as the sandbox is configured to: a number, a numeric string, or not at all. */
function formatExpiresIn(ctx: SandboxContext): Pick<TokenResponseBody, 'expires_in'> {
  const ttl = ctx.options.accessTokenTtlSeconds;
  switch (ctx.options.expiresInFormat) {
    case 'number':
      return { expires_in: ttl };
    case 'string':
      return { expires_in: String(ttl) };
    case 'omit':
      return {};
  }
}

/** Issues an access token (and optionally a refresh token) in a family and shapes the RFC 6749 §5.1 response. */
function issueTokens(
  ctx: SandboxContext,
  familyId: string,
  scope: string,
  refreshScope: string | undefined,
): TokenResponseBody {
  const accessToken = ctx.store.issueAccessToken(familyId, scope, ctx.options.accessTokenTtlSeconds);
  const refreshToken = refreshScope === undefined ? undefined : ctx.store.issueRefreshToken(familyId, refreshScope);
  return {
    ...ctx.options.tokenResponseExtras,
    access_token: accessToken,
    ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
    token_type: 'Bearer',
    ...formatExpiresIn(ctx),
    scope,
  };
}

/** Splits a space-delimited scope string (RFC 6749 §3.3). */
export function splitScope(scope: string | undefined): string[] {
  return (scope ?? '').split(' ').filter((item) => item.length > 0);
}

/**
 * Seeds a token family without the browser step, as if a code had just been exchanged.
 * Always returns a refresh token and a numeric `expires_in`.
 */
export function issueTokenFamily(
  ctx: SandboxContext,
  scope: string,
): TokenResponseBody & { refresh_token: string; expires_in: number } {
  const familyId = ctx.store.startFamily(ctx.options.clientId);
  const access_token = ctx.store.issueAccessToken(familyId, scope, ctx.options.accessTokenTtlSeconds);
  const refresh_token = ctx.store.issueRefreshToken(familyId, scope);
  return {
    access_token,
    refresh_token,
    token_type: 'Bearer',
    expires_in: ctx.options.accessTokenTtlSeconds,
    scope,
  };
}

/** Checks the PKCE verifier against the code's challenge (RFC 7636 §4.6); undefined when acceptable. */
function checkPkce(challenge: string | undefined, verifier: string | undefined): string | undefined {
  if (challenge === undefined) {
    return verifier === undefined ? undefined : 'code_verifier was sent but no code_challenge was used.';
  }
  if (verifier === undefined) return 'code_verifier is required for this authorization code.';
  return verifierMatchesChallenge(verifier, challenge) ? undefined : 'code_verifier does not match the code_challenge.';
}

/**
 * The authorization code grant (RFC 6749 §4.1.3): the code must be known, unused, unexpired, issued to this
 * client, with a byte-equal `redirect_uri` and a matching PKCE verifier. A code presented twice is refused
 * and the tokens it issued are revoked (RFC 6749 §4.1.2, §10.5). A failed attempt burns the code.
 */
export function exchangeAuthorizationCode(
  ctx: SandboxContext,
  clientId: string,
  params: AuthorizationCodeParams,
): GrantResult {
  if (params.code === undefined) return grantError('invalid_request', 'code is required.');
  const record = ctx.store.findAuthorizationCode(params.code);
  if (!record) return grantError('invalid_grant', 'The authorization code is invalid or expired.');
  if (record.redeemedFamilyId !== undefined) {
    ctx.store.revokeFamily(record.redeemedFamilyId);
    return grantError('invalid_grant', 'The authorization code has already been used.');
  }
  const problem = findCodeProblem(ctx, record, clientId, params);
  if (problem !== undefined) {
    ctx.store.discardAuthorizationCode(params.code);
    return grantError('invalid_grant', problem);
  }
  const familyId = ctx.store.redeemAuthorizationCode(params.code);
  return { ok: true, body: issueTokens(ctx, familyId, record.scope, record.scope) };
}

function findCodeProblem(
  ctx: SandboxContext,
  record: AuthorizationCode,
  clientId: string,
  params: AuthorizationCodeParams,
): string | undefined {
  if (ctx.store.isExpired(record)) return 'The authorization code is invalid or expired.';
  if (record.clientId !== clientId) return 'The authorization code was issued to another client.';
  if (params.redirect_uri !== record.redirectUri) {
    return 'redirect_uri does not match the one used in the authorization request.';
  }
  return checkPkce(record.codeChallenge, params.code_verifier);
}

/** Resolves the scope of a refreshed access token: the original one, or a subset of it (RFC 6749 §6). */
function narrowScope(original: string, requested: string | undefined): string | undefined {
  if (requested === undefined) return original;
  const granted = new Set(splitScope(original));
  return splitScope(requested).every((item) => granted.has(item)) ? requested : undefined;
}

/**
 * The refresh token grant (RFC 6749 §6). With `rotation: 'strict'` every refresh returns a new refresh token and
 * retires the old one; presenting a retired one revokes the whole family (RFC 6749 §10.4, OAuth 2.0 Security BCP
 * §4.14). With `rotation: 'none'` no new refresh token is issued and the old one stays valid.
 */
export function refreshAccessToken(ctx: SandboxContext, clientId: string, params: RefreshTokenParams): GrantResult {
  if (params.refresh_token === undefined) return grantError('invalid_request', 'refresh_token is required.');
  const record = ctx.store.findRefreshToken(params.refresh_token);
  if (!record || record.clientId !== clientId) return grantError('invalid_grant', 'Unknown or invalid refresh token.');
  if (record.state === 'revoked') return grantError('invalid_grant', 'The refresh token has been revoked.');
  if (record.state === 'rotated') {
    ctx.store.revokeFamily(record.familyId);
    return grantError('invalid_grant', 'The refresh token was already used; its token family has been revoked.');
  }
  const scope = narrowScope(record.scope, params.scope);
  if (scope === undefined) return grantError('invalid_scope', 'The requested scope exceeds the granted scope.');
  if (ctx.options.rotation === 'none') return { ok: true, body: issueTokens(ctx, record.familyId, scope, undefined) };
  ctx.store.markRefreshTokenRotated(params.refresh_token);
  return { ok: true, body: issueTokens(ctx, record.familyId, scope, record.scope) };
}
