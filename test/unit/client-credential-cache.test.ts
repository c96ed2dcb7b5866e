import { CredentialCache } from '../../src/client/credential-cache';
import type { CredentialSource, ResolvedCredential } from '../../src/client/types';
import { FakeClock } from '../../src/clock';
import { AppError } from '../../src/errors';
import type { Provider } from '../../src/providers/registry';
import { buildProviderRegistry } from '../../src/providers/registry';
import type { Connection, ConnectionChangeListener } from '../../src/store';

const providers = buildProviderRegistry({ VIDEOASK_CLIENT_ID: 'id', VIDEOASK_CLIENT_SECRET: 'secret' });
const videoask = providers.require('videoask');
const webinargeek = providers.require('webinargeek');
const MARGIN_MS = (videoask as Provider & { refreshMarginSeconds: number }).refreshMarginSeconds * 1000;
const HOUR = 3600_000;

function credential(
  clock: FakeClock,
  token: string,
  expiresInMs: number | null = HOUR,
  connectionId = 'user-1',
): ResolvedCredential {
  const connection: Connection = {
    provider: 'videoask',
    connectionId,
    authMode: 'oauth2',
    status: 'active',
    scopes: [],
    expiresAt: expiresInMs === null ? null : clock.now() + expiresInMs,
    createdAt: clock.now(),
    updatedAt: clock.now(),
    lastRefreshedAt: null,
    config: {},
    metadata: {},
    account: null,
    version: 1,
    credentials: { accessToken: token, refreshToken: `refresh-of-${token}`, idToken: 'id-token', tokenType: 'Bearer' },
  };
  return { connection, header: { name: 'Authorization', value: `Bearer ${token}` } };
}

/** A source that answers what the test queues, counting every call. */
class ScriptedSource implements CredentialSource {
  gets = 0;
  refreshes = 0;
  forced = 0;
  invalidated: string[] = [];
  next: () => Promise<ResolvedCredential>;
  afterUnauthorized: () => Promise<ResolvedCredential | null> = async () => null;

  constructor(next: () => Promise<ResolvedCredential>) {
    this.next = next;
  }
  getCredential(): Promise<ResolvedCredential> {
    this.gets++;
    return this.next();
  }
  refreshAfterUnauthorized(): Promise<ResolvedCredential | null> {
    this.refreshes++;
    return this.afterUnauthorized();
  }
  async forceRefresh(): Promise<Connection> {
    this.forced++;
    return (await this.next()).connection;
  }
  invalidate(provider: string, connectionId: string): void {
    this.invalidated.push(`${provider}/${connectionId}`);
  }
}

/** The store's connection feed, driven by the test. */
class FakeFeed {
  readonly listeners = new Set<ConnectionChangeListener>();
  constructor(private live: boolean) {}
  watchConnections(listener: ConnectionChangeListener): () => void {
    this.listeners.add(listener);
    if (this.live) listener.confirmed?.();
    return () => this.listeners.delete(listener);
  }
  changed(provider: string, connectionId: string): void {
    for (const l of this.listeners) l.changed(provider, connectionId);
  }
  lose(): void {
    this.live = false;
    for (const l of this.listeners) l.unconfirmed();
  }
  confirm(): void {
    this.live = true;
    for (const l of this.listeners) l.confirmed?.();
  }
}

const storeDown = () => new AppError('store_unavailable', 'The credential store is unavailable');

function setup(options: { maxEntries?: number; degradedMode?: boolean; live?: boolean } = {}) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  let issued = 0;
  const source = new ScriptedSource(async () => credential(clock, `token-${++issued}`));
  const feed = new FakeFeed(options.live ?? true);
  const degraded: string[] = [];
  const cache = new CredentialCache(source, {
    clock,
    store: feed,
    maxEntries: options.maxEntries,
    degradedMode: options.degradedMode,
    onDegraded: (provider, connectionId) => degraded.push(`${provider}/${connectionId}`),
  });
  /** Makes the source fail as it does while the store is unreachable. */
  const breakStore = () => {
    source.next = async () => {
      throw storeDown();
    };
  };
  return { clock, source, feed, cache, degraded, breakStore };
}

