/**
 * The few atomic operations the store needs from its medium. Redis implements them with
 * commands and Lua; the in-memory backend with a Map. The store's logic is written once on top.
 */
/** A message published by the same atomic step as the write it announces. */
export interface Notice {
  channel: string;
  message: string;
}

/** What a subscriber to a channel hears; see {@link KvBackend.subscribe}. */
export interface ChannelHandlers {
  message(message: string): void;
  /** The subscription is down: messages may be missed until `live()`. */
  lost(): void;
  /** Subscribed: every message published from now on is delivered. */
  live(): void;
}

export interface ConnectionWrite {
  mainKey: string;
  accessKey: string;
  /** null: write whatever is there (and bump the version). */
  expectedVersion: number | null;
  /**
   * Unconditional writes take at least this version (the clock's now), so a connection that was
   * deleted and authorized anew never reuses a version an old refresher may still hold.
   */
  minVersion: number;
  data: string;
  /** null: no TTL. */
  mainTtlMs: number | null;
  /** null: delete the access-token key. */
  access: string | null;
  accessTtlMs: number | null;
  /** Published when the write succeeds. */
  notice: Notice;
  /** The event that reports this write, recorded in the same step (only when it writes). */
  outbox?: OutboxWrite;
}

/**
 * An event put into the connection's outbox (a hash in the connection's hash slot) by the very
 * step that makes the change it reports: a write that happens has its event, a refused one has
 * none. See event-outbox.ts for how it then reaches the log.
 */
export interface OutboxWrite {
  key: string;
  /** The event id, final: a relay repeated after a crash carries the same one. */
  field: string;
  value: string;
  /**
   * When the event was marked pending (on the log's clock: `EventLog.markPending`). A step
   * that runs later than `markedAt + freshMs` (a command stalled in a client's queue) writes
   * nothing and fails: recovery may already have given up on that mark.
   */
  markedAt: number;
  freshMs: number;
}

export interface StoredConnection {
  version: number;
  data: string;
  access: string | null;
}

export interface KvBackend {
  readonly kind: 'memory' | 'redis';
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  setNx(key: string, value: string, ttlMs: number): Promise<boolean>;
  getDel(key: string): Promise<string | null>;
  del(key: string): Promise<void>;
  delIfEquals(key: string, value: string): Promise<boolean>;
  /** Compare-and-set: writes `value` (with a TTL) only while the key still holds `expected`. */
  setIfEquals(key: string, expected: string, value: string, ttlMs: number): Promise<boolean>;
  /** Sets a new TTL only while the key still holds `value`. */
  pexpireIfEquals(key: string, value: string, ttlMs: number): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  pttl(key: string): Promise<number>;
  /**
   * The new version, or null when `expectedVersion` did not match; publishes `w.notice` and
   * records `w.outbox` in the same step when it wrote. Main, access and outbox keys share a hash
   * slot.
   * @throws AppError `store_unavailable` when `w.outbox` is no longer fresh (nothing written)
   */
  writeConnection(w: ConnectionWrite): Promise<number | null>;
  readConnection(mainKey: string, accessKey: string): Promise<StoredConnection | null>;
  /** The main key only (version and data), without the access token. */
  readConnectionData(mainKey: string): Promise<Omit<StoredConnection, 'access'> | null>;
  /**
   * Deletes both keys and publishes `notice`, in one step; records `outbox` in that step only when
   * there was something to delete.
   */
  deleteConnection(mainKey: string, accessKey: string, notice: Notice, outbox?: OutboxWrite): Promise<boolean>;
  /** One field of a hash (an outbox entry), or null. */
  hashGet(key: string, field: string): Promise<string | null>;
  /** Removes one field of a hash; the hash goes with its last field. */
  hashDelete(key: string, field: string): Promise<void>;
  addMember(setKey: string, member: string): Promise<void>;
  removeMember(setKey: string, member: string): Promise<void>;
  members(setKey: string): Promise<string[]>;
  /**
   * One step of a cursor walk over a set (SSCAN): about `count` members, and the next cursor, `'0'`
   * at the end. Members added or removed meanwhile may or may not be returned; the others are.
   */
  scanMembers(setKey: string, cursor: string, count: number): Promise<{ cursor: string; members: string[] }>;
  /** Adds `by` to the window's count (starting the window when it is new). */
  incrWindow(key: string, windowMs: number, by: number): Promise<{ count: number; ttlMs: number }>;
  /**
   * Delivers the messages published on `channel` to `handlers` until the returned function is
   * called. Starts lost: `live()` comes once the subscription is in place (at once in memory).
   */
  subscribe(channel: string, handlers: ChannelHandlers): () => void;
  ping(): Promise<void>;
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}
