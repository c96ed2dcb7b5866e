import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { createApp, type LatchkeyApp } from '../../src/app';
import { createLogger } from '../../src/logger';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { listen, rawRequest, type Listening } from '../helpers/proxy-harness';
import { seedApiKeyConnection } from '../helpers/seed';

const UPSTREAM_TIMEOUT_MS = 3000;
const CALLER_STALL_MS = 1000;
const SOCKETS_PER_ORIGIN = 8;
/** Generous: the point is "bounded", not how fast; two shared cores run this. */
const MARGIN_MS = 2000;
const OTHER_KEY = 'second-api-key-0123456789abcdef';
const MiB = 1024 * 1024;

interface LogLine {
  level: number;
  reqId?: string;
  msg: string;
  res?: { statusCode: number };
  responseTime?: number;
}

/**
 * SECURITY.md 23 (issue 13 part 6): callers that stop reading a huge answer cannot starve anyone.
 * The wait for the provider's headers is bounded from each call's arrival, time queued for one of
 * the origin's sockets included (then 504); a caller that stops reading is cut off after
 * PROXY_CALLER_STALL_MS and its upstream request aborted, so the socket serves the next call; one
 * origin's full pool never delays another origin; and one key's calls in flight are capped (429).
 * The callers are raw sockets that send their request and never read a byte.
 */
