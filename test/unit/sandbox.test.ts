import request from 'supertest';

import { formUrlEncode } from '../../src/sandbox/client-auth';
import { s256Challenge } from '../../src/sandbox/pkce';
import { createSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/sandbox';
import { ImportConnectionSchema } from '../../src/wire/api-schemas';

const REDIRECT_URI = 'http://localhost:3000/oauth/callback';
const CLIENT_ID = 'sandbox-client';
const CLIENT_SECRET = 'sandbox-secret';
const VERIFIER = 'dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXk-long-enough-verifier';

interface FakeClock {
  now(): number;
  advance(ms: number): void;
}

function fakeClock(start = Date.UTC(2030, 0, 1)): FakeClock {
  let current = start;
  return { now: () => current, advance: (ms) => (current += ms) };
}

interface TokenBody {
  access_token: string;
  refresh_token?: string;
  token_type: string;
  expires_in?: number | string;
  scope: string;
}

/** Basic credentials encoded the RFC 6749 §2.3.1 way: form-urlencode each half, then base64. */
function basicAuth(clientId: string, clientSecret: string): string {
  return 'Basic ' + Buffer.from(`${formUrlEncode(clientId)}:${formUrlEncode(clientSecret)}`).toString('base64');
}

function bearer(token: string): string {
  return `Bearer ${token}`;
}

/** Opens the consent page and returns the hidden request id. */
async function openConsent(sandbox: Sandbox, query: Record<string, string> = {}): Promise<string> {
  const res = await request(sandbox.app)
    .get('/authorize')
    .query({
      response_type: 'code',
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      scope: 'openid email',
      state: 's-1',
      ...query,
    });
  expect(res.status).toBe(200);
  const match = /name="request_id" value="([^"]+)"/.exec(res.text);
  if (!match?.[1]) throw new Error('no request_id in consent page');
  return match[1];
}

/** Submits the consent form and returns the redirect target. */
async function decide(sandbox: Sandbox, requestId: string, decision: 'approve' | 'deny'): Promise<URL> {
  const res = await request(sandbox.app)
    .post('/authorize/decision')
    .type('form')
    .send({ request_id: requestId, decision });
  expect(res.status).toBe(302);
  return new URL(res.headers['location'] as string);
}

/** Runs the browser part of the flow (authorize + Approve) and returns the code. */
async function obtainCode(sandbox: Sandbox, query: Record<string, string> = {}): Promise<string> {
  const location = await decide(sandbox, await openConsent(sandbox, query), 'approve');
  const code = location.searchParams.get('code');
  if (!code) throw new Error(`no code in ${location.href}`);
  return code;
}

function postToken(sandbox: Sandbox, body: Record<string, string>, as: 'form' | 'json' = 'form'): request.Test {
  return request(sandbox.app).post('/oauth/token').type(as).send(body);
}

function exchangeCode(sandbox: Sandbox, code: string, extra: Record<string, string> = {}): request.Test {
  return postToken(sandbox, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT_URI,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    ...extra,
  });
}

function refresh(sandbox: Sandbox, refreshToken: string): request.Test {
  return postToken(sandbox, {
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
  });
}

async function obtainTokens(sandbox: Sandbox): Promise<TokenBody> {
  const res = await exchangeCode(sandbox, await obtainCode(sandbox));
  expect(res.status).toBe(200);
  return res.body as TokenBody;
}

function getMe(sandbox: Sandbox, accessToken: string): request.Test {
  return request(sandbox.app).get('/me').set('Authorization', bearer(accessToken));
}

