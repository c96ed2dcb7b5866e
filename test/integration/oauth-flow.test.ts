import { keysUnder, rawRedis } from '../helpers/redis';
import { callbackPath, connectVideoAsk, consent, PUBLIC_URL, startHarness, type Harness } from '../helpers/harness';
import supertest from 'supertest';
import { createApp } from '../../src/app';
import { systemClock } from '../../src/clock';
import { createLogger } from '../../src/logger';
import { s256 } from '../../src/oauth/pkce';
import { openStore } from '../../src/store';
import { waitForReady } from '../../src/store/redis-client';

describe('the authorization-code flow against the sandbox provider', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('connects VideoAsk end to end and answers 303 to return_to with the result', async () => {
    h = await startHarness();
    const browser = h.browser();
    const start = await browser.get('/auth/videoask?connection_id=acct-1');
    expect(start.status).toBe(302);
    const authorize = new URL(start.headers.location!);
    expect(authorize.origin + authorize.pathname).toBe(`${h.sandboxUrl}/authorize`);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${PUBLIC_URL}/callback`);
    expect(authorize.searchParams.get('audience')).toBe('https://api.videoask.com/');
    expect(authorize.searchParams.get('scope')).toBe('openid profile email offline_access');
    expect(Buffer.from(authorize.searchParams.get('state')!, 'base64url').length).toBeGreaterThanOrEqual(16);

    const redirect = await consent(authorize.toString(), 'approve');
    const done = await browser.get(callbackPath(redirect));
    expect(done.status).toBe(303);
    expect(done.headers['cache-control']).toBe('no-store');
    expect(done.headers['referrer-policy']).toBe('no-referrer');
    const back = new URL(done.headers.location!);
    expect(back.origin).toBe(PUBLIC_URL);
    expect(Object.fromEntries(back.searchParams)).toEqual({
      status: 'connected',
      provider: 'videoask',
      connection_id: 'acct-1',
    });

    const conn = await h.store.getConnection('videoask', 'acct-1');
    expect(conn?.status).toBe('active');
    expect(conn?.credentials.accessToken).toMatch(/^sbx_at_/);
    expect(conn?.credentials.refreshToken).toMatch(/^sbx_rt_/);
    expect(conn?.account).toEqual({ id: expect.any(String), label: 'sandbox.user@example.com' });
    expect(h.sandbox.stats.authorizationCodeGrants).toBe(1);

    const page = await browser.get('/');
    expect(page.text).toContain('VideoAsk is connected');
    expect(page.text).toContain('sandbox.user@example.com');

    const api = await h.api().get('/connections/videoask/acct-1');
    expect(api.status).toBe(200);
    expect(api.body).toMatchObject({ provider: 'videoask', connection_id: 'acct-1', status: 'active' });
    expect(JSON.stringify(api.body)).not.toContain('sbx_');
  });

  it('connects a provider added by PROVIDERS_FILE that uses PKCE, a JSON token body and basic client auth', async () => {
    h = await startHarness({
      sandbox: { requirePkce: true, clientAuth: 'basic', clientSecret: 'se+cr/et=' },
      env: { ACME_CLIENT_ID: 'sandbox-client', ACME_CLIENT_SECRET: 'se+cr/et=' },
      providerSources: (url) => [
        {
          source: 'PROVIDERS_FILE test',
          entries: [
            {
              id: 'acme',
              displayName: 'Acme',
              authMode: 'oauth2',
              authorizationUrl: `${url}/authorize`,
              tokenUrl: `${url}/oauth/token`,
              apiBaseUrl: url,
              scopes: ['read'],
              pkce: true,
              tokenRequest: { bodyFormat: 'json', clientAuth: 'basic' },
            },
          ],
        },
      ],
    });
    const browser = h.browser();
    const start = await browser.get('/auth/acme?connection_id=c1');
    const authorize = new URL(start.headers.location!);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const done = await browser.get(callbackPath(await consent(authorize.toString(), 'approve')));
    expect(done.status).toBe(303);
    expect(new URL(done.headers.location!).searchParams.get('status')).toBe('connected');
    const tokenRequest = h.sandbox.stats.requests.find((r) => r.path === '/oauth/token')!;
    expect(tokenRequest.headers['content-type']).toContain('application/json');
    expect(tokenRequest.headers.authorization).toMatch(/^Basic /);
    const verifier = (tokenRequest.body as { code_verifier: string }).code_verifier;
    expect(s256(verifier)).toBe(authorize.searchParams.get('code_challenge'));
    expect((await h.store.getConnection('acme', 'c1'))?.status).toBe('active');
  });

  it('never repeats a PKCE verifier or a state', async () => {
    h = await startHarness({ videoask: { pkce: true } });
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const start = await h.browser().get('/auth/videoask');
      const u = new URL(start.headers.location!);
      seen.add(u.searchParams.get('state')!);
      seen.add(u.searchParams.get('code_challenge')!);
    }
    expect(seen.size).toBe(40);
  });

  it('stores nothing when the user denies, and says so', async () => {
    h = await startHarness();
    const browser = h.browser();
    const done = await connectVideoAsk(browser, '?connection_id=acct-2', 'deny');
    expect(done.status).toBe(303);
    expect(new URL(done.headers.location!).searchParams.get('status')).toBe('denied');
    expect(await h.store.getConnection('videoask', 'acct-2')).toBeNull();
    expect(h.sandbox.stats.tokenRequests).toBe(0);
    expect((await browser.get('/')).text).toContain('You declined');
  });

  describe('rejected callbacks make no token request', () => {
    async function startFlow(browser: ReturnType<Harness['browser']>) {
      const start = await browser.get('/auth/videoask');
      return consent(start.headers.location!, 'approve');
    }

    it('refuses a callback without state', async () => {
      h = await startHarness();
      const browser = h.browser();
      const redirect = await startFlow(browser);
      const res = await browser.get(`/callback?code=${redirect.searchParams.get('code')}`);
      expect(res.status).toBe(400);
      expect(res.headers['latchkey-error']).toBe('invalid_state');
      expect(res.text).toContain('invalid_state');
      expect(h.sandbox.stats.tokenRequests).toBe(0);
    });

    it('refuses a forged state', async () => {
      h = await startHarness();
      const browser = h.browser();
      const redirect = await startFlow(browser);
      const res = await browser.get(`/callback?code=${redirect.searchParams.get('code')}&state=forged`);
      expect(res.status).toBe(400);
      expect(res.headers['latchkey-error']).toBe('invalid_state');
      expect(h.sandbox.stats.tokenRequests).toBe(0);
    });

    it('refuses a replayed callback', async () => {
      h = await startHarness();
      const browser = h.browser();
      const redirect = await startFlow(browser);
      expect((await browser.get(callbackPath(redirect))).status).toBe(303);
      const again = await browser.get(callbackPath(redirect));
      expect(again.status).toBe(400);
      expect(again.headers['latchkey-error']).toBe('invalid_state');
      expect(h.sandbox.stats.tokenRequests).toBe(1);
    });

    it('refuses a flow finished from another browser session', async () => {
      h = await startHarness();
      const redirect = await startFlow(h.browser());
      const res = await h.browser().get(callbackPath(redirect));
      expect(res.status).toBe(400);
      expect(res.headers['latchkey-error']).toBe('invalid_state');
      expect(h.sandbox.stats.tokenRequests).toBe(0);
    });

    it('refuses an expired state', async () => {
      const { FakeClock } = await import('../../src/clock');
      const clock = new FakeClock(Date.now());
      h = await startHarness({ clock });
      const browser = h.browser();
      const redirect = await startFlow(browser);
      clock.advance(10 * 60_000 + 1000);
      const res = await browser.get(callbackPath(redirect));
      expect(res.status).toBe(400);
      expect(res.headers['latchkey-error']).toBe('invalid_state');
      expect(h.sandbox.stats.tokenRequests).toBe(0);
    });

    it('refuses duplicate parameters', async () => {
      h = await startHarness();
      const browser = h.browser();
      const redirect = await startFlow(browser);
      const res = await browser.get(`${callbackPath(redirect)}&code=other`);
      expect(res.status).toBe(400);
      expect(res.headers['latchkey-error']).toBe('invalid_request');
      expect(h.sandbox.stats.tokenRequests).toBe(0);
    });

    it("refuses an iss that differs from the provider's issuer, or is missing", async () => {
      h = await startHarness({
        sandbox: { issuer: 'https://sandbox.example' },
        videoask: { issuer: 'https://sandbox.example' },
      });
      const browser = h.browser();
      const changed = await startFlow(browser);
      changed.searchParams.set('iss', 'https://evil.example');
      expect((await browser.get(callbackPath(changed))).headers['latchkey-error']).toBe('invalid_request');
      const removed = await startFlow(browser);
      removed.searchParams.delete('iss');
      const res = await browser.get(callbackPath(removed));
      expect(res.status).toBe(400);
      expect(res.headers['latchkey-error']).toBe('invalid_request');
      expect(h.sandbox.stats.tokenRequests).toBe(0);

      const good = await startFlow(browser);
      expect((await browser.get(callbackPath(good))).status).toBe(303);
    });

    it('checks state before acting on error=, and escapes error_description', async () => {
      h = await startHarness();
      const browser = h.browser();
      const res = await browser.get(
        '/callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C/script%3E&state=nope',
      );
      expect(res.status).toBe(400);
      expect(res.headers['latchkey-error']).toBe('invalid_state');
      expect(res.text).not.toContain('<script>alert');
    });
  });

  it('goes back to return_to with error=provider_error when the token endpoint fails, and stores nothing', async () => {
    h = await startHarness();
    h.sandbox.failNextTokenRequests(1, 500);
    const browser = h.browser();
    const res = await connectVideoAsk(browser, '?connection_id=broken');
    expect(res.status).toBe(303);
    const back = new URL(res.headers.location!);
    expect(back.origin + back.pathname).toBe(`${PUBLIC_URL}/`);
    expect(Object.fromEntries(back.searchParams)).toEqual({
      status: 'error',
      provider: 'videoask',
      connection_id: 'broken',
      error: 'provider_error',
    });
    expect(h.sandbox.stats.tokenRequests).toBe(1);
    expect(await h.store.getConnection('videoask', 'broken')).toBeNull();
    expect((await browser.get('/')).text).toContain('VideoAsk was not connected');
  });

  it('parses expires_in given as a string, or missing', async () => {
    h = await startHarness({ sandbox: { expiresInFormat: 'string', accessTokenTtlSeconds: 1234 } });
    await connectVideoAsk(h.browser(), '?connection_id=s');
    const conn = await h.store.getConnection('videoask', 's');
    expect(conn!.expiresAt! - Date.now()).toBeGreaterThan(1200_000);
    h.sandbox.options.expiresInFormat = 'omit';
    await connectVideoAsk(h.browser(), '?connection_id=o');
    expect((await h.store.getConnection('videoask', 'o'))?.expiresAt).toBeNull();
  });

  it('refuses a return_to on an origin that is not allowed, before going to the provider', async () => {
    h = await startHarness({ env: { ALLOWED_RETURN_ORIGINS: 'https://app.example.com' } });
    for (const bad of [
      'https://app.example.com.evil.com/x',
      '//evil.com',
      '/\\evil.com',
      'javascript:alert(1)',
      'https://evil.com',
    ]) {
      const res = await h.browser().get(`/auth/videoask?return_to=${encodeURIComponent(bad)}`);
      expect(res.status).toBe(400);
      expect(res.headers['latchkey-error']).toBe('invalid_request');
    }
    const ok = await connectVideoAsk(
      h.browser(),
      `?return_to=${encodeURIComponent('https://app.example.com/settings?tab=1')}`,
    );
    const back = new URL(ok.headers.location!);
    expect(back.origin + back.pathname).toBe('https://app.example.com/settings');
    expect(back.searchParams.get('tab')).toBe('1');
    expect(back.searchParams.get('status')).toBe('connected');
  });

  it('finishes on another instance a flow started on one that has since stopped (SECURITY.md 18)', async () => {
    h = await startHarness();
    const start = await h.browser().get('/auth/videoask?connection_id=moved');
    const cookie = start.headers['set-cookie']![0]!.split(';')[0]!;
    const redirect = await consent(start.headers.location!, 'approve');

    // A second instance with nothing in memory from the first: everything it needs is in Redis.
    const { store, redis } = openStore(h.config, systemClock);
    try {
      expect(await waitForReady(redis!, 5000)).toBe(true);
      const other = createApp({
        config: h.config,
        store,
        providers: h.providers,
        logger: createLogger('silent'),
      }).handler;
      const done = await supertest(other).get(callbackPath(redirect)).set('Cookie', cookie);
      expect(done.status).toBe(303);
      expect(new URL(done.headers.location!).searchParams.get('status')).toBe('connected');
      expect((await store.getConnection('videoask', 'moved'))?.status).toBe('active');
    } finally {
      await store.close();
    }
  });

  it('makes the proxy use the new token right after a reconnect, not a cached one', async () => {
    h = await startHarness();
    await connectVideoAsk(h.browser(), '?connection_id=re');
    const first = (await h.store.getConnection('videoask', 're'))!.credentials.accessToken;
    const before = await h.api().get('/proxy/videoask/echo').set('Connection-Id', 're');
    expect(before.body.headers.authorization).toBe(`Bearer ${first}`);

    await connectVideoAsk(h.browser(), '?connection_id=re');
    const second = (await h.store.getConnection('videoask', 're'))!.credentials.accessToken;
    expect(second).not.toBe(first);
    const after = await h.api().get('/proxy/videoask/echo').set('Connection-Id', 're');
    expect(after.body.headers.authorization).toBe(`Bearer ${second}`);
  });

  it('keeps no access or refresh token in plain text anywhere in Redis after a flow', async () => {
    h = await startHarness();
    await connectVideoAsk(h.browser(), '?connection_id=scan');
    const conn = await h.store.getConnection('videoask', 'scan');
    const secrets = [conn!.credentials.accessToken!, conn!.credentials.refreshToken!];
    const raw = rawRedis();
    try {
      const keys = await keysUnder(raw, h.prefix);
      expect(keys.length).toBeGreaterThan(2);
      for (const key of keys) {
        const type = await raw.type(key);
        const value =
          type === 'hash'
            ? JSON.stringify(await raw.hgetall(key))
            : type === 'set'
              ? (await raw.smembers(key)).join(',')
              : type === 'zset'
                ? (await raw.zrange(key, 0, -1)).join(',')
                : type === 'stream'
                  ? JSON.stringify(await raw.xrange(key, '-', '+'))
                  : await raw.get(key);
        for (const s of secrets) expect(value).not.toContain(s);
        expect(value).not.toContain('sbx_');
      }
    } finally {
      raw.disconnect();
    }
  });
});

describe('connect sessions', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('issues a single-use link that connects the named connection', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const created = await h
      .api()
      .post('/connect-sessions')
      .send({ provider: 'videoask', connection_id: 'user-42', return_to: '/' });
    expect(created.status).toBe(201);
    expect(created.body.url).toBe(`${PUBLIC_URL}/auth/videoask?token=${created.body.token}`);
    expect(Date.parse(created.body.expires_at) - Date.now()).toBeGreaterThan(14 * 60_000);

    const browser = h.browser();
    const done = await connectVideoAsk(browser, `?token=${created.body.token}`);
    expect(new URL(done.headers.location!).searchParams.get('connection_id')).toBe('user-42');
    expect((await h.store.getConnection('videoask', 'user-42'))?.status).toBe('active');

    const reused = await h.browser().get(`/auth/videoask?token=${created.body.token}`);
    expect(reused.status).toBe(410);
    expect(reused.headers['latchkey-error']).toBe('link_expired');
  });

  it('refuses anonymous connect when it is off, and the API without a key', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const res = await h.browser().get('/auth/videoask?connection_id=x');
    expect(res.status).toBe(400);
    expect(res.headers['latchkey-error']).toBe('invalid_request');
    const noKey = await h.browser().post('/connect-sessions').send({ provider: 'videoask', connection_id: 'x' });
    expect(noKey.status).toBe(401);
    expect(noKey.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
  });

  it('answers the contract errors for bad connect-session requests', async () => {
    h = await startHarness();
    const bad = await h.api().post('/connect-sessions').send({ provider: 'videoask', connection_id: 'has space' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    const unknown = await h.api().post('/connect-sessions').send({ provider: 'nope', connection_id: 'a' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('unknown_provider');
    const disabled = await h.api().post('/connect-sessions').send({ provider: 'livestorm', connection_id: 'a' });
    expect(disabled.body.error.code).toBe('provider_not_enabled');
    const evil = await h
      .api()
      .post('/connect-sessions')
      .send({ provider: 'videoask', connection_id: 'a', return_to: 'https://evil.com' });
    expect(evil.body.error.code).toBe('invalid_request');
  });
});

describe('api_key providers', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('stores a pasted WebinarGeek key encrypted, behind a CSRF token, and never echoes it', async () => {
    // The sandbox's WebinarGeek accepts this key when Latchkey checks it.
    h = await startHarness({ sandbox: { apiKeys: ['wg-key-canary-123'] } });
    const browser = h.browser();
    const form = await browser.get('/auth/webinargeek?connection_id=wg');
    expect(form.status).toBe(200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!;
    const noCsrf = await browser.post('/auth/webinargeek').type('form').send({ api_key: 'wg-key-canary-123' });
    expect(noCsrf.status).toBe(400);
    expect(noCsrf.headers['latchkey-error']).toBe('invalid_state');
    const empty = await browser.post('/auth/webinargeek').type('form').send({ csrf, api_key: '' });
    expect(empty.status).toBe(400);
    expect(empty.text).toContain('Enter your API key');
    const spaced = await browser.post('/auth/webinargeek').type('form').send({ csrf, api_key: 'wg key canary' });
    expect(spaced.text).not.toContain('wg key canary');
    const ok = await browser.post('/auth/webinargeek').type('form').send({ csrf, api_key: 'wg-key-canary-123' });
    expect(ok.status).toBe(303);
    expect((await h.store.getConnection('webinargeek', 'wg'))?.credentials.apiKey).toBe('wg-key-canary-123');
    const raw = rawRedis();
    try {
      for (const key of await keysUnder(raw, h.prefix)) {
        const type = await raw.type(key);
        const value =
          type === 'hash'
            ? JSON.stringify(await raw.hgetall(key))
            : type === 'set'
              ? ''
              : type === 'zset'
                ? (await raw.zrange(key, 0, -1)).join(',')
                : type === 'stream'
                  ? JSON.stringify(await raw.xrange(key, '-', '+'))
                  : await raw.get(key);
        expect(value).not.toContain('wg-key-canary');
      }
    } finally {
      raw.disconnect();
    }
  });
});
