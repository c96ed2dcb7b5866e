import axios from 'axios';
import { createCredentialSource, type CredentialSource } from '../../src/client';
import { CredentialCache } from '../../src/client/credential-cache';
import { FakeClock, systemClock, type Clock } from '../../src/clock';
import { parseConfig } from '../../src/config';
import { noopEvents } from '../../src/events';
import { createLogger } from '../../src/logger';
import { createMetrics } from '../../src/metrics';
import { buildProviderRegistry, type Provider } from '../../src/providers/registry';
import { videoaskSandboxSource } from '../../src/sandbox/provider-entry';
import { createSandbox, type Sandbox } from '../../src/sandbox/sandbox';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient } from '../../src/store/redis-client';
import { testEncryptionKey } from '../helpers/keys';
import { OwnRedis } from '../helpers/own-redis';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { feedName, killPubSubConnection } from '../helpers/redis-feed';
import { connectionInput, seedOAuthConnection } from '../helpers/seed';
import { FeedRecorder } from '../helpers/store-contract';

const HOUR = 3600_000;
const key = testEncryptionKey();
const env = {
  NODE_ENV: 'test',
  VIDEOASK_CLIENT_ID: 'sandbox-client',
  VIDEOASK_CLIENT_SECRET: 'sandbox-secret',
  LOG_LEVEL: 'silent',
};

/** A source that counts its reads, to show which answers came from the store. */
function counting(source: CredentialSource): CredentialSource & { reads: number } {
  const counted = Object.assign(Object.create(source) as CredentialSource, { reads: 0 });
  counted.getCredential = (provider, connectionId) => {
    counted.reads++;
    return source.getCredential(provider, connectionId);
  };
  return counted;
}

/** What one Latchkey instance holds: its own Redis client, store, credential source and cache. */
interface Instance {
  store: KvStore;
  source: CredentialSource & { reads: number };
  cache: CredentialCache;
  /** Watches the same feed, registered after the cache: when it has heard something, the cache has. */
  recorder: FeedRecorder;
  feedName: string;
  close(): Promise<void>;
}

async function openInstance(options: {
  url: string;
  prefix: string;
  clock?: Clock;
  degradedMode?: boolean;
}): Promise<Instance> {
  const clock = options.clock ?? systemClock;
  const client = createRedisClient({ redisUrl: options.url });
  client.on('error', () => {});
  const name = feedName('cache');
  const store = new KvStore({
    backend: new RedisBackend(client, { subscriber: { name } }),
    cipher: new CredentialCipher([key]),
    clock,
    prefix: options.prefix,
  });
  if (!(await store.ready(5000))) throw new Error('Redis did not become ready');
  const source = counting(
    createCredentialSource({
      config: parseConfig(env).config,
      store,
      clock,
      http: axios.create(),
      events: noopEvents,
      logger: createLogger('silent'),
      metrics: createMetrics(),
    }),
  );
  const cache = new CredentialCache(source, { store, clock, degradedMode: options.degradedMode });
  const recorder = new FeedRecorder();
  const unwatch = store.watchConnections(recorder);
  await recorder.until('the feed to be live', () => recorder.count('confirmed') === 1);
  return {
    store,
    source,
    cache,
    recorder,
    feedName: name,
    close: async () => {
      unwatch();
      cache.close();
      await store.close();
    },
  };
}

/** Resolves once `instance` has heard one more change of the connection than it had when called. */
function nextChange(instance: Instance, connectionId: string): Promise<void> {
  const event = `changed videoask ${connectionId}`;
  const before = instance.recorder.count(event);
  return instance.recorder.until(`a change of ${connectionId}`, () => instance.recorder.count(event) > before);
}

