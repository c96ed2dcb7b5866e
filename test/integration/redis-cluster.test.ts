import type { Cluster, Redis } from 'ioredis';
import { FakeClock, systemClock } from '../../src/clock';
import { createSandbox, type Sandbox } from '../../src/sandbox/sandbox';
import { AppError } from '../../src/errors';
import type { EncryptionKey } from '../../src/config';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient, waitForReady } from '../../src/store/redis-client';
import { testEncryptionKey } from '../helpers/keys';
import {
  refreshTokensSent,
  seedConnection,
  startLatchkeyProcess,
  type LatchkeyProcess,
} from '../helpers/latchkey-process';
import { uniquePrefix } from '../helpers/redis';
import {
  clusterDeleteUnder,
  clusterKeysUnder,
  startRedisCluster,
  type RedisClusterFixture,
} from '../helpers/redis-cluster';
import { FeedRecorder, storeContract } from '../helpers/store-contract';
import { connectionInput } from '../helpers/seed';
import { feedName, killPubSubConnection } from '../helpers/redis-feed';
import { dumpRedis } from '../helpers/redis-dump';

let fixture: RedisClusterFixture;

beforeAll(async () => {
  fixture = await startRedisCluster(3);
}, 20_000);
afterAll(async () => fixture?.stop());

async function openClusterStore(
  clock: FakeClock,
  prefix: string,
  subscriberName?: string,
  keys: EncryptionKey[] = [testEncryptionKey()],
) {
  const client = createRedisClient({ redisClusterNodes: fixture.nodes }) as Cluster;
  client.on('error', () => {});
  if (!(await waitForReady(client, 5000))) throw new Error('the cluster client did not become ready');
  const store = new KvStore({
    backend: new RedisBackend(client, { subscriber: { name: subscriberName } }),
    cipher: new CredentialCipher(keys),
    clock,
    prefix,
  });
  return { client, store };
}

storeContract(
  'redis cluster',
  async (clock) => {
    const prefix = uniquePrefix('cluster');
    const name = feedName('cluster');
    const key = testEncryptionKey();
    const { client, store } = await openClusterStore(clock, prefix, name, [key]);
    const peers: KvStore[] = [];
    const raw = await openClusterStore(clock, prefix, undefined, [key]);
    peers.push(raw.store);
    return {
      store,
      peer: async (keys = [key]) => {
        const opened = await openClusterStore(clock, prefix, undefined, keys);
        peers.push(opened.store);
        return opened.store;
      },
      backend: new RedisBackend(raw.client),
      prefix,
      dump: async () => dumpRedis(client, await clusterKeysUnder(client, prefix)),
      // The subscriber sits on one master, whichever: look on each.
      killFeed: async () => {
        expect(await killPubSubConnection(client.nodes('master'), name)).toBe(1);
      },
      cleanup: async () => {
        await clusterDeleteUnder(client, prefix);
        for (const peer of peers) await peer.close();
        await store.close();
      },
    };
  },
  false,
  true,
);

describe('refresh across two Latchkey processes on the cluster', () => {
  const key = testEncryptionKey();
  const prefix = uniquePrefix('cluster-procs');
  let sandbox: Sandbox;
  let sandboxServer: { url: string; close(): Promise<void> };
  let client: Cluster;
  let store: KvStore;
  let processes: LatchkeyProcess[] = [];

  beforeAll(async () => {
    sandbox = createSandbox({ clientId: 'sandbox-client', clientSecret: 'sandbox-secret', rotation: 'strict' });
    sandboxServer = await sandbox.listen();
    client = createRedisClient({ redisClusterNodes: fixture.nodes }) as Cluster;
    client.on('error', () => {});
    await waitForReady(client, 5000);
    store = new KvStore({
      backend: new RedisBackend(client),
      cipher: new CredentialCipher([key]),
      clock: systemClock,
      prefix,
    });
    const spawnOne = () =>
      startLatchkeyProcess({
        sandboxUrl: sandboxServer.url,
        prefix,
        encryptionKeys: [key],
        env: { REDIS_CLUSTER_NODES: fixture.nodesEnv, TOKEN_REQUEST_TIMEOUT_MS: '5000', LOG_LEVEL: 'error' },
      });
    processes = await Promise.all([spawnOne(), spawnOne()]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill('SIGKILL')));
    await sandboxServer?.close();
    await clusterDeleteUnder(client, prefix);
    await store.close();
  });

  it('makes exactly one token request for 200 calls spread over both processes, and stores the newest refresh token', async () => {
    const seeded = await seedConnection(store, sandbox, {
      connectionId: 'two-proc',
      expiresAt: Date.now() - 1000,
      now: Date.now(),
    });
    const answers = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const res = await processes[i % 2]!.call('GET', '/connections/videoask/two-proc/token');
        return { status: res.status, token: ((await res.json()) as { access_token?: string }).access_token };
      }),
    );
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(new Set(answers.map((a) => a.token)).size).toBe(1);
    expect(sandbox.stats.tokenRequests).toBe(1);
    expect(refreshTokensSent(sandbox)).toEqual([seeded.refreshToken]);

    const again = await processes[1]!.call('POST', '/connections/videoask/two-proc/refresh');
    expect(again.status).toBe(200);
    expect(sandbox.stats.refreshGrants).toBe(2);
  });
});

