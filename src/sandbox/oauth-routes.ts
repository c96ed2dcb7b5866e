import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';

import { authenticateClient, type ClientAuthResult } from './client-auth';
import { PAGE_CSP, renderConsentPage, renderErrorPage } from './consent-page';
import { delay, takeInjectedTokenFailure, type SandboxContext } from './context';
import { exchangeAuthorizationCode, refreshAccessToken, splitScope, type GrantResult } from './grants';
import { isWellFormedPkceValue } from './pkce';
import type { RequestLog } from './request-log';
import type { AuthorizationRequest } from './token-store';

/** A single-valued optional parameter; repeating a parameter is invalid (RFC 6749 §3.1, §3.2). */
const param = z.string().optional();

/** Authorization request query parameters (RFC 6749 §4.1.1, RFC 7636 §4.3). */
const AuthorizeQuerySchema = z.object({
  response_type: param,
  client_id: param,
  redirect_uri: param,
  scope: param,
  state: param,
  code_challenge: param,
  code_challenge_method: param,
  audience: param,
});
type AuthorizeQuery = z.infer<typeof AuthorizeQuerySchema>;

/** The consent form submitted by the Approve / Deny buttons. */
const DecisionSchema = z.object({ request_id: z.string(), decision: z.enum(['approve', 'deny']) });

/** Token request body (RFC 6749 §4.1.3, §6; RFC 7636 §4.5), form-encoded or JSON. */
const TokenRequestSchema = z.object({
  grant_type: param,
  code: param,
  redirect_uri: param,
  code_verifier: param,
  refresh_token: param,
  scope: param,
  client_id: param,
  client_secret: param,
});

/** Revocation request body (RFC 7009 §2.1). */
const RevokeRequestSchema = z.object({
  token: param,
  token_type_hint: param,
  client_id: param,
  client_secret: param,
});

const parseForm = express.urlencoded({ extended: false });
const parseJson = express.json();

/** Marks a response as carrying credentials that must never be cached (RFC 6749 §5.1). */
function setNoStore(res: Response): void {
  res.set('Cache-Control', 'no-store').set('Pragma', 'no-cache');
}

function sendOAuthError(res: Response, status: number, error: string, description: string): void {
  res.status(status).json({ error, error_description: description });
}

/** Answers a failed client authentication (RFC 6749 §5.2), with a Basic challenge when Basic was tried. */
function sendClientAuthFailure(res: Response, failure: Extract<ClientAuthResult, { ok: false }>): void {
  if (failure.error === 'invalid_request') return sendOAuthError(res, 400, 'invalid_request', failure.description);
  if (failure.basicAttempted) res.set('WWW-Authenticate', 'Basic realm="sandbox"');
  res.status(401).json({ error: 'invalid_client' });
}

function sendHtmlError(res: Response, title: string, message: string): void {
  res.status(400).set('Content-Security-Policy', PAGE_CSP).type('html').send(renderErrorPage(title, message));
}

