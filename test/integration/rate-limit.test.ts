import { createServer, type AddressInfo, type Server } from 'node:net';
import supertest from 'supertest';
import { createApp } from '../../src/app';
import { systemClock } from '../../src/clock';
import { parseConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { buildProviderRegistry } from '../../src/providers/registry';
import { openStore } from '../../src/store';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { deleteUnder, rawRedis, uniquePrefix } from '../helpers/redis';

const OTHER_API_KEY = 'other-api-key-0123456789abcdef';

describe('rate limits shared through Redis', () => {
  let prefix: string;
  let a: Harness;
  let b: Harness;

  /** Two Latchkey instances on the same Redis and key prefix, as two replicas would be. */
  async function startPair(env: Record<string, string>): Promise<void> {
    prefix = uniquePrefix('ratelimit');
    const shared = { REDIS_KEY_PREFIX: prefix, CONNECTOR_API_KEYS: `${TEST_API_KEY},${OTHER_API_KEY}`, ...env };
    a = await startHarness({ env: shared });
    b = await startHarness({ env: shared });
  }

  afterEach(async () => {
    await a?.close();
    await b?.close();
    const raw = rawRedis();
    await deleteUnder(raw, prefix);
    raw.disconnect();
  });

  const list = (h: Harness, key = TEST_API_KEY) =>
    supertest(h.app).get('/connections').set('Authorization', `Bearer ${key}`);

  it('counts service API calls of one key across both instances and answers 429 rate_limited with Retry-After', async () => {
    await startPair({ SERVICE_RATE_LIMIT_PER_MINUTE: '3' });
    expect((await list(a)).status).toBe(200);
    expect((await list(b)).status).toBe(200);
    expect((await list(a)).status).toBe(200);

    const limited = await list(b);
    expect(limited.status).toBe(429);
    expect(limited.headers['latchkey-error']).toBe('rate_limited');
    expect(limited.body).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
    const retryAfter = Number(limited.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await list(a)).status).toBe(429);
  });

  it('gives each API key a budget of its own', async () => {
    await startPair({ SERVICE_RATE_LIMIT_PER_MINUTE: '2' });
    await list(a);
    await list(b);
    expect((await list(a)).status).toBe(429);
    expect((await list(a, OTHER_API_KEY)).status).toBe(200);
    expect((await list(b, OTHER_API_KEY)).status).toBe(200);
    expect((await list(b, OTHER_API_KEY)).status).toBe(429);
  });

  it('limits /auth and /callback per client IP (behind TRUST_PROXY), across instances, with the error page', async () => {
    await startPair({ RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: '1' });
    const from = (h: Harness, ip: string, path: string) => supertest(h.app).get(path).set('X-Forwarded-For', ip);
    expect((await from(a, '203.0.113.5', '/auth/videoask?connection_id=c1')).status).toBe(302);
    expect((await from(b, '203.0.113.5', '/auth/videoask?connection_id=c2')).status).toBe(302);
    expect((await from(a, '203.0.113.5', '/callback?state=x&code=y')).status).toBe(400);

    const limited = await from(b, '203.0.113.5', '/auth/videoask?connection_id=c3');
    expect(limited.status).toBe(429);
    expect(limited.headers['latchkey-error']).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited.headers['content-type']).toMatch(/^text\/html/);
    expect(limited.text).toContain('rate_limited');
    expect(limited.headers['content-security-policy']).toContain("frame-ancestors 'none'");

    expect((await from(b, '203.0.113.6', '/auth/videoask?connection_id=c4')).status).toBe(302);
    expect(a.sandbox.stats.tokenRequests + b.sandbox.stats.tokenRequests).toBe(0);
  });

  it('does not count the API key of a service call against the IP of a browser, nor the reverse', async () => {
    await startPair({ RATE_LIMIT_PER_MINUTE: '1', SERVICE_RATE_LIMIT_PER_MINUTE: '1', TRUST_PROXY: '1' });
    expect((await supertest(a.app).get('/auth/videoask').set('X-Forwarded-For', '198.51.100.7')).status).toBe(302);
    expect((await list(a).set('X-Forwarded-For', '198.51.100.7')).status).toBe(200);
    expect((await list(b).set('X-Forwarded-For', '198.51.100.7')).status).toBe(429);
  });

  it('lets everything through when the limits are 0', async () => {
    await startPair({ RATE_LIMIT_PER_MINUTE: '0', SERVICE_RATE_LIMIT_PER_MINUTE: '0' });
    for (let i = 0; i < 5; i++) expect((await list(i % 2 ? a : b)).status).toBe(200);
  });
});

/**
 * A "Redis" that passes the client's ready check, then never answers a command (a hung server):
 * only the client's command timeout can end a request.
 */
function hungRedis(): Server {
  return createServer((socket) => {
    socket.on('data', (chunk) => {
      // The first word of each command of the chunk (RESP arrays: `*N\r\n$len\r\nword\r\n…`).
      for (const [, name] of chunk.toString('latin1').matchAll(/\*\d+\r\n\$\d+\r\n([a-z]+)\r\n/gi)) {
        const command = name!.toLowerCase();
        if (command === 'client') socket.write('+OK\r\n');
        if (command === 'info') socket.write('$21\r\n# Server\r\nloading:0\r\n\r\n');
      }
    });
  });
}

