import type { AxiosInstance } from 'axios';
import type { CredentialSource } from '../client/types';
import type { Clock } from '../clock';
import type { Config } from '../config';
import { AppError, toAppError } from '../errors';
import type { EventSink } from '../events';
import type { Logger } from '../logger';
import { buildAuthorizationUrl } from '../oauth/authorization-url';
import { createPkcePair } from '../oauth/pkce';
import { randomToken } from '../oauth/random';
import { exchangeCode } from '../oauth/token-client';
import type { OAuth2Provider, Provider, ProviderRegistry } from '../providers/registry';
import type { AccountInfo, Connection, FlowState, Store } from '../store';
import { FLOW_STATE_MAX_AGE_MS } from '../store';
import type { ConnectTarget } from './connect-target';
import { authorizationErrorCode, type FlowErrorCode } from './flow-errors';

export const CONNECTION_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

export interface FlowDeps {
  config: Config;
  store: Store;
  providers: ProviderRegistry;
  clock: Clock;
  http: AxiosInstance;
  events: EventSink;
  /** Told when a connection is written anew, so no cached credential outlives it. */
  credentials: Pick<CredentialSource, 'invalidate'>;
  /** Where the browser routes report the failures they answer themselves (a flow's error return). */
  logger?: Logger;
}

export interface BrowserContext {
  sessionId: string;
  mode: 'redirect' | 'popup';
  openerOrigin?: string;
}

/**
 * Starts the authorization-code flow: a state of 256 random bits bound to this browser's
 * session (RFC 6749 §10.12, RFC 9700 §4.7.1), a PKCE S256 pair when the provider supports it
 * (RFC 7636 §4.2), and the one exact redirect_uri from PUBLIC_URL (RFC 6749 §4.1.3).
 */
export async function startAuthorization(
  deps: FlowDeps,
  target: ConnectTarget,
  browser: BrowserContext,
): Promise<string> {
  const provider = requireOAuth2(target.provider);
  const now = deps.clock.now();
  const state = randomToken(32);
  const pkce = provider.pkce ? createPkcePair() : undefined;
  const flow: FlowState = {
    state,
    provider: provider.id,
    connectionId: target.connectionId,
    sessionId: browser.sessionId,
    codeVerifier: pkce?.verifier,
    issuer: provider.issuer,
    returnTo: target.returnTo,
    mode: browser.mode,
    openerOrigin: browser.openerOrigin,
    createdAt: now,
    expiresAt: now + FLOW_STATE_MAX_AGE_MS,
  };
  await deps.store.saveFlowState(flow);
  return buildAuthorizationUrl(provider, {
    state,
    redirectUri: deps.config.redirectUri,
    codeChallenge: pkce?.challenge,
  });
}

/** Where a flow goes back to once it is over, as recorded when it started. */
export type FlowReturn = Pick<FlowState, 'provider' | 'connectionId' | 'returnTo' | 'mode' | 'openerOrigin'>;

/**
 * What a callback with a valid state came to. `connected`, `denied` and `error` go back to the
 * flow's `return_to` (or its popup's opener) with `status=` and, for an error, `error=<code>`:
 * a code from a closed list, never text from the provider. `refused` is a callback of this
 * browser's flow that must not be acted on (a mix-up, a malformed answer): the 400 page, which a
 * popup also posts to its opener.
 */
export type CallbackResult =
  | { kind: 'connected'; flow: FlowState; connection: Connection }
  | { kind: 'denied'; flow: FlowState }
  | { kind: 'error'; flow: FlowState; code: FlowErrorCode; cause: AppError }
  | { kind: 'refused'; flow: FlowState; error: AppError };

/**
 * Finishes the flow. Every check happens before any token request: parameters appear once,
 * the state exists, is unexpired, unused and belongs to this browser session, and `iss`
 * matches (RFC 9207 §2.4) — and only then is `error=` acted on (RFC 6749 §4.1.2.1).
 *
 * Throws when the callback belongs to no flow of this browser (a missing, forged, expired or
 * replayed state, or one of another browser): the plain 400 page, nothing to go back to. Any
 * failure after that is a {@link CallbackResult}.
 *
 * @see RFC 6749 §4.1.2
 * @see RFC 9700 §4.7.1
 */
export async function completeAuthorization(
  deps: FlowDeps,
  rawQuery: string,
  sessionId: string,
): Promise<CallbackResult> {
  const params = new URLSearchParams(rawQuery);
  const names = [...params.keys()];
  if (new Set(names).size !== names.length) {
    throw new AppError('invalid_request', 'The callback carries a parameter more than once.');
  }
  const state = params.get('state');
  if (!state) throw new AppError('invalid_state', 'The callback has no state parameter.');
  const flow = await claimFlowState(deps.store, state, sessionId);

  let provider: OAuth2Provider;
  try {
    provider = requireOAuth2(deps.providers.require(flow.provider));
  } catch (err) {
    const cause = toAppError(err);
    return { kind: 'error', flow, code: cause.code, cause };
  }
  const iss = params.get('iss');
  const expectedIssuer = provider.issuer ?? flow.issuer ?? null;
  if (expectedIssuer !== null && iss !== expectedIssuer) {
    const mixUp = new AppError(
      'invalid_request',
      "The callback's issuer (iss) does not match the provider the flow was started for.",
    );
    return { kind: 'refused', flow, error: mixUp };
  }

  const error = params.get('error');
  if (error !== null) {
    if (error === 'access_denied') return { kind: 'denied', flow };
    const code = authorizationErrorCode(error);
    // For the log only, and only when it looks like a code: error_description is never read.
    const cause = new AppError('provider_error', 'The provider answered the authorization request with an error', {
      provider: { error: /^[A-Za-z0-9_.-]{1,64}$/.test(error) ? error : code },
    });
    return { kind: 'error', flow, code, cause };
  }
  const code = params.get('code');
  if (!code) {
    return {
      kind: 'refused',
      flow,
      error: new AppError('invalid_request', 'The callback has neither a code nor an error.'),
    };
  }

  try {
    const connection = await connectWithCode(deps, provider, flow, code);
    return { kind: 'connected', flow, connection };
  } catch (err) {
    const cause = toAppError(err);
    return { kind: 'error', flow, code: cause.code, cause };
  }
}

