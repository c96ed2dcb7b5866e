import type { AxiosInstance } from 'axios';
import type { CredentialSource } from '../client/types';
import type { Clock } from '../clock';
import type { Config } from '../config';
import { AppError, toAppError } from '../errors';
import type { EventDetail, EventSink } from '../events';
import type { Logger } from '../logger';
import { buildAuthorizationUrl } from '../oauth/authorization-url';
import { createPkcePair } from '../oauth/pkce';
import { randomToken } from '../oauth/random';
import { exchangeCode } from '../oauth/token-client';
import type { OAuth2Provider, Provider, ProviderRegistry } from '../providers/registry';
import { requireTarget, resolveConnectionTarget, withConnectionEndpoints } from '../client/connection-target';
import type { AuthHeader } from '../client/types';
import { resolveApiUrl } from '../providers/api-target';
import type {
  AccountInfo,
  Connection,
  ConnectionConfig,
  ConnectionInfo,
  ConnectionMetadata,
  FlowState,
  Store,
} from '../store';
import { checkMetadata, FLOW_STATE_MAX_AGE_MS } from '../store';
import { runPostConnect } from './post-connect';
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
  // Its authorization URL and parameters built from the connection's config (409 connection_incomplete without).
  const provider = withConnectionEndpoints(requireOAuth2(target.provider), { config: target.config ?? {} });
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
    // Kept so that the callback builds the same token URL.
    config: target.config,
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
    deps.events.emit('connection.connect_failed', flow.provider, flow.connectionId, { code });
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
    deps.events.emit('connection.connect_failed', flow.provider, flow.connectionId, { code: cause.code });
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
    withConnectionEndpoints(provider, { config: flow.config ?? {} }),
    { code, redirectUri: deps.config.redirectUri, codeVerifier: flow.codeVerifier },
    { http: deps.http, timeoutMs: deps.config.tokenRequestTimeoutMs, now: () => deps.clock.now() },
  );
  const header = { name: 'Authorization', value: `${tokens.tokenType} ${tokens.accessToken}` };
  return storeNewConnection(deps, provider, flow.connectionId, {
    authMode: 'oauth2',
    scopes: tokens.scopes ?? provider.scopes,
    expiresAt: tokens.expiresAt,
    credentials: {
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      tokenType: tokens.tokenType,
      idToken: tokens.idToken,
    },
    config: flow.config ?? {},
    captured: tokens.captured ?? {},
    header,
  });
}

/** What a new connection is made of, before its post-connect calls. */
export interface NewConnection {
  authMode: Connection['authMode'];
  scopes: string[];
  expiresAt: number | null;
  credentials: Connection['credentials'];
  config: ConnectionConfig;
  /** Values captured already (the token response's `tokenResponseMetadata`). */
  captured: ConnectionMetadata;
  /** Values set by the caller (an import), kept unless a capture replaces them. */
  metadata?: ConnectionMetadata;
  /** The credential's header, for the post-connect and account calls. */
  header: AuthHeader;
  /** Set when the connection was just read (an import): its createdAt and metadata are kept. */
  existing?: ConnectionInfo | null;
}

/**
 * Runs the provider's `postConnect` calls with the new credential, asks which account it is, and
 * stores the connection (a reconnect replaces the stored one: its captured keys are captured
 * again, its other metadata, such as values set by PATCH, is kept), then drops any cached
 * credential. `connection.created` is recorded by the write itself (then emitted). A post-connect
 * call that fails leaves its values missing, never the connect: it is logged, and the event names
 * every captured value still missing (`detail.missing`, see {@link createdEvent}).
 */
