import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { startHarness, type Harness } from '../helpers/harness';
import { apiAuth, listen, rawRequest, type Listening } from '../helpers/proxy-harness';
import { seedApiKeyConnection } from '../helpers/seed';

const UPSTREAM_TIMEOUT_MS = 3000;
const MARGIN_MS = 2000;

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/**
 * `Latchkey-Retries: 0–3` (CONTRACT "Additions", "Proxy"; issue 13 part 10) against a small
 * upstream that fails a given number of times, then answers 200: idempotent methods only, a 429
 * after its Retry-After (at most 10 s, inside the deadline), a 502/503/504 or a broken connection
 * after a backoff, a retried answer never relayed, and the header never forwarded.
 */
describe('proxy: Latchkey-Retries', () => {
  let h: Harness;
  let upstream: Listening;
  const seen: Seen[] = [];
  /** Failures already served per scenario id (the path's first segment). */
  const failures = new Map<string, number>();

  /**
   * `/<id>?fail=N&status=S[&retryAfter=V][&delay=ms]`: the first N calls for `<id>` answer S
   * (with `Retry-After: V`), or break the connection when S is `drop`; later ones answer 200.
   */
  function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://upstream');
      seen.push({
        method: req.method ?? '',
        url: url.pathname,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        at: performance.now(),
      });
      const id = url.pathname;
      const served = failures.get(id) ?? 0;
      const answer = () => {
        if (served >= Number(url.searchParams.get('fail') ?? 0)) {
          res.writeHead(200, { 'Content-Type': 'text/plain' });
          res.end(`ok after ${served}`);
          return;
        }
        failures.set(id, served + 1);
        const status = url.searchParams.get('status') ?? '503';
        if (status === 'drop') {
          req.socket.destroy();
          return;
        }
        const headers: Record<string, string> = { 'Content-Type': 'text/plain' };
        const retryAfter = url.searchParams.get('retryAfter');
        if (retryAfter) headers['Retry-After'] = retryAfter;
        res.writeHead(Number(status), headers);
        res.end(`failure ${served + 1}`);
      };
      const delay = Number(url.searchParams.get('delay') ?? 0);
      if (delay) setTimeout(answer, delay);
      else answer();
    });
  }

  const seenFor = (id: string) => seen.filter((s) => s.url === `/${id}`);
  const call = (method: string, path: string, retries?: string, body?: string) =>
    rawRequest(latchkey.port, {
      method,
      path: `/proxy/flaky/${path}`,
      headers: { ...apiAuth, ...(retries === undefined ? {} : { 'latchkey-retries': retries }) },
      body,
    });
  let latchkey: Listening;

  beforeAll(async () => {
    upstream = await listen(upstreamHandler);
    h = await startHarness({
      env: { UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS) },
      providerSources: () => [
        {
          source: 'test providers',
          entries: [
            {
              id: 'flaky',
              displayName: 'Flaky',
              authMode: 'api_key',
              apiKey: { header: 'Api-Token' },
              apiBaseUrl: upstream.url,
            },
          ],
        },
      ],
    });
    latchkey = await listen(h.app);
    await seedApiKeyConnection(h.store, 'flaky', 'default', 'flaky-key');
  });

  afterAll(async () => {
    await latchkey.close();
    await upstream.close();
    await h.close();
  });

  it('retries a GET after 503s until the provider answers, and never forwards the header', async () => {
    const res = await call('GET', 'get-503?fail=2&status=503', '2');
    expect(res).toMatchObject({ status: 200, body: 'ok after 2' });
    const attempts = seenFor('get-503');
    expect(attempts).toHaveLength(3);
    for (const a of attempts) expect(a.headers).not.toHaveProperty('latchkey-retries');
  });

  it.each([502, 504])('retries after a %i as well', async (status) => {
    const res = await call('GET', `get-${status}?fail=1&status=${status}`, '1');
    expect(res).toMatchObject({ status: 200, body: 'ok after 1' });
    expect(seenFor(`get-${status}`)).toHaveLength(2);
  });

  it('relays the last answer as the provider gave it once the retries are spent, and only that one', async () => {
    const res = await call('GET', 'spent?fail=5&status=503', '2');
    expect(res.status).toBe(503);
    expect(res.body).toBe('failure 3');
    expect(res.headers['latchkey-error']).toBeUndefined();
    expect(seenFor('spent')).toHaveLength(3);
  });

  it('retries PUT with the same body each time, and HEAD, OPTIONS and DELETE', async () => {
    expect((await call('PUT', 'put?fail=1&status=503', '1', '{"name":"x"}')).status).toBe(200);
    expect(seenFor('put').map((a) => a.body)).toEqual(['{"name":"x"}', '{"name":"x"}']);
    for (const method of ['HEAD', 'OPTIONS', 'DELETE']) {
      const id = `m-${method.toLowerCase()}`;
      expect((await call(method, `${id}?fail=1&status=502`, '1')).status).toBe(200);
      expect(seenFor(id).map((a) => a.method)).toEqual([method, method]);
    }
  });

  it.each(['POST', 'PATCH'])('never retries a %s, whatever the header says', async (method) => {
    const id = `never-${method.toLowerCase()}`;
    const res = await call(method, `${id}?fail=1&status=503`, '3', 'payload');
    expect(res).toMatchObject({ status: 503, body: 'failure 1' });
    expect(seenFor(id)).toHaveLength(1);
    expect(seenFor(id)[0]!.headers).not.toHaveProperty('latchkey-retries');
  });

  it('sends a call once without the header, a 503 passing straight through', async () => {
    const res = await call('GET', 'default?fail=1&status=503');
    expect(res).toMatchObject({ status: 503, body: 'failure 1' });
    expect(seenFor('default')).toHaveLength(1);
  });

  it('refuses a Latchkey-Retries that is not 0–3 with 400 invalid_request, before calling the provider', async () => {
    for (const value of ['4', 'lots', '-1']) {
      const res = await call('GET', `invalid?fail=0`, value);
      expect(res.status).toBe(400);
      expect(res.headers['latchkey-error']).toBe('invalid_request');
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'invalid_request' } });
    }
    expect(seenFor('invalid')).toEqual([]);
  });

  it('retries a 429 after its Retry-After in seconds or as an HTTP date', async () => {
    const res = await call('GET', 'after-seconds?fail=1&status=429&retryAfter=1', '1');
    expect(res).toMatchObject({ status: 200, body: 'ok after 1' });
    const [first, second] = seenFor('after-seconds');
    // Timers never fire early: the retry came no sooner than the provider asked.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(990);

    const date = new Date(Math.ceil((Date.now() + 1500) / 1000) * 1000).toUTCString();
    const dated = await call('GET', `after-date?fail=1&status=429&retryAfter=${encodeURIComponent(date)}`, '1');
    expect(dated).toMatchObject({ status: 200, body: 'ok after 1' });
    expect(seenFor('after-date')).toHaveLength(2);
  });

  it('passes a 429 through at once when its Retry-After is over 10 s, or missing', async () => {
    const long = await call('GET', 'too-long?fail=1&status=429&retryAfter=11', '3');
    expect(long).toMatchObject({ status: 429, body: 'failure 1' });
    expect(long.headers['retry-after']).toBe('11');
    expect(long.headers['latchkey-error']).toBeUndefined();
    expect(seenFor('too-long')).toHaveLength(1);

    const none = await call('GET', 'no-retry-after?fail=1&status=429', '3');
    expect(none.status).toBe(429);
    expect(seenFor('no-retry-after')).toHaveLength(1);
  });

  it('counts the Retry-After wait against the deadline: a wait the deadline cannot hold passes the 429 through', async () => {
    // 5 s is under the 10 s bound but beyond the 3 s deadline.
    const started = Date.now();
    const res = await call('GET', 'past-deadline?fail=1&status=429&retryAfter=5', '3');
    expect(res).toMatchObject({ status: 429, body: 'failure 1' });
    expect(seenFor('past-deadline')).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(UPSTREAM_TIMEOUT_MS);
  });

  it('retries after the connection broke before an answer', async () => {
    const res = await call('GET', 'dropped?fail=2&status=drop', '2');
    expect(res).toMatchObject({ status: 200, body: 'ok after 2' });
    expect(seenFor('dropped')).toHaveLength(3);
  });

  it('ends in 504 upstream_timeout within the deadline from arrival when slow failures eat it, retries and waits included', async () => {
    const started = Date.now();
    const res = await call('GET', 'slow-failures?fail=3&status=503&delay=1000', '3');
    const elapsed = Date.now() - started;
    expect(res.status).toBe(504);
    expect(res.headers['latchkey-error']).toBe('upstream_timeout');
    // Three attempts began (about 0 s, 1.1 s, 2.3 s); the deadline cut the third one.
    expect(seenFor('slow-failures')).toHaveLength(3);
    expect(elapsed).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT_MS - 5);
    expect(elapsed).toBeLessThan(UPSTREAM_TIMEOUT_MS + MARGIN_MS);
  });
});