describe('sandbox provider', () => {
  let clock: FakeClock;
  let sandbox: Sandbox;

  function create(options: Partial<SandboxOptions> = {}): Sandbox {
    sandbox = createSandbox({ clock, ...options });
    return sandbox;
  }

  beforeEach(() => {
    clock = fakeClock();
    create();
  });

  describe('authorization endpoint', () => {
    it('when the authorize request is valid, then it renders a self-contained consent page with both buttons', async () => {
      const res = await request(sandbox.app).get('/authorize').query({
        response_type: 'code',
        client_id: CLIENT_ID,
        redirect_uri: REDIRECT_URI,
        scope: 'openid email offline_access',
        state: 'abc',
      });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.text).toContain('Sandbox VideoAsk wants access to your account');
      expect(res.text).toContain('<form method="post" action="/authorize/decision">');
      expect(res.text).toContain('<button name="decision" value="approve">Approve</button>');
      expect(res.text).toContain('<button name="decision" value="deny">Deny</button>');
      expect(res.text).toContain(CLIENT_ID);
      expect(res.text).toContain('offline_access');
      expect(res.text).not.toMatch(/<(link|script|img)\b|https?:\/\/(?!localhost:3000)/);
    });

    it('when the user approves, then it redirects to redirect_uri with a code and the state', async () => {
      const location = await decide(sandbox, await openConsent(sandbox, { state: 'xyz 1' }), 'approve');
      expect(location.origin + location.pathname).toBe(REDIRECT_URI);
      expect(location.searchParams.get('code')).toMatch(/^sbx_code_/);
      expect(location.searchParams.get('state')).toBe('xyz 1');
      expect(location.searchParams.has('iss')).toBe(false);
    });

    it('when the user denies, then it redirects with access_denied and the state', async () => {
      const res = await request(sandbox.app)
        .post('/authorize/decision')
        .type('form')
        .send({ request_id: await openConsent(sandbox, { state: 'st' }), decision: 'deny' });
      expect(res.status).toBe(302);
      expect(res.headers['location']).toBe(
        `${REDIRECT_URI}?error=access_denied&error_description=The+user+denied+access&state=st`,
      );
    });

    it('when an issuer is configured, then the redirect carries iss', async () => {
      create({ issuer: 'https://sandbox.example' });
      const location = await decide(sandbox, await openConsent(sandbox), 'approve');
      expect(location.searchParams.get('iss')).toBe('https://sandbox.example');
    });

    it('when the client_id is unknown, then it answers a plain 400 page instead of redirecting', async () => {
      const res = await request(sandbox.app)
        .get('/authorize')
        .query({ response_type: 'code', client_id: 'nope', redirect_uri: REDIRECT_URI });
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.headers['location']).toBeUndefined();
    });

    it('when the redirect_uri is not an absolute URL, then it answers a plain 400 page', async () => {
      const res = await request(sandbox.app)
        .get('/authorize')
        .query({ response_type: 'code', client_id: CLIENT_ID, redirect_uri: '/relative' });
      expect(res.status).toBe(400);
      expect(res.headers['location']).toBeUndefined();
    });

    it('when response_type is not code, then it redirects with unsupported_response_type', async () => {
      const res = await request(sandbox.app)
        .get('/authorize')
        .query({ response_type: 'token', client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, state: 'q' });
      expect(res.status).toBe(302);
      const location = new URL(res.headers['location'] as string);
      expect(location.searchParams.get('error')).toBe('unsupported_response_type');
      expect(location.searchParams.get('state')).toBe('q');
    });

    it('when PKCE is required and no code_challenge is sent, then it redirects with invalid_request', async () => {
      create({ requirePkce: true });
      const res = await request(sandbox.app)
        .get('/authorize')
        .query({ response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT_URI });
      expect(res.status).toBe(302);
      expect(new URL(res.headers['location'] as string).searchParams.get('error')).toBe('invalid_request');
    });

    it('when the plain code_challenge_method is asked for, then it is refused', async () => {
      const res = await request(sandbox.app).get('/authorize').query({
        response_type: 'code',
        client_id: CLIENT_ID,
        redirect_uri: REDIRECT_URI,
        code_challenge: VERIFIER,
        code_challenge_method: 'plain',
      });
      expect(res.status).toBe(302);
      expect(new URL(res.headers['location'] as string).searchParams.get('error')).toBe('invalid_request');
    });

    it('when a consent request is answered twice or after 10 minutes, then it is refused', async () => {
      const requestId = await openConsent(sandbox);
      await decide(sandbox, requestId, 'approve');
      const again = await request(sandbox.app)
        .post('/authorize/decision')
        .type('form')
        .send({ request_id: requestId, decision: 'approve' });
      expect(again.status).toBe(400);

      const stale = await openConsent(sandbox);
      clock.advance(10 * 60 * 1000);
      const late = await request(sandbox.app)
        .post('/authorize/decision')
        .type('form')
        .send({ request_id: stale, decision: 'approve' });
      expect(late.status).toBe(400);
    });
  });

  describe('token endpoint: authorization code grant', () => {
    it('when the code is exchanged with a form body and client_secret_post, then it returns opaque prefixed tokens', async () => {
      const res = await exchangeCode(sandbox, await obtainCode(sandbox));
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toEqual({
        access_token: expect.stringMatching(/^sbx_at_[A-Za-z0-9_-]{43,}$/),
        refresh_token: expect.stringMatching(/^sbx_rt_[A-Za-z0-9_-]{43,}$/),
        token_type: 'Bearer',
        expires_in: 3600,
        scope: 'openid email',
      });
      const me = await getMe(sandbox, (res.body as TokenBody).access_token);
      expect(me.status).toBe(200);
      expect(me.body).toEqual({
        user_id: expect.any(String),
        email: 'sandbox.user@example.com',
        name: 'Sandbox User',
      });
    });

    it('when the code is exchanged with a JSON body, then it returns tokens', async () => {
      const code = await obtainCode(sandbox);
      const res = await postToken(
        sandbox,
        {
          grant_type: 'authorization_code',
          code,
          redirect_uri: REDIRECT_URI,
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
        },
        'json',
      );
      expect(res.status).toBe(200);
      expect((res.body as TokenBody).access_token).toMatch(/^sbx_at_/);
    });

    it('when the client authenticates with HTTP Basic, then the code is exchanged', async () => {
      const code = await obtainCode(sandbox);
      const res = await request(sandbox.app)
        .post('/oauth/token')
        .set('Authorization', basicAuth(CLIENT_ID, CLIENT_SECRET))
        .type('form')
        .send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
      expect(res.status).toBe(200);
    });

    it('when the secret contains + and / and Basic credentials are form-urlencoded per RFC 6749 §2.3.1, then they are accepted', async () => {
      const secret = 'se+cr/et=with space%';
      create({ clientSecret: secret, clientAuth: 'basic' });
      const code = await obtainCode(sandbox);
      const res = await request(sandbox.app)
        .post('/oauth/token')
        .set('Authorization', basicAuth(CLIENT_ID, secret))
        .type('form')
        .send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
      expect(res.status).toBe(200);
    });

    it('when the secret with + is sent in Basic without form-urlencoding, then the + decodes as a space and is refused', async () => {
      create({ clientSecret: 'a+b/c' });
      const raw = 'Basic ' + Buffer.from(`${CLIENT_ID}:a+b/c`).toString('base64');
      const res = await request(sandbox.app)
        .post('/oauth/token')
        .set('Authorization', raw)
        .type('form')
        .send({ grant_type: 'refresh_token', refresh_token: 'x' });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'invalid_client' });
      expect(res.headers['www-authenticate']).toMatch(/^Basic/);
    });

    it('when the client secret is wrong, then it answers 401 invalid_client', async () => {
      const res = await exchangeCode(sandbox, await obtainCode(sandbox), { client_secret: 'wrong' });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'invalid_client' });
    });

    it('when clientAuth is basic, then client_secret_post is refused; when it is body, then Basic is refused', async () => {
      create({ clientAuth: 'basic' });
      expect((await exchangeCode(sandbox, await obtainCode(sandbox))).status).toBe(401);

      create({ clientAuth: 'body' });
      const code = await obtainCode(sandbox);
      const res = await request(sandbox.app)
        .post('/oauth/token')
        .set('Authorization', basicAuth(CLIENT_ID, CLIENT_SECRET))
        .type('form')
        .send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
      expect(res.status).toBe(401);
      expect((await exchangeCode(sandbox, code)).status).toBe(200);
    });

    it('when a code is used twice, then the second use is invalid_grant and the tokens it issued are revoked', async () => {
      const code = await obtainCode(sandbox);
      const first = await exchangeCode(sandbox, code);
      expect(first.status).toBe(200);
      const second = await exchangeCode(sandbox, code);
      expect(second.status).toBe(400);
      expect(second.body).toMatchObject({ error: 'invalid_grant' });
      const tokens = first.body as TokenBody;
      expect((await getMe(sandbox, tokens.access_token)).body).toEqual({ detail: 'Invalid token.' });
      expect((await refresh(sandbox, tokens.refresh_token ?? '')).body).toMatchObject({
        error: 'invalid_grant',
      });
    });

    it('when the code is older than 60 seconds, then it is invalid_grant', async () => {
      const code = await obtainCode(sandbox);
      clock.advance(60_000);
      const res = await exchangeCode(sandbox, code);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_grant' });
    });

    it('when the redirect_uri differs from the authorize one, then it is invalid_grant', async () => {
      const res = await exchangeCode(sandbox, await obtainCode(sandbox), {
        redirect_uri: `${REDIRECT_URI}/`,
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_grant' });
    });

    it('when the grant type is unsupported, then it answers unsupported_grant_type', async () => {
      const res = await postToken(sandbox, {
        grant_type: 'password',
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'unsupported_grant_type' });
    });

    it.each(['number', 'string', 'omit'] as const)(
      'when expiresInFormat is %s, then expires_in is written that way',
      async (format) => {
        create({ expiresInFormat: format, accessTokenTtlSeconds: 120 });
        const tokens = await obtainTokens(sandbox);
        const expected = { number: 120, string: '120', omit: undefined }[format];
        expect(tokens.expires_in).toBe(expected);
        expect('expires_in' in tokens).toBe(format !== 'omit');
      },
    );
  });

  describe('PKCE', () => {
    const challenge = s256Challenge(VERIFIER);
    const pkceQuery = { code_challenge: challenge, code_challenge_method: 'S256' };

    it('when the verifier matches the S256 challenge, then the code is exchanged', async () => {
      create({ requirePkce: true });
      const res = await exchangeCode(sandbox, await obtainCode(sandbox, pkceQuery), {
        code_verifier: VERIFIER,
      });
      expect(res.status).toBe(200);
    });

    it('when the verifier is wrong or missing, then it is invalid_grant', async () => {
      const wrong = await exchangeCode(sandbox, await obtainCode(sandbox, pkceQuery), {
        code_verifier: VERIFIER + 'x',
      });
      expect(wrong.status).toBe(400);
      expect(wrong.body).toMatchObject({ error: 'invalid_grant' });

      const missing = await exchangeCode(sandbox, await obtainCode(sandbox, pkceQuery));
      expect(missing.status).toBe(400);
      expect(missing.body).toMatchObject({ error: 'invalid_grant' });
    });
  });

  describe('token endpoint: refresh token grant', () => {
    it('when rotation is strict and a rotated refresh token is reused, then it is invalid_grant and the whole family is revoked', async () => {
      const original = await obtainTokens(sandbox);
      const rotated = await refresh(sandbox, original.refresh_token ?? '');
      expect(rotated.status).toBe(200);
      const next = rotated.body as TokenBody;
      expect(next.refresh_token).toMatch(/^sbx_rt_/);
      expect(next.refresh_token).not.toBe(original.refresh_token);
      expect(next.access_token).not.toBe(original.access_token);
      expect((await getMe(sandbox, next.access_token)).status).toBe(200);

      const replay = await refresh(sandbox, original.refresh_token ?? '');
      expect(replay.status).toBe(400);
      expect(replay.body).toEqual({ error: 'invalid_grant', error_description: expect.any(String) });

      for (const accessToken of [original.access_token, next.access_token]) {
        const me = await getMe(sandbox, accessToken);
        expect(me.status).toBe(401);
        expect(me.body).toEqual({ detail: 'Invalid token.' });
      }
      expect((await refresh(sandbox, next.refresh_token ?? '')).body).toMatchObject({
        error: 'invalid_grant',
      });
    });

    it('when rotation is none, then no new refresh token is returned and the old one stays valid', async () => {
      create({ rotation: 'none' });
      const original = await obtainTokens(sandbox);
      for (let i = 0; i < 2; i += 1) {
        const res = await refresh(sandbox, original.refresh_token ?? '');
        expect(res.status).toBe(200);
        expect(res.body).not.toHaveProperty('refresh_token');
        expect((await getMe(sandbox, (res.body as TokenBody).access_token)).status).toBe(200);
      }
    });

    it('when the refresh token is unknown, then it is invalid_grant with a description', async () => {
      const res = await refresh(sandbox, 'sbx_rt_unknown');
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: 'invalid_grant', error_description: expect.any(String) });
    });

    it('when options change at runtime, then the next refresh follows them', async () => {
      const original = await obtainTokens(sandbox);
      sandbox.options.accessTokenTtlSeconds = 5;
      sandbox.options.rotation = 'none';
      const res = await refresh(sandbox, original.refresh_token ?? '');
      expect(res.body).toMatchObject({ expires_in: 5 });
      expect(res.body).not.toHaveProperty('refresh_token');
    });
  });

  describe('revocation endpoint', () => {
    it('when a refresh token is revoked, then its whole family stops working', async () => {
      const tokens = await obtainTokens(sandbox);
      const res = await request(sandbox.app)
        .post('/oauth/revoke')
        .set('Authorization', basicAuth(CLIENT_ID, CLIENT_SECRET))
        .type('form')
        .send({ token: tokens.refresh_token, token_type_hint: 'refresh_token' });
      expect(res.status).toBe(200);
      expect((await getMe(sandbox, tokens.access_token)).body).toEqual({ detail: 'Invalid token.' });
      expect((await refresh(sandbox, tokens.refresh_token ?? '')).body).toMatchObject({
        error: 'invalid_grant',
      });
    });

    it('when an access token is revoked, then only it stops working', async () => {
      const tokens = await obtainTokens(sandbox);
      const res = await request(sandbox.app)
        .post('/oauth/revoke')
        .send({ token: tokens.access_token, client_id: CLIENT_ID, client_secret: CLIENT_SECRET });
      expect(res.status).toBe(200);
      expect((await getMe(sandbox, tokens.access_token)).status).toBe(401);
      expect((await refresh(sandbox, tokens.refresh_token ?? '')).status).toBe(200);
    });
  });

  describe('API', () => {
    it('when the access token outlives its TTL on the fake clock, then the API answers 401 Token has expired', async () => {
      create({ accessTokenTtlSeconds: 60 });
      const { access_token } = sandbox.issueTokensDirectly();
      clock.advance(59_999);
      expect((await getMe(sandbox, access_token)).status).toBe(200);
      clock.advance(1);
      const res = await getMe(sandbox, access_token);
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ detail: 'Token has expired.' });
    });

    it('when expireAllAccessTokens is called, then every issued access token is expired', async () => {
      const first = sandbox.issueTokensDirectly();
      const second = await obtainTokens(sandbox);
      sandbox.expireAllAccessTokens();
      for (const token of [first.access_token, second.access_token]) {
        expect((await getMe(sandbox, token)).body).toEqual({ detail: 'Token has expired.' });
      }
      const fresh = await refresh(sandbox, first.refresh_token);
      expect((await getMe(sandbox, (fresh.body as TokenBody).access_token)).status).toBe(200);
    });

    it('when the token is missing or unknown, then the API answers 401', async () => {
      expect((await request(sandbox.app).get('/me')).status).toBe(401);
      const res = await getMe(sandbox, 'sbx_at_made_up');
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ detail: 'Invalid token.' });
    });

    it('when organizations are listed, then they come with a count', async () => {
      const { access_token } = sandbox.issueTokensDirectly();
      const res = await request(sandbox.app).get('/organizations').set('Authorization', bearer(access_token));
      expect(res.status).toBe(200);
      expect(res.body.count).toBe(res.body.results.length);
      expect(res.body.results[0]).toEqual({ organization_id: expect.any(String), name: expect.any(String) });
    });

    it('when /forms is called without an organization-id header, then it answers 400; with one, then the forms', async () => {
      const { access_token } = sandbox.issueTokensDirectly();
      const missing = await request(sandbox.app).get('/forms').set('Authorization', bearer(access_token));
      expect(missing.status).toBe(400);
      expect(missing.body).toEqual({ detail: 'organization-id header required' });

      const orgs = await request(sandbox.app).get('/organizations').set('Authorization', bearer(access_token));
      const organizationId =
        (orgs.body as { results: Array<{ organization_id: string }> }).results[0]?.organization_id ?? '';
      const forms = await request(sandbox.app)
        .get('/forms')
        .set('Authorization', bearer(access_token))
        .set('organization-id', organizationId);
      expect(forms.status).toBe(200);
      expect(forms.body.count).toBeGreaterThan(0);
      expect(forms.body.results[0]).toEqual({ form_id: expect.any(String), title: expect.any(String) });
    });

    it('when /echo receives a request, then it echoes method, path, query, headers and body text', async () => {
      const { access_token } = sandbox.issueTokensDirectly();
      const res = await request(sandbox.app)
        .put('/echo/a/b?x=1&y=2')
        .set('Authorization', bearer(access_token))
        .set('X-Custom', 'yes')
        .type('json')
        .send('{"hello":"world"}');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        method: 'PUT',
        path: '/echo/a/b',
        query: { x: '1', y: '2' },
        headers: { 'x-custom': 'yes' },
        body: '{"hello":"world"}',
      });
      expect((await request(sandbox.app).get('/echo')).status).toBe(401);
    });

    it('when /big, /slow and /status are called, then they answer size, delay and status as asked', async () => {
      const { access_token } = sandbox.issueTokensDirectly();
      const big = await request(sandbox.app).get('/big?kb=64').set('Authorization', bearer(access_token));
      expect(big.status).toBe(200);
      expect(Number(big.headers['content-length'])).toBe(64 * 1024);
      const slow = await request(sandbox.app).get('/slow?ms=5').set('Authorization', bearer(access_token));
      expect(slow.body).toEqual({ waited_ms: 5 });
      const status = await request(sandbox.app).get('/status/503').set('Authorization', bearer(access_token));
      expect(status.status).toBe(503);
      expect(status.body).toMatchObject({ status: 503 });
    });
  });

  describe('failure injection and delay', () => {
    it('when failNextTokenRequests(2, 503) is set, then the next two token requests fail and the third succeeds', async () => {
      const { refresh_token } = sandbox.issueTokensDirectly();
      sandbox.failNextTokenRequests(2, 503);
      for (let i = 0; i < 2; i += 1) {
        const res = await refresh(sandbox, refresh_token);
        expect(res.status).toBe(503);
        expect(res.body).toEqual({ error: 'server_error' });
      }
      expect((await refresh(sandbox, refresh_token)).status).toBe(200);
    });

    it('when failNextTokenRequests has no status, then it answers 500', async () => {
      sandbox.failNextTokenRequests(1);
      expect((await refresh(sandbox, 'x')).status).toBe(500);
    });

    it('when tokenDelayMs is set, then the token endpoint answers no sooner', async () => {
      sandbox.options.tokenDelayMs = 80;
      const started = performance.now();
      await refresh(sandbox, 'x');
      expect(performance.now() - started).toBeGreaterThanOrEqual(75);
    });
  });

  describe('stats', () => {
    it('when requests are made, then stats count them and log them', async () => {
      const tokens = await obtainTokens(sandbox);
      await refresh(sandbox, tokens.refresh_token ?? '');
      await refresh(sandbox, 'unknown');
      await getMe(sandbox, tokens.access_token);
      await request(sandbox.app).get('/me');
      await request(sandbox.app)
        .post('/oauth/revoke')
        .send({ token: 'x', client_id: CLIENT_ID, client_secret: CLIENT_SECRET });
      await request(sandbox.app).get('/_sandbox/stats');

      expect(sandbox.stats).toMatchObject({
        tokenRequests: 3,
        authorizationCodeGrants: 1,
        refreshGrants: 2,
        revocations: 1,
        apiRequests: 2,
      });
      const paths = sandbox.stats.requests.map((entry) => `${entry.method} ${entry.path}`);
      expect(paths).toEqual([
        'GET /authorize',
        'POST /authorize/decision',
        'POST /oauth/token',
        'POST /oauth/token',
        'POST /oauth/token',
        'GET /me',
        'GET /me',
        'POST /oauth/revoke',
      ]);
      const tokenEntry = sandbox.stats.requests[2];
      expect(tokenEntry?.body).toMatchObject({ grant_type: 'authorization_code' });
      expect(tokenEntry?.at).toBe(clock.now());
      expect(sandbox.stats.requests[5]?.headers['authorization']).toBe(bearer(tokens.access_token));
    });

    it('when reset is called, then tokens are forgotten and stats are zero', async () => {
      const { access_token } = sandbox.issueTokensDirectly();
      const stats = sandbox.stats;
      await getMe(sandbox, access_token);
      sandbox.reset();
      expect(sandbox.stats).toBe(stats);
      expect(stats).toEqual({
        tokenRequests: 0,
        authorizationCodeGrants: 0,
        refreshGrants: 0,
        revocations: 0,
        apiRequests: 0,
        apiKeyRequests: 0,
        requests: [],
      });
      expect((await getMe(sandbox, access_token)).body).toEqual({ detail: 'Invalid token.' });
    });
  });

  describe('control routes', () => {
    it('when stats are fetched, then the log is left out unless ?log=1', async () => {
      await request(sandbox.app).get('/me');
      const plain = await request(sandbox.app).get('/_sandbox/stats');
      expect(plain.body).toEqual({
        tokenRequests: 0,
        authorizationCodeGrants: 0,
        refreshGrants: 0,
        revocations: 0,
        apiRequests: 1,
        apiKeyRequests: 0,
      });
      const withLog = await request(sandbox.app).get('/_sandbox/stats?log=1');
      expect(withLog.body.requests).toHaveLength(1);
      expect(sandbox.stats.apiRequests).toBe(1);
    });

    it('when config is patched, then the options change; when the patch is invalid, then it answers 400', async () => {
      const res = await request(sandbox.app)
        .post('/_sandbox/config')
        .send({ rotation: 'none', tokenDelayMs: 0, issuer: 'https://i' });
      expect(res.status).toBe(200);
      expect(sandbox.options).toMatchObject({ rotation: 'none', issuer: 'https://i' });
      expect(sandbox.options.clock).toBe(clock);
      expect((await request(sandbox.app).post('/_sandbox/config').send({ rotation: 'sometimes' })).status).toBe(400);
      expect((await request(sandbox.app).post('/_sandbox/config').send({ clock: 1 })).status).toBe(400);
    });

    it("when tokens are issued as an import, then the answer is the body of Latchkey's PUT /connections/…", async () => {
      const issued = await request(sandbox.app)
        .post('/_sandbox/issue-tokens')
        .send({ as: 'import', scope: 'openid email' });
      expect(issued.status).toBe(200);
      expect(issued.body).toEqual({
        access_token: expect.stringMatching(/^sbx_at_/),
        refresh_token: expect.stringMatching(/^sbx_rt_/),
        expires_at: new Date(clock.now() + 3600_000).toISOString(),
        scopes: ['openid', 'email'],
      });
      expect(ImportConnectionSchema.safeParse(issued.body).success).toBe(true);
      expect((await getMe(sandbox, issued.body.access_token)).status).toBe(200);
      expect((await request(sandbox.app).post('/_sandbox/issue-tokens').send({ as: 'latchkey' })).status).toBe(400);
    });

    it('when tokens are issued, failures injected, tokens expired and state reset over HTTP, then the sandbox follows', async () => {
      const issued = await request(sandbox.app).post('/_sandbox/issue-tokens').send({ scope: 'openid' });
      expect(issued.status).toBe(200);
      const tokens = issued.body as { access_token: string; refresh_token: string; expires_in: number };
      expect(tokens).toEqual({
        access_token: expect.stringMatching(/^sbx_at_/),
        refresh_token: expect.stringMatching(/^sbx_rt_/),
        expires_in: 3600,
      });
      expect((await getMe(sandbox, tokens.access_token)).status).toBe(200);

      await request(sandbox.app).post('/_sandbox/expire-access-tokens').expect(200);
      expect((await getMe(sandbox, tokens.access_token)).body).toEqual({ detail: 'Token has expired.' });

      await request(sandbox.app).post('/_sandbox/fail-token').send({ n: 1, status: 502 }).expect(200);
      expect((await refresh(sandbox, tokens.refresh_token)).status).toBe(502);

      await request(sandbox.app).post('/_sandbox/reset').expect(200);
      expect(sandbox.stats.tokenRequests).toBe(0);
      expect((await refresh(sandbox, tokens.refresh_token)).status).toBe(400);
    });
  });

  describe('listen', () => {
    it('when listening on port 0, then it serves on 127.0.0.1 at the reported url and closes', async () => {
      const server = await sandbox.listen();
      try {
        expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
        const { access_token } = sandbox.issueTokensDirectly();
        const res = await fetch(`${server.url}/me`, { headers: { authorization: bearer(access_token) } });
        expect(res.status).toBe(200);
      } finally {
        await server.close();
      }
    });
  });
});
