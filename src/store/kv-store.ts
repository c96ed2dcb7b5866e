import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock';
import type { KvBackend, Notice } from './backend';
import { UnreadableCredentialError, isUnreadableCredential } from './credential-errors';
import { CredentialCipher, SealedValueError } from './encryption';
import { createKeys, type Keys } from './keys';
import type { ConnectionCount, ConnectionPageResult, ConnectionQuery } from './connection-index';
import { ConnectionListing, type BackfillStep } from './connection-listing';
import { KeepAliveIndex } from './keep-alive-index';
import { MemoryEventLog, type EventLog, type EventLogLimits } from './event-log';
import { EventOutbox, type OutboxRecoveryStep, type RecordedEvent } from './event-outbox';
import { RedisBackend } from './redis-backend';
import { RedisEventLog } from './redis-event-log';
import {
  FLOW_STATE_MAX_AGE_MS,
  SPENT_LINK_MEMORY_MS,
  type ConnectSession,
  type ConnectSessionTake,
  type Connection,
  type ConnectionChangeListener,
  type ConnectionConfig,
  type ConnectionMetadata,
  type ConnectionInfo,
  type ConnectionInput,
  type Credentials,
  type FlowState,
  type FlowStateTake,
  type RateWindow,
  type SealingAudit,
  type Store,
} from './types';

/** The part of a connection kept in the clear: what the service API shows, and nothing secret. */
type StoredMeta = Omit<Connection, 'version' | 'credentials' | 'config' | 'metadata'> & {
  /** Absent in records of the first release. */
  config?: ConnectionConfig;
  metadata?: ConnectionMetadata;
  tokenType?: string;
  /** Sealed `{ refreshToken, idToken, apiKey }`. */
  secrets: string;
};

/**
 * A flow state's sealed record: the flow without its state (its key is the state's hash) and
 * with a hash of the browser session id in place of the id.
 */
type SealedFlow = Omit<FlowState, 'state' | 'sessionId'> & { sessionHash: string };

/** A connect link as stored: the session while unused; once taken, a marker of when. */
type StoredLink = ConnectSession | { usedAt: number };

/** How long a browser session moved from the first release's layout lives when its old key had no TTL. */
const LEGACY_SESSION_TTL_MS = 24 * 60 * 60 * 1000;
/** The audit's reads go this many at a time. */
const AUDIT_BATCH = 100;

export interface KvStoreOptions {
  backend: KvBackend;
  cipher: CredentialCipher;
  clock: Clock;
  prefix: string;
  /** Caps of the event log (default 100 per connection, 100,000 in total). */
  eventLimits?: EventLogLimits;
}

/**
 * The Store on top of a {@link KvBackend}. TTL rules:
 * - a flow state lives at most 10 minutes and is deleted on first use;
 * - the access token sits in its own key that expires with it, so it is never kept past expiry;
 * - the connection key (refresh token, metadata) has no TTL while a refresh token exists, so a
 *   refresh token is never dropped because its access token expired;
 * - a connection with an expiry and no refresh token disappears with its access token;
 * - api_key connections, and tokens without `expires_in`, have no TTL.
 *
 * Every write and delete of a connection is announced on `${prefix}connection-changes` (see
 * {@link KvStore.watchConnections}) by the backend step that makes it, so none goes unannounced.
 *
 * At rest (SECURITY.md 20, 26): a connection's non-secret fields are plaintext JSON beside its
 * sealed secrets and its sealed access token, so reading those fields never decrypts; flow states
 * and browser sessions are sealed whole with the same cipher, each bound to its key name, and
 * keyed like connect sessions by a hash of their id.
 */
export class KvStore implements Store {
  readonly kind: 'memory' | 'redis';
  private readonly keys: Keys;
  readonly eventLog: EventLog;
  /** Carries each change's event in the change's own write (see event-outbox.ts). */
  private readonly outbox: EventOutbox;
  private readonly listing: ConnectionListing;
  /** When each connection falls due for a background refresh (issue 11 part 3). */
  readonly keepAlive: KeepAliveIndex;

