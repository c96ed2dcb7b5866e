import type { Clock } from '../clock';
import { isAppError } from '../errors';
import type { Provider } from '../providers/registry';
import type { ConnectionChangeListener, Store } from '../store';
import { resolveConnectionTarget } from './connection-target';
import type { CredentialSource, ResolvedCredential } from './types';

/** Comfortably above the 10,000 connections of the benchmark's many-connections scenario. */
export const DEFAULT_MAX_CACHED_CREDENTIALS = 50_000;

export interface CredentialCacheOptions {
  /** The app's clock, against which expiry and the refresh margin are measured. */
  clock: Clock;
  /**
   * The store whose feed ({@link Store.watchConnections}) keeps the cache coherent with every
   * instance. Without one there is no feed, so no entry is ever confirmed: every call asks the
   * source, and memory serves only degraded answers.
   */
  store?: Pick<Store, 'watchConnections'>;
  /** Bound on the number of connections kept. Default {@link DEFAULT_MAX_CACHED_CREDENTIALS}. */
  maxEntries?: number;
  /**
   * DEGRADED_MODE (default true): when the source fails with `store_unavailable`, answer with the
   * credential held in memory if it has not expired, confirmed or not. False: the error goes on.
   */
  degradedMode?: boolean;
  /** Called for every degraded answer (for metrics); {@link CredentialCache.degradedAnswers} counts them. */
  onDegraded?: (provider: string, connectionId: string) => void;
}

interface Entry {
  credential: ResolvedCredential;
  /** Clock time at which the provider's refresh margin begins: from then on the source is asked (it refreshes). */
  usableUntil: number;
  /** Clock time at which the access token expires: past it, not even a degraded answer. */
  expiresAt: number;
  /** The feed epoch it was read in, or -1 when read while the feed was not live. */
  epoch: number;
  /** Served since the eviction hand last passed it (a second chance before eviction). */
  used: boolean;
}

interface Load {
  promise: Promise<ResolvedCredential>;
}

/** `trusted` while the feed is not live: no entry's epoch (≥ -1) can equal it. */
const NOT_LIVE = -2;
/** How many recently used entries eviction moves to the back before it evicts one anyway. */
const SECOND_CHANCES = 8;

const keyOf = (providerId: string, connectionId: string) => `${providerId}\n${connectionId}`;

/**
 * The process's cache of decrypted credentials in front of a {@link CredentialSource}, coherent
 * across instances, so the proxy's hot path reads the store only when something changed.
 *
 * - An entry is served until the access token enters the provider's `refreshMarginSeconds`
 *   (api_key credentials and tokens without expiry: until invalidated); from then on every call
 *   goes to the source, which refreshes.
 * - Every write or delete of a connection on any instance reaches {@link Store.watchConnections}
 *   and drops the entry, and any load in flight for it, so a load that an invalidation overtook
 *   is never stored. A 401 from the provider, and refreshes and deletes made through
 *   {@link CredentialCache.notifying}, drop it at once in this process.
 * - An entry is served only while *confirmed*: read while the feed was live, with no feed loss
 *   since. When the feed is lost, every entry becomes unconfirmed at once, and stays so, even
 *   after the feed is back, until it is read again: a missed message never outlives the
 *   reconnect. Entries read while the feed is down stay unconfirmed.
 * - Degraded mode: when the source fails with `store_unavailable`, a credential held here that
 *   has not expired (unconfirmed included) is served instead: no refresh, nothing written. The
 *   trade-off: a credential deleted or rotated in the instant before an outage may be served
 *   until it expires. `degradedMode: false` fails instead.
 * - Concurrent misses share one load. At most `maxEntries` connections are kept; the oldest
 *   entry not served recently goes first. Refresh and id tokens are not kept.
 */
