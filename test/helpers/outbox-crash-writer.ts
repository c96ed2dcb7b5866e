/**
 * A writer that dies between its write and the move of the write's event to the log: run as
 * `node --import tsx test/helpers/outbox-crash-writer.ts` with REDIS_URL, PREFIX and CONNECTION_ID.
 * It saves a connection with `connection.created`, prints `written <event id>` once the write's
 * script has returned (the relay has started and never finishes), and waits to be SIGKILLed.
 */
import { systemClock } from '../../src/clock';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient } from '../../src/store/redis-client';
import { testEncryptionKey } from './keys';
import { connectionInput } from './seed';

async function main(): Promise<void> {
  const client = createRedisClient({ redisUrl: process.env.REDIS_URL! });
  const store = new KvStore({
    backend: new RedisBackend(client),
    cipher: new CredentialCipher([testEncryptionKey()]),
    clock: systemClock,
    prefix: process.env.PREFIX!,
  });
  if (!(await store.ready(5000))) throw new Error('Redis did not become ready');
  // The relay's first step: reached only after the write's script returned.
  store.eventLog.appendRecorded = (event) => {
    process.stdout.write(`written ${event.id}\n`);
    return new Promise<void>(() => {});
  };
  await store.saveConnection(
    connectionInput({
      provider: 'videoask',
      connectionId: process.env.CONNECTION_ID!,
      credentials: { accessToken: 'at-crash', refreshToken: 'rt-crash' },
    }),
    { type: 'connection.created' },
  );
}

void main();