describe('the credential cache across two instances on one Redis', () => {
  let sandbox: Sandbox;
  let sandboxServer: { url: string; close(): Promise<void> };
  let videoask: Provider;
  let prefix: string;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    sandbox = createSandbox({ clientId: 'sandbox-client', clientSecret: 'sandbox-secret' });
    sandboxServer = await sandbox.listen();
    videoask = buildProviderRegistry(env, [videoaskSandboxSource(sandboxServer.url)]).require('videoask');
  });
  afterAll(async () => sandboxServer?.close());

  beforeEach(async () => {
    prefix = uniquePrefix('cache-coherence');
    a = await openInstance({ url: TEST_REDIS_URL, prefix });
    b = await openInstance({ url: TEST_REDIS_URL, prefix });
  });
  afterEach(async () => {
    const raw = rawRedis();
    await deleteUnder(raw, prefix);
    raw.disconnect();
    await a?.close();
    await b?.close();
  });

  it('a refresh on one instance: the other stops using the old token and reads the new one', async () => {
    const seeded = await seedOAuthConnection(a.store, sandbox, { connectionId: 'c1' });
    expect((await b.cache.get(videoask, 'c1')).connection.credentials.accessToken).toBe(seeded.accessToken);
    expect(b.cache.peek(videoask, 'c1')).toBeDefined();

    const heard = nextChange(b, 'c1');
    const refreshed = await a.cache.notifying().forceRefresh(videoask, 'c1');
    await heard;
    expect(refreshed.credentials.accessToken).not.toBe(seeded.accessToken);
    expect(b.cache.peek(videoask, 'c1')).toBeUndefined();
    const reads = b.source.reads;
    expect((await b.cache.get(videoask, 'c1')).connection.credentials.accessToken).toBe(
      refreshed.credentials.accessToken,
    );
    expect(b.source.reads).toBe(reads + 1);
    expect(b.cache.peek(videoask, 'c1')?.connection.credentials.accessToken).toBe(refreshed.credentials.accessToken);
  });

  it('a change written to the store by one instance reaches the other (here: reauth_required)', async () => {
    const seeded = await seedOAuthConnection(a.store, sandbox, { connectionId: 'c2' });
    await b.cache.get(videoask, 'c2');
    const heard = nextChange(b, 'c2');
    const { version: _version, ...input } = seeded.connection;
    await a.store.updateConnection({ ...input, status: 'reauth_required' }, seeded.connection.version);
    await heard;
    expect(b.cache.peek(videoask, 'c2')).toBeUndefined();
    await expect(b.cache.get(videoask, 'c2')).rejects.toMatchObject({ code: 'reauth_required' });
  });

  it('a delete on one instance: the other answers connection_not_found on its next call', async () => {
    await seedOAuthConnection(a.store, sandbox, { connectionId: 'c3' });
    await b.cache.get(videoask, 'c3');
    const heard = nextChange(b, 'c3');
    await a.store.deleteConnection('videoask', 'c3');
    await heard;
    expect(b.cache.peek(videoask, 'c3')).toBeUndefined();
    await expect(b.cache.get(videoask, 'c3')).rejects.toMatchObject({ code: 'connection_not_found' });
  });

  it('a killed pub/sub connection leaves every entry unconfirmed, and each is read again before use', async () => {
    await seedOAuthConnection(a.store, sandbox, { connectionId: 'k1' });
    await seedOAuthConnection(a.store, sandbox, { connectionId: 'k2' });
    await b.cache.get(videoask, 'k1');
    await b.cache.get(videoask, 'k2');
    expect(b.cache.peek(videoask, 'k1')).toBeDefined();
    expect(b.cache.peek(videoask, 'k2')).toBeDefined();

    const raw = rawRedis();
    try {
      expect(await killPubSubConnection([raw], b.feedName)).toBe(1);
    } finally {
      raw.disconnect();
    }
    // Written while b's feed is being re-established: b may well never hear of it.
    const refreshed = await a.cache.notifying().forceRefresh(videoask, 'k2');
    await b.recorder.until('the loss', () => b.recorder.count('unconfirmed') === 1);
    expect(b.cache.peek(videoask, 'k1')).toBeUndefined();
    expect(b.cache.peek(videoask, 'k2')).toBeUndefined();
    await b.recorder.until('the recovery', () => b.recorder.count('confirmed') === 2);
    // Back, yet nothing read before the loss is trusted.
    expect(b.cache.peek(videoask, 'k1')).toBeUndefined();
    expect(b.cache.peek(videoask, 'k2')).toBeUndefined();

    const reads = b.source.reads;
    expect((await b.cache.get(videoask, 'k2')).connection.credentials.accessToken).toBe(
      refreshed.credentials.accessToken,
    );
    await b.cache.get(videoask, 'k1');
    expect(b.source.reads).toBe(reads + 2);
    expect(b.cache.peek(videoask, 'k1')).toBeDefined();
    expect(b.cache.peek(videoask, 'k2')).toBeDefined();
  });
});

