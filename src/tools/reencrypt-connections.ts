import { isUnreadableCredential, type Connection, type ConnectionInput, type Store } from '../store';
import type { SealedValueError } from '../store/encryption';
import { refreshLockName } from '../client/refresh-lock';

/** What a run did, connection by connection. Counts only: a report never holds a secret. */
export interface ReencryptReport {
  /** Connections listed when the run started. */
  total: number;
  /** Written back, so now sealed with the first key. */
  reencrypted: number;
  /** Deleted while the run went on: nothing left to re-encrypt. */
  gone: number;
  /** Not written: their refresh stayed locked, or their version kept moving. Run again. */
  failed: number;
  /** Not written: no configured key opens their credentials (left as they are). */
  unreadable: number;
  /** The key ids those name, and why each does not open; ids, never key material. */
  unreadableKeys: Array<{ keyId: string; reason: SealedValueError['reason'] }>;
}

export interface ReencryptOptions {
  /** Attempts per connection (a lock held by a refresh, or a version that moved, costs one). */
  attempts?: number;
  /** Pause between attempts. */
  pauseMs?: number;
  /** How long the rewrite holds the connection's refresh lock; a rewrite takes two store calls. */
  lockTtlMs?: number;
  /** Called after each connection, for progress output. */
  onProgress?: (done: number, total: number) => void;
}

type Outcome =
  'reencrypted' | 'gone' | 'failed' | { unreadable: { keyId: string; reason: SealedValueError['reason'] } };

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function withoutVersion(connection: Connection): ConnectionInput {
  const { version: _version, ...input } = connection;
  return input;
}

/**
 * Re-reads one connection and writes it back unchanged, which seals it with the first key of
 * TOKEN_ENCRYPTION_KEYS. The write holds the connection's refresh lock, so it never races a
 * refresh (whose new tokens it could otherwise make the refresher drop), and is conditional on
 * the version read, so a concurrent new authorization wins; either case is retried.
 */
async function reencryptOne(
  store: Store,
  provider: string,
  connectionId: string,
  options: Required<Omit<ReencryptOptions, 'onProgress'>>,
): Promise<Outcome> {
  const lock = refreshLockName(provider, connectionId);
  for (let attempt = 0; attempt < options.attempts; attempt++) {
    if (attempt > 0) await pause(options.pauseMs);
    const token = await store.acquireLock(lock, options.lockTtlMs);
    if (!token) continue;
    try {
      const current = await store.getConnection(provider, connectionId).catch((err: unknown) => {
        if (isUnreadableCredential(err)) return { unreadable: { keyId: err.keyId, reason: err.reason } };
        throw err;
      });
      if (!current) return 'gone';
      if ('unreadable' in current) return current;
      // The whole record is written back: its plaintext fields as read, its secrets sealed anew.
      if (await store.updateConnection(withoutVersion(current), current.version)) return 'reencrypted';
    } finally {
      await store.releaseLock(lock, token);
    }
  }
  return 'failed';
}

/**
 * Seals every stored connection with the current first encryption key now, instead of on its
 * next write (key rotation: add the new key first, run this, then remove the old key). The list
 * comes from the plaintext fields, so a connection that no configured key opens is counted as
 * `unreadable` (with the key id it names) and the others are still re-encrypted.
 *
 * @throws when the store is unavailable
 */
export async function reencryptConnections(store: Store, options: ReencryptOptions = {}): Promise<ReencryptReport> {
  const settings = {
    attempts: options.attempts ?? 20,
    pauseMs: options.pauseMs ?? 250,
    lockTtlMs: options.lockTtlMs ?? 5000,
  };
  const connections = await store.listConnections();
  const report: ReencryptReport = {
    total: connections.length,
    reencrypted: 0,
    gone: 0,
    failed: 0,
    unreadable: 0,
    unreadableKeys: [],
  };
  for (const [i, c] of connections.entries()) {
    const outcome = await reencryptOne(store, c.provider, c.connectionId, settings);
    if (typeof outcome === 'string') report[outcome]++;
    else {
      report.unreadable++;
      const { keyId, reason } = outcome.unreadable;
      if (!report.unreadableKeys.some((k) => k.keyId === keyId && k.reason === reason))
        report.unreadableKeys.push({ keyId, reason });
    }
    options.onProgress?.(i + 1, connections.length);
  }
  return report;
}
