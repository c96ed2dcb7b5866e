import supertest from 'supertest';
import type { RequestListener } from 'node:http';
import { createApp } from '../../src/app';
import type { ConnectionEventType, EventSink } from '../../src/events';
import { createLogger } from '../../src/logger';
import { PUBLIC_URL, startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { seedVideoAsk } from '../helpers/proxy-harness';
import { seedOAuthConnection } from '../helpers/seed';

/**
 * The service API's connection routes and the ops routes (CONTRACT "Service API", "Operations"),
 * on real Redis against the sandbox provider, with a recording event sink.
 */
describe('service API', () => {
  let h: Harness;
  let app: RequestListener;
  const events: Array<{ type: ConnectionEventType; provider: string; connectionId: string }> = [];
  const sink: EventSink = { emit: (type, provider, connectionId) => events.push({ type, provider, connectionId }) };
  const auth = { Authorization: `Bearer ${TEST_API_KEY}` };

  beforeAll(async () => {
    h = await startHarness({
      env: {
        BASICJSON_CLIENT_ID: 'sandbox-client',
        BASICJSON_CLIENT_SECRET: 'sandbox-secret',
        CLOSED_CLIENT_ID: 'sandbox-client',
        CLOSED_CLIENT_SECRET: 'sandbox-secret',
        NOREVOKE_CLIENT_ID: 'sandbox-client',
        NOREVOKE_CLIENT_SECRET: 'sandbox-secret',
      },
      providerSources: (sandboxUrl) => [
        {
          source: 'test providers',
          entries: [
            // Token and revocation requests as JSON with HTTP Basic client authentication.
            {
              id: 'basicjson',
              displayName: 'Basic JSON',
              authMode: 'oauth2',
              authorizationUrl: `${sandboxUrl}/authorize`,
              tokenUrl: `${sandboxUrl}/oauth/token`,
              revocationUrl: `${sandboxUrl}/oauth/revoke`,
              tokenRequest: { bodyFormat: 'json', clientAuth: 'basic' },
              apiBaseUrl: sandboxUrl,
            },
            // Revocation endpoint that refuses connections (port 1): the provider is "down".
            {
              id: 'closed',
              displayName: 'Closed',
              authMode: 'oauth2',
              authorizationUrl: `${sandboxUrl}/authorize`,
              tokenUrl: `${sandboxUrl}/oauth/token`,
              revocationUrl: 'http://127.0.0.1:1/revoke',
              apiBaseUrl: sandboxUrl,
            },
            {
              id: 'norevoke',
              displayName: 'No revocation',
              authMode: 'oauth2',
              authorizationUrl: `${sandboxUrl}/authorize`,
              tokenUrl: `${sandboxUrl}/oauth/token`,
              revocationUrl: null,
              apiBaseUrl: sandboxUrl,
            },
          ],
        },
      ],
    });
    app = createApp({
      config: h.config,
      store: h.store,
      providers: h.providers,
      events: sink,
      logger: createLogger('silent'),
    }).handler;
  });

  afterAll(async () => h.close());

  beforeEach(() => {
    events.length = 0;
    h.sandbox.reset();
  });

  const api = () => supertest(app);

  async function seed(provider: string, connectionId: string) {
    const { accessToken, refreshToken } = await seedOAuthConnection(h.store, h.sandbox, {
      provider,
      connectionId,
      scopes: ['openid'],
    });
    return { access_token: accessToken, refresh_token: refreshToken };
  }

  describe('authentication', () => {
    it.each([
      ['POST', '/connect-sessions'],
      ['GET', '/connections'],
      ['GET', '/connections/videoask/default'],
      ['DELETE', '/connections/videoask/default'],
      ['POST', '/connections/videoask/default/refresh'],
      ['GET', '/connections/videoask/default/token'],
      ['GET', '/proxy/videoask/me'],
    ])('%s %s without a valid API key → 401 unauthorized, and the connection is untouched', async (method, path) => {
      await seedVideoAsk(h, 'default');
      for (const header of [
        undefined,
        'Bearer wrong-key-wrong-key-wrong',
        `Basic ${Buffer.from(`x:${TEST_API_KEY}`).toString('base64')}`,
        TEST_API_KEY,
      ]) {
        const req = api()[method.toLowerCase() as 'get'](path);
        const res = await (header ? req.set('Authorization', header) : req);
        expect(res.status).toBe(401);
        expect(res.headers['latchkey-error']).toBe('unauthorized');
        expect(res.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
      }
      expect(await h.store.getConnection('videoask', 'default')).not.toBeNull();
      expect(h.sandbox.stats.requests).toEqual([]);
    });
  });

  describe('POST /connect-sessions', () => {
    it('issues a single-use link to /auth/:provider that lasts 15 minutes', async () => {
      const before = Date.now();
      const res = await api()
        .post('/connect-sessions')
        .set(auth)
        .send({ provider: 'videoask', connection_id: 'user-42' });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({ token: expect.any(String), url: expect.any(String), expires_at: expect.any(String) });
      expect(res.body.url).toBe(`${PUBLIC_URL}/auth/videoask?token=${encodeURIComponent(res.body.token)}`);
      const ttl = Date.parse(res.body.expires_at) - before;
      expect(ttl).toBeGreaterThan(14 * 60_000);
      expect(ttl).toBeLessThanOrEqual(15 * 60_000 + 1000);

      const browser = supertest.agent(app);
      expect((await browser.get(`/auth/videoask?token=${encodeURIComponent(res.body.token)}`)).status).toBe(302);
      const replay = await supertest.agent(app).get(`/auth/videoask?token=${encodeURIComponent(res.body.token)}`);
      // A used link is 410 link_expired (CONTRACT "Additions"), never the API key's 401.
      expect([replay.status, replay.headers['latchkey-error']]).toEqual([410, 'link_expired']);
    });

    it.each([
      [{ connection_id: 'x' }, 400, 'invalid_request'],
      [{ provider: 'videoask', connection_id: 'has spaces' }, 400, 'invalid_request'],
      [{ provider: 'videoask', connection_id: 'x', extra: 1 }, 400, 'invalid_request'],
      [{ provider: 'nope', connection_id: 'x' }, 404, 'unknown_provider'],
      [{ provider: 'livestorm', connection_id: 'x' }, 404, 'provider_not_enabled'],
      [{ provider: 'videoask', connection_id: 'x', return_to: 'https://evil.example/' }, 400, 'invalid_request'],
    ])('refuses %j with %s %s', async (body, status, code) => {
      const res = await api().post('/connect-sessions').set(auth).send(body);
      expect(res.status).toBe(status);
      expect(res.headers['latchkey-error']).toBe(code);
    });

    it('refuses a body that is not JSON with 400 invalid_request', async () => {
      const res = await api()
        .post('/connect-sessions')
        .set(auth)
        .set('Content-Type', 'application/json')
        .send('{not json');
      expect(res.status).toBe(400);
      expect(res.headers['latchkey-error']).toBe('invalid_request');
    });
  });

  describe('reading connections', () => {
    it('lists connections as the contract’s Connection, filtered by provider, without any token', async () => {
      const tokens = await seed('videoask', 'list-a');
      await seed('norevoke', 'list-b');
      const all = await api().get('/connections').set(auth);
      expect(all.status).toBe(200);
      const mine = all.body.connections.filter((c: { connection_id: string }) => c.connection_id.startsWith('list-'));
      expect(mine.map((c: { provider: string }) => c.provider).sort()).toEqual(['norevoke', 'videoask']);
      // The first release's fields, and the second release's config, metadata and account.
      expect(Object.keys(mine[0]).sort()).toEqual(
        [
          'account',
          'config',
          'metadata',
          'connection_id',
          'created_at',
          'expires_at',
          'last_refreshed_at',
          'provider',
          'scopes',
          'status',
          'updated_at',
        ].sort(),
      );
      expect(all.text).not.toContain(tokens.access_token);
      expect(all.text).not.toContain(tokens.refresh_token);

      const filtered = await api().get('/connections?provider=norevoke').set(auth);
      expect(filtered.body.connections.every((c: { provider: string }) => c.provider === 'norevoke')).toBe(true);
      expect(filtered.body.connections.some((c: { connection_id: string }) => c.connection_id === 'list-b')).toBe(true);
      expect((await api().get('/connections?provider=nope').set(auth)).status).toBe(404);
    });

    it('gets one connection, or 404 connection_not_found, or 400 for a malformed id', async () => {
      const tokens = await seed('videoask', 'get-a');
      const res = await api().get('/connections/videoask/get-a').set(auth);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        provider: 'videoask',
        connection_id: 'get-a',
        status: 'active',
        scopes: ['openid'],
        last_refreshed_at: null,
      });
      expect(Date.parse(res.body.expires_at)).toBeGreaterThan(Date.now());
      expect(res.text).not.toContain(tokens.access_token);
      expect((await api().get('/connections/videoask/nobody').set(auth)).headers['latchkey-error']).toBe(
        'connection_not_found',
      );
      expect((await api().get('/connections/nope/get-a').set(auth)).headers['latchkey-error']).toBe('unknown_provider');
      expect((await api().get('/connections/videoask/bad%20id').set(auth)).status).toBe(400);
    });
  });

  describe('DELETE /connections/:provider/:connectionId', () => {
    it('revokes the grant at the provider (RFC 7009), deletes the connection, forgets it in the proxy, and emits connection.deleted', async () => {
      const tokens = await seed('videoask', 'del-a');
      // The proxy has the credential in hand before the delete…
      expect((await api().get('/proxy/videoask/me').set(auth).set('Connection-Id', 'del-a')).status).toBe(200);

      const res = await api().delete('/connections/videoask/del-a').set(auth);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
      expect(res.headers['latchkey-revocation']).toBe('revoked');
      expect(h.sandbox.stats.revocations).toBe(1);
      const revoke = h.sandbox.stats.requests.find((r) => r.path === '/oauth/revoke');
      expect(revoke?.body).toMatchObject({
        token: tokens.refresh_token,
        token_type_hint: 'refresh_token',
        client_id: 'sandbox-client',
      });
      // The provider no longer honours the grant.
      const direct = await fetch(`${h.sandboxUrl}/me`, { headers: { Authorization: `Bearer ${tokens.access_token}` } });
      expect(direct.status).toBe(401);

      expect(await h.store.getConnection('videoask', 'del-a')).toBeNull();
      expect((await api().get('/connections/videoask/del-a').set(auth)).status).toBe(404);
      // …and does not keep using it afterwards.
      const after = await api().get('/proxy/videoask/me').set(auth).set('Connection-Id', 'del-a');
      expect(after.status).toBe(404);
      expect(after.headers['latchkey-error']).toBe('connection_not_found');
      expect(events).toEqual([{ type: 'connection.deleted', provider: 'videoask', connectionId: 'del-a' }]);
    });

    it('revokes with the provider’s client authentication and body format (HTTP Basic, JSON)', async () => {
      const tokens = await seed('basicjson', 'del-json');
      const res = await api().delete('/connections/basicjson/del-json').set(auth);
      expect(res.status).toBe(204);
      expect(res.headers['latchkey-revocation']).toBe('revoked');
      const revoke = h.sandbox.stats.requests.find((r) => r.path === '/oauth/revoke');
      expect(revoke?.headers['content-type']).toMatch(/^application\/json/);
      expect(revoke?.headers.authorization).toBe(
        `Basic ${Buffer.from('sandbox-client:sandbox-secret').toString('base64')}`,
      );
      expect(revoke?.body).toEqual({ token: tokens.refresh_token, token_type_hint: 'refresh_token' });
    });

    it('deletes anyway when the revocation fails, and says so in Latchkey-Revocation', async () => {
      await seed('closed', 'del-b');
      const res = await api().delete('/connections/closed/del-b').set(auth);
      expect(res.status).toBe(204);
      expect(res.headers['latchkey-revocation']).toBe('failed');
      expect(await h.store.getConnection('closed', 'del-b')).toBeNull();
      expect(events.map((e) => e.type)).toEqual(['connection.deleted']);
    });

    it('deletes without a revocation request when the provider has no revocationUrl, and the proxy stops using the still-valid token at once', async () => {
      await seed('norevoke', 'del-c');
      expect((await api().get('/proxy/norevoke/me').set(auth).set('Connection-Id', 'del-c')).status).toBe(200);
      const res = await api().delete('/connections/norevoke/del-c').set(auth);
      expect(res.status).toBe(204);
      expect(res.headers['latchkey-revocation']).toBe('not_supported');
      expect(h.sandbox.stats.revocations).toBe(0);
      expect(await h.store.getConnection('norevoke', 'del-c')).toBeNull();
      // The provider would still take the token; the proxy's cached copy went with the connection.
      const after = await api().get('/proxy/norevoke/me').set(auth).set('Connection-Id', 'del-c');
      expect(after.status).toBe(404);
      expect(after.headers['latchkey-error']).toBe('connection_not_found');
      expect(h.sandbox.stats.apiRequests).toBe(1);
    });

    it('answers 404 connection_not_found for a connection that does not exist, and emits nothing', async () => {
      const res = await api().delete('/connections/videoask/never-was').set(auth);
      expect(res.status).toBe(404);
      expect(res.headers['latchkey-error']).toBe('connection_not_found');
      expect(events).toEqual([]);
      expect(h.sandbox.stats.revocations).toBe(0);
    });
  });

  describe('ops routes', () => {
    it('GET /healthz answers 200 {status:"ok"} without an API key', async () => {
      const res = await api().get('/healthz');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok' });
    });

    it('GET /readyz answers 200 while the store answers', async () => {
      const res = await api().get('/readyz');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'ready' });
    });

    it('GET /metrics serves Prometheus text with request and proxy upstream durations', async () => {
      await seed('videoask', 'metrics-a');
      expect((await api().get('/proxy/videoask/me').set(auth).set('Connection-Id', 'metrics-a')).status).toBe(200);
      const res = await api().get('/metrics');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.text).toMatch(
        /latchkey_proxy_upstream_duration_seconds_count\{provider="videoask",status="200"\} [1-9]/,
      );
      expect(res.text).toMatch(
        /latchkey_http_request_duration_seconds_count\{route="\/proxy\/:provider\/\*",method="GET",status="200"\} [1-9]/,
      );
      expect(res.text).toContain('latchkey_token_refreshes_total');
      expect(res.text).toContain('latchkey_refresh_lock_wait_seconds');
    });
  });
});