describe('proxy: slow callers', () => {
  let h: Harness;
  let bulk: Listening;
  let other: Listening;
  const lines: LogLine[] = [];
  const callers = new Set<Socket>();
  /** Streams of the bulk upstream's /huge: in flight now, most at once, started and closed. */
  const huge = { active: 0, maxActive: 0, started: 0, closed: 0 };

  /** Conditions waited on, checked again whenever a log line or an upstream event comes. */
  const waiters = new Set<() => void>();
  const changed = () => waiters.forEach((check) => check());
  function until(condition: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!condition()) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
    });
  }

  /** Streams 256 MiB as fast as it is read (backpressure): far more than every buffer on the way holds. */
  function bulkHandler(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    if (!req.url?.startsWith('/huge')) {
      res.end('small');
      return;
    }
    huge.active++;
    huge.started++;
    huge.maxActive = Math.max(huge.maxActive, huge.active);
    res.on('close', () => {
      huge.active--;
      huge.closed++;
      changed();
    });
    changed();
    const total = 256 * MiB;
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    let written = 0;
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': total });
    const pump = () => {
      while (written < total) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  }

  /** An app of its own on the harness's store, with `overrides`, logging into {@link lines}. */
  async function startApp(overrides: Partial<Harness['config']>): Promise<{ app: LatchkeyApp; server: Listening }> {
    const app = createApp({
      config: { ...h.config, ...overrides },
      store: h.store,
      providers: h.providers,
      logger: createLogger('info', {
        write: (line: string) => {
          lines.push(JSON.parse(line) as LogLine);
          changed();
        },
      }),
    });
    return { app, server: await listen(app.handler) };
  }

  /** A caller that sends its request and never reads the answer. */
  function stallingCaller(port: number, path: string, key: string, requestId: string): Socket {
    const socket = connect(port, '127.0.0.1');
    callers.add(socket);
    socket.on('error', () => {});
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nX-Request-Id: ${requestId}\r\n\r\n`,
    );
    return socket;
  }

  const accessLinesOf = (prefix: string) => lines.filter((l) => l.reqId?.startsWith(prefix) && l.res !== undefined);
  const auth = (key: string) => ({ authorization: `Bearer ${key}` });

  beforeAll(async () => {
    bulk = await listen(bulkHandler);
    other = await listen((req, res) => {
      req.resume();
      res.end('other');
    });
    h = await startHarness({
      env: {
        CONNECTOR_API_KEYS: `${TEST_API_KEY},${OTHER_KEY}`,
        UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
        PROXY_CALLER_STALL_MS: String(CALLER_STALL_MS),
        PROXY_MAX_SOCKETS_PER_ORIGIN: String(SOCKETS_PER_ORIGIN),
      },
      providerSources: () => [
        {
          source: 'test providers',
          entries: [
            {
              id: 'bulk',
              displayName: 'Bulk',
              authMode: 'api_key',
              apiKey: { header: 'Api-Token' },
              apiBaseUrl: bulk.url,
            },
            {
              id: 'other',
              displayName: 'Other',
              authMode: 'api_key',
              apiKey: { header: 'Api-Token' },
              apiBaseUrl: other.url,
            },
          ],
        },
      ],
    });
    await seedApiKeyConnection(h.store, 'bulk', 'default', 'bulk-key');
    await seedApiKeyConnection(h.store, 'other', 'default', 'other-key');
  });

  afterEach(async () => {
    for (const socket of callers) socket.destroy();
    callers.clear();
    // Every stream the test started is over before the next one counts.
    await until(() => huge.active === 0);
    Object.assign(huge, { active: 0, maxActive: 0, started: 0, closed: 0 });
  });

  afterAll(async () => {
    await bulk.close();
    await other.close();
    await h.close();
  });

  it('bounds every wait from arrival: calls queued for a full origin get 504 in time, stalled callers are cut and free their sockets, another origin answers at once', async () => {
    const { app, server } = await startApp({ proxyMaxConcurrencyPerKey: 0 });
    try {
      const N = 300;
      for (let i = 0; i < N; i++) stallingCaller(server.port, '/proxy/bulk/huge', TEST_API_KEY, `queue-${i}`);
      // Every socket of the origin now carries an answer nobody reads.
      await until(() => huge.active === SOCKETS_PER_ORIGIN);

      // Had it queued behind the full origin's ~290 waiting calls, it would have got their 504.
      const started = Date.now();
      const elsewhere = await rawRequest(server.port, { path: '/proxy/other/anything', headers: auth(TEST_API_KEY) });
      expect(elsewhere).toMatchObject({ status: 200, body: 'other' });
      expect(Date.now() - started).toBeLessThan(UPSTREAM_TIMEOUT_MS + MARGIN_MS);

      // Each stalled caller ends: queued past its deadline (504), or served and then cut off (499).
      await until(() => accessLinesOf('queue-').length === N);
      const ended = accessLinesOf('queue-');
      const timedOut = ended.filter((l) => l.res!.statusCode === 504);
      const cut = ended.filter((l) => l.res!.statusCode === 499);
      expect(timedOut.length + cut.length).toBe(N);
      expect(timedOut.length).toBeGreaterThan(0);
      for (const line of timedOut) {
        expect(line.responseTime).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT_MS - 5);
        expect(line.responseTime).toBeLessThanOrEqual(UPSTREAM_TIMEOUT_MS + MARGIN_MS);
      }
      // Sockets freed by a cut served queued calls: more callers were served than there are sockets.
      expect(cut.length).toBeGreaterThan(SOCKETS_PER_ORIGIN);
      for (const line of cut)
        expect(line.responseTime).toBeLessThanOrEqual(UPSTREAM_TIMEOUT_MS + CALLER_STALL_MS + MARGIN_MS);
      // One warn line per caller cut off, naming that caller's request.
      const warned = lines.filter((l) => /stopped reading/.test(l.msg)).map((l) => l.reqId);
      expect(warned.sort()).toEqual(cut.map((l) => l.reqId).sort());

      // Never more upstream requests than sockets; each cut caller's request reached the provider
      // (as may one admitted on the edge of its deadline, then cut by it), and each was aborted.
      expect(huge.maxActive).toBe(SOCKETS_PER_ORIGIN);
      expect(huge.started).toBeGreaterThanOrEqual(cut.length);
      await until(() => huge.closed === huge.started);

      const again = Date.now();
      const same = await rawRequest(server.port, { path: '/proxy/bulk/small', headers: auth(TEST_API_KEY) });
      expect(same).toMatchObject({ status: 200, body: 'small' });
      expect(Date.now() - again).toBeLessThan(UPSTREAM_TIMEOUT_MS + MARGIN_MS);
    } finally {
      await server.close();
      await app.close();
    }
  });

  it('caps the calls in flight per API key: over the cap 429 with Retry-After, while another key reaches the same provider', async () => {
    const CAP = 4;
    // Stalled callers stay until the test lets them go: what is measured is the cap alone.
    const { app, server } = await startApp({ proxyMaxConcurrencyPerKey: CAP, proxyCallerStallMs: 120_000 });
    try {
      const N = 200;
      const stalled: Socket[] = [];
      for (let i = 0; i < N; i++)
        stalled.push(stallingCaller(server.port, '/proxy/bulk/huge', TEST_API_KEY, `cap-${i}`));
      await until(() => huge.active === CAP && accessLinesOf('cap-').length === N - CAP);
      expect(accessLinesOf('cap-').map((l) => l.res!.statusCode)).toEqual(Array(N - CAP).fill(429));

      const refused = await rawRequest(server.port, { path: '/proxy/other/anything', headers: auth(TEST_API_KEY) });
      expect(refused.status).toBe(429);
      expect(refused.headers['latchkey-error']).toBe('rate_limited');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);

      // The other key, on the same provider, while the first key's stalled calls still hold their sockets.
      const same = await rawRequest(server.port, { path: '/proxy/bulk/small', headers: auth(OTHER_KEY) });
      expect(same).toMatchObject({ status: 200, body: 'small' });
      expect(huge.active).toBe(CAP);
      const elsewhere = await rawRequest(server.port, { path: '/proxy/other/anything', headers: auth(OTHER_KEY) });
      expect(elsewhere).toMatchObject({ status: 200, body: 'other' });

      // Once its stalled callers go away, the first key gets through again.
      for (const socket of stalled) socket.destroy();
      await until(() => huge.closed === CAP && accessLinesOf('cap-').length === N);
      const back = await rawRequest(server.port, { path: '/proxy/bulk/small', headers: auth(TEST_API_KEY) });
      expect(back).toMatchObject({ status: 200, body: 'small' });
    } finally {
      await server.close();
      await app.close();
    }
  });
});
