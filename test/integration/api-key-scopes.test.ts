import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import supertest from 'supertest';
import { createApp, type LatchkeyApp } from '../../src/app';
import { createLogger } from '../../src/logger';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { seedApiKeyConnection, seedOAuthConnection } from '../helpers/seed';

/**
 * Scoped API keys (CONTRACT "API keys with a scope", SECURITY.md 24): every key on every route
 * it may use and every route it may not, on the Express side and the raw proxy alike.
 */

const KEYS = {
  reader: 'reader-key-0123456789abcdef',
  caller: 'caller-key-0123456789abcdef',
  videoaskAdmin: 'videoask-admin-key-0123456789',
  webinarReader: 'webinar-reader-key-0123456789',
};
const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');
const connectorName = `key-${sha256(TEST_API_KEY).slice(0, 8)}`;

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

let dir: string;
let h: Harness;
let latchkey: LatchkeyApp;
let lines: Array<Record<string, unknown>>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-scopes-'));
  const file = join(dir, 'api-keys.json');
  writeFileSync(
    file,
    JSON.stringify([
      { name: 'reader', sha256: sha256(KEYS.reader), access: 'read' },
      { name: 'caller', sha256: sha256(KEYS.caller), access: 'proxy' },
      {
        name: 'videoask-admin',
        sha256: sha256(KEYS.videoaskAdmin).toUpperCase(),
        access: 'full',
        providers: ['videoask'],
      },
      { name: 'webinar-reader', sha256: sha256(KEYS.webinarReader), access: 'read', providers: ['webinargeek'] },
    ]),
  );
  h = await startHarness({
    env: { API_KEYS_FILE: file, TRUST_PROXY: '1', API_KEY_FAILURES_PER_MINUTE: '3', LOG_LEVEL: 'info' },
  });
  const captured = capture();
  lines = captured.lines;
  latchkey = createApp({ config: h.config, store: h.store, providers: h.providers, logger: captured.logger });
});

afterAll(async () => {
  await latchkey?.close();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await seedOAuthConnection(h.store, h.sandbox, { connectionId: 'c1' });
  await seedApiKeyConnection(h.store, 'webinargeek', 'w1', 'webinargeek-key-of-the-user');
});

type Route = { name: string; send: (key: string) => supertest.Test; allowed: number };

/** Every service route once, with what a key that may use it gets. */
const ROUTES = (): Record<string, Route> => {
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });
  const app = () => supertest(latchkey.handler);
  return {
    list: { name: 'GET /connections', send: (k) => app().get('/connections').set(as(k)), allowed: 200 },
    listOne: {
      name: 'GET /connections?provider=videoask',
      send: (k) => app().get('/connections?provider=videoask').set(as(k)),
      allowed: 200,
    },
    get: {
      name: 'GET /connections/videoask/c1',
      send: (k) => app().get('/connections/videoask/c1').set(as(k)),
      allowed: 200,
    },
    token: {
      name: 'GET /connections/videoask/c1/token',
      send: (k) => app().get('/connections/videoask/c1/token').set(as(k)),
      allowed: 200,
    },
    proxy: {
      name: 'GET /proxy/videoask/me',
      send: (k) => app().get('/proxy/videoask/me').set(as(k)).set('Connection-Id', 'c1'),
      allowed: 200,
    },
    refresh: {
      name: 'POST /connections/videoask/c1/refresh',
      send: (k) => app().post('/connections/videoask/c1/refresh').set(as(k)),
      allowed: 200,
    },
    session: {
      name: 'POST /connect-sessions',
      send: (k) => app().post('/connect-sessions').set(as(k)).send({ provider: 'videoask', connection_id: 'new-1' }),
      allowed: 201,
    },
    remove: {
      name: 'DELETE /connections/videoask/absent',
      send: (k) => app().delete('/connections/videoask/absent').set(as(k)),
      allowed: 404,
    },
    // PATCH merges metadata (CONTRACT "Additions"): a write, so `full` only.
    patch: {
      name: 'PATCH /connections/videoask/c1',
      send: (k) => app().patch('/connections/videoask/c1').set(as(k)).send({ metadata: {} }),
      allowed: 200,
    },
  };
};

const NEEDS: Record<string, 'read' | 'proxy' | 'full'> = {
  list: 'read',
  listOne: 'read',
  get: 'read',
  token: 'proxy',
  proxy: 'proxy',
  refresh: 'full',
  session: 'full',
  remove: 'full',
  patch: 'full',
};

