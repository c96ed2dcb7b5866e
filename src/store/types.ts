/**
 * What Latchkey keeps: connections (credentials), flow states, connect sessions, browser
 * sessions, locks and rate-limit windows. The store never knows about HTTP.
 */

import type { EventLog } from './event-log';
import type { OutboxRecoveryStep, RecordedEvent } from './event-outbox';
import type { KeepAliveIndex } from './keep-alive-index';

import type { ConnectionCount, ConnectionPageResult, ConnectionQuery } from './connection-index';
import type { BackfillStep } from './connection-listing';

export type { ConnectionCount, ConnectionPageResult, ConnectionQuery } from './connection-index';
export type { BackfillStep } from './connection-listing';

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

/**
 * A connection's non-secret fields: kept in the clear beside its sealed credentials, so that
 * listing and reading one never decrypt anything, and a connection whose credentials no
 * configured key opens is still listed (SECURITY.md 26).
 */
export type ConnectionInfo = Omit<Connection, 'credentials'>;

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
  /** The provider's `connectionConfig` values, fixed at connect (plaintext: not secret). */
  config: ConnectionConfig;
  /**
   * Values captured at connect or set by PATCH (plaintext: never secret), bounded by
   * {@link checkMetadata}. A record of the first release reads as `{}`.
   */
  metadata: ConnectionMetadata;
  /** Bumped by every write; conditional writes compare it. */
  version: number;
  /** An expired access token is never returned (nor kept). */
  credentials: Credentials;
}

export type ConnectionConfig = Record<string, string>;
export type MetadataValue = string | number | boolean;
export type ConnectionMetadata = Record<string, MetadataValue>;

/** What a writer supplies; the store sets `version`. `config` and `metadata` default to `{}`. */
export type ConnectionInput = Omit<Connection, 'version' | 'config' | 'metadata'> &
  Partial<Pick<Connection, 'config' | 'metadata'>>;

/**
 * A flow in progress. Stored sealed with the credential cipher under a hash of `state`; the
 * browser session is kept only as a hash inside the sealed record (SECURITY.md 20).
 */
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
  /** The connection's `connectionConfig` values, checked: the callback builds the same token URL from them. */
  config?: ConnectionConfig;
  createdAt: number;
  expiresAt: number;
}

export interface ConnectSession {
  provider: string;
  connectionId: string;
  returnTo?: string;
  /** `connection_config` given with the link, checked when it was issued. */
  config?: ConnectionConfig;
  createdAt: number;
  expiresAt: number;
}

/**
 * What taking a connect link found. `used`: taken before (remembered for
 * {@link SPENT_LINK_MEMORY_MS} after its use); `expired`: its 15 minutes are over (remembered as
 * long after its expiry); `unknown`: no such link, or forgotten since. `other_provider`: the link
 * is good but for another provider; it was left as it was.
 */
export type ConnectSessionTake =
  | { kind: 'ok'; session: ConnectSession }
  | { kind: 'used' }
  | { kind: 'expired' | 'unknown' }
  | { kind: 'other_provider'; provider: string };

/**
 * What taking a flow state found. `other_session`: the state is live but was started by another
 * browser session; it was left in place, untouched, so that its own browser can still finish.
 */
export type FlowStateTake = { kind: 'ok'; flow: FlowState } | { kind: 'unknown' } | { kind: 'other_session' };

/**
 * What a bounded look at the stored connections found about the keys that sealed them: see
 * {@link Store.auditSealingKeys}.
 */
export interface SealingAudit {
  /** Connections looked at. */
  checked: number;
  /** False when the bound (records or time) stopped the look before the end. */
  complete: boolean;
  /** Connections whose credentials do not open, by the key id they name and why. */
  unreadable: Array<{ keyId: string; reason: 'unknown_key' | 'wrong_key' | 'malformed'; connections: number }>;
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

