import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../clock';
import type { KvBackend, Notice } from './backend';
import { CredentialCipher } from './encryption';
import { createKeys, type Keys } from './keys';
import {
  FLOW_STATE_MAX_AGE_MS,
  type ConnectSession,
  type Connection,
  type ConnectionChangeListener,
  type ConnectionInput,
  type Credentials,
  type FlowState,
  type RateWindow,
  type Store,
} from './types';

/** The part of a connection kept in the clear: what the service API shows, and nothing secret. */
type StoredMeta = Omit<Connection, 'version' | 'credentials'> & {
  tokenType?: string;
  /** Sealed `{ refreshToken, idToken, apiKey }`. */
  secrets: string;
};

export interface KvStoreOptions {
  backend: KvBackend;
  cipher: CredentialCipher;
  clock: Clock;
  prefix: string;
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
 */
export class KvStore implements Store {
  readonly kind: 'memory' | 'redis';
  private readonly keys: Keys;

  constructor(private readonly options: KvStoreOptions) {
    this.kind = options.backend.kind;
    this.keys = createKeys(options.prefix);
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

  async listConnections(provider?: string): Promise<Connection[]> {
    const index = this.keys.connectionIndex();
    const members = await this.backend.members(index);
    const found: Connection[] = [];
    for (const member of members.sort()) {
      const sep = member.indexOf(':');
      const p = member.slice(0, sep);
      const c = member.slice(sep + 1);
      if (provider && p !== provider) continue;
      const conn = await this.getConnection(p, c);
      if (conn) found.push(conn);
      else await this.backend.removeMember(index, member);
    }
    return found;
  }

  saveConnection(input: ConnectionInput): Promise<Connection> {
    return this.write(input, null) as Promise<Connection>;
  }

  updateConnection(input: ConnectionInput, expectedVersion: number): Promise<Connection | null> {
    return this.write(input, expectedVersion);
  }

  async deleteConnection(provider: string, connectionId: string): Promise<boolean> {
    const deleted = await this.backend.deleteConnection(
      this.keys.connection(provider, connectionId),
      this.keys.accessToken(provider, connectionId),
      this.noticeOf(provider, connectionId),
    );
    await this.backend.removeMember(this.keys.connectionIndex(), `${provider}:${connectionId}`);
    return deleted;
  }

  async saveFlowState(flow: FlowState): Promise<void> {
    const ttl = Math.min(flow.expiresAt - this.options.clock.now(), FLOW_STATE_MAX_AGE_MS);
    if (ttl <= 0) return;
    await this.backend.set(this.keys.flowState(flow.state), JSON.stringify(flow), ttl);
  }

  async takeFlowState(state: string): Promise<FlowState | null> {
    const raw = await this.backend.getDel(this.keys.flowState(state));
    if (!raw) return null;
    const flow = JSON.parse(raw) as FlowState;
    const deadline = Math.min(flow.expiresAt, flow.createdAt + FLOW_STATE_MAX_AGE_MS);
    return deadline > this.options.clock.now() ? flow : null;
  }

  async saveConnectSession(token: string, session: ConnectSession): Promise<void> {
    const ttl = session.expiresAt - this.options.clock.now();
    if (ttl <= 0) return;
    await this.backend.set(this.keys.connectSession(hashToken(token)), JSON.stringify(session), ttl);
  }

  async takeConnectSession(token: string): Promise<ConnectSession | null> {
    const raw = await this.backend.getDel(this.keys.connectSession(hashToken(token)));
    if (!raw) return null;
    const session = JSON.parse(raw) as ConnectSession;
    return session.expiresAt > this.options.clock.now() ? session : null;
  }

  getBrowserSession(sid: string): Promise<string | null> {
    return this.backend.get(this.keys.browserSession(sid));
  }

  setBrowserSession(sid: string, data: string, ttlMs: number): Promise<void> {
    return this.backend.set(this.keys.browserSession(sid), data, Math.max(1, ttlMs));
  }

  destroyBrowserSession(sid: string): Promise<void> {
    return this.backend.del(this.keys.browserSession(sid));
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

  ping(): Promise<void> {
    return this.backend.ping();
  }

  ready(timeoutMs: number): Promise<boolean> {
    return this.backend.ready(timeoutMs);
  }

  close(): Promise<void> {
    return this.backend.close();
  }

  /**
   * What announces a change of the connection on the feed. Every write of a connection passes
   * one to the backend, which publishes it in the same step as the write.
   */
  private noticeOf(provider: string, connectionId: string): Notice {
    return { channel: this.keys.connectionChanges(), message: `${provider}:${connectionId}` };
  }

  private async write(input: ConnectionInput, expectedVersion: number | null): Promise<Connection | null> {
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
    });
    if (version === null) return null;
    await this.backend.addMember(this.keys.connectionIndex(), `${provider}:${connectionId}`);
    return {
      ...input,
      credentials: accessAlive ? { ...credentials } : withoutAccessToken(credentials),
      version,
    };
  }

  private decode(mainKey: string, accessKey: string, version: number, data: string, access: string | null): Connection {
    const meta = JSON.parse(data) as StoredMeta;
    const { cipher } = this.options;
    const secrets = JSON.parse(cipher.open(meta.secrets, mainKey)) as Credentials;
    const credentials: Credentials = { tokenType: meta.tokenType };
    if (secrets.refreshToken) credentials.refreshToken = secrets.refreshToken;
    if (secrets.idToken) credentials.idToken = secrets.idToken;
    if (secrets.apiKey) credentials.apiKey = secrets.apiKey;
    const unexpired = meta.expiresAt === null || meta.expiresAt > this.options.clock.now();
    if (access && unexpired) credentials.accessToken = cipher.open(access, accessKey);
    const { secrets: _sealed, tokenType: _tokenType, ...rest } = meta;
    return { ...rest, version, credentials };
  }
}

function withoutAccessToken(credentials: Credentials): Credentials {
  const { accessToken: _dropped, ...rest } = credentials;
  return rest;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
