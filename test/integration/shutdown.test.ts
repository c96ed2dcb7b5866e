import { FakeClock } from '../../src/clock';
import { createSandbox, type Sandbox } from '../../src/sandbox/sandbox';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient, waitForReady } from '../../src/store/redis-client';
import { testEncryptionKey } from '../helpers/keys';
import {
  PROCESS_API_KEY,
  seedConnection,
  startLatchkeyProcess,
  waitUntil,
  type LatchkeyProcess,
} from '../helpers/latchkey-process';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';

/** SIGTERM on a real Latchkey process (CONTRACT "Operations"): stop accepting, drain (bounded), close Redis, exit 0. */
describe('graceful shutdown of a Latchkey process', () => {
  const key = testEncryptionKey();
  let sandbox: Sandbox;
  let sandboxServer: { url: string; close(): Promise<void> };
  let store: KvStore;
  let prefix: string;
  let latchkey: LatchkeyProcess | undefined;

  beforeAll(async () => {
    sandbox = createSandbox({ clientId: 'sandbox-client', clientSecret: 'sandbox-secret' });
    sandboxServer = await sandbox.listen();
  });
  beforeEach(async () => {
    sandbox.reset();
    prefix = uniquePrefix('shutdown');
    const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
    await waitForReady(client, 5000);
    store = new KvStore({
      backend: new RedisBackend(client),
      cipher: new CredentialCipher([key]),
      clock: new FakeClock(Date.now()),
      prefix,
    });
    await seedConnection(store, sandbox, { connectionId: 'slow', expiresAt: Date.now() + 3600_000, now: Date.now() });
  });
  afterEach(async () => {
    await latchkey?.kill('SIGKILL');
    latchkey = undefined;
    const raw = rawRedis();
    await deleteUnder(raw, prefix);
    raw.disconnect();
    await store.close();
  });
  afterAll(async () => sandboxServer.close());

  const start = (shutdownTimeoutMs: number) =>
    startLatchkeyProcess({
      sandboxUrl: sandboxServer.url,
      prefix,
      encryptionKeys: [key],
      env: { SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs), LOG_LEVEL: 'info' },
    });

  /** A proxied call to the sandbox's /slow route: in flight for `ms`. */
  const slowCall = (p: LatchkeyProcess, ms: number) =>
    fetch(`${p.url}/proxy/videoask/slow?ms=${ms}`, {
      headers: { Authorization: `Bearer ${PROCESS_API_KEY}`, 'Connection-Id': 'slow' },
    });

  const slowArrived = () => sandbox.stats.requests.some((r) => r.path === '/slow');

  /** True once a new TCP connection to the process is refused. */
  const refusesConnections = (p: LatchkeyProcess) =>
    fetch(`${p.url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
      () => false,
      (err: { cause?: { code?: string } }) => err.cause?.code === 'ECONNREFUSED',
    );

  const linesOf = (p: LatchkeyProcess) =>
    p
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg: string; reqId?: string });

  it('on SIGTERM, refuses new connections, finishes the slow proxied call in flight, closes Redis and exits 0', async () => {
    latchkey = await start(10_000);
    const inFlight = slowCall(latchkey, 1500);
    await waitUntil(slowArrived, 10_000);

    process.kill(latchkey.pid, 'SIGTERM');
    await waitUntil(() => refusesConnections(latchkey!), 5000);

    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.headers.get('connection')).toBe('close');
    expect(await answer.json()).toMatchObject({ waited_ms: 1500 });

    expect(await latchkey.exited).toEqual({ code: 0, signal: null });
    const messages = linesOf(latchkey).map((l) => l.msg);
    // The access line is written by its own 'finish' listener, so it may land either side of the drain's line.
    // Query values are never logged on the proxy, only names (SECURITY.md 22).
    expect(messages).toContain('GET /proxy/videoask/slow?ms 200');
    const order = [
      'SIGTERM received: shutting down',
      'Shutdown: no longer accepting connections; draining requests in flight',
      'Shutdown: every request in flight has finished',
      'Shutdown: store closed',
      'Shutdown complete; exiting',
    ].map((msg) => messages.indexOf(msg));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('cuts a request that outlives SHUTDOWN_TIMEOUT_MS, then still closes Redis and exits 0', async () => {
    latchkey = await start(300);
    const inFlight = slowCall(latchkey, 60_000).then(
      (res) => res.text().then(() => 'answered'),
      () => 'cut',
    );
    await waitUntil(slowArrived, 10_000);

    process.kill(latchkey.pid, 'SIGTERM');
    expect(await latchkey.exited).toEqual({ code: 0, signal: null });
    expect(await inFlight).toBe('cut');
    const messages = linesOf(latchkey).map((l) => l.msg);
    expect(messages).toContain('Shutdown: drain bound reached; closing the connections still open');
    expect(messages).toContain('Shutdown: store closed');
  });
});