export async function storeNewConnection(
  deps: FlowDeps,
  provider: Provider,
  connectionId: string,
  input: NewConnection,
): Promise<Connection> {
  // Read from the plaintext fields, so a record no key opens is still replaced.
  const existing =
    input.existing !== undefined
      ? input.existing
      : await deps.store.getConnectionInfo(provider.id, connectionId).catch(() => null);
  const post = await runPostConnect(
    { http: deps.http, logger: deps.logger },
    provider,
    input.header,
    { config: input.config, metadata: { ...input.metadata, ...input.captured } },
    connectionId,
  );
  const capturedNames = new Set([
    ...(provider.authMode === 'oauth2' ? Object.keys(provider.tokenResponseMetadata) : []),
    ...provider.postConnect.flatMap((call) => Object.keys(call.capture)),
  ]);
  const kept = Object.fromEntries(
    Object.entries({ ...existing?.metadata, ...input.metadata }).filter(([name]) => !capturedNames.has(name)),
  );
  const metadata: ConnectionMetadata = { ...kept, ...input.captured, ...post.captured };
  const problem = checkMetadata(metadata);
  if (problem) throw new AppError('invalid_request', problem);
  const account =
    provider.authMode === 'oauth2'
      ? await fetchAccountInfo(deps, provider, input.header, { config: input.config, metadata })
      : null;
  // Captured values the token response or a post-connect call did not give: named on the event.
  const created = createdEvent([...capturedNames].filter((name) => metadata[name] === undefined));
  const now = deps.clock.now();
  const connection = await deps.store.saveConnection(
    {
      provider: provider.id,
      connectionId,
      authMode: input.authMode,
      status: 'active',
      scopes: input.scopes,
      expiresAt: input.expiresAt,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      lastRefreshedAt: null,
      account,
      config: input.config,
      metadata,
      credentials: input.credentials,
    },
    created,
  );
  deps.credentials.invalidate(provider.id, connectionId);
  deps.events.emit(created.type, provider.id, connectionId, created.detail);
  return connection;
}

/**
 * The `connection.created` event of a new connection; `detail.missing` lists (comma-separated)
 * the metadata its token response or post-connect calls did not give, so a webhook receiver hears that the
 * connection is incomplete (names only, never a value).
 */
export function createdEvent(missing: readonly string[]): { type: 'connection.created'; detail: EventDetail } {
  return { type: 'connection.created', detail: missing.length ? { missing: [...new Set(missing)].join(',') } : {} };
}

/** Stores an API key for an `api_key` provider (encrypted at rest like every credential). */
export async function saveApiKeyConnection(
  deps: FlowDeps,
  target: ConnectTarget,
  apiKey: string,
  config: ConnectionConfig = {},
): Promise<Connection> {
  const provider = target.provider;
  const header =
    provider.authMode === 'api_key'
      ? { name: provider.apiKey.header, value: provider.apiKey.format.replace('{key}', () => apiKey) }
      : { name: 'Authorization', value: apiKey };
  return storeNewConnection(deps, provider, target.connectionId, {
    authMode: 'api_key',
    scopes: [],
    expiresAt: null,
    credentials: { apiKey },
    config,
    captured: {},
    header,
  });
}

function requireOAuth2(provider: Provider): OAuth2Provider {
  if (provider.authMode !== 'oauth2')
    throw new AppError('invalid_request', `${provider.displayName} connects with an API key, not OAuth.`);
  return provider;
}

/** Best effort: which account was connected, where the provider's data says how to ask (pinned like the proxy). */
async function fetchAccountInfo(
  deps: FlowDeps,
  provider: OAuth2Provider,
  header: AuthHeader,
  values: { config: ConnectionConfig; metadata: ConnectionMetadata },
): Promise<AccountInfo | null> {
  if (!provider.accountInfo) return null;
  const { path, idField, labelField } = provider.accountInfo;
  try {
    const target = requireTarget(resolveConnectionTarget(provider, values));
    const headers: Record<string, string> = { accept: 'application/json' };
    for (const [name, value] of Object.entries(target.headers)) headers[name.toLowerCase()] = value;
    headers[header.name.toLowerCase()] = header.value;
    const res = await deps.http.get(resolveApiUrl(target.base, path), {
      headers,
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
