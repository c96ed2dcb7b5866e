/**
 * The few atomic operations the store needs from its medium. Redis implements them with
 * commands and Lua; the in-memory backend with a Map. The store's logic is written once on top.
 */
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
  /** Sets a new TTL only while the key still holds `value`. */
  pexpireIfEquals(key: string, value: string, ttlMs: number): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  pttl(key: string): Promise<number>;
  /** The new version, or null when `expectedVersion` did not match. Main and access keys share a hash slot. */
  writeConnection(w: ConnectionWrite): Promise<number | null>;
  readConnection(mainKey: string, accessKey: string): Promise<StoredConnection | null>;
  deleteConnection(mainKey: string, accessKey: string): Promise<boolean>;
  addMember(setKey: string, member: string): Promise<void>;
  removeMember(setKey: string, member: string): Promise<void>;
  members(setKey: string): Promise<string[]>;
  /** Adds `by` to the window's count (starting the window when it is new). */
  incrWindow(key: string, windowMs: number, by: number): Promise<{ count: number; ttlMs: number }>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