export class CredentialCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loads = new Map<string, Load>();
  /** Refreshes after a 401 in flight; an invalidation removes the mark, and the result is not kept. */
  private readonly refreshes = new Map<string, object>();
  private readonly maxEntries: number;
  private readonly degradedMode: boolean;
  /** Bumped by every feed loss: entries read before it are no longer confirmed. */
  private epoch = 0;
  /** The epoch an entry must carry to be served: `epoch` while the feed is live, NOT_LIVE otherwise. */
  private trusted = NOT_LIVE;
  private degraded = 0;
  private readonly unwatch: () => void;

  constructor(
    private readonly source: CredentialSource,
    private readonly options: CredentialCacheOptions,
  ) {
    this.maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_MAX_CACHED_CREDENTIALS);
    this.degradedMode = options.degradedMode ?? true;
    const listener: ConnectionChangeListener = {
      changed: (provider, connectionId) => this.invalidate(provider, connectionId),
      unconfirmed: () => {
        this.epoch++;
        this.trusted = NOT_LIVE;
      },
      confirmed: () => {
        this.trusted = this.epoch;
      },
    };
    this.unwatch = options.store ? options.store.watchConnections(listener) : () => {};
  }

  /** Answers served from memory because the store was unavailable, since the cache was built. */
  get degradedAnswers(): number {
    return this.degraded;
  }

  /** Connections held in memory, confirmed or not. */
  get size(): number {
    return this.entries.size;
  }

  /** The cached credential when it is confirmed and outside the refresh margin, without a promise (the hot path). */
  peek(provider: Provider, connectionId: string): ResolvedCredential | undefined {
    const entry = this.entries.get(keyOf(provider.id, connectionId));
    if (entry === undefined || entry.epoch !== this.trusted || this.options.clock.now() >= entry.usableUntil) {
      return undefined;
    }
    entry.used = true;
    return entry.credential;
  }

  /**
   * A usable credential: the cached one when {@link peek} would give it, otherwise the source's
   * (see {@link CredentialSource.getCredential}), or in degraded mode the one held here.
   */
  get(provider: Provider, connectionId: string, reqId?: string): Promise<ResolvedCredential> {
    const hit = this.peek(provider, connectionId);
    if (hit) return Promise.resolve(hit);
    const key = keyOf(provider.id, connectionId);
    const pending = this.loads.get(key);
    if (pending) return pending.promise;
    const epoch = this.trusted;
    const load: Load = {
      promise: this.source.getCredential(provider, connectionId, reqId).then(
        (credential) => {
          const kept = prepared(provider, credential);
          if (this.loads.get(key) === load) {
            this.loads.delete(key);
            this.remember(key, provider, kept, epoch);
          }
          return kept;
        },
        (err: unknown) => {
          // A load an invalidation overtook has no entry to fall back on: the entry went with it.
          if (this.loads.get(key) !== load) throw err;
          this.loads.delete(key);
          const held = this.degradedAnswer(key, err);
          if (!held) throw err;
          this.degraded++;
          this.options.onDegraded?.(provider.id, connectionId);
          return held;
        },
      ),
    };
    this.loads.set(key, load);
    return load.promise;
  }

  /**
   * After the provider answered 401 to `rejected`: forget it, and ask the source for a refreshed
   * credential (at most once per request; see {@link CredentialSource.refreshAfterUnauthorized}).
   * Never answered from memory: the provider has just refused what memory holds.
   */
  async afterUnauthorized(
    provider: Provider,
    connectionId: string,
    rejected: ResolvedCredential,
    reqId?: string,
  ): Promise<ResolvedCredential | null> {
    const key = keyOf(provider.id, connectionId);
    this.invalidate(provider.id, connectionId);
    const epoch = this.trusted;
    const mark = {};
    this.refreshes.set(key, mark);
    try {
      const fresh = await this.source.refreshAfterUnauthorized(provider, connectionId, rejected, reqId);
      if (!fresh) return null;
      const kept = prepared(provider, fresh);
      if (this.refreshes.get(key) === mark) this.remember(key, provider, kept, epoch);
      return kept;
    } finally {
      if (this.refreshes.get(key) === mark) this.refreshes.delete(key);
    }
  }

  /** Drops the entry and any load in flight for it (a load it overtakes is not stored). */
  invalidate(providerId: string, connectionId: string): void {
    const key = keyOf(providerId, connectionId);
    this.entries.delete(key);
    this.loads.delete(key);
    this.refreshes.delete(key);
  }

  /**
   * The same source, except that its refreshes and invalidations also drop this cache's entry at
   * once (the feed would, a moment later): hand this one to every other route of the process.
   */
  notifying(): CredentialSource {
    const { source } = this;
    return {
      getCredential: (provider, connectionId, reqId) => source.getCredential(provider, connectionId, reqId),
      refreshAfterUnauthorized: async (provider, connectionId, rejected, reqId) => {
        this.invalidate(provider.id, connectionId);
        return source.refreshAfterUnauthorized(provider, connectionId, rejected, reqId);
      },
      forceRefresh: async (provider, connectionId, reqId) => {
        this.invalidate(provider.id, connectionId);
        try {
          return await source.forceRefresh(provider, connectionId, reqId);
        } finally {
          this.invalidate(provider.id, connectionId);
        }
      },
      invalidate: (providerId, connectionId) => {
        this.invalidate(providerId, connectionId);
        source.invalidate(providerId, connectionId);
      },
    };
  }

  /** Stops watching the feed and forgets every credential. */
  close(): void {
    this.unwatch();
    this.entries.clear();
    this.loads.clear();
    this.refreshes.clear();
    this.trusted = NOT_LIVE;
  }

  private degradedAnswer(key: string, err: unknown): ResolvedCredential | undefined {
    if (!this.degradedMode || !isAppError(err) || err.code !== 'store_unavailable') return undefined;
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.options.clock.now() < entry.expiresAt) return entry.credential;
    this.entries.delete(key);
    return undefined;
  }

  private remember(key: string, provider: Provider, credential: ResolvedCredential, epoch: number): void {
    const expiresAt = credential.connection.expiresAt ?? Infinity;
    const margin = provider.authMode === 'oauth2' ? provider.refreshMarginSeconds * 1000 : 0;
    if (this.options.clock.now() >= expiresAt) return;
    this.entries.delete(key);
    this.entries.set(key, {
      credential,
      usableUntil: expiresAt - margin,
      expiresAt,
      // Confirmed only if the feed was live from before the read until now.
      epoch: epoch !== NOT_LIVE && epoch === this.trusted ? epoch : -1,
      // Being served right now: without this, a full cache of busy entries could evict it first.
      used: true,
    });
    while (this.entries.size > this.maxEntries) this.evictOne();
  }

  /** Evicts the oldest entry, giving up to SECOND_CHANCES recently served ones another round. */
  private evictOne(): void {
    for (let chance = 0; ; chance++) {
      const oldest = this.entries.entries().next().value;
      if (!oldest) return;
      const [key, entry] = oldest;
      this.entries.delete(key);
      if (!entry.used || chance >= SECOND_CHANCES) return;
      entry.used = false;
      this.entries.set(key, entry);
    }
  }
}

/**
 * What the proxy needs to authenticate a call, without the refresh and id tokens it never sends,
 * and with the connection's resolved target (resolved here when the source did not), so that a
 * cached entry is resolved once and the hot path only looks it up.
 */
function prepared(provider: Provider, credential: ResolvedCredential): ResolvedCredential {
  const { refreshToken, idToken, ...kept } = credential.connection.credentials;
  const target = credential.target ?? resolveConnectionTarget(provider, credential.connection);
  if (refreshToken === undefined && idToken === undefined && credential.target) return credential;
  return { ...credential, target, connection: { ...credential.connection, credentials: kept } };
}
