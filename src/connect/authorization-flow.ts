import type { AxiosInstance } from 'axios';
import type { CredentialSource } from '../client/types';
import type { Clock } from '../clock';
import type { Config } from '../config';
import { AppError } from '../errors';
import type { EventSink } from '../events';
import { buildAuthorizationUrl } from '../oauth/authorization-url';
import { createPkcePair } from '../oauth/pkce';
import { randomToken } from '../oauth/random';
import { exchangeCode } from '../oauth/token-client';
import type { OAuth2Provider, Provider, ProviderRegistry } from '../providers/registry';
import type { AccountInfo, Connection, FlowState, Store } from '../store';
import { FLOW_STATE_MAX_AGE_MS } from '../store';
import { resolveReturnTo } from './return-to';

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
}

/** Which connection a browser may create, and where it goes afterwards. */
export interface ConnectTarget {
  provider: Provider;
  connectionId: string;
  returnTo: string;
}

export interface ConnectQuery {
  token?: string;
  connection_id?: string;
  return_to?: string;
}

/**
 * Decides who may connect: the holder of a single-use connect session token, or, when
 * anonymous connect is on, anyone naming a `connection_id` (default `default`).
 */
export async function resolveConnectTarget(
  deps: FlowDeps,
  providerId: string,
  query: ConnectQuery,
): Promise<ConnectTarget> {
  const provider = deps.providers.requireEnabled(providerId);
  if (query.token) {
    const session = await deps.store.takeConnectSession(query.token);
    if (!session)
      throw new AppError(
        'unauthorized',
        'This connect link has expired or was already used. Ask the application for a new one.',
      );
    if (session.provider !== provider.id)
      throw new AppError('invalid_request', 'This connect link is for another provider.');
    return {
      provider,
      connectionId: session.connectionId,
      returnTo: session.returnTo ?? resolveReturnTo(query.return_to, deps.config),
    };
  }
  if (!deps.config.allowAnonymousConnect) {
    throw new AppError('unauthorized', 'A connect link from the application is needed to connect an account.');
  }
  const connectionId = query.connection_id ?? 'default';
  if (!CONNECTION_ID_PATTERN.test(connectionId)) {
    throw new AppError('invalid_request', 'connection_id must match ^[A-Za-z0-9._:@-]{1,128}$');
  }
  return { provider, connectionId, returnTo: resolveReturnTo(query.return_to, deps.config) };
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

export type FlowOutcome =
  | { status: 'connected'; flow: FlowState; connection: Connection }
  | { status: 'denied'; flow: FlowState }
  | { status: 'error'; flow: FlowState; error: string };

/**
 * Finishes the flow. Every check happens before any token request: parameters appear once,
 * the state exists, is unexpired, unused and belongs to this browser session, and `iss`
 * matches (RFC 9207 §2.4) — and only then is `error=` acted on (RFC 6749 §4.1.2.1).
 */
export async function completeAuthorization(
  deps: FlowDeps,
  rawQuery: string,
  sessionId: string,
  /** Told the flow state once it is taken, so a failure after that can be reported to where the flow began. */
  onFlowTaken: (flow: FlowState) => void = () => {},
): Promise<FlowOutcome> {
  const params = new URLSearchParams(rawQuery);
  const names = [...params.keys()];
  if (new Set(names).size !== names.length) {
    throw new AppError('invalid_request', 'The callback carries a parameter more than once.');
  }
  const state = params.get('state');
  if (!state) throw new AppError('invalid_state', 'The callback has no state parameter.');
  const flow = await deps.store.takeFlowState(state);
  if (!flow)
    throw new AppError(
      'invalid_state',
      'This sign-in link is unknown, expired or was already used. Please start again.',
    );
  onFlowTaken(flow);
  if (flow.sessionId !== sessionId) {
    throw new AppError(
      'invalid_state',
      'This sign-in was started in another browser session. Please start again here.',
    );
  }
  const provider = requireOAuth2(deps.providers.require(flow.provider));
  const iss = params.get('iss');
  const expectedIssuer = provider.issuer ?? flow.issuer ?? null;
  if (expectedIssuer !== null && iss !== expectedIssuer) {
    throw new AppError(
      'invalid_request',
      "The callback's issuer (iss) does not match the provider the flow was started for.",
    );
  }

  const error = params.get('error');
  if (error) {
    if (error === 'access_denied') return { status: 'denied', flow };
    return { status: 'error', flow, error: /^[\x20-\x7e]{1,64}$/.test(error) ? error : 'provider_error' };
  }
  const code = params.get('code');
  if (!code) throw new AppError('invalid_request', 'The callback has neither a code nor an error.');

  const tokens = await exchangeCode(
    provider,
    { code, redirectUri: deps.config.redirectUri, codeVerifier: flow.codeVerifier },
    { http: deps.http, timeoutMs: deps.config.tokenRequestTimeoutMs, now: () => deps.clock.now() },
  );
  const account = await fetchAccountInfo(deps, provider, tokens.accessToken, tokens.tokenType);
  const now = deps.clock.now();
  const existing = await deps.store.getConnection(provider.id, flow.connectionId).catch(() => null);
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
  return { status: 'connected', flow, connection };
}

/** Stores an API key for an `api_key` provider (encrypted at rest like every credential). */
export async function saveApiKeyConnection(deps: FlowDeps, target: ConnectTarget, apiKey: string): Promise<Connection> {
  const now = deps.clock.now();
  const existing = await deps.store.getConnection(target.provider.id, target.connectionId);
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
