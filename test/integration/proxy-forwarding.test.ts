import type { IncomingMessage, ServerResponse } from 'node:http';
import { createApp } from '../../src/app';
import { createLogger } from '../../src/logger';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import {
  apiAuth,
  apiRequestsOf,
  listen,
  rawRequest,
  seedVideoAsk,
  startTrap,
  type Listening,
} from '../helpers/proxy-harness';
import { connectionInput, seedApiKeyConnection, seedOAuthConnection } from '../helpers/seed';

/**
 * ALL /proxy/:provider/* against the sandbox provider on real Redis (CONTRACT "Service API",
 * SECURITY.md §10–11), plus a hand-made upstream for what the sandbox cannot do: answer with odd
 * hop-by-hop headers, redirect elsewhere, or refuse every credential.
 */
describe('proxy: forwarding', () => {
  let h: Harness;
  let latchkey: Listening;
  let upstream: Listening;
  let trap: Awaited<ReturnType<typeof startTrap>>;
  const upstreamSeen: Array<{ url: string; headers: IncomingMessage['headers']; body: string }> = [];

  function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      upstreamSeen.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      if (req.url === '/hop') {
        res.writeHead(200, {
          Connection: 'X-Hop-Secret',
          'X-Hop-Secret': 'must-not-come-back',
          'Proxy-Authenticate': 'Basic realm="upstream"',
          Trailer: 'X-Checksum',
          Upgrade: 'h2c',
          'Latchkey-Error': 'forged_by_provider',
          'X-Provider': 'kept',
          'X-Request-Id': 'the-provider-own-id',
          'Content-Type': 'application/json',
        });
        res.end('{"ok":true}');
      } else if (req.url === '/redirect') {
        res.writeHead(302, { Location: `${trap.url}/steal` });
        res.end();
      } else {
        res.writeHead(401, {
          'Content-Type': 'application/json',
          'WWW-Authenticate': 'Bearer error="invalid_token"',
          'X-Request-Id': 'the-provider-own-id',
        });
        res.end('{"detail":"Invalid token."}');
      }
    });
  }

  beforeAll(async () => {
    trap = await startTrap();
    upstream = await listen(upstreamHandler);
    h = await startHarness({
      videoask: { apiHeaders: { 'X-Api-Version': '2026-01' } },
      env: { REFUSER_CLIENT_ID: 'sandbox-client', REFUSER_CLIENT_SECRET: 'sandbox-secret' },
      providerSources: (sandboxUrl) => [
        {
          source: 'test providers',
          entries: [
            // An api_key provider whose key is a sandbox access token, sent as a Bearer header.
            {
              id: 'sandbox-key',
              displayName: 'Sandbox key',
              authMode: 'api_key',
              apiKey: { header: 'Authorization', format: 'Bearer {key}' },
              apiBaseUrl: sandboxUrl,
            },
            {
              id: 'odd-upstream',
              displayName: 'Odd upstream',
              authMode: 'api_key',
              apiKey: { header: 'Api-Token' },
              apiBaseUrl: upstream.url,
            },
            // An oauth2 provider refreshing at the sandbox whose API refuses every credential.
            {
              id: 'refuser',
              displayName: 'Refuser',
              authMode: 'oauth2',
              authorizationUrl: `${sandboxUrl}/authorize`,
              tokenUrl: `${sandboxUrl}/oauth/token`,
              apiBaseUrl: upstream.url,
            },
          ],
        },
      ],
    });
    latchkey = await listen(h.app);
  });

  afterAll(async () => {
    await latchkey.close();
    await upstream.close();
    await trap.close();
    await h.close();
  });

  // Every test has connections of its own: the proxy keeps a credential for up to a second, and a
  // connection rewritten behind its back (as another instance would) is only noticed on a 401.
  let n = 0;
  const fresh = (name: string) => `${name}-${++n}`;

  beforeEach(() => {
    h.sandbox.reset();
    upstreamSeen.length = 0;
  });

  it('forwards method, path, query and body, and answers with the provider’s status and body', async () => {
    const id = fresh('echo');
    await seedVideoAsk(h, id);
    const res = await rawRequest(latchkey.port, {
      method: 'POST',
      path: '/proxy/videoask/echo/a/b?x=1&y=two',
      headers: { ...apiAuth, 'content-type': 'application/json', 'connection-id': id },
      body: '{"hello":"world"}',
    });
    expect(res.status).toBe(200);
    expect(res.headers['latchkey-error']).toBeUndefined();
    expect(JSON.parse(res.body)).toMatchObject({
      method: 'POST',
      path: '/echo/a/b',
      query: { x: '1', y: 'two' },
      body: '{"hello":"world"}',
    });
  });

  it('sends the stored credential and the provider’s apiHeaders, and never the caller’s credentials or origin headers', async () => {
    const id = fresh('hygiene');
    const { accessToken } = await seedVideoAsk(h, id);
    const res = await rawRequest(latchkey.port, {
      path: '/proxy/videoask/me',
      headers: {
        ...apiAuth,
        cookie: 'latchkey.sid=s3cr3t',
        'x-forwarded-for': '10.1.2.3',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'http',
        forwarded: 'for=10.1.2.3;host=evil.example',
        'proxy-authorization': 'Basic cHJveHk6cHJveHk=',
        'connection-id': id,
        connection: 'keep-alive, X-Caller-Hop',
        'x-caller-hop': 'hop-only',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'x-api-version': 'caller-tried',
        'x-kept': 'passes',
      },
    });
    expect(res.status).toBe(200);
    const [seen] = apiRequestsOf(h);
    expect(seen?.headers.authorization).toBe(`Bearer ${accessToken}`);
    expect(seen?.headers['x-api-version']).toBe('2026-01');
    expect(seen?.headers['x-kept']).toBe('passes');
    for (const name of [
      'cookie',
      'x-forwarded-for',
      'x-forwarded-host',
      'x-forwarded-proto',
      'forwarded',
      'proxy-authorization',
      'connection-id',
      'x-caller-hop',
      'keep-alive',
      'te',
    ]) {
      expect([name, seen?.headers[name]]).toEqual([name, undefined]);
    }
    expect(JSON.stringify(seen?.headers)).not.toContain('test-api-key');
  });

  it('passes the provider’s error answers through unchanged and without Latchkey-Error', async () => {
    const id = fresh('errors');
    await seedVideoAsk(h, id);
    const headers = { ...apiAuth, 'connection-id': id };
    const notFound = await rawRequest(latchkey.port, { path: '/proxy/videoask/status/404', headers });
    expect(notFound.status).toBe(404);
    expect(JSON.parse(notFound.body)).toEqual({ status: 404, message: 'Not Found' });
    expect(notFound.headers['latchkey-error']).toBeUndefined();
    const unavailable = await rawRequest(latchkey.port, { path: '/proxy/videoask/status/503', headers });
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers['latchkey-error']).toBeUndefined();
    const empty = await rawRequest(latchkey.port, { path: '/proxy/videoask/status/204', headers });
    expect(empty.status).toBe(204);
    expect(empty.body).toBe('');
  });

  it('keeps the provider’s own headers and strips hop-by-hop ones, those its Connection names, and Latchkey-*', async () => {
    const id = fresh('hop');
    await seedApiKeyConnection(h.store, 'odd-upstream', id, 'odd-key');
    const res = await rawRequest(latchkey.port, {
      path: '/proxy/odd-upstream/hop',
      headers: { ...apiAuth, 'connection-id': id, 'x-request-id': 'hop-call-1' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toBe('{"ok":true}');
    expect(res.headers['x-provider']).toBe('kept');
    // Latchkey's request id, the one its log lines carry, in place of the provider's.
    expect(res.headers['x-request-id']).toBe('hop-call-1');
    expect(res.headers['x-hop-secret']).toBeUndefined();
    expect(res.headers['proxy-authenticate']).toBeUndefined();
    expect(res.headers.trailer).toBeUndefined();
    expect(res.headers.upgrade).toBeUndefined();
    expect(res.headers['latchkey-error']).toBeUndefined();
    expect(upstreamSeen[0]?.headers['api-token']).toBe('odd-key');
  });

  it('hands a redirect back to the caller instead of following it with the credential', async () => {
    const id = fresh('redirect');
    await seedApiKeyConnection(h.store, 'odd-upstream', id, 'odd-key');
    const res = await rawRequest(latchkey.port, {
      path: '/proxy/odd-upstream/redirect',
      headers: { ...apiAuth, 'connection-id': id },
    });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${trap.url}/steal`);
    expect(trap.hits).toEqual([]);
  });

  it('picks the connection named by Connection-Id, and "default" without one', async () => {
    const a = await seedVideoAsk(h, 'account-a');
    const d = await seedVideoAsk(h, 'default');
    expect(
      (
        await rawRequest(latchkey.port, {
          path: '/proxy/videoask/me',
          headers: { ...apiAuth, 'connection-id': 'account-a' },
        })
      ).status,
    ).toBe(200);
    expect((await rawRequest(latchkey.port, { path: '/proxy/videoask/me', headers: apiAuth })).status).toBe(200);
    expect(apiRequestsOf(h).map((r) => r.headers.authorization)).toEqual([
      `Bearer ${a.accessToken}`,
      `Bearer ${d.accessToken}`,
    ]);
  });

  it('uses an api_key provider’s key in its declared header and format', async () => {
    const id = fresh('key');
    const tokens = h.sandbox.issueTokensDirectly();
    await seedApiKeyConnection(h.store, 'sandbox-key', id, tokens.access_token);
    const res = await rawRequest(latchkey.port, {
      path: '/proxy/sandbox-key/me',
      headers: { ...apiAuth, 'connection-id': id },
    });
    expect(res.status).toBe(200);
    expect(apiRequestsOf(h)[0]?.headers.authorization).toBe(`Bearer ${tokens.access_token}`);
  });

  it('answers HEAD with the provider’s status and headers and no body', async () => {
    const id = fresh('head');
    await seedVideoAsk(h, id);
    const res = await rawRequest(latchkey.port, {
      method: 'HEAD',
      path: '/proxy/videoask/me',
      headers: { ...apiAuth, 'connection-id': id },
    });
    expect(res.status).toBe(200);
    expect(Number(res.headers['content-length'])).toBeGreaterThan(0);
    expect(res.body).toBe('');
  });

  it('logs each proxied call without the API key, the stored tokens or secret query values', async () => {
    const lines: string[] = [];
    const logged = createApp({
      config: h.config,
      store: h.store,
      providers: h.providers,
      logger: createLogger('trace', { write: (line: string) => void lines.push(line) }),
    }).handler;
    const server = await listen(logged);
    try {
      const id = fresh('logs');
      const tokens = await seedVideoAsk(h, id);
      h.sandbox.expireAllAccessTokens();
      const headers = { ...apiAuth, 'connection-id': id };
      const ok = await rawRequest(server.port, {
        path: '/proxy/videoask/me?token=canary-query-secret&page=1',
        headers,
      });
      expect(ok.status).toBe(200);
      await rawRequest(server.port, {
        path: '/proxy/videoask/me',
        headers: { ...apiAuth, 'connection-id': 'nobody-here' },
      });
      const stored = await h.store.getConnection('videoask', id);

      const all = lines.join('\n');
      expect(all).toContain('/proxy/videoask/me?token&page 200');
      expect(all).toContain('connection_not_found');
      for (const secret of [
        TEST_API_KEY,
        tokens.accessToken,
        tokens.refreshToken,
        stored?.credentials.accessToken,
        stored?.credentials.refreshToken,
        'canary-query-secret',
      ]) {
        expect(all).not.toContain(secret);
      }
    } finally {
      await server.close();
    }
  });

  describe('on a provider 401', () => {
    it('refreshes once and retries once with the new token', async () => {
      const id = fresh('expired');
      const { accessToken } = await seedVideoAsk(h, id);
      const headers = { ...apiAuth, 'connection-id': id };
      h.sandbox.expireAllAccessTokens();
      const res = await rawRequest(latchkey.port, { path: '/proxy/videoask/me', headers });
      expect(res.status).toBe(200);
      expect(h.sandbox.stats.refreshGrants).toBe(1);
      const calls = apiRequestsOf(h).map((r) => r.headers.authorization);
      expect(calls).toHaveLength(2);
      expect(calls[0]).toBe(`Bearer ${accessToken}`);
      expect(calls[1]).not.toBe(calls[0]);
      // The refreshed credential is the one kept: the next call needs no refresh.
      expect((await rawRequest(latchkey.port, { path: '/proxy/videoask/me', headers })).status).toBe(200);
      expect(h.sandbox.stats.refreshGrants).toBe(1);
    });

    it('replays the buffered body on the retry, and passes a second 401 through instead of looping', async () => {
      const tokens = await seedOAuthConnection(h.store, h.sandbox, { provider: 'refuser', scopes: [] });
      const res = await rawRequest(latchkey.port, {
        method: 'PUT',
        path: '/proxy/refuser/items/1',
        headers: { ...apiAuth, 'content-type': 'text/plain' },
        body: 'the same body twice',
      });
      expect(res.status).toBe(401);
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.body).toBe('{"detail":"Invalid token."}');
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
      expect(res.headers['latchkey-error']).toBeUndefined();
      expect(h.sandbox.stats.refreshGrants).toBe(1);
      expect(upstreamSeen.map((s) => s.body)).toEqual(['the same body twice', 'the same body twice']);
      expect(upstreamSeen[0]?.headers.authorization).toBe(`Bearer ${tokens.accessToken}`);
      expect(upstreamSeen[1]?.headers.authorization).not.toBe(upstreamSeen[0]?.headers.authorization);
    });

    it('answers 409 reauth_required when the provider refuses the refresh token', async () => {
      await h.store.saveConnection(
        connectionInput({
          provider: 'videoask',
          connectionId: 'revoked',
          credentials: {
            accessToken: 'at-the-sandbox-never-issued',
            refreshToken: 'rt-the-sandbox-never-issued',
            tokenType: 'Bearer',
          },
        }),
      );
      const res = await rawRequest(latchkey.port, {
        path: '/proxy/videoask/me',
        headers: { ...apiAuth, 'connection-id': 'revoked' },
      });
      expect(res.status).toBe(409);
      expect(res.headers['latchkey-error']).toBe('reauth_required');
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'reauth_required' } });
      expect(h.sandbox.stats.refreshGrants).toBe(1);
      expect(apiRequestsOf(h)).toHaveLength(1);
    });

    it('passes an api_key provider’s 401 straight through: there is nothing to refresh', async () => {
      const id = fresh('bad-key');
      await seedApiKeyConnection(h.store, 'sandbox-key', id, 'not-a-sandbox-token');
      const res = await rawRequest(latchkey.port, {
        path: '/proxy/sandbox-key/me',
        headers: { ...apiAuth, 'connection-id': id },
      });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toEqual({ detail: 'Invalid token.' });
      expect(res.headers['latchkey-error']).toBeUndefined();
      expect(apiRequestsOf(h)).toHaveLength(1);
      expect(h.sandbox.stats.tokenRequests).toBe(0);
    });
  });

  describe('Latchkey’s own errors', () => {
    it.each([
      ['no API key', 401, 'unauthorized', { path: '/proxy/videoask/me', headers: {} }],
      [
        'a wrong API key',
        401,
        'unauthorized',
        { path: '/proxy/videoask/me', headers: { authorization: 'Bearer not-a-key-of-this-latchkey' } },
      ],
      ['an unknown provider', 404, 'unknown_provider', { path: '/proxy/nope/me', headers: apiAuth }],
      [
        'a provider without client credentials',
        404,
        'provider_not_enabled',
        { path: '/proxy/livestorm/me', headers: apiAuth },
      ],
      [
        'no such connection',
        404,
        'connection_not_found',
        { path: '/proxy/videoask/me', headers: { ...apiAuth, 'connection-id': 'nobody' } },
      ],
      [
        'a malformed Connection-Id',
        400,
        'invalid_request',
        { path: '/proxy/videoask/me', headers: { ...apiAuth, 'connection-id': 'no spaces/slashes' } },
      ],
      [
        'TRACE, which would echo the credential',
        400,
        'invalid_request',
        { method: 'TRACE', path: '/proxy/videoask/me', headers: apiAuth },
      ],
    ])(
      '%s → %s %s, as JSON with Latchkey-Error, and nothing reaches the provider',
      async (_name, status, code, request) => {
        const res = await rawRequest(latchkey.port, request);
        expect(res.status).toBe(status);
        expect(res.headers['latchkey-error']).toBe(code);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        expect(JSON.parse(res.body)).toEqual({ error: { code, message: expect.any(String) } });
        expect(h.sandbox.stats.requests).toEqual([]);
      },
    );
  });
});
