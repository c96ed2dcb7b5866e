/**
 * What Latchkey keeps: connections (credentials), flow states, connect sessions, browser
 * sessions, locks and rate-limit windows. The store never knows about HTTP.
 */

export type ConnectionStatus = 'active' | 'reauth_required';

/** Secret material. Encrypted at rest; never part of an API answer. */
export interface Credentials {
  accessToken?: string;
  refreshToken?: string;
  tokenType?: string;
  idToken?: string;
  apiKey?: string;
}

export interface AccountInfo {
  id?: string;
  label?: string;
}

export interface Connection {
  provider: string;
  connectionId: string;
  authMode: 'oauth2' | 'api_key';
  status: ConnectionStatus;
  scopes: string[];
  /** Access-token expiry (ms epoch), or null when the provider gave no `expires_in`. */
  expiresAt: number | null;
  createdAt: number;
  updatedAt: number;
  lastRefreshedAt: number | null;
  account: AccountInfo | null;
  /** Bumped by every write; conditional writes compare it. */
  version: number;
  /** An expired access token is never returned (nor kept). */
  credentials: Credentials;
}

/** What a writer supplies; the store sets `version`. */
export type ConnectionInput = Omit<Connection, 'version'>;

export interface FlowState {
  state: string;
  provider: string;
  connectionId: string;
  /** The browser session that started the flow; the callback must come from the same one. */
  sessionId: string;
  codeVerifier?: string;
  /** The issuer expected in `iss` (RFC 9207), when known. */
  issuer?: string | null;
  returnTo: string;
  /** `popup`: the callback page posts to the opener and closes. */
  mode: 'redirect' | 'popup';
  /** Origin that receives the popup's postMessage. */
  openerOrigin?: string;
  createdAt: number;
  expiresAt: number;
}

export interface ConnectSession {
  provider: string;
  connectionId: string;
  returnTo?: string;
  createdAt: number;
  expiresAt: number;
}

export interface RateWindow {
  count: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

/**
 * What {@link Store.watchConnections} tells its listener. A watch starts unconfirmed: nothing is
 * promised about changes until `confirmed()` has been called.
 */
export interface ConnectionChangeListener {
  /** The connection was written or deleted, by this instance or another one. */
  changed(provider: string, connectionId: string): void;
  /**
   * The feed was lost (its connection closed, errored or is reconnecting): changes may go
   * unannounced from now on, until `confirmed()`, and any announced meanwhile may have been missed.
   */
  unconfirmed(): void;
  /** The feed is live (subscribed): every change made from now on is announced. */
  confirmed?(): void;
}

export interface Store {
  readonly kind: 'memory' | 'redis';

  getConnection(provider: string, connectionId: string): Promise<Connection | null>;
  listConnections(provider?: string): Promise<Connection[]>;
  /** Creates or replaces a connection unconditionally (a new authorization). */
  saveConnection(input: ConnectionInput): Promise<Connection>;
  /**
   * Writes only if the stored version is still `expectedVersion`; null otherwise. This is what
   * keeps a refresher whose lock expired from overwriting newer credentials.
   */
  updateConnection(input: ConnectionInput, expectedVersion: number): Promise<Connection | null>;
  deleteConnection(provider: string, connectionId: string): Promise<boolean>;

  /** Lives at most 10 minutes. */
  saveFlowState(flow: FlowState): Promise<void>;
  /** Returns and deletes in one step: a state is good for one use only. */
  takeFlowState(state: string): Promise<FlowState | null>;

  /** Stored under a hash of the token, never the token itself. */
  saveConnectSession(token: string, session: ConnectSession): Promise<void>;
  takeConnectSession(token: string): Promise<ConnectSession | null>;

  getBrowserSession(sid: string): Promise<string | null>;
  setBrowserSession(sid: string, data: string, ttlMs: number): Promise<void>;
  destroyBrowserSession(sid: string): Promise<void>;

  /** A lock whose value is unique to its holder; null when someone else holds it. */
  acquireLock(name: string, ttlMs: number): Promise<string | null>;
  /** Compare-and-delete: only the holder releases. */
  releaseLock(name: string, token: string): Promise<boolean>;
  /**
   * Compare-and-pexpire: the holder pushes its lock's expiry to `ttlMs` from now while its work
   * is still in flight; false when the lock expired or someone else holds it.
   */
  extendLock(name: string, token: string, ttlMs: number): Promise<boolean>;
  /** True while someone holds the lock. */
  isLocked(name: string): Promise<boolean>;

  /** Counts `by` hits (default 1) in a fixed window shared by every instance. */
  hit(key: string, windowMs: number, by?: number): Promise<RateWindow>;

  /** Milliseconds left on a connection's keys (-1: no TTL, -2: absent), for tests and ops. */
  inspectTtl(provider: string, connectionId: string): Promise<{ connection: number; accessToken: number }>;

  /**
   * Every write and delete of a connection, on any instance sharing this store, is announced to
   * `listener` (on Redis through pub/sub on the one subscriber connection, published by the same
   * script that writes; on memory in process, before the write returns). Returns the unsubscribe.
   */
  watchConnections(listener: ConnectionChangeListener): () => void;

  ping(): Promise<void>;
  /** True once the store answers, false after `timeoutMs` without (the caller may start anyway). */
  ready(timeoutMs: number): Promise<boolean>;
  /** Closes every connection the store opened, the feed's subscriber included. */
  close(): Promise<void>;
}

export const FLOW_STATE_MAX_AGE_MS = 10 * 60 * 1000;
export const CONNECT_SESSION_TTL_MS = 15 * 60 * 1000;
