import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { createApp } from '../../src/app';
import { createLogger } from '../../src/logger';
import { startHarness, type Harness } from '../helpers/harness';
import { apiAuth, apiRequestsOf, listen, rawRequest, seedVideoAsk, type Listening } from '../helpers/proxy-harness';
import { seedApiKeyConnection } from '../helpers/seed';

const BODY_LIMIT = 1024;
const UPSTREAM_TIMEOUT_MS = 300;
const MiB = 1024 * 1024;

/**
 * SECURITY.md §12: a bounded request body (413 payload_too_large), a bounded wait for the
 * provider (504 upstream_timeout), and bounded memory however much or however slowly the
 * provider answers.
 */
describe('proxy: limits', () => {
  let h: Harness;
  let latchkey: Listening;
  let upstream: Listening;
  /**
   * The streaming upstream: bytes it handed to its socket, whether it is waiting for 'drain' now,
   * whether it wrote the whole body, and a callback for when it blocks or finishes.
   */
  const stream = { written: 0, blocked: false, finished: false, onChange: () => {} };
  let hangingClosed: Promise<void>;
  let markHangingClosed: () => void;

  /** Streams `mb` MiB in 64 KiB chunks, writing only as fast as the proxy reads (backpressure). */
  function streamHuge(res: ServerResponse, total: number): void {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': total });
    const pump = () => {
      stream.blocked = false;
      while (stream.written < total) {
        stream.written += chunk.length;
        if (!res.write(chunk)) {
          stream.blocked = true;
          stream.onChange();
          return void res.once('drain', pump);
        }
      }
      stream.finished = true;
      stream.onChange();
      res.end();
    };
    pump();
  }

  /**
   * Resolves with the bytes the upstream wrote once it is blocked on backpressure and stays
   * blocked across round trips through Latchkey's server (each gives the proxy every chance to
   * read on); throws if it gets to write the whole body instead. No clock: counters and events.
   */
  async function upstreamStalled(total: number): Promise<number> {
    for (;;) {
      if (stream.finished) {
        throw new Error(`the upstream wrote all ${total} bytes while the caller had stopped reading`);
      }
      if (!stream.blocked) {
        await new Promise<void>((resolve) => (stream.onChange = resolve));
        continue;
      }
      const at = stream.written;
      for (let i = 0; i < 3; i++) await rawRequest(latchkey.port, { path: '/healthz' });
      if (stream.blocked && stream.written === at) return at;
    }
  }

  /** A call the upstream holds without answering: resolved when it arrives, and when its socket closes. */
  let silent: { arrived: Promise<void>; closed: Promise<void> };
  let markSilent: { arrived: () => void; closed: () => void };

  function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    if (req.url?.startsWith('/huge')) return streamHuge(res, 256 * MiB);
    if (req.url === '/silent') {
      req.socket.once('close', () => markSilent.closed());
      markSilent.arrived();
      return;
    }
    // Headers and a first chunk, then silence: the body timeout must cut it.
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('first chunk;');
    req.socket.once('close', () => markHangingClosed());
  }

  beforeAll(async () => {
    upstream = await listen(upstreamHandler);
    h = await startHarness({
      env: {
        PROXY_BODY_LIMIT_BYTES: String(BODY_LIMIT),
        UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
        // The huge answer's caller pauses on purpose while the upstream's stall is checked: cutting it off is tested elsewhere.
        PROXY_CALLER_STALL_MS: '120000',
      },
      providerSources: () => [
        {
          source: 'test providers',
          entries: [
            // Nothing listens on port 1: the provider's API is down.
            {
              id: 'gone',
              displayName: 'Gone',
              authMode: 'api_key',
              apiKey: { header: 'Api-Token' },
              apiBaseUrl: 'http://127.0.0.1:1',
            },
            {
              id: 'bulk',
              displayName: 'Bulk',
              authMode: 'api_key',
              apiKey: { header: 'Api-Token' },
              apiBaseUrl: upstream.url,
            },
          ],
        },
      ],
    });
    latchkey = await listen(h.app);
    await seedVideoAsk(h);
    await seedApiKeyConnection(h.store, 'bulk', 'default', 'bulk-key');
    await seedApiKeyConnection(h.store, 'gone', 'default', 'gone-key');
  });

  afterAll(async () => {
    await latchkey.close();
    await upstream.close();
    await h.close();
  });

  beforeEach(() => {
    h.sandbox.stats.requests.length = 0;
    hangingClosed = new Promise((resolve) => (markHangingClosed = resolve));
    const marks = {} as typeof markSilent;
    silent = {
      arrived: new Promise((resolve) => (marks.arrived = resolve)),
      closed: new Promise((resolve) => (marks.closed = resolve)),
    };
    markSilent = marks;
  });

  it('forwards a body of exactly the limit', async () => {
    const body = 'x'.repeat(BODY_LIMIT);
    const res = await rawRequest(latchkey.port, {
      method: 'POST',
      path: '/proxy/videoask/echo',
      headers: { ...apiAuth, 'content-type': 'text/plain' },
      body,
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).body).toBe(body);
  });

  it('refuses a declared Content-Length over the limit with 413 before reading it, and forwards nothing', async () => {
    const res = await rawRequest(latchkey.port, {
      method: 'POST',
      path: '/proxy/videoask/echo',
      headers: { ...apiAuth, 'content-type': 'text/plain' },
      body: 'x'.repeat(BODY_LIMIT + 1),
    });
    expect(res.status).toBe(413);
    expect(res.headers['latchkey-error']).toBe('payload_too_large');
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'payload_too_large' } });
    expect(apiRequestsOf(h)).toEqual([]);
  });

  it('counts a chunked body as it arrives and refuses it with 413 once it passes the limit', async () => {
    const res = await new Promise<{ status: number; code: unknown; connection: unknown }>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: latchkey.port,
        method: 'POST',
        path: '/proxy/videoask/echo',
        headers: { ...apiAuth, 'content-type': 'text/plain', 'transfer-encoding': 'chunked' },
        agent: false,
      });
      req.on('error', reject);
      req.on('response', (r) => {
        r.resume();
        resolve({ status: r.statusCode ?? 0, code: r.headers['latchkey-error'], connection: r.headers.connection });
        req.destroy();
      });
      // More than the limit, in pieces, and the request never ends: the proxy must not wait for it.
      req.write('y'.repeat(600));
      req.write('y'.repeat(600));
    });
    expect(res).toEqual({ status: 413, code: 'payload_too_large', connection: 'close' });
    expect(apiRequestsOf(h)).toEqual([]);
  });

  it('answers 504 upstream_timeout when the provider does not answer in time', async () => {
    const started = Date.now();
    const res = await rawRequest(latchkey.port, { path: '/proxy/videoask/slow?ms=5000', headers: apiAuth });
    expect(res.status).toBe(504);
    expect(res.headers['latchkey-error']).toBe('upstream_timeout');
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'upstream_timeout' } });
    // Well before the provider would have answered (not a timing target: the point is it did not wait).
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('answers 502 provider_error with Retry-After when the provider’s API cannot be reached', async () => {
    const res = await rawRequest(latchkey.port, { path: '/proxy/gone/anything', headers: apiAuth });
    expect(res.status).toBe(502);
    expect(res.headers['latchkey-error']).toBe('provider_error');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('lets go of the provider as soon as the caller gives up waiting', async () => {
    // An app whose upstream timeout is far away, so only the caller's leaving can free the provider.
    const patient = createApp({
      config: { ...h.config, upstreamTimeoutMs: 120_000 },
      store: h.store,
      providers: h.providers,
      logger: createLogger('silent'),
    }).handler;
    const server = await listen(patient);
    try {
      const req = request({
        host: '127.0.0.1',
        port: server.port,
        path: '/proxy/bulk/silent',
        headers: apiAuth,
        agent: false,
      });
      req.on('error', () => {});
      req.end();
      await silent.arrived;
      req.destroy();
      // Resolves only when the proxy closed its upstream socket (the test's timeout bounds the wait).
      await silent.closed;
    } finally {
      await server.close();
    }
  });

  it('cuts the caller’s connection when the provider goes silent in the middle of a body, and lets go of the provider', async () => {
    const outcome = await new Promise<{ status: number; received: string; ended: boolean }>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: latchkey.port,
        path: '/proxy/bulk/hang',
        headers: apiAuth,
        agent: false,
      });
      req.on('error', reject);
      req.on('response', (r) => {
        let received = '';
        let ended = false;
        r.on('data', (c: Buffer) => (received += c.toString()));
        r.on('end', () => (ended = true));
        r.on('close', () => resolve({ status: r.statusCode ?? 0, received, ended }));
        r.on('error', () => {});
      });
      req.end();
    });
    expect(outcome).toEqual({ status: 200, received: 'first chunk;', ended: false });
    await hangingClosed;
  });

  it('streams a huge answer with backpressure: a caller that stops reading stops the provider, little is held in between', async () => {
    Object.assign(stream, { written: 0, blocked: false, finished: false, onChange: () => {} });
    const total = 256 * MiB;
    let received = 0;
    let response!: IncomingMessage;
    await new Promise<void>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: latchkey.port,
        path: '/proxy/bulk/huge',
        headers: apiAuth,
        agent: false,
      });
      req.on('error', reject);
      req.on('response', (r) => {
        response = r;
        r.once('data', (c: Buffer) => {
          received += c.length;
          r.pause();
          resolve();
        });
      });
      req.end();
    });
    // The caller reads nothing more: what the provider still writes fills socket and stream buffers, then
    // it waits for a 'drain' that never comes. What it wrote beyond what the caller read is all that can be
    // held in memory in between (the heap itself is the benchmark's to measure, not a test's).
    const stalledAt = await upstreamStalled(total);
    expect(stalledAt - received).toBeLessThan(64 * MiB);

    await new Promise<void>((resolve, reject) => {
      response.on('data', (c: Buffer) => (received += c.length));
      response.on('end', () => resolve());
      response.on('error', reject);
      response.resume();
    });
    expect(received).toBe(total);
    expect(response.statusCode).toBe(200);
  });
});