describe('rate limits when Redis does not answer', () => {
  it('fails closed with 503 store_unavailable instead of waiting or letting the request through', async () => {
    const blackHole = hungRedis();
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const env = {
      NODE_ENV: 'test',
      REDIS_URL: `redis://127.0.0.1:${(blackHole.address() as AddressInfo).port}`,
      RATE_LIMIT_PER_MINUTE: '5',
      SERVICE_RATE_LIMIT_PER_MINUTE: '5',
      CONNECTOR_API_KEYS: TEST_API_KEY,
      SESSION_SECRET: 'test-session-secret-0123456789',
      ALLOW_ANONYMOUS_CONNECT: 'true',
      LOG_LEVEL: 'silent',
    };
    const { config } = parseConfig(env);
    const { store, redis } = openStore(config, systemClock);
    await new Promise((resolve) => redis!.once('ready', resolve));
    const app = createApp({
      config,
      store,
      providers: buildProviderRegistry(env, []),
      logger: createLogger('silent'),
    }).handler;
    try {
      const service = await supertest(app).get('/connections').set('Authorization', `Bearer ${TEST_API_KEY}`);
      expect(service.status).toBe(503);
      expect(service.body.error.code).toBe('store_unavailable');
      const browser = await supertest(app).get('/auth/videoask');
      expect(browser.status).toBe(503);
      expect(browser.headers['latchkey-error']).toBe('store_unavailable');
    } finally {
      await store.close();
      await new Promise((resolve) => blackHole.close(resolve));
    }
  });
});

describe('security headers on browser routes', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  const directives = (csp: string) =>
    new Map(
      csp
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .filter((parts) => parts[0])
        .map(([name, ...values]) => [name!, values]),
    );

  it('serves pages with a CSP of self only, a fresh script nonce, no framing, and a popup-friendly opener policy', async () => {
    h = await startHarness({ store: 'memory', env: { ALLOWED_RETURN_ORIGINS: 'https://app.example.com' } });
    const page = await supertest(h.app).get('/');
    const again = await supertest(h.app).get('/');
    const csp = directives(page.headers['content-security-policy']!);
    expect(csp.get('default-src')).toEqual(["'self'"]);
    expect(csp.get('script-src')).toEqual(["'self'", expect.stringMatching(/^'nonce-[A-Za-z0-9+/]{22}==?'$/)]);
    expect(csp.get('script-src')).not.toEqual(directives(again.headers['content-security-policy']!).get('script-src'));
    expect(csp.get('style-src')).toEqual(["'self'"]);
    expect(csp.get('object-src')).toEqual(["'none'"]);
    expect(csp.get('base-uri')).toEqual(["'none'"]);
    expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
    // The 303 after the API-key form may go back to an allowed return_to origin.
    expect(csp.get('form-action')).toEqual(["'self'", 'http://latchkey.test', 'https://app.example.com']);
    expect(csp.has('upgrade-insecure-requests')).toBe(false);
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['cross-origin-opener-policy']).toBe('unsafe-none');
    expect(page.headers['cross-origin-resource-policy']).toBe('same-origin');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['strict-transport-security']).toBeUndefined();
  });

  it('puts the same headers on /auth and /callback answers, error pages included', async () => {
    h = await startHarness({ store: 'memory' });
    for (const path of ['/auth/videoask', '/callback?state=nope&code=nope', '/auth/nobody']) {
      const res = await supertest(h.app).get(path);
      expect({
        path,
        frameAncestors: directives(res.headers['content-security-policy'] ?? '').get('frame-ancestors'),
      }).toEqual({
        path,
        frameAncestors: ["'none'"],
      });
      expect(res.headers['x-frame-options']).toBe('DENY');
    }
  });

  it('lets other origins embed /connect.js', async () => {
    h = await startHarness({ store: 'memory' });
    const script = await supertest(h.app).get('/connect.js');
    expect(script.status).toBe(200);
    expect(script.headers['cross-origin-resource-policy']).toBe('cross-origin');
  });

  it('puts the headers on /connect.js and /assets/* too (no sniffing, no framing), not only on pages', async () => {
    h = await startHarness({ store: 'memory' });
    for (const path of ['/connect.js', '/assets/latchkey.css']) {
      const res = await supertest(h.app).get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      expect({ path, nosniff: res.headers['x-content-type-options'] }).toEqual({ path, nosniff: 'nosniff' });
      expect({ path, frame: res.headers['x-frame-options'] }).toEqual({ path, frame: 'DENY' });
      expect(directives(res.headers['content-security-policy'] ?? '').get('default-src')).toEqual(["'self'"]);
    }
  });

  it('adds HSTS and upgrade-insecure-requests when PUBLIC_URL is https', async () => {
    h = await startHarness({ store: 'memory', env: { PUBLIC_URL: 'https://latchkey.example.com' } });
    const page = await supertest(h.app).get('/');
    expect(page.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(directives(page.headers['content-security-policy']!).has('upgrade-insecure-requests')).toBe(true);
  });
});
