import type { EncryptionKey } from '../../src/config';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient, waitForReady } from '../../src/store/redis-client';
import { testEncryptionKey } from '../helpers/keys';
import { deleteUnder, keysUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { storeContract } from '../helpers/store-contract';
import { FakeClock } from '../../src/clock';
import { connectionInput } from '../helpers/seed';
import { feedName, killPubSubConnection } from '../helpers/redis-feed';
import { dumpRedis } from '../helpers/redis-dump';

storeContract(
  'redis',
  async (clock) => {
    const prefix = uniquePrefix('store');
    const name = feedName('store');
    const key = testEncryptionKey();
    const opened: Array<{ client: ReturnType<typeof createRedisClient>; store: KvStore }> = [];
    const open = async (subscriberName?: string, keys: EncryptionKey[] = [key]) => {
      const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
      client.on('error', () => {});
      const store = new KvStore({
        backend: new RedisBackend(client, { subscriber: { name: subscriberName } }),
        cipher: new CredentialCipher(keys),
        clock,
        prefix,
      });
      opened.push({ client, store });
      if (!(await store.ready(5000))) throw new Error('Redis did not become ready');
      return store;
    };
    const store = await open(name);
    const raw = rawRedis();
    const backendClient = createRedisClient({ redisUrl: TEST_REDIS_URL });
    if (!(await waitForReady(backendClient, 5000))) throw new Error('Redis did not become ready');
    return {
      store,
      peer: (keys) => open(undefined, keys),
      backend: new RedisBackend(backendClient),
      prefix,
      dump: async () => dumpRedis(raw, await keysUnder(raw, prefix)),
      killFeed: async () => {
        expect(await killPubSubConnection([raw], name)).toBe(1);
      },
      cleanup: async () => {
        await deleteUnder(raw, prefix);
        raw.disconnect();
        await backendClient.quit();
        for (const o of opened) await o.store.close();
      },
    };
  },
  false,
  true,
);

describe('redis store at rest', () => {
  it('keeps no credential in plain text and puts every key under the prefix with a per-connection hash tag', async () => {
    const prefix = uniquePrefix('rest');
    const clock = new FakeClock(Date.now());
    const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
    const store = new KvStore({
      backend: new RedisBackend(client),
      cipher: new CredentialCipher([testEncryptionKey()]),
      clock,
      prefix,
    });
    const raw = rawRedis();
    try {
      await new Promise((r) => (client.status === 'ready' ? r(null) : client.once('ready', r)));
      await store.saveConnection(
        connectionInput(
          {
            provider: 'videoask',
            connectionId: 'acct-9',
            credentials: { accessToken: 'canary-access-7f3a', refreshToken: 'canary-refresh-91bc' },
          },
          clock.now(),
        ),
      );
      const keys = await keysUnder(raw, prefix);
      // The listing index shares one hash tag of its own, {idx}, and holds no credential either.
      const index = ['entries', 'counts', 'all', 'p:videoask', 's:active', 'ps:videoask:active', 'q', 'q:videoask'];
      expect(keys.sort()).toEqual(
        [
          `${prefix}conn:{videoask:acct-9}`,
          `${prefix}conn:{videoask:acct-9}:at`,
          `${prefix}connections`,
          ...index.map((name) => `${prefix}idx:{idx}:${name}`),
          // The keep-alive index: when the connection falls due, in the {ka} slot.
          `${prefix}ka:{ka}:p:videoask`,
        ].sort(),
      );
      for (const key of keys) {
        const type = await raw.type(key);
        const dump =
          type === 'hash'
            ? JSON.stringify(await raw.hgetall(key))
            : type === 'set'
              ? (await raw.smembers(key)).join()
              : type === 'zset'
                ? (await raw.zrange(key, 0, -1)).join()
                : await raw.get(key);
        expect(dump).not.toContain('canary-access');
        expect(dump).not.toContain('canary-refresh');
      }
    } finally {
      await deleteUnder(raw, prefix);
      raw.disconnect();
      await store.close();
    }
  });

  it('reads values sealed with an older key after a new first key is added', async () => {
    const prefix = uniquePrefix('rotate');
    const clock = new FakeClock(Date.now());
    const oldKey = testEncryptionKey('old');
    const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
    const before = new KvStore({
      backend: new RedisBackend(client),
      cipher: new CredentialCipher([oldKey]),
      clock,
      prefix,
    });
    const after = new KvStore({
      backend: new RedisBackend(client),
      cipher: new CredentialCipher([testEncryptionKey('new'), oldKey]),
      clock,
      prefix,
    });
    const raw = rawRedis();
    try {
      await new Promise((r) => (client.status === 'ready' ? r(null) : client.once('ready', r)));
      const input = {
        provider: 'videoask',
        connectionId: 'r',
        authMode: 'oauth2' as const,
        status: 'active' as const,
        scopes: [],
        expiresAt: null,
        createdAt: 1,
        updatedAt: 1,
        lastRefreshedAt: null,
        account: null,
        credentials: { accessToken: 'a', refreshToken: 'r' },
      };
      await before.saveConnection(input);
      expect((await after.getConnection('videoask', 'r'))?.credentials.refreshToken).toBe('r');
      await after.saveConnection(input);
      expect(await raw.hget(`${prefix}conn:{videoask:r}`, 'd')).toContain('"v1.new.');
    } finally {
      await deleteUnder(raw, prefix);
      raw.disconnect();
      await client.quit();
    }
  });
});