  constructor(private readonly options: KvStoreOptions) {
    this.kind = options.backend.kind;
    this.keys = createKeys(options.prefix);
    const { backend, clock, prefix, eventLimits } = options;
    this.eventLog =
      backend instanceof RedisBackend
        ? new RedisEventLog(backend.client, prefix, clock, eventLimits)
        : new MemoryEventLog(clock, eventLimits);
    this.outbox = new EventOutbox({ backend, eventLog: this.eventLog, keys: this.keys, clock });
    this.listing = new ConnectionListing({
      backend: options.backend,
      prefix: options.prefix,
      legacyIndex: this.keys.connectionIndex(),
      // Sent together: one round trip for a page, whatever slots the connections sit in.
      read: (refs) => Promise.all(refs.map(([p, c]) => this.getConnectionInfo(p, c))),
      listAll: (provider) => this.listConnections(provider),
      now: () => options.clock.now(),
    });
    this.keepAlive = new KeepAliveIndex({
      backend: options.backend,
      prefix: options.prefix,
      legacyIndex: this.keys.connectionIndex(),
      read: (refs) => Promise.all(refs.map(([p, c]) => this.getConnectionInfo(p, c))),
    });
  }

  private get backend(): KvBackend {
    return this.options.backend;
  }

  async getConnection(provider: string, connectionId: string): Promise<Connection | null> {
    const mainKey = this.keys.connection(provider, connectionId);
    const accessKey = this.keys.accessToken(provider, connectionId);
    const stored = await this.backend.readConnection(mainKey, accessKey);
    if (!stored) return null;
    return this.decode(mainKey, accessKey, stored.version, stored.data, stored.access);
  }

  async getConnectionInfo(provider: string, connectionId: string): Promise<ConnectionInfo | null> {
    const stored = await this.backend.readConnectionData(this.keys.connection(provider, connectionId));
    return stored ? infoOf(stored.version, stored.data) : null;
  }

  async listConnections(provider?: string): Promise<ConnectionInfo[]> {
    const index = this.keys.connectionIndex();
    const wanted = (await this.backend.members(index))
      .sort()
      .filter((member) => !provider || member.slice(0, member.indexOf(':')) === provider);
    const found: ConnectionInfo[] = [];
    for (let i = 0; i < wanted.length; i += AUDIT_BATCH) {
      const batch = wanted.slice(i, i + AUDIT_BATCH);
      const read = await Promise.all(batch.map((member) => this.getConnectionInfo(...splitMember(member))));
      for (const [j, info] of read.entries()) {
        if (info) found.push(info);
        else await this.backend.removeMember(index, batch[j]!);
      }
    }
    return found;
  }

  queryConnections(query: ConnectionQuery): Promise<ConnectionPageResult> {
    return this.listing.query(query);
  }

  connectionCounts(): Promise<ConnectionCount[]> {
    return this.listing.counts();
  }

  backfillConnectionIndex(batch: number): Promise<BackfillStep> {
    return this.listing.backfillStep(batch);
  }

  saveConnection(input: ConnectionInput, event?: RecordedEvent): Promise<Connection> {
    return this.write(input, null, event) as Promise<Connection>;
  }

  updateConnection(input: ConnectionInput, expectedVersion: number, event?: RecordedEvent): Promise<Connection | null> {
    return this.write(input, expectedVersion, event);
  }

  async deleteConnection(provider: string, connectionId: string, event?: RecordedEvent): Promise<boolean> {
    const prepared = event && (await this.outbox.prepare(provider, connectionId, event));
    const deleted = await this.backend.deleteConnection(
      this.keys.connection(provider, connectionId),
      this.keys.accessToken(provider, connectionId),
      this.noticeOf(provider, connectionId),
      prepared?.outbox,
    );
    if (prepared) await (deleted ? this.outbox.relay(prepared.event) : this.outbox.abandon(prepared.event));
    await this.backend.removeMember(this.keys.connectionIndex(), `${provider}:${connectionId}`);
    await this.listing.unindexed(provider, connectionId);
    await this.keepAlive.unindexed(provider, connectionId);
    return deleted;
  }

  async saveFlowState(flow: FlowState): Promise<void> {
    const ttl = Math.min(flow.expiresAt - this.options.clock.now(), FLOW_STATE_MAX_AGE_MS);
    if (ttl <= 0) return;
    const { state: _state, sessionId, ...rest } = flow;
    const record: SealedFlow = { ...rest, sessionHash: sessionBinding(sessionId) };
    const key = this.keys.flowState(flow.state);
    await this.backend.set(key, this.options.cipher.seal(JSON.stringify(record), key), ttl);
  }

