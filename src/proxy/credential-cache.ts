import type { CredentialSource, ResolvedCredential } from '../client/types';
import type { Clock } from '../clock';
import type { Provider } from '../providers/registry';

export interface CredentialCacheOptions {
  /** How long a credential is reused without asking the store again; 0 turns the cache off. */
  ttlMs: number;
  /** The app's clock, against which expiry and the refresh margin are measured. */
  clock: Clock;
  /** Bound on the number of connections kept (oldest dropped first). Default 10 000. */
  maxEntries?: number;
  /** Monotonic milliseconds for the reuse window; `performance.now` unless a test drives it. */
  monotonicNow?: () => number;
}

interface Entry {
  credential: ResolvedCredential;
  /** Monotonic deadline of the reuse window. */
  freshUntil: number;
  /** Clock time at which the provider's refresh margin begins: the credential must be refreshed then. */
  usableUntil: number;
}

interface Load {
  promise: Promise<ResolvedCredential>;
}

const keyOf = (providerId: string, connectionId: string) => `${providerId}\n${connectionId}`;

/**
 * A short-lived, in-process cache of decrypted credentials in front of a {@link CredentialSource},
 * so the proxy's hot path does not read and decrypt the connection from the store on every call.
 *
 * An entry is reused for at most `ttlMs`, and never once the access token is within the
 * provider's `refreshMarginSeconds` of expiry: from then on every call goes to the source, which
 * refreshes. A 401 from the provider, a refresh, a delete or a reconnect in this process drops
 * the entry ({@link CredentialCache.notifying}); other instances keep theirs for at most `ttlMs`,
 * and a token they refreshed meanwhile answers a stale one with 401, which the proxy turns into a
 * `refreshAfterUnauthorized` that returns the newer stored token. Concurrent misses share one
 * load, and a load that an invalidation overtook is not stored.
 */
export class CredentialCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loads = new Map<string, Load>();
  private readonly maxEntries: number;
  private readonly monotonicNow: () => number;

  constructor(
    private readonly source: CredentialSource,
    private readonly options: CredentialCacheOptions,
  ) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.monotonicNow = options.monotonicNow ?? (() => performance.now());
  }

  /** The cached credential when it may still be used, without a promise (the hot path). */
  peek(provider: Provider, connectionId: string): ResolvedCredential | undefined {
    const key = keyOf(provider.id, connectionId);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.monotonicNow() < entry.freshUntil && this.options.clock.now() < entry.usableUntil) return entry.credential;
    this.entries.delete(key);
    return undefined;
  }

  /** A usable credential: the cached one, or the source's (see {@link CredentialSource.getCredential}). */
  get(provider: Provider, connectionId: string): Promise<ResolvedCredential> {
    const hit = this.peek(provider, connectionId);
    if (hit) return Promise.resolve(hit);
    if (this.options.ttlMs <= 0) return this.source.getCredential(provider, connectionId);
    const key = keyOf(provider.id, connectionId);
    const pending = this.loads.get(key);
    if (pending) return pending.promise;
    const load: Load = { promise: this.source.getCredential(provider, connectionId) };
    this.loads.set(key, load);
    load.promise.then(
      (credential) => {
        if (this.loads.get(key) !== load) return;
        this.loads.delete(key);
        this.remember(key, provider, credential);
      },
      () => {
        if (this.loads.get(key) === load) this.loads.delete(key);
      },
    );
    return load.promise;
  }

  /**
   * After the provider answered 401 to `rejected`: forget it, and ask the source for a refreshed
   * credential (at most once per request; see {@link CredentialSource.refreshAfterUnauthorized}).
   */
  async afterUnauthorized(
    provider: Provider,
    connectionId: string,
    rejected: ResolvedCredential,
  ): Promise<ResolvedCredential | null> {
    this.invalidate(provider.id, connectionId);
    const fresh = await this.source.refreshAfterUnauthorized(provider, connectionId, rejected);
    if (fresh && this.options.ttlMs > 0) this.remember(keyOf(provider.id, connectionId), provider, fresh);
    return fresh;
  }

  invalidate(providerId: string, connectionId: string): void {
    const key = keyOf(providerId, connectionId);
    this.entries.delete(key);
    this.loads.delete(key);
  }

  /**
   * The same source, except that its refreshes and invalidations also drop this cache's entry:
   * hand this one to every other route of the process (forced refresh, delete, reconnect).
   */
  notifying(): CredentialSource {
    const { source } = this;
    return {
      getCredential: (provider, connectionId) => source.getCredential(provider, connectionId),
      refreshAfterUnauthorized: async (provider, connectionId, rejected) => {
        this.invalidate(provider.id, connectionId);
        return source.refreshAfterUnauthorized(provider, connectionId, rejected);
      },
      forceRefresh: async (provider, connectionId) => {
        this.invalidate(provider.id, connectionId);
        try {
          return await source.forceRefresh(provider, connectionId);
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

  private remember(key: string, provider: Provider, credential: ResolvedCredential): void {
    const { expiresAt } = credential.connection;
    const margin = provider.authMode === 'oauth2' ? provider.refreshMarginSeconds * 1000 : 0;
    const usableUntil = expiresAt === null ? Infinity : expiresAt - margin;
    if (this.options.clock.now() >= usableUntil) return;
    this.entries.delete(key);
    this.entries.set(key, { credential, freshUntil: this.monotonicNow() + this.options.ttlMs, usableUntil });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}