describe('access levels', () => {
  const cases: Array<[string, string, 'read' | 'proxy' | 'full']> = [
    ['reader', KEYS.reader, 'read'],
    ['caller', KEYS.caller, 'proxy'],
    ['videoask-admin', KEYS.videoaskAdmin, 'full'],
    [connectorName, TEST_API_KEY, 'full'],
  ];
  const rank = { read: 1, proxy: 2, full: 3 };

  it.each(cases)(
    '%s: the right answer on every route it may use, 403 forbidden on the others',
    async (name, key, access) => {
      for (const [id, route] of Object.entries(ROUTES())) {
        const res = await route.send(key);
        const need = NEEDS[id]!;
        if (rank[access] >= rank[need]) {
          expect([route.name, res.status]).toEqual([route.name, route.allowed]);
        } else {
          expect([route.name, res.status, res.headers['latchkey-error']]).toEqual([route.name, 403, 'forbidden']);
          expect(res.body).toEqual({
            error: {
              code: 'forbidden',
              message: `API key "${name}" has ${access} access; this route needs ${need} access`,
            },
          });
          expect(JSON.stringify(res.body)).not.toContain(key);
        }
      }
    },
  );

  it('never lets a refused call reach the provider or change a connection', async () => {
    h.sandbox.reset();
    const before = await h.store.getConnection('videoask', 'c1');
    for (const id of ['token', 'proxy', 'refresh', 'session', 'remove']) {
      expect((await ROUTES()[id]!.send(KEYS.reader)).status).toBe(403);
    }
    expect(h.sandbox.stats.requests).toEqual([]);
    expect(await h.store.getConnection('videoask', 'c1')).toEqual(before);
  });
});

describe('keys limited to providers', () => {
  const app = () => supertest(latchkey.handler);
  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  it('see only their providers’ connections in lists', async () => {
    const all = await app().get('/connections').set(as(TEST_API_KEY));
    expect(all.body.connections.map((c: { provider: string }) => c.provider)).toEqual(
      expect.arrayContaining(['videoask', 'webinargeek']),
    );
    const videoask = await app().get('/connections').set(as(KEYS.videoaskAdmin));
    expect(videoask.status).toBe(200);
    expect(new Set(videoask.body.connections.map((c: { provider: string }) => c.provider))).toEqual(
      new Set(['videoask']),
    );
    const webinar = await app().get('/connections').set(as(KEYS.webinarReader));
    expect(webinar.body.connections.map((c: { connection_id: string }) => c.connection_id)).toEqual(['w1']);
  });

  it.each([
    ['GET /connections?provider=webinargeek', () => app().get('/connections?provider=webinargeek')],
    ['GET /connections/webinargeek/w1', () => app().get('/connections/webinargeek/w1')],
    ['GET /connections/webinargeek/w1/token', () => app().get('/connections/webinargeek/w1/token')],
    ['POST /connections/webinargeek/w1/refresh', () => app().post('/connections/webinargeek/w1/refresh')],
    ['DELETE /connections/webinargeek/w1', () => app().delete('/connections/webinargeek/w1')],
    ['GET /connections/webinargeek/w1/events', () => app().get('/connections/webinargeek/w1/events')],
    ['GET /connections/unknown-one/x', () => app().get('/connections/unknown-one/x')],
    [
      'POST /connect-sessions for webinargeek',
      () => app().post('/connect-sessions').send({ provider: 'webinargeek', connection_id: 'n' }),
    ],
    ['GET /proxy/webinargeek/account', () => app().get('/proxy/webinargeek/account').set('Connection-Id', 'w1')],
    ['GET /proxy/Not_A_Provider/x', () => app().get('/proxy/Not_A_Provider/x')],
  ])('answer 403 forbidden on another provider’s route: %s', async (_name, send) => {
    const res = await send().set(as(KEYS.videoaskAdmin));
    expect(res.status).toBe(403);
    expect(res.headers['latchkey-error']).toBe('forbidden');
    expect(res.body.error.message).toMatch(/^API key "videoask-admin" is limited to videoask; it may not use /);
    expect(await h.store.getConnection('webinargeek', 'w1')).not.toBeNull();
  });

  it('may use their own provider’s routes', async () => {
    expect((await app().get('/connections/videoask/c1').set(as(KEYS.videoaskAdmin))).status).toBe(200);
    expect((await app().get('/proxy/videoask/me').set(as(KEYS.videoaskAdmin)).set('Connection-Id', 'c1')).status).toBe(
      200,
    );
    expect((await app().get('/connections/webinargeek/w1').set(as(KEYS.webinarReader))).status).toBe(200);
    // …but an unlimited key is told what does not exist.
    expect((await app().get('/connections/unknown-one/x').set(as(TEST_API_KEY))).status).toBe(404);
  });
});