describe('CredentialCache', () => {
  describe('reuse', () => {
    it('serves a credential from memory until its refresh margin, with no time-to-live of its own', async () => {
      const { clock, source, cache } = setup();
      expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-1');
      clock.advance(HOUR - MARGIN_MS - 1);
      expect(cache.peek(videoask, 'user-1')?.header.value).toBe('Bearer token-1');
      expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-1');
      expect(source.gets).toBe(1);
      clock.advance(1);
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
      expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-2');
      expect(source.gets).toBe(2);
    });

    it('serves api_key credentials and tokens without expiry until something invalidates them', async () => {
      const { clock, source, cache } = setup();
      source.next = async () => credential(clock, 'no-expiry', null);
      await cache.get(webinargeek, 'user-1');
      clock.advance(365 * 24 * HOUR);
      expect(cache.peek(webinargeek, 'user-1')?.header.value).toBe('Bearer no-expiry');
      expect(source.gets).toBe(1);
    });

    it('keeps connections apart', async () => {
      const { source, cache } = setup();
      await cache.get(videoask, 'user-1');
      await cache.get(videoask, 'user-2');
      expect(source.gets).toBe(2);
    });

    it('does not serve from memory a credential that arrives within the refresh margin', async () => {
      const { clock, source, cache } = setup();
      source.next = async () => credential(clock, 'inside-margin', MARGIN_MS - 1);
      await cache.get(videoask, 'user-1');
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
      await cache.get(videoask, 'user-1');
      expect(source.gets).toBe(2);
    });

    it('lets concurrent misses share one load', async () => {
      const { source, cache } = setup();
      const all = await Promise.all([
        cache.get(videoask, 'user-1'),
        cache.get(videoask, 'user-1'),
        cache.get(videoask, 'user-1'),
      ]);
      expect(new Set(all.map((c) => c.header.value))).toEqual(new Set(['Bearer token-1']));
      expect(source.gets).toBe(1);
    });

    it('does not cache failures', async () => {
      const { source, cache } = setup();
      source.next = async () => {
        throw new AppError('connection_not_found', 'none');
      };
      await expect(cache.get(videoask, 'user-1')).rejects.toMatchObject({ code: 'connection_not_found' });
      await expect(cache.get(videoask, 'user-1')).rejects.toMatchObject({ code: 'connection_not_found' });
      expect(source.gets).toBe(2);
    });

    it('keeps neither the refresh token nor the id token, only what authenticates a call', async () => {
      const { cache } = setup();
      const got = await cache.get(videoask, 'user-1');
      expect(got.connection.credentials).toEqual({ accessToken: 'token-1', tokenType: 'Bearer' });
      expect(cache.peek(videoask, 'user-1')?.connection.credentials).toEqual({
        accessToken: 'token-1',
        tokenType: 'Bearer',
      });
    });
  });

  describe('bounded', () => {
    it('keeps at most maxEntries connections, evicting the oldest', async () => {
      const { cache } = setup({ maxEntries: 2 });
      await cache.get(videoask, 'a');
      await cache.get(videoask, 'b');
      await cache.get(videoask, 'c');
      expect(cache.size).toBe(2);
      expect(cache.peek(videoask, 'a')).toBeUndefined();
      expect(cache.peek(videoask, 'b')).toBeDefined();
      expect(cache.peek(videoask, 'c')).toBeDefined();
    });

    it('gives an entry served since the last eviction a second chance over one that was not', async () => {
      const { cache } = setup({ maxEntries: 3 });
      for (const id of ['a', 'b', 'c']) await cache.get(videoask, id);
      await cache.get(videoask, 'd'); // every entry was just loaded: the oldest, a, goes
      expect(cache.peek(videoask, 'a')).toBeUndefined();
      expect(cache.peek(videoask, 'b')).toBeDefined(); // b is served again; c is not
      await cache.get(videoask, 'e');
      expect(cache.peek(videoask, 'b')).toBeDefined();
      expect(cache.peek(videoask, 'c')).toBeUndefined();
      expect(cache.size).toBe(3);
    });

    it('holds 50,000 connections by default', async () => {
      const { cache } = setup();
      for (let i = 0; i < 50_001; i++) await cache.get(videoask, `c-${i}`);
      expect(cache.size).toBe(50_000);
      expect(cache.peek(videoask, 'c-50000')).toBeDefined();
    });
  });

  describe('invalidation', () => {
    it('drops the entry when the feed announces a change, on whichever instance it was made', async () => {
      const { source, feed, cache } = setup();
      await cache.get(videoask, 'user-1');
      await cache.get(videoask, 'user-2');
      feed.changed('videoask', 'user-1');
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
      expect(cache.peek(videoask, 'user-2')).toBeDefined();
      expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-3');
      expect(source.gets).toBe(3);
    });

    it('does not store a load that a change announced meanwhile overtook', async () => {
      const { clock, source, feed, cache } = setup();
      let release!: (c: ResolvedCredential) => void;
      source.next = () => new Promise((resolve) => (release = resolve));
      const pending = cache.get(videoask, 'user-1');
      feed.changed('videoask', 'user-1');
      release(credential(clock, 'stale'));
      await pending;
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
    });

    it('after a 401, drops the rejected credential and keeps the refreshed one', async () => {
      const { clock, source, cache } = setup();
      const rejected = await cache.get(videoask, 'user-1');
      source.afterUnauthorized = async () => credential(clock, 'refreshed');
      const fresh = await cache.afterUnauthorized(videoask, 'user-1', rejected);
      expect(fresh?.header.value).toBe('Bearer refreshed');
      expect(source.refreshes).toBe(1);
      expect(cache.peek(videoask, 'user-1')?.header.value).toBe('Bearer refreshed');
    });

    it('after a 401 with nothing to refresh, keeps nothing', async () => {
      const { source, cache } = setup();
      const rejected = await cache.get(videoask, 'user-1');
      expect(await cache.afterUnauthorized(videoask, 'user-1', rejected)).toBeNull();
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
      expect(source.refreshes).toBe(1);
    });

    it('does not keep a refresh after a 401 that a change announced meanwhile overtook', async () => {
      const { clock, source, feed, cache } = setup();
      const rejected = await cache.get(videoask, 'user-1');
      let release!: (c: ResolvedCredential) => void;
      source.afterUnauthorized = () => new Promise((resolve) => (release = resolve));
      const pending = cache.afterUnauthorized(videoask, 'user-1', rejected);
      feed.changed('videoask', 'user-1');
      release(credential(clock, 'refreshed-before-a-delete'));
      expect((await pending)?.header.value).toBe('Bearer refreshed-before-a-delete');
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
    });

    it('drops the entry when another route refreshes or invalidates through notifying()', async () => {
      const { source, cache } = setup();
      const shared = cache.notifying();
      await cache.get(videoask, 'user-1');
      await shared.forceRefresh(videoask, 'user-1');
      expect(source.forced).toBe(1);
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();

      await cache.get(videoask, 'user-1');
      shared.invalidate('videoask', 'user-1');
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
      expect(source.invalidated).toEqual(['videoask/user-1']);
    });

    it('stops listening to the feed and forgets everything on close()', async () => {
      const { source, feed, cache } = setup();
      await cache.get(videoask, 'user-1');
      cache.close();
      expect(feed.listeners.size).toBe(0);
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
      expect(cache.size).toBe(0);
      expect(source.gets).toBe(1);
    });
  });

  describe('confirmation', () => {
    it('serves nothing from memory before the feed is live, and keeps what it read meanwhile unconfirmed', async () => {
      const { source, feed, cache } = setup({ live: false });
      await cache.get(videoask, 'user-1');
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
      feed.confirm();
      // Read before the feed was live: a change made then may have gone unheard.
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
      expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-2');
      expect(cache.peek(videoask, 'user-1')?.header.value).toBe('Bearer token-2');
      expect(source.gets).toBe(2);
    });

    it('marks every entry unconfirmed when the feed is lost, and re-reads each before use once it is back', async () => {
      const { source, feed, cache } = setup();
      await cache.get(videoask, 'user-1');
      await cache.get(videoask, 'user-2');
      feed.lose();
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
      expect(cache.peek(videoask, 'user-2')).toBeUndefined();
      feed.confirm();
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
      expect(cache.peek(videoask, 'user-2')).toBeUndefined();
      expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-3');
      expect(cache.peek(videoask, 'user-1')?.header.value).toBe('Bearer token-3');
      expect(cache.peek(videoask, 'user-2')).toBeUndefined();
      expect(source.gets).toBe(3);
    });

    it('while the feed is down, reads the source on every call', async () => {
      const { source, feed, cache } = setup();
      feed.lose();
      await cache.get(videoask, 'user-1');
      await cache.get(videoask, 'user-1');
      expect(source.gets).toBe(2);
    });

    it('keeps unconfirmed a load that a feed loss and recovery overtook', async () => {
      const { clock, source, feed, cache } = setup();
      let release!: (c: ResolvedCredential) => void;
      source.next = () => new Promise((resolve) => (release = resolve));
      const pending = cache.get(videoask, 'user-1');
      feed.lose();
      feed.confirm();
      release(credential(clock, 'read-before-the-loss'));
      await pending;
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
    });

    it('without a store to watch, confirms nothing and asks the source every time', async () => {
      const clock = new FakeClock();
      const source = new ScriptedSource(async () => credential(clock, 'unwatched'));
      const cache = new CredentialCache(source, { clock });
      await cache.get(videoask, 'user-1');
      await cache.get(videoask, 'user-1');
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
      expect(source.gets).toBe(2);
    });
  });

  describe('degraded mode', () => {
    it('serves an unexpired credential it holds, unconfirmed too, while the store is unavailable', async () => {
      const { source, feed, cache, degraded, breakStore } = setup();
      await cache.get(videoask, 'user-1');
      feed.lose();
      breakStore();
      expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-1');
      expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-1');
      expect(source.gets).toBe(3);
      expect(cache.degradedAnswers).toBe(2);
      expect(degraded).toEqual(['videoask/user-1', 'videoask/user-1']);
      // Still unconfirmed: the hot path does not take it, and once the store answers it is re-read.
      expect(cache.peek(videoask, 'user-1')).toBeUndefined();
    });

    it('serves a credential within its refresh margin, since no refresh is possible, until it expires', async () => {
      const { clock, cache, breakStore } = setup();
      await cache.get(videoask, 'user-1');
      breakStore();
      clock.advance(HOUR - MARGIN_MS);
      expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-1');
      clock.advance(MARGIN_MS - 1);
      expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-1');
      clock.advance(1);
      await expect(cache.get(videoask, 'user-1')).rejects.toMatchObject({ code: 'store_unavailable' });
      expect(cache.degradedAnswers).toBe(2);
      expect(cache.size).toBe(0);
    });

    it('refuses a connection it does not hold with store_unavailable', async () => {
      const { cache, breakStore } = setup();
      await cache.get(videoask, 'user-1');
      breakStore();
      await expect(cache.get(videoask, 'user-2')).rejects.toMatchObject({ code: 'store_unavailable' });
      expect(cache.degradedAnswers).toBe(0);
    });

    it('refuses a credential whose change was announced before the outage', async () => {
      const { feed, cache, breakStore } = setup();
      await cache.get(videoask, 'user-1');
      feed.changed('videoask', 'user-1');
      breakStore();
      await expect(cache.get(videoask, 'user-1')).rejects.toMatchObject({ code: 'store_unavailable' });
    });

    it('passes on every other error of the source', async () => {
      const { clock, source, cache } = setup();
      await cache.get(videoask, 'user-1');
      clock.advance(HOUR - MARGIN_MS);
      source.next = async () => {
        throw new AppError('reauth_required', 'reconnect');
      };
      await expect(cache.get(videoask, 'user-1')).rejects.toMatchObject({ code: 'reauth_required' });
      expect(cache.degradedAnswers).toBe(0);
    });

    it('never answers a 401 from memory', async () => {
      const { cache, breakStore, source } = setup();
      const rejected = await cache.get(videoask, 'user-1');
      source.afterUnauthorized = async () => {
        throw storeDown();
      };
      breakStore();
      await expect(cache.afterUnauthorized(videoask, 'user-1', rejected)).rejects.toMatchObject({
        code: 'store_unavailable',
      });
      expect(cache.degradedAnswers).toBe(0);
    });

    it('with degradedMode false, lets store_unavailable through for everything', async () => {
      const { clock, feed, cache, breakStore } = setup({ degradedMode: false });
      await cache.get(videoask, 'user-1');
      feed.lose();
      breakStore();
      await expect(cache.get(videoask, 'user-1')).rejects.toMatchObject({ code: 'store_unavailable' });
      clock.advance(HOUR - MARGIN_MS);
      await expect(cache.get(videoask, 'user-1')).rejects.toMatchObject({ code: 'store_unavailable' });
      expect(cache.degradedAnswers).toBe(0);
    });

    it('goes back to the store once it answers, and confirms the fresh read', async () => {
      const { clock, source, feed, cache, breakStore } = setup();
      await cache.get(videoask, 'user-1');
      feed.lose();
      breakStore();
      await cache.get(videoask, 'user-1');
      source.next = async () => credential(clock, 'after-the-outage');
      feed.confirm();
      expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer after-the-outage');
      expect(cache.peek(videoask, 'user-1')?.header.value).toBe('Bearer after-the-outage');
    });
  });
});
