import type { CredentialSource, ResolvedCredential } from '../../src/client/types';
import { FakeClock } from '../../src/clock';
import { AppError } from '../../src/errors';
import type { Provider } from '../../src/providers/registry';
import { buildProviderRegistry } from '../../src/providers/registry';
import { CredentialCache } from '../../src/proxy/credential-cache';
import type { Connection } from '../../src/store';

const providers = buildProviderRegistry({ VIDEOASK_CLIENT_ID: 'id', VIDEOASK_CLIENT_SECRET: 'secret' });
const videoask = providers.require('videoask');
const MARGIN_MS = (videoask as Provider & { refreshMarginSeconds: number }).refreshMarginSeconds * 1000;

function credential(
  clock: FakeClock,
  token: string,
  expiresInMs = 3600_000,
  connectionId = 'user-1',
): ResolvedCredential {
  const connection: Connection = {
    provider: 'videoask',
    connectionId,
    authMode: 'oauth2',
    status: 'active',
    scopes: [],
    expiresAt: clock.now() + expiresInMs,
    createdAt: clock.now(),
    updatedAt: clock.now(),
    lastRefreshedAt: null,
    account: null,
    version: 1,
    credentials: { accessToken: token },
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

function setup(ttlMs = 1000, maxEntries?: number) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  let mono = 0;
  let issued = 0;
  const source = new ScriptedSource(async () => credential(clock, `token-${++issued}`));
  const cache = new CredentialCache(source, { ttlMs, clock, maxEntries, monotonicNow: () => mono });
  return { clock, source, cache, advanceMono: (ms: number) => (mono += ms) };
}

describe('CredentialCache', () => {
  it('reuses a credential within its window, then asks the source again', async () => {
    const { source, cache, advanceMono } = setup();
    expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-1');
    advanceMono(999);
    expect(cache.peek(videoask, 'user-1')?.header.value).toBe('Bearer token-1');
    expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-1');
    expect(source.gets).toBe(1);
    advanceMono(1);
    expect(cache.peek(videoask, 'user-1')).toBeUndefined();
    expect((await cache.get(videoask, 'user-1')).header.value).toBe('Bearer token-2');
    expect(source.gets).toBe(2);
  });

  it('keeps connections apart', async () => {
    const { source, cache } = setup();
    await cache.get(videoask, 'user-1');
    await cache.get(videoask, 'user-2');
    expect(source.gets).toBe(2);
  });

  it('stops reusing a credential once its token enters the refresh margin, even inside the window', async () => {
    const { clock, source, cache } = setup();
    source.next = async () => credential(clock, 'near-expiry', MARGIN_MS + 500);
    await cache.get(videoask, 'user-1');
    clock.advance(499);
    expect(cache.peek(videoask, 'user-1')).toBeDefined();
    clock.advance(1);
    expect(cache.peek(videoask, 'user-1')).toBeUndefined();
    await cache.get(videoask, 'user-1');
    expect(source.gets).toBe(2);
  });

  it('does not keep a credential that is already within the refresh margin', async () => {
    const { clock, source, cache } = setup();
    source.next = async () => credential(clock, 'inside-margin', MARGIN_MS - 1);
    await cache.get(videoask, 'user-1');
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

  it('does not store a load that an invalidation overtook', async () => {
    const { clock, source, cache } = setup();
    let release!: (c: ResolvedCredential) => void;
    source.next = () => new Promise((resolve) => (release = resolve));
    const pending = cache.get(videoask, 'user-1');
    cache.invalidate('videoask', 'user-1');
    release(credential(clock, 'stale'));
    await pending;
    expect(cache.peek(videoask, 'user-1')).toBeUndefined();
  });

  it('keeps at most maxEntries connections, dropping the oldest', async () => {
    const { cache } = setup(1000, 2);
    await cache.get(videoask, 'a');
    await cache.get(videoask, 'b');
    await cache.get(videoask, 'c');
    expect(cache.peek(videoask, 'a')).toBeUndefined();
    expect(cache.peek(videoask, 'b')).toBeDefined();
    expect(cache.peek(videoask, 'c')).toBeDefined();
  });

  it('with a window of 0, always asks the source', async () => {
    const { source, cache } = setup(0);
    await cache.get(videoask, 'user-1');
    await cache.get(videoask, 'user-1');
    expect(source.gets).toBe(2);
  });
});