describe('the credential cache in degraded mode during a Redis outage', () => {
  let redis: OwnRedis;
  let clock: FakeClock;
  let videoask: Provider;
  let degraded: Instance;
  let strict: Instance;

  beforeAll(async () => {
    redis = await OwnRedis.start();
  });
  afterAll(async () => {
    await degraded?.close();
    await strict?.close();
    await redis?.destroy();
  });

  it('serves unexpired cached credentials, refuses everything else with store_unavailable, and recovers', async () => {
    // No token request may happen here: the token endpoint is a closed port.
    videoask = buildProviderRegistry(env, [videoaskSandboxSource('http://127.0.0.1:9')]).require('videoask');
    const margin = (videoask as Provider & { refreshMarginSeconds: number }).refreshMarginSeconds * 1000;
    clock = new FakeClock(Date.now());
    const prefix = uniquePrefix('cache-degraded');
    degraded = await openInstance({ url: redis.url, prefix, clock });
    strict = await openInstance({ url: redis.url, prefix, clock, degradedMode: false });
    const seed = (connectionId: string, expiresInMs: number) =>
      degraded.store.saveConnection(
        connectionInput(
          {
            provider: 'videoask',
            connectionId,
            expiresAt: clock.now() + expiresInMs,
            credentials: { accessToken: `at-${connectionId}`, refreshToken: `rt-${connectionId}` },
          },
          clock.now(),
        ),
      );
    await seed('cached', HOUR);
    await seed('short', margin + 60_000);
    await seed('uncached', HOUR);
    for (const id of ['cached', 'short']) {
      await degraded.cache.get(videoask, id);
      await strict.cache.get(videoask, id);
    }

    await redis.stop();
    await degraded.recorder.until('the loss of the feed', () => degraded.recorder.count('unconfirmed') === 1);
    await strict.recorder.until('the loss of the feed', () => strict.recorder.count('unconfirmed') === 1);
    expect(degraded.cache.peek(videoask, 'cached')).toBeUndefined();

    // Cached and unexpired, though unconfirmed: served, and counted.
    const reads = degraded.source.reads;
    expect((await degraded.cache.get(videoask, 'cached')).header.value).toBe('Bearer at-cached');
    expect(degraded.source.reads).toBe(reads + 1);
    expect(degraded.cache.degradedAnswers).toBe(1);
    // Never cached: the store is needed, and it is down.
    await expect(degraded.cache.get(videoask, 'uncached')).rejects.toMatchObject({ code: 'store_unavailable' });
    // Within its refresh margin the short one is still served (no refresh is possible), not past its expiry.
    clock.advance(60_000);
    expect((await degraded.cache.get(videoask, 'short')).header.value).toBe('Bearer at-short');
    clock.advance(margin);
    await expect(degraded.cache.get(videoask, 'short')).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(degraded.cache.degradedAnswers).toBe(2);
    // DEGRADED_MODE=false: the same credentials are refused.
    await expect(strict.cache.get(videoask, 'cached')).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(strict.cache.degradedAnswers).toBe(0);

    await redis.start();
    await degraded.recorder.until('the feed back', () => degraded.recorder.count('confirmed') === 2);
    expect(await degraded.store.ready(10_000)).toBe(true);
    const before = degraded.source.reads;
    expect((await degraded.cache.get(videoask, 'cached')).header.value).toBe('Bearer at-cached');
    expect((await degraded.cache.get(videoask, 'uncached')).header.value).toBe('Bearer at-uncached');
    expect(degraded.source.reads).toBe(before + 2);
    expect(degraded.cache.peek(videoask, 'cached')).toBeDefined();
    expect(degraded.cache.degradedAnswers).toBe(2);
  });
});