/** Parses an absolute http(s) redirect URI without a fragment (RFC 6749 §3.1.2); undefined when unusable. */
function parseRedirectUri(value: string | undefined): URL | undefined {
  if (value === undefined) return undefined;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hash === '' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** Builds an authorization response redirect (RFC 6749 §4.1.2, §4.1.2.1) with `iss` when configured (RFC 9207). */
function buildRedirect(
  ctx: SandboxContext,
  redirectUri: string,
  params: Record<string, string>,
  state: string | undefined,
): string {
  const url = new URL(redirectUri);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  if (state !== undefined) url.searchParams.set('state', state);
  if (ctx.options.issuer !== null) url.searchParams.set('iss', ctx.options.issuer);
  return url.toString();
}

function redirectWithError(
  ctx: SandboxContext,
  res: Response,
  redirectUri: string,
  error: string,
  description: string,
  state: string | undefined,
): void {
  res.redirect(buildRedirect(ctx, redirectUri, { error, error_description: description }, state));
}

/** Validates the PKCE part of an authorization request (RFC 7636 §4.3, §4.4.1); returns a problem or undefined. */
function findPkceProblem(ctx: SandboxContext, query: AuthorizeQuery): string | undefined {
  if (query.code_challenge === undefined) {
    if (query.code_challenge_method !== undefined) return 'code_challenge_method was sent without code_challenge.';
    return ctx.options.requirePkce ? 'code_challenge (S256) is required.' : undefined;
  }
  if (query.code_challenge_method !== 'S256') return 'Only the S256 code_challenge_method is supported.';
  return isWellFormedPkceValue(query.code_challenge) ? undefined : 'code_challenge is malformed.';
}

/** Reads one single-valued parameter from a raw query, even when the rest of the query is invalid. */
function readQueryString(query: Request['query'], name: string): string | undefined {
  const value: unknown = query[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * `GET /authorize` (RFC 6749 §4.1.1): when the client and redirect URI can be trusted, problems are reported by
 * redirecting back with `error=`; otherwise a plain 400 page is shown (RFC 6749 §4.1.2.1). A valid request is
 * kept server-side and the consent page is rendered.
 */
function handleAuthorize(ctx: SandboxContext, req: Request, res: Response): void {
  const clientId = readQueryString(req.query, 'client_id');
  const redirectUri = readQueryString(req.query, 'redirect_uri');

  if (clientId !== ctx.options.clientId) {
    return sendHtmlError(res, 'Unknown application', 'The client_id is missing or not registered with this provider.');
  }
  if (redirectUri === undefined || !parseRedirectUri(redirectUri)) {
    return sendHtmlError(res, 'Invalid redirect URI', 'The redirect_uri is missing or is not an absolute http(s) URL.');
  }
  const state = readQueryString(req.query, 'state');
  const parsed = AuthorizeQuerySchema.safeParse(req.query);
  if (!parsed.success) {
    return redirectWithError(ctx, res, redirectUri, 'invalid_request', 'A parameter was repeated.', state);
  }
  const query = parsed.data;
  if (query.response_type === undefined) {
    return redirectWithError(ctx, res, redirectUri, 'invalid_request', 'response_type is required.', state);
  }
  if (query.response_type !== 'code') {
    const description = 'Only response_type=code is supported.';
    return redirectWithError(ctx, res, redirectUri, 'unsupported_response_type', description, state);
  }
  const pkceProblem = findPkceProblem(ctx, query);
  if (pkceProblem !== undefined) return redirectWithError(ctx, res, redirectUri, 'invalid_request', pkceProblem, state);

  const request: AuthorizationRequest = {
    clientId,
    redirectUri,
    scope: query.scope ?? '',
    state,
    codeChallenge: query.code_challenge,
    audience: query.audience,
  };
  const requestId = ctx.store.savePendingRequest(request);
  res
    .set('Cache-Control', 'no-store')
    .set('Content-Security-Policy', PAGE_CSP)
    .type('html')
    .send(renderConsentPage({ requestId, clientId, scopes: splitScope(request.scope), redirectUri }));
}

/** `POST /authorize/decision`: Approve issues a code (RFC 6749 §4.1.2), Deny answers `access_denied` (§4.1.2.1). */
function handleDecision(ctx: SandboxContext, req: Request, res: Response): void {
  const parsed = DecisionSchema.safeParse(req.body);
  if (!parsed.success) return sendHtmlError(res, 'Invalid request', 'The consent form was incomplete.');
  const request = ctx.store.takePendingRequest(parsed.data.request_id);
  if (!request) {
    return sendHtmlError(res, 'Request expired', 'This authorization request has expired or was already answered.');
  }
  if (parsed.data.decision === 'deny') {
    return redirectWithError(ctx, res, request.redirectUri, 'access_denied', 'The user denied access', request.state);
  }
  const code = ctx.store.issueAuthorizationCode(request);
  res.redirect(buildRedirect(ctx, request.redirectUri, { code }, request.state));
}

/** Counts a token request by grant type in the stats. */
function countGrant(ctx: SandboxContext, grantType: string | undefined): void {
  if (grantType === 'authorization_code') ctx.stats.authorizationCodeGrants += 1;
  if (grantType === 'refresh_token') ctx.stats.refreshGrants += 1;
}

function runGrant(ctx: SandboxContext, clientId: string, body: z.infer<typeof TokenRequestSchema>): GrantResult {
  switch (body.grant_type) {
    case 'authorization_code':
      return exchangeAuthorizationCode(ctx, clientId, body);
    case 'refresh_token':
      return refreshAccessToken(ctx, clientId, body);
    case undefined:
      return { ok: false, body: { error: 'invalid_request', error_description: 'grant_type is required.' } };
    default:
      return {
        ok: false,
        body: {
          error: 'unsupported_grant_type',
          error_description: `Unsupported grant_type: ${body.grant_type}`,
        },
      };
  }
}

/**
 * `POST /oauth/token` (RFC 6749 §3.2): authenticates the client, then runs the authorization code or refresh
 * token grant. Honours the configured delay and injected failures.
 */
async function handleToken(ctx: SandboxContext, req: Request, res: Response): Promise<void> {
  const parsed = TokenRequestSchema.safeParse(req.body ?? {});
  if (parsed.success) countGrant(ctx, parsed.data.grant_type);
  const injectedStatus = takeInjectedTokenFailure(ctx);
  await delay(ctx.options.tokenDelayMs);
  setNoStore(res);

  if (injectedStatus !== undefined) {
    res.status(injectedStatus).json({ error: 'server_error' });
    return;
  }
  if (!req.is(['application/x-www-form-urlencoded', 'application/json'])) {
    return sendOAuthError(res, 400, 'invalid_request', 'Send the token request as form or JSON.');
  }
  if (!parsed.success) return sendOAuthError(res, 400, 'invalid_request', 'Parameters must be single strings.');
  const auth = authenticateClient(req.headers, parsed.data, ctx.options);
  if (!auth.ok) return sendClientAuthFailure(res, auth);

  const result = runGrant(ctx, auth.clientId, parsed.data);
  if (result.ok) {
    res.status(200).json(result.body);
  } else {
    res.status(400).json(result.body);
  }
}

/** `POST /oauth/revoke` (RFC 7009 §2): revokes a token; unknown tokens are also answered with 200 (§2.2). */
function handleRevoke(ctx: SandboxContext, req: Request, res: Response): void {
  setNoStore(res);
  const parsed = RevokeRequestSchema.safeParse(req.body ?? {});
  if (!parsed.success) return sendOAuthError(res, 400, 'invalid_request', 'Parameters must be single strings.');
  const auth = authenticateClient(req.headers, parsed.data, ctx.options);
  if (!auth.ok) return sendClientAuthFailure(res, auth);
  if (parsed.data.token === undefined) return sendOAuthError(res, 400, 'invalid_request', 'token is required.');
  ctx.store.revokeToken(parsed.data.token);
  res.status(200).end();
}

/** The authorization server routes: `/authorize`, `/authorize/decision`, `/oauth/token`, `/oauth/revoke`. */
export function createOAuthRouter(ctx: SandboxContext, log: RequestLog): Router {
  const router = express.Router();
  const countTokenRequest: express.RequestHandler = (_req, _res, next) => {
    ctx.stats.tokenRequests += 1;
    next();
  };
  const countRevocation: express.RequestHandler = (_req, _res, next) => {
    ctx.stats.revocations += 1;
    next();
  };

  router.get('/authorize', (req, res) => handleAuthorize(ctx, req, res));
  router.post('/authorize/decision', parseForm, log.attachBody, (req, res) => handleDecision(ctx, req, res));
  router.post('/oauth/token', countTokenRequest, parseForm, parseJson, log.attachBody, (req, res) =>
    handleToken(ctx, req, res),
  );
  router.post('/oauth/revoke', countRevocation, parseForm, parseJson, log.attachBody, (req, res) =>
    handleRevoke(ctx, req, res),
  );
  return router;
}