  /**
   * The connection with its credentials opened.
   * @throws AppError `credential_unreadable` (409, an {@link UnreadableCredentialError} naming the
   *   key id) when no configured key opens its credentials
   */
  getConnection(provider: string, connectionId: string): Promise<Connection | null>;
  /** The connection's plaintext fields only: never decrypts, so never fails on a key. */
  getConnectionInfo(provider: string, connectionId: string): Promise<ConnectionInfo | null>;
  /** Ordered by (provider, connection id); from the plaintext fields only, like {@link getConnectionInfo}. */
  listConnections(provider?: string): Promise<ConnectionInfo[]>;
  /**
   * One page in `(provider, connection id)` order from the listing index (CONTRACT "Additions":
   * listing), at a cost that does not grow with the number of connections (with `q`: with the
   * number of matches). Until a first {@link backfillConnectionIndex} pass has finished, answered
   * from every connection instead, slower but the same.
   */
  queryConnections(query: ConnectionQuery): Promise<ConnectionPageResult>;
  /** Connections by provider and status, as kept by every write (one read, no scan). */
  connectionCounts(): Promise<ConnectionCount[]>;
  /**
   * One bounded step (up to `batch` connections) of indexing the connections written without the
   * listing index (by the first release, or by an instance of it during a rolling upgrade),
   * resuming where the last step stopped, on any instance. Idempotent.
   */
  backfillConnectionIndex(batch: number): Promise<BackfillStep>;
  /**
   * Creates or replaces a connection unconditionally (a new authorization). `event`, when given,
   * is recorded in the event log atomically with the write (CONTRACT "Events and webhooks"): in
   * the same step, through the connection's outbox, then moved to the log (see event-outbox.ts).
   */
  saveConnection(input: ConnectionInput, event?: RecordedEvent): Promise<Connection>;
  /**
   * Writes only if the stored version is still `expectedVersion`; null otherwise. This is what
   * keeps a refresher whose lock expired from overwriting newer credentials. `event` as for
   * {@link saveConnection}: a refused write records none.
   */
  updateConnection(input: ConnectionInput, expectedVersion: number, event?: RecordedEvent): Promise<Connection | null>;
  /** False when there was nothing to delete; `event` is recorded only with a deletion that happened. */
  deleteConnection(provider: string, connectionId: string, event?: RecordedEvent): Promise<boolean>;
  /**
   * One bounded step of recovery: events left in outboxes by a writer that crashed (or lost the
   * store) between its write and the move to the log, marked more than `olderThanMs` ago, moved
   * with the id they were written with. Up to `limit` marks. See event-outbox.ts.
   */
  recoverEventOutboxes(olderThanMs: number, limit: number): Promise<OutboxRecoveryStep>;

  /** Lives at most 10 minutes; sealed, under a hash of the state. */
  saveFlowState(flow: FlowState): Promise<void>;
  /**
   * Check-then-take: the flow of `state` if it is live and was started by the browser session
   * `expected.sessionId`, deleted in the same step (compare-and-delete on the sealed value, so of
   * concurrent takes exactly one gets it). A state of another session is left as it was.
   */
  takeFlowState(state: string, expected: { sessionId: string }): Promise<FlowStateTake>;

  /** Stored under a hash of the token, never the token itself. */
  saveConnectSession(token: string, session: ConnectSession): Promise<void>;
  /**
   * Spends a connect link: a live, unused link (for `expected.provider`, when given) is replaced
   * by a used marker in one compare-and-set, so of concurrent takes exactly one gets it, and a
   * later take is told `used` for {@link SPENT_LINK_MEMORY_MS}. Anything else is left as it was.
   */
  takeConnectSession(token: string, expected?: { provider: string }): Promise<ConnectSessionTake>;
  /** Gives back a link this instance took but could not use (the flow could not be written). */
  restoreConnectSession(token: string, session: ConnectSession): Promise<void>;

  /**
   * express-session data, sealed, under a hash of the session id. A session no configured key
   * opens reads as no session (a fresh one starts).
   */
  getBrowserSession(sid: string): Promise<string | null>;
  setBrowserSession(sid: string, data: string, ttlMs: number): Promise<void>;
  destroyBrowserSession(sid: string): Promise<void>;

  /**
   * Looks at up to `maxConnections` stored connections, for at most about `maxMs`, and reports
   * those whose credentials no configured key opens (start-up warning). Never throws on a key.
   */
  auditSealingKeys(bounds: { maxConnections: number; maxMs: number }): Promise<SealingAudit>;

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

  /**
   * The connection event log and its webhook consumer group (CONTRACT "Events and webhooks"):
   * Redis Streams on Redis, the same semantics in process on memory.
   */
  readonly eventLog: EventLog;

  /**
   * When each connection falls due for a background refresh (issue 11 part 3): kept by every
   * write and delete, claimed by the keep-alive sweep, filled for older stores by the backfill.
   */
  readonly keepAlive: KeepAliveIndex;

  ping(): Promise<void>;
  /** True once the store answers, false after `timeoutMs` without (the caller may start anyway). */
  ready(timeoutMs: number): Promise<boolean>;
  /** Closes every connection the store opened, the feed's subscriber included. */
  close(): Promise<void>;
}

export const FLOW_STATE_MAX_AGE_MS = 10 * 60 * 1000;
export const CONNECT_SESSION_TTL_MS = 15 * 60 * 1000;
/** How long a used (or expired) connect link is remembered as such, so that it says so. */
export const SPENT_LINK_MEMORY_MS = 60 * 60 * 1000;
