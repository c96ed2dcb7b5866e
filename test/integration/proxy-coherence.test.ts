import { createApp, type LatchkeyApp } from '../../src/app';
import { systemClock } from '../../src/clock';
import { createLogger } from '../../src/logger';
import { CredentialCipher, type Store } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient } from '../../src/store/redis-client';
import { startHarness, type Harness } from '../helpers/harness';
import { apiAuth, apiRequestsOf, listen, rawRequest, seedVideoAsk, type Listening } from '../helpers/proxy-harness';
import { rawRedis, TEST_REDIS_URL } from '../helpers/redis';
import { feedName, killPubSubConnection } from '../helpers/redis-feed';
import { FeedRecorder } from '../helpers/store-contract';

/**
 * Issue 13 part 4 through the whole app: two instances on one Redis, each with its own store,
 * credential cache and pub/sub feed. A refresh or delete on one is seen by the other on its next
 * call; a lost pub/sub connection makes the other re-read before it uses what it cached.
 */
describe('two Latchkey instances keep one coherent view of credentials', () => {
  let h: Harness;
  let a: Listening;
  let b: Listening;
  let appB: LatchkeyApp;
  let storeB: KvStore;
  /** Reads of connections by instance B's credential source, to show what came from its cache. */
  let readsB = 0;
  const feedB = new FeedRecorder();
  const nameB = feedName('instance-b');
  let unwatch: () => void;

  beforeAll(async () => {
    h = await startHarness();
    a = await listen(h.app);
    const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
    client.on('error', () => {});
    storeB = new KvStore({
      backend: new RedisBackend(client, { subscriber: { name: nameB } }),
      cipher: new CredentialCipher(h.config.tokenEncryptionKeys),
      clock: systemClock,
      prefix: h.config.redisKeyPrefix,
    });
    expect(await storeB.ready(5000)).toBe(true);
    const counted = Object.create(storeB) as Store;
    counted.getConnection = (provider, connectionId) => {
      readsB++;
      return storeB.getConnection(provider, connectionId);
    };
    appB = createApp({ config: h.config, store: counted, providers: h.providers, logger: createLogger('silent') });
    // Registered after the app's cache: once this watcher has heard something, the cache has too.
    unwatch = storeB.watchConnections(feedB);
    await feedB.until('instance B to be subscribed', () => feedB.count('confirmed') >= 1);
    b = await listen(appB.handler);
  });

  afterAll(async () => {
    unwatch?.();
    await b?.close();
    await appB?.close();
    await storeB?.close();
    await a?.close();
    await h?.close();
  });

  const callB = (id: string) =>
    rawRequest(b.port, { path: '/proxy/videoask/me', headers: { ...apiAuth, 'connection-id': id } });
  const heardChangeOf = (id: string) => feedB.count(`changed videoask ${id}`);

  it('serves repeated calls from memory, without a store read per call', async () => {
    await seedVideoAsk(h, 'cached-1');
    await feedB.until('the seed to be announced', () => heardChangeOf('cached-1') >= 1);
    const before = readsB;
    for (let i = 0; i < 5; i++) expect((await callB('cached-1')).status).toBe(200);
    expect(readsB - before).toBe(1);
  });

  it('uses the token a refresh on the other instance stored on its very next call, with no stale attempt', async () => {
    const seeded = await seedVideoAsk(h, 'refreshed-1');
    expect((await callB('refreshed-1')).status).toBe(200);
    const heard = heardChangeOf('refreshed-1');
    const refreshed = await rawRequest(a.port, {
      method: 'POST',
      path: '/connections/videoask/refreshed-1/refresh',
      headers: apiAuth,
    });
    expect(refreshed.status).toBe(200);
    const stored = await h.store.getConnection('videoask', 'refreshed-1');
    expect(stored!.credentials.accessToken).not.toBe(seeded.accessToken);
    await feedB.until('B to hear the refresh', () => heardChangeOf('refreshed-1') > heard);

    const seenBefore = apiRequestsOf(h).length;
    expect((await callB('refreshed-1')).status).toBe(200);
    const calls = apiRequestsOf(h).slice(seenBefore);
    expect(calls.map((c) => c.headers.authorization)).toEqual([`Bearer ${stored!.credentials.accessToken}`]);
  });

  it('answers 404 on its next call once the other instance deleted the connection, without calling the provider', async () => {
    await seedVideoAsk(h, 'deleted-1');
    expect((await callB('deleted-1')).status).toBe(200);
    const heard = heardChangeOf('deleted-1');
    expect(
      (await rawRequest(a.port, { method: 'DELETE', path: '/connections/videoask/deleted-1', headers: apiAuth }))
        .status,
    ).toBe(204);
    await feedB.until('B to hear the delete', () => heardChangeOf('deleted-1') > heard);

    const seenBefore = apiRequestsOf(h).length;
    const after = await callB('deleted-1');
    expect(after.status).toBe(404);
    expect(after.headers['latchkey-error']).toBe('connection_not_found');
    expect(apiRequestsOf(h).length).toBe(seenBefore);
  });

  it('re-reads what it cached once its pub/sub connection is lost, so a missed message cannot outlive it', async () => {
    await seedVideoAsk(h, 'feedless-1');
    expect((await callB('feedless-1')).status).toBe(200);
    const cachedReads = readsB;
    expect((await callB('feedless-1')).status).toBe(200);
    expect(readsB).toBe(cachedReads);

    const lost = feedB.count('unconfirmed');
    const raw = rawRedis();
    try {
      expect(await killPubSubConnection([raw], nameB)).toBeGreaterThan(0);
    } finally {
      raw.disconnect();
    }
    await feedB.until('B to notice the lost feed', () => feedB.count('unconfirmed') > lost);
    expect((await callB('feedless-1')).status).toBe(200);
    expect(readsB).toBeGreaterThan(cachedReads);
    // And it comes back by itself: once the feed is live again, calls are served from memory.
    await feedB.until('B to resubscribe', () => feedB.count('confirmed') >= 2);
    await callB('feedless-1');
    const settled = readsB;
    for (let i = 0; i < 3; i++) expect((await callB('feedless-1')).status).toBe(200);
    expect(readsB).toBe(settled);
  });
});