describe('the store on a Redis Cluster', () => {
  it('spreads connections over several masters while each connection keeps its keys in one slot', async () => {
    const prefix = uniquePrefix('slots');
    const clock = new FakeClock(Date.now());
    const { client, store } = await openClusterStore(clock, prefix);
    try {
      for (let i = 0; i < 12; i++) {
        await store.saveConnection(
          connectionInput(
            {
              provider: 'videoask',
              connectionId: `acct-${i}`,
              credentials: { accessToken: `at-${i}`, refreshToken: `rt-${i}` },
            },
            clock.now(),
          ),
        );
      }
      const keys = await clusterKeysUnder(client, prefix);
      const slots = new Map<string, number>();
      for (const key of keys) slots.set(key, Number(await client.cluster('KEYSLOT', key)));
      for (let i = 0; i < 12; i++) {
        const main = `${prefix}conn:{videoask:acct-${i}}`;
        expect(slots.get(`${main}:at`)).toBe(slots.get(main));
      }
      const mastersHolding = new Set<string>();
      for (const node of client.nodes('master')) {
        if ((await node.dbsize()) > 0) mastersHolding.add(`${node.options.host}:${node.options.port}`);
      }
      expect(mastersHolding.size).toBeGreaterThan(1);
      expect((await store.listConnections('videoask')).length).toBe(12);
    } finally {
      await clusterDeleteUnder(client, prefix);
      await store.close();
    }
  });

  it('announces writes made on every master to a feed subscribed on one of them', async () => {
    const prefix = uniquePrefix('feed-slots');
    const name = feedName('cluster-slots');
    const clock = new FakeClock(Date.now());
    const writer = await openClusterStore(clock, prefix);
    const watcher = await openClusterStore(clock, prefix, name);
    const recorder = new FeedRecorder();
    const stop = watcher.store.watchConnections(recorder);
    try {
      await recorder.until('the feed to be live', () => recorder.count('confirmed') > 0);
      const ids = Array.from({ length: 12 }, (_, i) => `acct-${i}`);
      for (const connectionId of ids) {
        await writer.store.saveConnection(
          connectionInput({ provider: 'videoask', connectionId, credentials: { accessToken: 'at' } }, clock.now()),
        );
      }
      // Some of those writes live on a master other than the one the feed listens on.
      const masters = watcher.client.nodes('master');
      const listening: Redis[] = [];
      for (const node of masters) {
        if (((await node.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string).includes(` name=${name} `))
          listening.push(node);
      }
      expect(listening.length).toBe(1);
      const others = masters.filter((node) => node !== listening[0]);
      const elsewhere: string[] = [];
      for (const id of ids) {
        // A master that does not own the key answers MOVED.
        const owned = await Promise.all(
          others.map((node) => node.exists(`${prefix}conn:{videoask:${id}}`).catch(() => 0)),
        );
        if (owned.some(Boolean)) elsewhere.push(id);
      }
      expect(elsewhere.length).toBeGreaterThan(0);
      await recorder.until('every write', () => ids.every((id) => recorder.count(`changed videoask ${id}`) === 1));
    } finally {
      stop();
      await clusterDeleteUnder(writer.client, prefix);
      await watcher.store.close();
      await writer.store.close();
    }
  });

  it('answers store_unavailable within the command timeout when every master hangs', async () => {
    const { store } = await openClusterStore(new FakeClock(Date.now()), uniquePrefix('hung'));
    // Connected to the master of that slot first, so that it is the command that meets the hang.
    expect(await store.getConnection('videoask', 'anyone')).toBeNull();
    fixture.freeze();
    try {
      const attempt = store.getConnection('videoask', 'anyone');
      await expect(attempt).rejects.toBeInstanceOf(AppError);
      await expect(attempt).rejects.toMatchObject({ code: 'store_unavailable' });
    } finally {
      fixture.thaw();
      await store.close();
    }
  });

  it('refuses a command sent before the cluster is ready instead of queueing it', async () => {
    const client = createRedisClient({ redisClusterNodes: fixture.nodes }) as Cluster;
    client.on('error', () => {});
    const store = new KvStore({
      backend: new RedisBackend(client),
      cipher: new CredentialCipher([testEncryptionKey()]),
      clock: new FakeClock(Date.now()),
      prefix: uniquePrefix('early'),
    });
    try {
      expect(client.status).not.toBe('ready');
      await expect(store.getConnection('videoask', 'anyone')).rejects.toMatchObject({ code: 'store_unavailable' });
    } finally {
      await waitForReady(client, 5000);
      await store.close();
    }
  });
});