  /**
   * Reads and opens the sealed record, checks the browser session in TypeScript, and only then
   * deletes it — if it still holds the very value read (each seal has its own random IV, so the
   * value is unique): of concurrent takes exactly one deletes it and wins, and a take from another
   * session deletes nothing. A state that does not open (sealed with a key since removed, or
   * written by the first release under the state itself) is unknown.
   */
  async takeFlowState(state: string, expected: { sessionId: string }): Promise<FlowStateTake> {
    const key = this.keys.flowState(state);
    const sealed = await this.backend.get(key);
    if (sealed === null) return { kind: 'unknown' };
    const opened = this.openOrNull(sealed, key);
    if (opened === null) return { kind: 'unknown' };
    const { sessionHash, ...rest } = JSON.parse(opened) as SealedFlow;
    const deadline = Math.min(rest.expiresAt, rest.createdAt + FLOW_STATE_MAX_AGE_MS);
    if (deadline <= this.options.clock.now()) return { kind: 'unknown' };
    if (!sameHash(sessionHash, sessionBinding(expected.sessionId))) return { kind: 'other_session' };
    if (!(await this.backend.delIfEquals(key, sealed))) return { kind: 'unknown' };
    return { kind: 'ok', flow: { ...rest, state, sessionId: expected.sessionId } };
  }

  /** Kept for {@link SPENT_LINK_MEMORY_MS} past its expiry, so that a late use reads "expired". */
  async saveConnectSession(token: string, session: ConnectSession): Promise<void> {
    const ttl = session.expiresAt - this.options.clock.now();
    if (ttl <= 0) return;
    await this.backend.set(this.keys.connectSession(token), JSON.stringify(session), ttl + SPENT_LINK_MEMORY_MS);
  }

  async takeConnectSession(token: string, expected?: { provider: string }): Promise<ConnectSessionTake> {
    const key = this.keys.connectSession(token);
    const raw = await this.backend.get(key);
    const stored = raw === null ? null : parseLink(raw);
    if (raw === null || stored === null) return { kind: 'unknown' };
    // The first release marked a spent link with an empty provider.
    if ('usedAt' in stored || stored.provider === '') return { kind: 'used' };
    const now = this.options.clock.now();
    if (stored.expiresAt <= now) return { kind: 'expired' };
    if (expected && stored.provider !== expected.provider) return { kind: 'other_provider', provider: stored.provider };
    const marker = JSON.stringify({ usedAt: now } satisfies StoredLink);
    // Lost to a concurrent take: that one used it.
    if (!(await this.backend.setIfEquals(key, raw, marker, SPENT_LINK_MEMORY_MS))) return { kind: 'used' };
    return { kind: 'ok', session: stored };
  }

  async restoreConnectSession(token: string, session: ConnectSession): Promise<void> {
    const key = this.keys.connectSession(token);
    const ttl = session.expiresAt - this.options.clock.now() + SPENT_LINK_MEMORY_MS;
    if (ttl <= 0) return;
    const raw = await this.backend.get(key);
    const stored = raw === null ? null : parseLink(raw);
    // Only a used marker goes back: anything else was written by someone else since.
    if (raw !== null && stored !== null && 'usedAt' in stored) {
      await this.backend.setIfEquals(key, raw, JSON.stringify(session), ttl);
    }
  }

  async getBrowserSession(sid: string): Promise<string | null> {
    const key = this.keys.browserSession(sid);
    const sealed = await this.backend.get(key);
    if (sealed !== null) return this.openOrNull(sealed, key);
    return this.moveLegacyBrowserSession(sid);
  }

  async setBrowserSession(sid: string, data: string, ttlMs: number): Promise<void> {
    const key = this.keys.browserSession(sid);
    await this.backend.set(key, this.options.cipher.seal(data, key), Math.max(1, ttlMs));
  }

  async destroyBrowserSession(sid: string): Promise<void> {
    await this.backend.del(this.keys.browserSession(sid));
    await this.backend.del(this.keys.legacyBrowserSession(sid));
  }

  async auditSealingKeys(bounds: { maxConnections: number; maxMs: number }): Promise<SealingAudit> {
    const startedAt = performance.now();
    const index = this.keys.connectionIndex();
    const unreadable = new Map<string, SealingAudit['unreadable'][number]>();
    let checked = 0;
    let cursor = '0';
    let complete = false;
    for (;;) {
      if (checked >= bounds.maxConnections || performance.now() - startedAt >= bounds.maxMs) break;
      const step = await this.backend.scanMembers(index, cursor, AUDIT_BATCH);
      const batch = step.members.slice(0, bounds.maxConnections - checked);
      checked += batch.length;
      const failures = await Promise.all(batch.map((member) => this.unreadableOf(...splitMember(member))));
      for (const failure of failures) {
        if (!failure) continue;
        const name = `${failure.reason}:${failure.keyId}`;
        const entry = unreadable.get(name) ?? { keyId: failure.keyId, reason: failure.reason, connections: 0 };
        entry.connections += 1;
        unreadable.set(name, entry);
      }
      cursor = step.cursor;
      if (cursor === '0' && batch.length === step.members.length) {
        complete = true;
        break;
      }
    }
    return { checked, complete, unreadable: [...unreadable.values()] };
  }

