import { connect, createServer, type Server, type Socket } from 'node:net';
import { FakeClock } from '../../src/clock';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient } from '../../src/store/redis-client';
import { testEncryptionKey } from '../helpers/keys';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { feedName } from '../helpers/redis-feed';
import { connectionInput } from '../helpers/seed';
import { FeedRecorder } from '../helpers/store-contract';

/**
 * A TCP relay to the test Redis whose open connections can be made to go silent in both
 * directions without closing: a half-open link, which only a heartbeat can notice.
 */
async function silentRelay(): Promise<{ port: number; silence(): void; close(): Promise<void> }> {
  const target = new URL(TEST_REDIS_URL);
  const pairs: Array<[Socket, Socket]> = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((downstream) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    const drop = () => {
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on('error', drop);
    upstream.on('error', drop);
    downstream.on('close', drop);
    upstream.on('close', drop);
    pairs.push([downstream, upstream]);
    sockets.add(downstream).add(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    silence: () => {
      for (const [down, up] of pairs.splice(0)) {
        down.unpipe(up);
        up.unpipe(down);
        down.pause();
        up.pause();
      }
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function openStore(url: string, prefix: string, subscriber: { name?: string; heartbeatMs?: number } = {}) {
  const client = createRedisClient({ redisUrl: url });
  client.on('error', () => {});
  return new KvStore({
    backend: new RedisBackend(client, { subscriber }),
    cipher: new CredentialCipher([testEncryptionKey()]),
    clock: new FakeClock(Date.now()),
    prefix,
  });
}

async function pubsubNames(): Promise<string[]> {
  const raw = rawRedis();
  try {
    const list = (await raw.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
    return [...list.matchAll(/ name=(\S*) /g)].map((m) => m[1]!);
  } finally {
    raw.disconnect();
  }
}

describe('the Redis connection feed', () => {
  it('notices a subscriber link that went silent by its heartbeat, and subscribes again on a new connection', async () => {
    const relay = await silentRelay();
    const prefix = uniquePrefix('feed-heartbeat');
    const watcher = openStore(`redis://127.0.0.1:${relay.port}`, prefix, { heartbeatMs: 100 });
    const writer = openStore(TEST_REDIS_URL, prefix);
    const recorder = new FeedRecorder();
    const stop = watcher.watchConnections(recorder);
    try {
      await recorder.until('the feed to be live', () => recorder.count('confirmed') === 1);
      relay.silence();
      // No close, no error from the socket: only an unanswered PING (the command timeout) tells.
      await recorder.until('the loss', () => recorder.count('unconfirmed') === 1);
      await recorder.until('the recovery', () => recorder.count('confirmed') === 2);
      await writer.saveConnection(connectionInput({ provider: 'videoask', connectionId: 'c1', credentials: {} }));
      await recorder.until('the write', () => recorder.count('changed videoask c1') === 1);
      expect(recorder.events).toEqual(['confirmed', 'unconfirmed', 'confirmed', 'changed videoask c1']);
    } finally {
      stop();
      const raw = rawRedis();
      await deleteUnder(raw, prefix);
      raw.disconnect();
      await watcher.close();
      await writer.close();
      await relay.close();
    }
  });

  it('opens its subscriber on the first watch only, and closes it with the store', async () => {
    const name = feedName('lifecycle');
    const store = openStore(TEST_REDIS_URL, uniquePrefix('feed-life'), { name });
    let closed = false;
    try {
      expect(await store.ready(5000)).toBe(true);
      expect(await pubsubNames()).not.toContain(name);
      const recorder = new FeedRecorder();
      store.watchConnections(recorder);
      await recorder.until('the feed to be live', () => recorder.count('confirmed') === 1);
      expect(await pubsubNames()).toContain(name);
      await store.close();
      closed = true;
      // A listener still watching hears that nothing is promised any more.
      expect(recorder.events).toEqual(['confirmed', 'unconfirmed']);
      // QUIT was answered before close() resolved; the server drops the client as it answers.
      expect(await pubsubNames()).not.toContain(name);
    } finally {
      if (!closed) await store.close();
    }
  });

  it('closes its subscriber once the last listener unsubscribes', async () => {
    const name = feedName('last-listener');
    const store = openStore(TEST_REDIS_URL, uniquePrefix('feed-last'), { name });
    try {
      const a = new FeedRecorder();
      const b = new FeedRecorder();
      const stopA = store.watchConnections(a);
      await a.until('the feed to be live', () => a.count('confirmed') === 1);
      const stopB = store.watchConnections(b);
      // A second listener on a live feed is confirmed at once.
      expect(b.events).toEqual(['confirmed']);
      stopA();
      expect(await pubsubNames()).toContain(name);
      stopB();
      await pollUntil('the subscriber to be gone', async () => !(await pubsubNames()).includes(name));
    } finally {
      await store.close();
    }
  });
});

/** Polls a condition every 20 ms within a generous bound (a server-side disconnect, no event to wait on). */
async function pollUntil(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
