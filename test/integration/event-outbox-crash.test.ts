import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { startOutboxRecovery } from '../../src/store/outbox-recovery';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient } from '../../src/store/redis-client';
import { testEncryptionKey } from '../helpers/keys';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';

/**
 * A process SIGKILLed between a connection's write and the move of its event to the log, on a
 * real Redis: the change is there, its event waits in the connection's outbox, and recovery on
 * another instance moves it once, with the id it was written with, to the log and the webhook group.
 */

const ROOT = resolve(__dirname, '../..');

/** Runs the crash writer until it says it wrote, SIGKILLs it, and returns the event id it wrote. */
function writeAndDie(prefix: string, connectionId: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/outbox-crash-writer.ts'], {
    cwd: ROOT,
    env: { ...process.env, REDIS_URL: TEST_REDIS_URL, PREFIX: prefix, CONNECTION_ID: connectionId },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`the writer never wrote: ${output}`));
    }, 30_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const id = /written (evt_\S+)\n/.exec(output)?.[1];
      if (!id) return;
      clearTimeout(timer);
      child.once('exit', (_code, signal) => (signal === 'SIGKILL' ? done(id) : fail(new Error(`exited: ${signal}`))));
      child.kill('SIGKILL');
    };
    child.once('exit', (code) => {
      if (!/written evt_/.test(output)) fail(new Error(`the writer exited (${code}) before writing: ${output}`));
    });
    child.stdout.on('data', read);
    child.stderr.on('data', read);
  });
}

describe('the event outbox on a real Redis', () => {
  const prefix = uniquePrefix('outbox-crash');
  const raw = rawRedis();
  const stores: KvStore[] = [];
  const instance = async () => {
    const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
    client.on('error', () => {});
    const store = new KvStore({
      backend: new RedisBackend(client),
      cipher: new CredentialCipher([testEncryptionKey()]),
      clock: { now: () => Date.now() },
      prefix,
    });
    stores.push(store);
    if (!(await store.ready(5000))) throw new Error('Redis did not become ready');
    return store;
  };

  afterAll(async () => {
    await deleteUnder(raw, prefix);
    raw.disconnect();
    await Promise.all(stores.map((s) => s.close()));
  });

  it('is moved by recovery once, with the id it was written with, and reaches the webhook group', async () => {
    const a = await instance();
    const b = await instance();
    const consumer = await a.eventLog.consumer('survivor');
    try {
      const eventId = await writeAndDie(prefix, 'crash-1');

      expect(await a.getConnectionInfo('videoask', 'crash-1')).toMatchObject({ status: 'active' });
      expect((await a.eventLog.list({ limit: 10 })).events).toEqual([]);
      const entry = await raw.hget(`${prefix}conn:{videoask:crash-1}:outbox`, eventId);
      expect(JSON.parse(entry!)).toMatchObject({ id: eventId, type: 'connection.created', connectionId: 'crash-1' });

      // Two instances recover at once, then again: the event is moved once.
      const recoveries = [a, b].map((store) => startOutboxRecovery(store, { olderThanMs: 0, intervalMs: 3600_000 }));
      await Promise.all(recoveries.map((r) => r.runNow()));
      await Promise.all(recoveries.map((r) => r.runNow()));
      await Promise.all(recoveries.map((r) => r.close()));

      const logged = (await a.eventLog.list({ limit: 10 })).events;
      expect(logged.map((e) => [e.id, e.type, e.connectionId])).toEqual([[eventId, 'connection.created', 'crash-1']]);
      const own = (await a.eventLog.list({ limit: 10, provider: 'videoask', connectionId: 'crash-1' })).events;
      expect(own.map((e) => e.id)).toEqual([eventId]);
      expect(await raw.exists(`${prefix}conn:{videoask:crash-1}:outbox`)).toBe(0);
      expect(await raw.zcard(`${prefix}{events}:outbox-pending`)).toBe(0);

      const delivered = await consumer.read(10, 1000);
      expect(delivered.map((d) => d.event.id)).toEqual([eventId]);
    } finally {
      await consumer.close();
    }
  });

  it('leaves a young mark alone: it may be a writer still relaying', async () => {
    const a = await instance();
    const eventId = await writeAndDie(prefix, 'crash-2');
    const recovery = startOutboxRecovery(a, { intervalMs: 3600_000 });
    await recovery.runNow();
    await recovery.close();
    expect(await raw.hexists(`${prefix}conn:{videoask:crash-2}:outbox`, eventId)).toBe(1);
    expect((await a.eventLog.list({ limit: 10, provider: 'videoask', connectionId: 'crash-2' })).events).toEqual([]);
  });

  it('refuses a write whose mark is older than the bound, and writes nothing: recovery may have dropped that mark', async () => {
    const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
    client.on('error', () => {});
    const backend = new RedisBackend(client);
    try {
      expect(await backend.ready(5000)).toBe(true);
      const mainKey = `${prefix}conn:{videoask:stalled}`;
      const outbox = `${mainKey}:outbox`;
      const write = (markedAt: number) =>
        backend.writeConnection({
          mainKey,
          accessKey: `${mainKey}:at`,
          expectedVersion: null,
          minVersion: 1,
          data: '{}',
          mainTtlMs: null,
          access: null,
          accessTtlMs: null,
          notice: { channel: `${prefix}connection-changes`, message: 'videoask:stalled' },
          outbox: { key: outbox, field: 'evt_stalled', value: '{}', markedAt, freshMs: 10_000 },
        });
      const [seconds] = await raw.time();
      await expect(write(Number(seconds) * 1000 - 60_000)).rejects.toMatchObject({ code: 'store_unavailable' });
      expect(await raw.exists(mainKey, outbox)).toBe(0);
      expect(await write(Number(seconds) * 1000)).toBeGreaterThan(0);
      expect(await raw.hget(outbox, 'evt_stalled')).toBe('{}');
    } finally {
      await backend.close();
    }
  });
});