/**
 * Takes the flow state of `state` for the browser session `sessionId`, or refuses it. The
 * store's take checks the session and deletes in one compare-and-delete: of two concurrent
 * callbacks exactly one gets the flow, a replay finds nothing, and a callback from another
 * browser deletes nothing — someone who saw the victim's callback URL cannot cancel the victim's
 * sign-in, not even for a moment.
 *
 * @see RFC 6749 §10.12
 */
async function claimFlowState(store: Store, state: string, sessionId: string): Promise<FlowState> {
  const taken = await store.takeFlowState(state, { sessionId });
  if (taken.kind === 'other_session') {
    throw new AppError(
      'invalid_state',
      'This sign-in was started in another browser session. Please start again here.',
    );
  }
  if (taken.kind !== 'ok') {
    throw new AppError(
      'invalid_state',
      'This sign-in link is unknown, expired or was already used. Please start again.',
    );
  }
  return taken.flow;
}

/** Exchanges the code (RFC 6749 §4.1.3) and stores the new connection. */
async function connectWithCode(
  deps: FlowDeps,
  provider: OAuth2Provider,
  flow: FlowState,
  code: string,
): Promise<Connection> {
  const tokens = await exchangeCode(
    provider,
    { code, redirectUri: deps.config.redirectUri, codeVerifier: flow.codeVerifier },
    { http: deps.http, timeoutMs: deps.config.tokenRequestTimeoutMs, now: () => deps.clock.now() },
  );
  const account = await fetchAccountInfo(deps, provider, tokens.accessToken, tokens.tokenType);
  const now = deps.clock.now();
  // Only createdAt is kept: read from the plaintext fields, so a record no key opens is still replaced.
  const existing = await deps.store.getConnectionInfo(provider.id, flow.connectionId).catch(() => null);
  const connection = await deps.store.saveConnection({
    provider: provider.id,
    connectionId: flow.connectionId,
    authMode: 'oauth2',
    status: 'active',
    scopes: tokens.scopes ?? provider.scopes,
    expiresAt: tokens.expiresAt,
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
    lastRefreshedAt: null,
    account,
    credentials: {
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      tokenType: tokens.tokenType,
      idToken: tokens.idToken,
    },
  });
  deps.credentials.invalidate(provider.id, flow.connectionId);
  deps.events.emit('connection.created', provider.id, flow.connectionId);
  return connection;
}

/** Stores an API key for an `api_key` provider (encrypted at rest like every credential). */
export async function saveApiKeyConnection(deps: FlowDeps, target: ConnectTarget, apiKey: string): Promise<Connection> {
  const now = deps.clock.now();
  const existing = await deps.store.getConnectionInfo(target.provider.id, target.connectionId);
  const connection = await deps.store.saveConnection({
    provider: target.provider.id,
    connectionId: target.connectionId,
    authMode: 'api_key',
    status: 'active',
    scopes: [],
    expiresAt: null,
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
    lastRefreshedAt: null,
    account: null,
    credentials: { apiKey },
  });
  deps.credentials.invalidate(target.provider.id, target.connectionId);
  deps.events.emit('connection.created', target.provider.id, target.connectionId);
  return connection;
}

function requireOAuth2(provider: Provider): OAuth2Provider {
  if (provider.authMode !== 'oauth2')
    throw new AppError('invalid_request', `${provider.displayName} connects with an API key, not OAuth.`);
  return provider;
}

/** Best effort: which account was connected, where the provider's data says how to ask. */
async function fetchAccountInfo(
  deps: FlowDeps,
  provider: OAuth2Provider,
  accessToken: string,
  tokenType: string,
): Promise<AccountInfo | null> {
  if (!provider.accountInfo) return null;
  const { path, idField, labelField } = provider.accountInfo;
  try {
    const res = await deps.http.get(`${provider.apiBaseUrl.replace(/\/$/, '')}${path}`, {
      headers: { ...provider.apiHeaders, Authorization: `${tokenType} ${accessToken}`, Accept: 'application/json' },
      timeout: 3000,
      maxRedirects: 0,
      validateStatus: (s) => s === 200,
    });
    const body = res.data as Record<string, unknown>;
    const pick = (field: string) =>
      typeof body?.[field] === 'string' || typeof body?.[field] === 'number'
        ? String(body[field]).slice(0, 200)
        : undefined;
    const info = { id: pick(idField), label: pick(labelField) };
    return info.id || info.label ? info : null;
  } catch {
    return null;
  }
}