describe('logs name the key, never its secret', () => {
  const app = () => supertest(latchkey.handler);

  it('on the access line and the error line, on both sides', async () => {
    await app().get('/connections').set('Authorization', `Bearer ${KEYS.reader}`).set('X-Request-Id', 'scope-e-ok');
    await app()
      .get('/connections/videoask/c1/token')
      .set('Authorization', `Bearer ${KEYS.reader}`)
      .set('X-Request-Id', 'scope-e-403');
    await app()
      .get('/proxy/videoask/me')
      .set('Authorization', `Bearer ${KEYS.caller}`)
      .set('Connection-Id', 'c1')
      .set('X-Request-Id', 'scope-p-ok');
    await app()
      .get('/proxy/videoask/me')
      .set('Authorization', `Bearer ${KEYS.webinarReader}`)
      .set('X-Request-Id', 'scope-p-403');
    await app()
      .get('/connections')
      .set('Authorization', 'Bearer wrong-key-0123456789abcdef')
      .set('X-Request-Id', 'scope-401');

    const of = (reqId: string) => lines.filter((l) => l.reqId === reqId);
    const access = (reqId: string) => of(reqId).find((l) => l.req);
    const reported = (reqId: string) => of(reqId).find((l) => l.code);
    expect(access('scope-e-ok')).toMatchObject({ apiKey: 'reader', res: { statusCode: 200 } });
    expect(access('scope-e-403')).toMatchObject({ apiKey: 'reader', res: { statusCode: 403 } });
    expect(reported('scope-e-403')).toMatchObject({ apiKey: 'reader', code: 'forbidden' });
    expect(access('scope-p-ok')).toMatchObject({ apiKey: 'caller', res: { statusCode: 200 } });
    expect(access('scope-p-403')).toMatchObject({ apiKey: 'webinar-reader', res: { statusCode: 403 } });
    expect(reported('scope-p-403')).toMatchObject({ apiKey: 'webinar-reader', code: 'forbidden' });
    expect(access('scope-401')).toMatchObject({ res: { statusCode: 401 } });
    expect(access('scope-401')).not.toHaveProperty('apiKey');

    const all = JSON.stringify(lines);
    for (const key of [...Object.values(KEYS), TEST_API_KEY, 'wrong-key-0123456789abcdef'])
      expect(all).not.toContain(key);
  });
});

describe('failed key attempts, per client address', () => {
  const from = (address: string, app = latchkey) => ({
    express: (key: string) =>
      supertest(app.handler).get('/connections').set('X-Forwarded-For', address).set('Authorization', `Bearer ${key}`),
    proxy: (key: string) =>
      supertest(app.handler)
        .get('/proxy/videoask/me')
        .set('Connection-Id', 'c1')
        .set('X-Forwarded-For', address)
        .set('Authorization', `Bearer ${key}`),
  });
  const WRONG = 'wrong-key-0123456789abcdef';

  it('answer 401 up to the limit, then 429 with Retry-After on both sides, while a right key still works', async () => {
    const client = from('203.0.113.21');
    expect((await client.express(WRONG)).status).toBe(401);
    expect((await client.proxy(WRONG)).status).toBe(401);
    expect((await client.express(WRONG)).status).toBe(401);

    for (const side of ['express', 'proxy'] as const) {
      const limited = await client[side](WRONG);
      expect([side, limited.status, limited.headers['latchkey-error']]).toEqual([side, 429, 'rate_limited']);
      expect(limited.body.error.message).toMatch(
        /^Too many failed API-key attempts from this address \(at most 3 a minute\)/,
      );
      const retryAfter = Number(limited.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    // A missing key is a failure too.
    expect((await supertest(latchkey.handler).get('/connections').set('X-Forwarded-For', '203.0.113.21')).status).toBe(
      429,
    );

    // The right key from the same address is served: the limit never locks services out.
    expect((await client.express(KEYS.reader)).status).toBe(200);
    expect((await client.proxy(KEYS.caller)).status).toBe(200);
    // Another address has a budget of its own.
    expect((await from('203.0.113.22').express(WRONG)).status).toBe(401);
  });

  it('are counted in the store, so another instance refuses the address too', async () => {
    const other = createApp({
      config: h.config,
      store: h.store,
      providers: h.providers,
      logger: createLogger('silent'),
    });
    try {
      for (let i = 0; i < 3; i++) expect((await from('203.0.113.31').express(WRONG)).status).toBe(401);
      expect((await from('203.0.113.31', other).proxy(WRONG)).status).toBe(429);
      expect((await from('203.0.113.31', other).express(KEYS.reader)).status).toBe(200);
    } finally {
      await other.close();
    }
  });
});