  async acquireLock(name: string, ttlMs: number): Promise<string | null> {
    const token = randomBytes(16).toString('base64url');
    return (await this.backend.setNx(this.keys.lock(name), token, ttlMs)) ? token : null;
  }

  releaseLock(name: string, token: string): Promise<boolean> {
    return this.backend.delIfEquals(this.keys.lock(name), token);
  }

  extendLock(name: string, token: string, ttlMs: number): Promise<boolean> {
    return this.backend.pexpireIfEquals(this.keys.lock(name), token, ttlMs);
  }

  isLocked(name: string): Promise<boolean> {
    return this.backend.exists(this.keys.lock(name));
  }

  async hit(key: string, windowMs: number, by = 1): Promise<RateWindow> {
    const { count, ttlMs } = await this.backend.incrWindow(this.keys.rate(key), windowMs, by);
    return { count, resetMs: ttlMs > 0 ? ttlMs : windowMs };
  }

  async inspectTtl(provider: string, connectionId: string): Promise<{ connection: number; accessToken: number }> {
    return {
      connection: await this.backend.pttl(this.keys.connection(provider, connectionId)),
      accessToken: await this.backend.pttl(this.keys.accessToken(provider, connectionId)),
    };
  }

  watchConnections(listener: ConnectionChangeListener): () => void {
    return this.backend.subscribe(this.keys.connectionChanges(), {
      message: (message) => {
        // Providers ids hold no ':', connection ids may: the first one separates them.
        const sep = message.indexOf(':');
        if (sep > 0) listener.changed(message.slice(0, sep), message.slice(sep + 1));
      },
      lost: () => listener.unconfirmed(),
      live: () => listener.confirmed?.(),
    });
  }

  recoverEventOutboxes(olderThanMs: number, limit: number): Promise<OutboxRecoveryStep> {
    return this.outbox.recover(olderThanMs, limit);
  }

  ping(): Promise<void> {
    return this.backend.ping();
  }

  ready(timeoutMs: number): Promise<boolean> {
    return this.backend.ready(timeoutMs);
  }

  async close(): Promise<void> {
    await this.eventLog.close();
    return this.backend.close();
  }

  /**
   * What announces a change of the connection on the feed. Every write of a connection passes
   * one to the backend, which publishes it in the same step as the write.
   */
  private noticeOf(provider: string, connectionId: string): Notice {
    return { channel: this.keys.connectionChanges(), message: `${provider}:${connectionId}` };
  }

  /** A sealed flow state or session that no configured key opens reads as absent (fails closed). */
  private openOrNull(sealed: string, key: string): string | null {
    try {
      return this.options.cipher.open(sealed, key);
    } catch (err) {
      if (err instanceof SealedValueError) return null;
      throw err;
    }
  }

  /**
   * A browser session of the first release (in the clear, under its id) is read once, moved under
   * the hash of its id, sealed, with the TTL it had left, and its old key deleted.
   */
  private async moveLegacyBrowserSession(sid: string): Promise<string | null> {
    const legacyKey = this.keys.legacyBrowserSession(sid);
    const ttl = await this.backend.pttl(legacyKey);
    if (ttl === -2) return null;
    const data = await this.backend.getDel(legacyKey);
    if (data === null) return null;
    await this.setBrowserSession(sid, data, ttl > 0 ? ttl : LEGACY_SESSION_TTL_MS);
    return data;
  }

  /** Why the connection's credentials do not open, or null when they do (or it is gone). */
  private async unreadableOf(provider: string, connectionId: string): Promise<UnreadableCredentialError | null> {
    try {
      await this.getConnection(provider, connectionId);
      return null;
    } catch (err) {
      if (isUnreadableCredential(err)) return err;
      throw err;
    }
  }

