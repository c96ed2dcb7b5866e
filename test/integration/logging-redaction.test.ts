import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { RequestListener } from 'node:http';
import supertest from 'supertest';
import { createApp } from '../../src/app';
import { parseConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { buildProviderRegistry } from '../../src/providers/registry';
import { videoaskSandboxSource } from '../../src/sandbox/provider-entry';
import { createSandbox, type Sandbox } from '../../src/sandbox/sandbox';
import { openStore, type Store } from '../../src/store';
import { consent } from '../helpers/harness';
import { seedConnection } from '../helpers/latchkey-process';
import { encryptionKeyEnv, testEncryptionKey } from '../helpers/keys';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';

/**
 * SECURITY.md §8: canary secrets go through happy and failing flows, then every log line and
 * every response Latchkey produced is searched for them.
 */
describe('no secret reaches a log line or a response', () => {
  const canary = (name: string) => `canary-${name}-${randomBytes(6).toString('hex')}`;
  const CLIENT_SECRET = canary('client-secret');
  const API_KEY = canary('api-key');
  const WRONG_API_KEY = canary('wrong-api-key');
  const WEBINARGEEK_KEY = canary('webinargeek-key');
  const WEBINARGEEK_BAD_KEY = `${canary('webinargeek-bad')} with spaces`;
  const PUBLIC_URL = 'http://latchkey.test';

  const logLines: string[] = [];
  const responses: Array<{ what: string; status: number; headers: Record<string, unknown>; body: string }> = [];
  /** Secrets that must appear nowhere. */
  const everywhere = new Set<string>([
    CLIENT_SECRET,
    API_KEY,
    WRONG_API_KEY,
    WEBINARGEEK_KEY,
    WEBINARGEEK_BAD_KEY,
    'sbx_rt_',
  ]);
  /** Secrets a response may carry on purpose (the /token answer, a connect session's link), never a log line. */
  const logsOnly = new Set<string>(['sbx_at_']);

  let sandbox: Sandbox;
  let sandboxServer: { url: string; close(): Promise<void> };
  let store: Store;
  let app: RequestListener;
  let prefix: string;

  beforeAll(async () => {
    sandbox = createSandbox({ clientId: 'sandbox-client', clientSecret: CLIENT_SECRET, apiKeys: [WEBINARGEEK_KEY] });
    sandboxServer = await sandbox.listen();
    prefix = uniquePrefix('redaction');
    const env = {
      NODE_ENV: 'test',
      PUBLIC_URL,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      SESSION_SECRET: 'test-session-secret-0123456789',
      TOKEN_ENCRYPTION_KEYS: encryptionKeyEnv(testEncryptionKey()),
      CONNECTOR_API_KEYS: API_KEY,
      VIDEOASK_CLIENT_ID: 'sandbox-client',
      VIDEOASK_CLIENT_SECRET: CLIENT_SECRET,
      TOKEN_REQUEST_TIMEOUT_MS: '300',
      UPSTREAM_TIMEOUT_MS: '300',
      LOG_LEVEL: 'trace',
    };
    const { config } = parseConfig(env);
    const providers = buildProviderRegistry(env, [
      videoaskSandboxSource(sandboxServer.url),
      // The key check goes to the sandbox's WebinarGeek, which accepts WEBINARGEEK_KEY (see createSandbox above).
      {
        source: 'test',
        entries: [
          { id: 'webinargeek', apiBaseUrl: sandboxServer.url, apiKey: { check: { path: '/webinargeek/account' } } },
        ],
      },
    ]);
    const opened = openStore(config, { now: () => Date.now() });
    store = opened.store;
    await new Promise((r) => (opened.redis!.status === 'ready' ? r(null) : opened.redis!.once('ready', r)));
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    app = createApp({ config, store, providers, logger: createLogger('trace', sink) }).handler;
  });

  afterAll(async () => {
    await sandboxServer.close();
    const raw = rawRedis();
    await deleteUnder(raw, prefix);
    raw.disconnect();
    await store.close();
  });

  /** Sends, checks the flow went where it should (`status`), and keeps the response. */
  async function record(what: string, test: supertest.Test, status: number): Promise<supertest.Response> {
    const res = await test;
    responses.push({ what, status: res.status, headers: res.headers, body: res.text ?? '' });
    expect({ what, status: res.status }).toEqual({ what, status });
    return res;
  }

  const api = (method: 'get' | 'post' | 'delete', path: string, key = API_KEY) =>
    supertest(app)[method](path).set('Authorization', `Bearer ${key}`);

  /** Starts a flow in `browser`, approves it at the sandbox, and returns the callback URL (code and state are canaries). */
  async function authorize(
    browser: ReturnType<typeof supertest.agent>,
    query: string,
    decision: 'approve' | 'deny' = 'approve',
  ) {
    const start = await record(`auth ${query}`, browser.get(`/auth/videoask${query}`), 302);
    const state = new URL(start.headers.location!).searchParams.get('state')!;
    logsOnly.add(state);
    const redirect = await consent(start.headers.location!, decision);
    const code = redirect.searchParams.get('code');
    if (code) everywhere.add(code);
    return `${redirect.pathname}${redirect.search}`;
  }

  it('keeps codes, states, tokens, client secrets and API keys out of logs and responses through every flow', async () => {
    // A happy connection, then its callback replayed, then one finished in another browser.
    const browser = supertest.agent(app);
    const callback = await authorize(browser, '?connection_id=happy');
    await record('callback', browser.get(callback), 303);
    await record('replayed callback', browser.get(callback), 400);
    const stolen = await authorize(browser, '?connection_id=stolen');
    await record('callback from another browser', supertest.agent(app).get(stolen), 400);
    const forged = await authorize(browser, '?connection_id=forged');
    await record('forged state', browser.get(forged.replace(/state=[^&]+/, 'state=forged-state-value')), 400);
    await record('no state', browser.get(forged.replace(/&?state=[^&]+/, '')), 400);
    await record('denied', browser.get(await authorize(browser, '?connection_id=denied', 'deny')), 303);

    // The token endpoint failing with 400, 401 and 500, then too slow for TOKEN_REQUEST_TIMEOUT_MS:
    // each flow goes back to its return_to with status=error (CONTRACT "Flows").
    for (const status of [400, 401, 500]) {
      const failing = await authorize(browser, `?connection_id=fail-${status}`);
      sandbox.failNextTokenRequests(1, status);
      const failed = await record(`token endpoint ${status}`, browser.get(failing), 303);
      expect(failed.headers.location).toContain('status=error');
    }
    const slow = await authorize(browser, '?connection_id=timeout');
    sandbox.options.tokenDelayMs = 1000;
    await record('token endpoint timeout', browser.get(slow), 303);
    sandbox.options.tokenDelayMs = 0;

    // A connect session: its token travels in the /auth query.
    const session = await record(
      'connect session',
      api('post', '/connect-sessions').send({ provider: 'videoask', connection_id: 'cs' }),
      201,
    );
    logsOnly.add(session.body.token);
    const viaSession = supertest.agent(app);
    const start = await record(
      'auth with connect session',
      viaSession.get(`/auth/videoask?token=${session.body.token}`),
      302,
    );
    const sessionRedirect = await consent(start.headers.location!, 'approve');
    everywhere.add(sessionRedirect.searchParams.get('code')!);
    await record(
      'connect session callback',
      viaSession.get(`${sessionRedirect.pathname}${sessionRedirect.search}`),
      303,
    );

    // The service API, with good and bad keys, and refreshes the token endpoint refuses.
    await record('list', api('get', '/connections'), 200);
    await record('one', api('get', '/connections/videoask/happy'), 200);
    const token = await record('token', api('get', '/connections/videoask/happy/token'), 200);
    expect(token.body.access_token).toMatch(/^sbx_at_/);
    await record('refresh', api('post', '/connections/videoask/happy/refresh'), 200);
    for (const status of [400, 401, 500]) {
      await seedConnection(store, sandbox, {
        connectionId: `refresh-${status}`,
        expiresAt: Date.now() + 3600_000,
        now: Date.now(),
      });
      sandbox.failNextTokenRequests(1, status);
      await record(`refresh failing ${status}`, api('post', `/connections/videoask/refresh-${status}/refresh`), 502);
    }
    await record('wrong key', api('get', '/connections', WRONG_API_KEY), 401);
    await record('no key', supertest(app).get('/connections'), 401);
    await record('key in the query', supertest(app).get(`/connections?api_key=${WRONG_API_KEY}`), 401);

    // The proxy: a plain call, a provider 500, a 401 (refresh and retry), a timeout, secrets in the query.
    const proxy = (path: string) => api('get', `/proxy/videoask${path}`).set('Connection-Id', 'happy');
    await record('proxy', proxy('/me'), 200);
    await record('proxy 500', proxy('/status/500'), 500);
    await record('proxy 401', proxy('/status/401'), 401);
    await record('proxy timeout', proxy('/slow?ms=2000'), 504);
    await record('proxy query secret', proxy(`/me?api_key=${WRONG_API_KEY}&access_token=${WRONG_API_KEY}`), 200);

    // An api_key provider: the key pasted into the form, a bad one refused, then the key used by the proxy.
    const form = await record('api key form', browser.get('/auth/webinargeek?connection_id=wg'), 200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)?.[1];
    expect(csrf).toBeDefined();
    logsOnly.add(csrf!);
    await record(
      'bad api key',
      browser.post('/auth/webinargeek').type('form').send({ csrf, api_key: WEBINARGEEK_BAD_KEY }),
      400,
    );
    // Forms body-parser refuses (too many fields, too big, not a form) carry the key too (SECURITY.md 21).
    const padded = new URLSearchParams({ csrf: csrf!, api_key: WEBINARGEEK_KEY });
    for (let i = 0; i < 12; i++) padded.append(`f${i}`, WEBINARGEEK_KEY);
    await record('too many form fields', browser.post('/auth/webinargeek').type('form').send(padded.toString()), 413);
    await record(
      'form too large',
      browser
        .post('/auth/webinargeek')
        .type('form')
        .send({ csrf, api_key: `${WEBINARGEEK_KEY}${'k'.repeat(20_000)}` }),
      413,
    );
    await record(
      'form sent as JSON',
      browser.post('/auth/webinargeek').type('json').send({ csrf, api_key: WEBINARGEEK_KEY }),
      400,
    );
    await record(
      'api key',
      browser.post('/auth/webinargeek').type('form').send({ csrf, api_key: WEBINARGEEK_KEY }),
      303,
    );
    await record('api key proxy', api('get', '/proxy/webinargeek/me').set('Connection-Id', 'wg'), 401);
    expect(sandbox.stats.requests.some((r) => r.path === '/me' && r.headers['api-token'] === WEBINARGEEK_KEY)).toBe(
      true,
    );

    expect(sandbox.stats.tokenRequests).toBeGreaterThanOrEqual(10);
    expect(logLines.length).toBeGreaterThan(40);

    const logs = logLines.join('\n');
    for (const secret of [...everywhere, ...logsOnly])
      expect({ secret, found: logs.includes(secret) }).toEqual({ secret, found: false });
    for (const r of responses) {
      const text = `${JSON.stringify(r.headers)}\n${r.body}`;
      for (const secret of everywhere)
        expect({ response: r.what, secret, found: text.includes(secret) }).toEqual({
          response: r.what,
          secret,
          found: false,
        });
      // The access token leaves Latchkey in the /token answer and nowhere else.
      if (r.what !== 'token')
        expect({ response: r.what, found: text.includes('sbx_at_') }).toEqual({ response: r.what, found: false });
    }
  });

  it('writes JSON lines that all carry the request id, echoing a sane X-Request-Id and replacing any other', async () => {
    logLines.length = 0;
    const traced = await supertest(app)
      .get('/connections/videoask/nobody')
      .set('Authorization', `Bearer ${API_KEY}`)
      .set('X-Request-Id', 'trace-abc.123');
    expect(traced.status).toBe(404);
    expect(traced.headers['x-request-id']).toBe('trace-abc.123');
    const lines = logLines.map((l) => JSON.parse(l) as { reqId?: string; msg: string; req?: unknown });
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.every((l) => l.reqId === 'trace-abc.123')).toBe(true);
    expect(lines.some((l) => l.req !== undefined)).toBe(true);

    logLines.length = 0;
    const insane = await supertest(app)
      .get('/healthz')
      .set('X-Request-Id', 'bad id\twith "quotes" and far too long '.repeat(4));
    expect(insane.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);

    logLines.length = 0;
    const browser = supertest.agent(app);
    await browser.get(await authorize(browser, '?connection_id=ids'));
    const flowLines = logLines.map((l) => JSON.parse(l) as { reqId?: string });
    expect(flowLines.length).toBeGreaterThanOrEqual(2);
    expect(flowLines.filter((l) => !l.reqId)).toEqual([]);

    // The proxy runs ahead of Express; what the credential source logs for it carries the id too.
    logLines.length = 0;
    const proxied = await api('get', '/proxy/videoask/status/401')
      .set('Connection-Id', 'ids')
      .set('X-Request-Id', 'proxy-trace-1');
    expect(proxied.status).toBe(401);
    const proxyLines = logLines.map((l) => JSON.parse(l) as { reqId?: string; msg: string });
    expect(proxyLines.length).toBeGreaterThanOrEqual(2);
    expect(proxyLines.filter((l) => l.reqId !== 'proxy-trace-1')).toEqual([]);
  });
});
