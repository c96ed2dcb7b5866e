import type { Clock } from '../clock';
import type { ChannelHandlers, ConnectionWrite, KvBackend, Notice, OutboxWrite, StoredConnection } from './backend';

interface Entry {
  value: string | Set<string> | Map<string, string>;
  /** ms epoch, or null for no TTL. */
  expiresAt: number | null;
  version?: number;
}

/**
 * The embedded store for a first run: the same semantics as the Redis backend, kept in a Map
 * and expired against the injected clock. Credentials are lost when the process ends.
 */
export class MemoryBackend implements KvBackend {
  readonly kind = 'memory' as const;
  private readonly entries = new Map<string, Entry>();
  private readonly channels = new Map<string, Set<ChannelHandlers>>();

  constructor(private readonly clock: Clock) {}

  /** In process and synchronous: every subscriber has heard it before the write returns. */
  private publish(notice: Notice): void {
    for (const handlers of [...(this.channels.get(notice.channel) ?? [])]) {
      try {
        handlers.message(notice.message);
      } catch {
        // One subscriber's failure is its own; the write has happened and the others must hear it.
      }
    }
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private str(key: string): string | null {
    const v = this.live(key)?.value;
    return typeof v === 'string' ? v : null;
  }

  private put(key: string, value: string, ttlMs: number | null, version?: number): void {
    this.entries.set(key, { value, expiresAt: ttlMs === null ? null : this.clock.now() + ttlMs, version });
  }

  async get(key: string): Promise<string | null> {
    return this.str(key);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.put(key, value, ttlMs);
  }

  async setNx(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.live(key)) return false;
    this.put(key, value, ttlMs);
    return true;
  }

  async getDel(key: string): Promise<string | null> {
    const v = this.str(key);
    this.entries.delete(key);
    return v;
  }

  async del(key: string): Promise<void> {
    this.entries.delete(key);
  }

  async delIfEquals(key: string, value: string): Promise<boolean> {
    if (this.str(key) !== value) return false;
    this.entries.delete(key);
    return true;
  }

  async setIfEquals(key: string, expected: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.str(key) !== expected) return false;
    this.put(key, value, ttlMs);
    return true;
  }

  async pexpireIfEquals(key: string, value: string, ttlMs: number): Promise<boolean> {
    const entry = this.live(key);
    if (!entry || entry.value !== value) return false;
    entry.expiresAt = this.clock.now() + ttlMs;
    return true;
  }

  async exists(key: string): Promise<boolean> {
    return this.live(key) !== undefined;
  }

  async pttl(key: string): Promise<number> {
    const entry = this.live(key);
    if (!entry) return -2;
    return entry.expiresAt === null ? -1 : entry.expiresAt - this.clock.now();
  }

  async writeConnection(w: ConnectionWrite): Promise<number | null> {
    const current = this.live(w.mainKey);
    const currentVersion = current?.version ?? 0;
    if (w.expectedVersion !== null && (!current || currentVersion !== w.expectedVersion)) return null;
    const version = w.expectedVersion === null ? Math.max(currentVersion + 1, w.minVersion) : currentVersion + 1;
    this.put(w.mainKey, w.data, w.mainTtlMs, version);
    if (w.access === null) this.entries.delete(w.accessKey);
    else this.put(w.accessKey, w.access, w.accessTtlMs);
    this.publish(w.notice);
    if (w.outbox) this.recordOutbox(w.outbox);
    return version;
  }

  /** In process, in the same synchronous step as the write: nothing can come between them. */
  private recordOutbox(outbox: OutboxWrite): void {
    this.hash(outbox.key).set(outbox.field, outbox.value);
  }

  private hash(key: string): Map<string, string> {
    const entry = this.live(key);
    if (entry && entry.value instanceof Map) return entry.value;
    const fresh = new Map<string, string>();
    this.entries.set(key, { value: fresh, expiresAt: null });
    return fresh;
  }

  async readConnection(mainKey: string, accessKey: string): Promise<StoredConnection | null> {
    const main = this.live(mainKey);
    if (!main || typeof main.value !== 'string') return null;
    return { version: main.version ?? 0, data: main.value, access: this.str(accessKey) };
  }

  async readConnectionData(mainKey: string): Promise<Omit<StoredConnection, 'access'> | null> {
    const main = this.live(mainKey);
    if (!main || typeof main.value !== 'string') return null;
    return { version: main.version ?? 0, data: main.value };
  }

  async deleteConnection(mainKey: string, accessKey: string, notice: Notice, outbox?: OutboxWrite): Promise<boolean> {
    const existed = this.live(mainKey) !== undefined;
    this.entries.delete(mainKey);
    this.entries.delete(accessKey);
    this.publish(notice);
    if (existed && outbox) this.recordOutbox(outbox);
    return existed;
  }

  async hashGet(key: string, field: string): Promise<string | null> {
    const entry = this.live(key);
    return entry && entry.value instanceof Map ? (entry.value.get(field) ?? null) : null;
  }

  async hashDelete(key: string, field: string): Promise<void> {
    const entry = this.live(key);
    if (!entry || !(entry.value instanceof Map)) return;
    entry.value.delete(field);
    if (!entry.value.size) this.entries.delete(key);
  }

  private set_(key: string): Set<string> {
    const entry = this.live(key);
    if (entry && entry.value instanceof Set) return entry.value;
    const fresh = new Set<string>();
    this.entries.set(key, { value: fresh, expiresAt: null });
    return fresh;
  }

  async addMember(setKey: string, member: string): Promise<void> {
    this.set_(setKey).add(member);
  }

  async removeMember(setKey: string, member: string): Promise<void> {
    this.set_(setKey).delete(member);
  }

  async members(setKey: string): Promise<string[]> {
    return [...this.set_(setKey)];
  }

  /** The cursor is a position in the sorted members; a walk sees every member present throughout. */
  async scanMembers(setKey: string, cursor: string, count: number): Promise<{ cursor: string; members: string[] }> {
    const all = [...this.set_(setKey)].sort();
    const from = Number(cursor) || 0;
    const members = all.slice(from, from + count);
    const next = from + count;
    return { cursor: next >= all.length ? '0' : String(next), members };
  }

  async incrWindow(key: string, windowMs: number, by: number): Promise<{ count: number; ttlMs: number }> {
    const entry = this.live(key);
    const count = (entry && typeof entry.value === 'string' ? Number(entry.value) : 0) + by;
    const expiresAt = entry?.expiresAt ?? this.clock.now() + windowMs;
    this.entries.set(key, { value: String(count), expiresAt });
    return { count, ttlMs: expiresAt - this.clock.now() };
  }

  subscribe(channel: string, handlers: ChannelHandlers): () => void {
    let subscribers = this.channels.get(channel);
    if (!subscribers) this.channels.set(channel, (subscribers = new Set()));
    subscribers.add(handlers);
    handlers.live();
    return () => {
      subscribers.delete(handlers);
      if (!subscribers.size && this.channels.get(channel) === subscribers) this.channels.delete(channel);
    };
  }

  async ping(): Promise<void> {}

  async ready(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.entries.clear();
    this.channels.clear();
  }
}
