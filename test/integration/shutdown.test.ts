import { FakeClock } from '../../src/clock';
import { createSandbox, type Sandbox } from '../../src/sandbox/sandbox';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient, waitForReady } from '../../src/store/redis-client';
import { testEncryptionKey } from '../helpers/keys';
import { startProviderGate, type Hold, type ProviderGate } from '../helpers/provider-gate';
import {
  PROCESS_API_KEY,
  seedConnection,
  startLatchkeyProcess,
  waitUntil,
  type LatchkeyProcess,
} from '../helpers/latchkey-process';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';

/**
 * SIGTERM on a real Latchkey process (CONTRACT "Operations"): stop accepting, drain (bounded),
 * close Redis, exit 0. The process reaches the sandbox through a gate, so a proxied call stays in
 * flight for as long as the test needs, not for a fixed time a loaded machine can outrun.
 */
describe('graceful shutdown of a Latchkey process', () => {
  const key = testEncryptionKey();
  let sandbox: Sandbox;
  let sandboxServer: { url: string; close(): Promise<void> };
  let gate: ProviderGate;
  let slow: Hold;
  let store: KvStore;
  let prefix: string;
  let latchkey: LatchkeyProcess | undefined;

  beforeAll(async () => {
    sandbox = createSandbox({ clientId: 'sandbox-client', clientSecret: 'sandbox-secret' });
    sandboxServer = await sandbox.listen();
    gate = await startProviderGate(sandboxServer.url);
  });
  beforeEach(async () => {
    sandbox.reset();
    // Every call to the provider's /slow waits at the gate until the test releases it.
    slow = gate.hold({ match: (req) => (req.url ?? '').startsWith('/slow'), stage: 'request' });
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
    await slow.release();
    const raw = rawRedis();
    await deleteUnder(raw, prefix);
    raw.disconnect();
    await store.close();
  });
  afterAll(async () => {
    await gate.close();
    await sandboxServer.close();
  });

  const start = (shutdownTimeoutMs: number) =>
    startLatchkeyProcess({
      sandboxUrl: gate.url,
      prefix,
      encryptionKeys: [key],
      env: { SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs), LOG_LEVEL: 'info' },
    });

  /** A proxied call to the sandbox's /slow route: in flight until the test releases it at the gate. */
  const slowCall = (p: LatchkeyProcess) =>
    fetch(`${p.url}/proxy/videoask/slow?ms=1`, {
      headers: { Authorization: `Bearer ${PROCESS_API_KEY}`, 'Connection-Id': 'slow' },
    });

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
    latchkey = await start(20_000);
    let exited = false;
    void latchkey.exited.then(() => (exited = true));
    const inFlight = slowCall(latchkey);
    await slow.arrival();

    process.kill(latchkey.pid, 'SIGTERM');
    await waitUntil(() => refusesConnections(latchkey!), 10_000);
    // Refused while still running: the drain waits for the call the gate holds, well inside its bound.
    expect(exited).toBe(false);
    expect(slow.count).toBe(1);
    await slow.release();

    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.headers.get('connection')).toBe('close');
    expect(await answer.json()).toMatchObject({ waited_ms: 1 });

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
    const inFlight = slowCall(latchkey).then(
      (res) => res.text().then(() => 'answered'),
      () => 'cut',
    );
    await slow.arrival(); // and never released: the call outlives any bound

    process.kill(latchkey.pid, 'SIGTERM');
    expect(await latchkey.exited).toEqual({ code: 0, signal: null });
    expect(await inFlight).toBe('cut');
    const messages = linesOf(latchkey).map((l) => l.msg);
    expect(messages).toContain('Shutdown: drain bound reached; closing the connections still open');
    expect(messages).toContain('Shutdown: store closed');
  });
});
