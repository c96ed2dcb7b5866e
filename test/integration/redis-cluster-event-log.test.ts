import type { Cluster } from 'ioredis';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient, waitForReady } from '../../src/store/redis-client';
import { eventLogContract } from '../helpers/event-log-contract';
import { testEncryptionKey } from '../helpers/keys';
import { uniquePrefix } from '../helpers/redis';
import { clusterDeleteUnder, startRedisCluster, type RedisClusterFixture } from '../helpers/redis-cluster';

let fixture: RedisClusterFixture;

beforeAll(async () => {
  fixture = await startRedisCluster(3);
}, 20_000);
afterAll(async () => fixture?.stop());

eventLogContract('redis cluster', async (clock, limits) => {
  const prefix = uniquePrefix('cluster-events');
  const client = createRedisClient({ redisClusterNodes: fixture.nodes }) as Cluster;
  client.on('error', () => {});
  if (!(await waitForReady(client, 5000))) throw new Error('the cluster client did not become ready');
  const store = new KvStore({
    backend: new RedisBackend(client),
    cipher: new CredentialCipher([testEncryptionKey()]),
    clock,
    prefix,
    eventLimits: limits,
  });
  return {
    store,
    cleanup: async () => {
      await clusterDeleteUnder(client, prefix);
      await store.close();
    },
  };
});
