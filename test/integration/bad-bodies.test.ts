import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import supertest from 'supertest';
import { createApp, type LatchkeyApp } from '../../src/app';
import { parseConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { buildProviderRegistry } from '../../src/providers/registry';
import { openStore, type Store } from '../../src/store';
import { encryptionKeyEnv, testEncryptionKey } from '../helpers/keys';
import { deleteUnder, keysUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';

/**
 * SECURITY.md 21: every body Latchkey cannot take is the contract's 400 `invalid_request` or 413
 * `payload_too_large` (never a 500), on the JSON routes and on the API-key form alike, and the
 * body never reaches a log line. Each case carries a canary in its body.
 */
describe('bodies Latchkey cannot take', () => {
  const API_KEY = 'bad-bodies-api-key-0123456789abcdef';
  const CANARY = `canary-body-${randomBytes(6).toString('hex')}`;
  const logLines: string[] = [];
  /** Resolves on the next log line that `match` accepts. */
  const waiters: Array<{ match: (line: string) => boolean; resolve: () => void }> = [];

  let latchkey: LatchkeyApp;
  let store: Store;
  let prefix: string;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    prefix = uniquePrefix('bad-bodies');
    const env = {
      NODE_ENV: 'test',
      PUBLIC_URL: 'http://latchkey.test',
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      SESSION_SECRET: 'test-session-secret-0123456789',
      TOKEN_ENCRYPTION_KEYS: encryptionKeyEnv(testEncryptionKey()),
      CONNECTOR_API_KEYS: API_KEY,
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'trace',
    };
    const { config } = parseConfig(env);
    const providers = buildProviderRegistry(env, [
      { source: 'test', entries: [{ id: 'webinargeek', apiBaseUrl: 'http://127.0.0.1:9' }] },
    ]);
    const opened = openStore(config, { now: () => Date.now() });
    store = opened.store;
    await new Promise((r) => (opened.redis!.status === 'ready' ? r(null) : opened.redis!.once('ready', r)));
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          logLines.push(line);
          for (const w of waiters.splice(0).filter((w) => (w.match(line) ? (w.resolve(), false) : true)))
            waiters.push(w);
        }
        done();
      },
    });
    latchkey = createApp({ config, store, providers, logger: createLogger('trace', sink) });
    server = createServer(latchkey.handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await latchkey.close();
    const raw = rawRedis();
    await deleteUnder(raw, prefix);
    raw.disconnect();
    await store.close();
  });

  const nextLogLine = (match: (line: string) => boolean) =>
    new Promise<void>((resolve) => waiters.push({ match, resolve }));

  /** The contract's JSON error: the status, `Latchkey-Error`, and `{ error: { code, message } }`. */
  function expectJsonError(res: supertest.Response, status: number, code: string, message?: RegExp) {
    expect({ status: res.status, header: res.headers['latchkey-error'], code: res.body?.error?.code }).toEqual({
      status,
      header: code,
      code,
    });
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    if (message) expect(res.body.error.message).toMatch(message);
    expect(res.text).not.toContain(CANARY);
  }

  /** The contract's HTML error page: the status, `Latchkey-Error`, and the code visible on the page. */
  function expectPageError(res: supertest.Response, status: number, code: string, message?: RegExp) {
    expect({ status: res.status, header: res.headers['latchkey-error'] }).toEqual({ status, header: code });
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain(`id="error-code">${code}<`);
    if (message) expect(res.text).toMatch(message);
    expect(res.text).not.toContain(CANARY);
  }

  /** Posts `body` byte for byte (supertest would serialise a Buffer sent as JSON), as supertest's response shape. */
  async function postBytes(path: string, headers: Record<string, string>, body: Buffer) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body: new Uint8Array(body) });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    const answered: Record<string, string> = {};
    res.headers.forEach((value, name) => (answered[name] = value));
    return {
      status: res.status,
      headers: answered,
      text,
      body: type.startsWith('application/json') ? JSON.parse(text) : undefined,
    } as unknown as supertest.Response;
  }

  const connectSessions = () =>
    supertest(latchkey.handler).post('/connect-sessions').set('Authorization', `Bearer ${API_KEY}`);

  /** A browser holding an open API-key form, and that form's CSRF token. */
  async function openForm() {
    const browser = supertest.agent(latchkey.handler);
    const form = await browser.get('/auth/webinargeek?connection_id=bodies');
    expect(form.status).toBe(200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)?.[1];
    expect(csrf).toBeDefined();
    return { browser, csrf: csrf! };
  }

  /** Sends a request whose body stops half-way: the client goes away before the end. */
  async function abortMidBody(path: string, headers: Record<string, string>, partial: string) {
    const logged = nextLogLine((line) => line.includes(`"url":"${path}"`) && line.includes('"statusCode":499'));
    // body-parser saw the cut (its request.aborted error), and it was reported as the caller's.
    const reported = nextLogLine((line) => line.includes('"level":30') && line.includes('not received completely'));
    const socket = connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const head = Object.entries({ Host: 'latchkey.test', 'Content-Length': '5000', ...headers })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n${partial}`);
    // The server has the first bytes once it asks for more: its access log then records the 499.
    socket.destroy();
    await Promise.all([logged, reported]);
  }

  afterEach(() => {
    // No body-parser failure is Latchkey's own: nothing at error level, and no canary anywhere.
    const errors = logLines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50);
    expect(errors).toEqual([]);
    for (const line of logLines) expect(line).not.toContain(CANARY);
    logLines.length = 0;
  });

  describe('on a JSON route (POST /connect-sessions)', () => {
    it('answers 400 to JSON that does not parse, including a bare string (whose parse error quotes the body)', async () => {
      expectJsonError(
        await connectSessions().type('json').send(`{"provider": "videoask", "connection_id": ${CANARY}`),
        400,
        'invalid_request',
        /not valid JSON/,
      );
      expectJsonError(await connectSessions().type('json').send(`"${CANARY}"`), 400, 'invalid_request', /JSON/);
    });

    it('answers 400 to JSON nested deeper than any Latchkey body', async () => {
      const deep = `{"provider":"videoask","connection_id":"x","config":${'['.repeat(5000)}"${CANARY}"${']'.repeat(5000)}}`;
      expectJsonError(await connectSessions().type('json').send(deep), 400, 'invalid_request', /nested/);
    });

    it('answers 413 to a body over the limit, announced or chunked', async () => {
      const big = JSON.stringify({ provider: 'videoask', connection_id: 'x', pad: `${CANARY}${'x'.repeat(70_000)}` });
      expectJsonError(await connectSessions().type('json').send(big), 413, 'payload_too_large', /too large/);
      const chunked = await fetch(`http://127.0.0.1:${port}/connect-sessions`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
        body: new Blob([big]).stream(),
        duplex: 'half',
      } as RequestInit);
      expect({ status: chunked.status, code: chunked.headers.get('latchkey-error') }).toEqual({
        status: 413,
        code: 'payload_too_large',
      });
      expect(await chunked.text()).not.toContain(CANARY);
    });

    it('answers 400 "send application/json" to a form-encoded or text body', async () => {
      expectJsonError(
        await connectSessions().type('form').send(`provider=videoask&connection_id=${CANARY}`),
        400,
        'invalid_request',
        /application\/json/,
      );
      expectJsonError(
        await connectSessions().set('Content-Type', 'text/plain').send(`{"provider":"${CANARY}"}`),
        400,
        'invalid_request',
        /application\/json/,
      );
    });

    it('answers 400 to a charset other than UTF-8, and to a Content-Encoding it refuses or cannot decode', async () => {
      const body = JSON.stringify({ provider: 'videoask', connection_id: CANARY });
      expectJsonError(
        await connectSessions().set('Content-Type', 'application/json; charset=iso-8859-1').send(body),
        400,
        'invalid_request',
        /charset/,
      );
      const json = { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' };
      expectJsonError(
        await postBytes('/connect-sessions', { ...json, 'Content-Encoding': 'compress' }, Buffer.from(body)),
        400,
        'invalid_request',
        /Content-Encoding/,
      );
      expectJsonError(
        await postBytes(
          '/connect-sessions',
          { ...json, 'Content-Encoding': 'gzip' },
          Buffer.from(`not gzip ${CANARY}`),
        ),
        400,
        'invalid_request',
        /could not be read/,
      );
    });

    it('answers 413 to a compressed body that inflates beyond the limit', async () => {
      const bomb = gzipSync(Buffer.from(`{"pad":"${CANARY}${'a'.repeat(2_000_000)}"}`));
      expect(bomb.length).toBeLessThan(64 * 1024);
      expectJsonError(
        await postBytes(
          '/connect-sessions',
          { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
          bomb,
        ),
        413,
        'payload_too_large',
      );
      // The same body, compressed and well within the limit once inflated, is taken.
      const small = gzipSync(Buffer.from(JSON.stringify({ provider: 'webinargeek', connection_id: 'gz' })));
      const taken = await postBytes(
        '/connect-sessions',
        { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
        small,
      );
      expect(taken.status).toBe(201);
    });

    it('logs a body cut off half-way as the caller going away, without the body', async () => {
      await abortMidBody(
        '/connect-sessions',
        { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
        `{"provider":"videoask","connection_id":"${CANARY}`,
      );
    });

    it('still takes a good body', async () => {
      const ok = await connectSessions().send({ provider: 'webinargeek', connection_id: 'fine' });
      expect(ok.status).toBe(201);
    });
  });

  describe('on the API-key form (POST /auth/webinargeek)', () => {
    it('answers 413 on the page to more fields than the form has, the key and the CSRF token kept out of the logs', async () => {
      const { browser, csrf } = await openForm();
      const fields = new URLSearchParams({ csrf, api_key: CANARY });
      for (let i = 0; i < 10; i++) fields.append(`extra${i}`, CANARY);
      const res = await browser.post('/auth/webinargeek').type('form').send(fields.toString());
      expectPageError(res, 413, 'payload_too_large', /too many fields/);
      for (const line of logLines) expect(line).not.toContain(csrf);
    });

    it('answers 413 on the page to a body over the limit', async () => {
      const { browser, csrf } = await openForm();
      const res = await browser
        .post('/auth/webinargeek')
        .type('form')
        .send(new URLSearchParams({ csrf, api_key: `${CANARY}${'k'.repeat(20_000)}` }).toString());
      expectPageError(res, 413, 'payload_too_large');
    });

    it('answers 400 on the page to a body that is not a form', async () => {
      const { browser, csrf } = await openForm();
      const res = await browser.post('/auth/webinargeek').type('json').send({ csrf, api_key: CANARY });
      expectPageError(res, 400, 'invalid_request', /application\/x-www-form-urlencoded/);
    });

    it('answers 400 on the page to a charset or a Content-Encoding it refuses, and to a body that does not inflate', async () => {
      const { browser, csrf } = await openForm();
      const form = new URLSearchParams({ csrf, api_key: CANARY }).toString();
      const formType = { 'Content-Type': 'application/x-www-form-urlencoded' };
      expectPageError(
        await browser
          .post('/auth/webinargeek')
          .set('Content-Type', 'application/x-www-form-urlencoded; charset=utf-16')
          .send(form),
        400,
        'invalid_request',
      );
      expectPageError(
        await postBytes('/auth/webinargeek', { ...formType, 'Content-Encoding': 'x-custom' }, Buffer.from(form)),
        400,
        'invalid_request',
      );
      expectPageError(
        await postBytes('/auth/webinargeek', { ...formType, 'Content-Encoding': 'deflate' }, Buffer.from(form)),
        400,
        'invalid_request',
      );
    });

    it('logs a form cut off half-way as the caller going away, without the body', async () => {
      const { csrf } = await openForm();
      await abortMidBody(
        '/auth/webinargeek',
        { 'Content-Type': 'application/x-www-form-urlencoded' },
        `csrf=${csrf}&api_key=${CANARY}`,
      );
    });

    it('refuses, on the form, an API key that cannot travel in an HTTP header', async () => {
      const { browser, csrf } = await openForm();
      for (const key of [`${CANARY}\u2013dash`, `“${CANARY}”`, `${CANARY}🔑`]) {
        const res = await browser
          .post('/auth/webinargeek')
          .type('form')
          .send(new URLSearchParams({ csrf, api_key: key }).toString());
        expect({ key, status: res.status, code: res.headers['latchkey-error'] }).toEqual({
          key,
          status: 400,
          code: 'invalid_request',
        });
        // The form again, with the reason and without the pasted value.
        expect(res.text).toContain('name="api_key"');
        expect(res.text).toMatch(/cannot be sent to the provider/);
        expect(res.text).not.toContain(CANARY);
      }
      const stored = await store.getConnection('webinargeek', 'bodies');
      expect(stored).toBeNull();
    });
  });

  it('leaves the canary in no Redis value (sessions, rate counters, connect sessions)', async () => {
    const raw = rawRedis();
    try {
      const keys = await keysUnder(raw, prefix);
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        const type = await raw.type(key);
        const value =
          type === 'string'
            ? await raw.get(key)
            : type === 'hash'
              ? JSON.stringify(await raw.hgetall(key))
              : type === 'zset'
                ? JSON.stringify(await raw.zrange(key, 0, -1))
                : type === 'list'
                  ? JSON.stringify(await raw.lrange(key, 0, -1))
                  : type === 'set'
                    ? JSON.stringify(await raw.smembers(key))
                    : type === 'stream'
                      ? JSON.stringify(await raw.xrange(key, '-', '+'))
                      : '';
        expect({ key, found: `${key}${value}`.includes(CANARY) }).toEqual({ key, found: false });
      }
    } finally {
      raw.disconnect();
    }
  });

  describe('repeated query parameters on the service API', () => {
    const get = (path: string) => supertest(latchkey.handler).get(path).set('Authorization', `Bearer ${API_KEY}`);

    it('refuses ?provider=a&provider=b and any other parameter given twice, rather than reading one of them', async () => {
      expectJsonError(
        await get('/connections?provider=videoask&provider=webinargeek'),
        400,
        'invalid_request',
        /"provider" is given more than once/,
      );
      expectJsonError(
        await get('/connections?provider=webinargeek&status=a&status=b'),
        400,
        'invalid_request',
        /status/,
      );
      expectJsonError(await get('/connections/webinargeek/x/token?a=1&a=2'), 400, 'invalid_request');
      expectJsonError(
        await supertest(latchkey.handler)
          .post('/connect-sessions?x=1&x=2')
          .set('Authorization', `Bearer ${API_KEY}`)
          .send({ provider: 'webinargeek', connection_id: 'q' }),
        400,
        'invalid_request',
      );
      expect((await get('/connections?provider=webinargeek')).status).toBe(200);
    });
  });
});
