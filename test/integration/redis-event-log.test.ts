import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient } from '../../src/store/redis-client';
import { eventLogContract } from '../helpers/event-log-contract';
import { testEncryptionKey } from '../helpers/keys';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';

eventLogContract('redis', async (clock, limits) => {
  const prefix = uniquePrefix('events');
  const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
  client.on('error', () => {});
  const store = new KvStore({
    backend: new RedisBackend(client),
    cipher: new CredentialCipher([testEncryptionKey()]),
    clock,
    prefix,
    eventLimits: limits,
  });
  if (!(await store.ready(5000))) throw new Error('Redis did not become ready');
  return {
    store,
    cleanup: async () => {
      const raw = rawRedis();
      await deleteUnder(raw, prefix);
      raw.disconnect();
      await store.close();
    },
  };
});