  private async write(
    input: ConnectionInput,
    expectedVersion: number | null,
    event?: RecordedEvent,
  ): Promise<Connection | null> {
    const { provider, connectionId, credentials } = input;
    const mainKey = this.keys.connection(provider, connectionId);
    const accessKey = this.keys.accessToken(provider, connectionId);
    const now = this.options.clock.now();
    const accessTtl = input.expiresAt === null ? null : input.expiresAt - now;
    const accessAlive = Boolean(credentials.accessToken) && (accessTtl === null || accessTtl > 0);
    const { cipher } = this.options;

    const meta: StoredMeta = {
      provider,
      connectionId,
      authMode: input.authMode,
      status: input.status,
      scopes: input.scopes,
      expiresAt: input.expiresAt,
      createdAt: input.createdAt,
      updatedAt: input.updatedAt,
      lastRefreshedAt: input.lastRefreshedAt,
      account: input.account,
      config: input.config ?? {},
      metadata: input.metadata ?? {},
      tokenType: credentials.tokenType,
      secrets: cipher.seal(
        JSON.stringify({
          refreshToken: credentials.refreshToken,
          idToken: credentials.idToken,
          apiKey: credentials.apiKey,
        }),
        mainKey,
      ),
    };
    // Without a refresh token, nothing can outlive the access token's expiry.
    const mainTtl =
      !credentials.refreshToken && !credentials.apiKey && accessTtl !== null ? Math.max(1, accessTtl) : null;
    // Marked before the write, carried by it (event-outbox.ts); a write that throws keeps the mark for recovery.
    const prepared = event && (await this.outbox.prepare(provider, connectionId, event));
    const version = await this.backend.writeConnection({
      mainKey,
      accessKey,
      expectedVersion,
      minVersion: now,
      data: JSON.stringify(meta),
      mainTtlMs: mainTtl,
      access: accessAlive ? cipher.seal(credentials.accessToken!, accessKey) : null,
      accessTtlMs: accessAlive ? accessTtl : null,
      notice: this.noticeOf(provider, connectionId),
      outbox: prepared?.outbox,
    });
    if (version === null) {
      if (prepared) await this.outbox.abandon(prepared.event);
      return null;
    }
    if (prepared) await this.outbox.relay(prepared.event);
    await this.backend.addMember(this.keys.connectionIndex(), `${provider}:${connectionId}`);
    const written: Connection = {
      ...input,
      config: meta.config ?? {},
      metadata: meta.metadata ?? {},
      credentials: accessAlive ? { ...credentials } : withoutAccessToken(credentials),
      version,
    };
    await this.listing.indexed(written);
    await this.keepAlive.indexed(written);
    return written;
  }

  /**
   * The stored fields with the credentials opened.
   * @throws UnreadableCredentialError (409 `credential_unreadable`) naming the key id
   */
  private decode(mainKey: string, accessKey: string, version: number, data: string, access: string | null): Connection {
    const meta = JSON.parse(data) as StoredMeta;
    const open = (sealed: string, aad: string) => {
      try {
        return this.options.cipher.open(sealed, aad);
      } catch (err) {
        if (err instanceof SealedValueError) throw new UnreadableCredentialError(meta.provider, meta.connectionId, err);
        throw err;
      }
    };
    const secrets = JSON.parse(open(meta.secrets, mainKey)) as Credentials;
    const credentials: Credentials = { tokenType: meta.tokenType };
    if (secrets.refreshToken) credentials.refreshToken = secrets.refreshToken;
    if (secrets.idToken) credentials.idToken = secrets.idToken;
    if (secrets.apiKey) credentials.apiKey = secrets.apiKey;
    const unexpired = meta.expiresAt === null || meta.expiresAt > this.options.clock.now();
    if (access && unexpired) credentials.accessToken = open(access, accessKey);
    const { secrets: _sealed, tokenType: _tokenType, ...rest } = meta;
    return { ...withValues(rest), version, credentials };
  }
}

function withoutAccessToken(credentials: Credentials): Credentials {
  const { accessToken: _dropped, ...rest } = credentials;
  return rest;
}

/** The plaintext fields of a stored connection; its sealed parts are left out, unopened. */
function infoOf(version: number, data: string): ConnectionInfo {
  const { secrets: _sealed, tokenType: _tokenType, ...rest } = JSON.parse(data) as StoredMeta;
  return { ...withValues(rest), version };
}

/** A record written before connections carried config and metadata reads as having none. */
function withValues<T extends { config?: ConnectionConfig; metadata?: ConnectionMetadata }>(
  fields: T,
): T & { config: ConnectionConfig; metadata: ConnectionMetadata } {
  return { ...fields, config: fields.config ?? {}, metadata: fields.metadata ?? {} };
}

/** `provider:connectionId` (provider ids hold no ':'; connection ids may). */
function splitMember(member: string): [string, string] {
  const sep = member.indexOf(':');
  return [member.slice(0, sep), member.slice(sep + 1)];
}

function parseLink(raw: string): StoredLink | null {
  try {
    const parsed = JSON.parse(raw) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as StoredLink) : null;
  } catch {
    return null;
  }
}

/**
 * What a flow state keeps of the browser session that started it: a hash, domain-separated from
 * the one that names the session's key, so that even an opened flow record names no session.
 */
function sessionBinding(sessionId: string): string {
  return createHash('sha256').update('latchkey flow binding\0').update(sessionId).digest('base64url');
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
