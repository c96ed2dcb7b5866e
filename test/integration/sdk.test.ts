import type { z } from 'zod';
import { Latchkey, LatchkeyError } from '../../packages/client/src/index';
import {
  ConnectionListSchema,
  ConnectionSchema,
  ConnectSessionSchema,
  ErrorBodySchema,
  ProviderListSchema,
  TokenSchema,
} from '../../src/wire/api-schemas';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { apiRequestsOf, listen, seedVideoAsk, type Listening } from '../helpers/proxy-harness';

/** The server's schema for the answer of each service route the client calls (method and path pattern). */
const ANSWER_SCHEMAS: Array<[RegExp, z.ZodType]> = [
  [/^POST \/connect-sessions$/, ConnectSessionSchema],
  [/^GET \/connections$/, ConnectionListSchema],
  [/^GET \/providers$/, ProviderListSchema],
  [/^GET \/connections\/[^/]+\/[^/]+\/token$/, TokenSchema],
  [/^(GET|PATCH) \/connections\/[^/]+\/[^/]+$/, ConnectionSchema],
  [/^POST \/connections\/[^/]+\/[^/]+\/refresh$/, ConnectionSchema],
];

/**
 * The client package against a running Latchkey (real HTTP, real Redis, the sandbox provider).
 * Every answer it reads from a service route is also parsed with the server's own wire schema
 * (the one the OpenAPI document is generated from), so the client is tested on answers that
 * match the contract, and a server answer that drifts from its schema fails here.
 */
describe('the Node client (@latchkey/client) against a running Latchkey', () => {
  let h: Harness;
  let server: Listening;
  let latchkey: Latchkey;
  const checked: string[] = [];

  /** fetch, plus a parse of every service-API answer with the server's schema. */
  const checkingFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.pathname.startsWith('/proxy/')) return res;
    const route = `${init?.method ?? 'GET'} ${url.pathname}`;
    const text = await res.clone().text();
    if (!res.ok) {
      if (text) ErrorBodySchema.parse(JSON.parse(text));
    } else if (text) {
      const schema = ANSWER_SCHEMAS.find(([pattern]) => pattern.test(route))?.[1];
      if (!schema) throw new Error(`no wire schema for ${route}`);
      schema.parse(JSON.parse(text));
    }
    checked.push(route);
    return res;
  };

  beforeAll(async () => {
    h = await startHarness();
    server = await listen(h.app);
    latchkey = new Latchkey({ baseUrl: `${server.url}/`, apiKey: TEST_API_KEY, fetch: checkingFetch });
  });

  afterAll(async () => {
    await server.close();
    await h.close();
  });

  beforeEach(() => h.sandbox.reset());

  async function rejection(promise: Promise<unknown>): Promise<LatchkeyError> {
    try {
      await promise;
    } catch (err) {
      if (err instanceof LatchkeyError) return err;
      throw err;
    }
    throw new Error('expected a LatchkeyError');
  }

  it('creates a connect session; connection_config is refused until connections keep it', async () => {
    const session = await latchkey.connectSessions.create({ provider: 'videoask', connectionId: 'sdk-new' });
    expect(session).toEqual({
      token: expect.any(String),
      url: expect.stringContaining('/auth/videoask?token='),
      expiresAt: expect.any(String),
    });
    const refused = await rejection(
      latchkey.connectSessions.create({
        provider: 'videoask',
        connectionId: 'sdk-new',
        connectionConfig: { subdomain: 'acme' },
      }),
    );
    expect(refused).toMatchObject({ code: 'invalid_request', status: 400 });
    expect(refused.message).toContain('connection_config');
  });

  it('lists, gets, refreshes and deletes connections, in camelCase', async () => {
    await seedVideoAsk(h, 'sdk-a');
    const listed = await latchkey.connections.list({ provider: 'videoask' });
    expect(listed.find((c) => c.connectionId === 'sdk-a')).toMatchObject({
      provider: 'videoask',
      status: 'active',
      lastRefreshedAt: null,
    });

    const got = await latchkey.connections.get('videoask', 'sdk-a');
    expect(got).toEqual({
      provider: 'videoask',
      connectionId: 'sdk-a',
      status: 'active',
      scopes: expect.any(Array),
      expiresAt: expect.any(String),
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      lastRefreshedAt: null,
      config: {},
      metadata: {},
      account: null,
    });

    const refreshed = await latchkey.connections.refresh('videoask', 'sdk-a');
    expect(refreshed.lastRefreshedAt).toEqual(expect.any(String));
    expect(h.sandbox.stats.refreshGrants).toBe(1);

    expect(await latchkey.connections.delete('videoask', 'sdk-a')).toEqual({ revocation: 'revoked' });
    expect((await rejection(latchkey.connections.get('videoask', 'sdk-a'))).code).toBe('connection_not_found');
  });

  it('pages with limit and cursor, and walks every page with each(), filtered by status and q', async () => {
    for (const id of ['sdk-page-1', 'sdk-page-2', 'sdk-page-3', 'sdk-page-4', 'sdk-page-5']) await seedVideoAsk(h, id);
    const first = await latchkey.connections.page({ provider: 'videoask', q: 'SDK-PAGE-', limit: 2 });
    expect(first.connections.map((c) => c.connectionId)).toEqual(['sdk-page-1', 'sdk-page-2']);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await latchkey.connections.page({
      provider: 'videoask',
      q: 'sdk-page-',
      limit: 2,
      cursor: first.nextCursor!,
    });
    expect(second.connections.map((c) => c.connectionId)).toEqual(['sdk-page-3', 'sdk-page-4']);

    const all: string[] = [];
    for await (const c of latchkey.connections.each({
      provider: 'videoask',
      q: 'sdk-page-',
      status: 'active',
      pageSize: 2,
    }))
      all.push(c.connectionId);
    expect(all).toEqual(['sdk-page-1', 'sdk-page-2', 'sdk-page-3', 'sdk-page-4', 'sdk-page-5']);
    expect(await latchkey.connections.list({ q: 'sdk-page-', status: 'reauth_required' })).toEqual([]);
  });

  it('merges metadata with PATCH (null removes a key)', async () => {
    await seedVideoAsk(h, 'sdk-meta');
    const set = await latchkey.connections.updateMetadata('videoask', 'sdk-meta', {
      team: 'sales',
      seats: 3,
      vip: true,
    });
    expect(set.metadata).toEqual({ team: 'sales', seats: 3, vip: true });
    const removed = await latchkey.connections.updateMetadata('videoask', 'sdk-meta', { seats: null });
    expect(removed.metadata).toEqual({ team: 'sales', vip: true });
    expect((await latchkey.connections.get('videoask', 'sdk-meta')).metadata).toEqual({ team: 'sales', vip: true });
  });

  it('lists the providers, in camelCase', async () => {
    const providers = await latchkey.providers.list();
    expect(providers.find((p) => p.id === 'videoask')).toEqual({
      id: 'videoask',
      displayName: 'VideoAsk',
      authMode: 'oauth2',
      configured: true,
      verified: expect.any(Boolean),
      connectionConfig: [],
    });
  });

  it('gets a working access token', async () => {
    const { accessToken } = await seedVideoAsk(h, 'sdk-token');
    expect(await latchkey.token('videoask', 'sdk-token')).toEqual({
      accessToken,
      tokenType: 'Bearer',
      expiresAt: expect.any(String),
    });
  });

  it('calls the provider through the proxy with a multi-segment path, JSON in and out, query, headers and retries', async () => {
    await seedVideoAsk(h, 'sdk-proxy');
    const me = await latchkey.proxy.get<{ email: string }>('videoask', '/me', { connectionId: 'sdk-proxy' });
    expect(me).toMatchObject({ status: 200, ok: true, data: { email: 'sandbox.user@example.com' } });

    const echoed = await latchkey.proxy.post<{
      method: string;
      path: string;
      query: Record<string, string>;
      body: string;
      headers: Record<string, string>;
    }>('videoask', 'echo/items/a b/c', {
      connectionId: 'sdk-proxy',
      query: { page: 2, tags: ['a', 'b'], skip: undefined },
      headers: { 'X-Trace': 't-1' },
      body: { name: 'Ada' },
      retries: 2,
    });
    expect(echoed.data.method).toBe('POST');
    expect(echoed.data.path).toBe('/echo/items/a%20b/c');
    expect(echoed.data.query).toEqual({ page: '2', tags: ['a', 'b'] });
    expect(apiRequestsOf(h).at(-1)?.url).toBe('/echo/items/a%20b/c?page=2&tags=a&tags=b');
    expect(JSON.parse(echoed.data.body)).toEqual({ name: 'Ada' });
    expect(echoed.data.headers['content-type']).toBe('application/json');
    expect(echoed.data.headers['x-trace']).toBe('t-1');
    // Latchkey-Retries is read by Latchkey and never forwarded.
    expect(echoed.data.headers['latchkey-retries']).toBeUndefined();

    const refused = await rejection(
      latchkey.proxy.get('videoask', '/me', { connectionId: 'sdk-proxy', retries: 7 as unknown as 0 }),
    );
    expect(refused).toMatchObject({ code: 'invalid_request', status: 400 });
  });

  it('returns a provider’s error answer instead of throwing, and streams with proxy.request', async () => {
    await seedVideoAsk(h, 'sdk-status');
    const missing = await latchkey.proxy.get('videoask', '/status/404', { connectionId: 'sdk-status' });
    expect(missing).toMatchObject({ status: 404, ok: false, data: { status: 404 } });

    const raw = await latchkey.proxy.request('GET', 'videoask', '/big?kb=256', { connectionId: 'sdk-status' });
    expect(raw.status).toBe(200);
    let bytes = 0;
    for await (const chunk of raw.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    expect(bytes).toBe(256 * 1024);
  });

  it('throws Latchkey’s own errors as LatchkeyError with the contract’s code and status', async () => {
    const notFound = await rejection(latchkey.proxy.get('videoask', '/me', { connectionId: 'sdk-nobody' }));
    expect(notFound).toMatchObject({ code: 'connection_not_found', status: 404, retryable: false });
    expect((await rejection(latchkey.proxy.get('videoask', '//elsewhere.example/me'))).code).toBe('invalid_request');
    expect((await rejection(latchkey.connections.list({ provider: 'nope' }))).code).toBe('unknown_provider');

    const wrongKey = new Latchkey({ baseUrl: server.url, apiKey: 'not-the-key-not-the-key', fetch: checkingFetch });
    expect(await rejection(wrongKey.connections.list())).toMatchObject({ code: 'unauthorized', status: 401 });
  });

  it('reports an unreachable Latchkey as network_error, without the API key in the message', async () => {
    const closed = await listen((_req, res) => res.end());
    await closed.close();
    const nowhere = new Latchkey({ baseUrl: closed.url, apiKey: TEST_API_KEY, timeoutMs: 2000 });
    const err = await rejection(nowhere.connections.list());
    expect(err).toMatchObject({ code: 'network_error', status: 0, retryable: true });
    expect(err.message).not.toContain(TEST_API_KEY);
  });

  it('parsed the answer of every service route it called with the server’s schema', () => {
    const routes = new Set(checked.map((r) => r.replace(/\/connections\/[^/]+\/[^/]+/, '/connections/:p/:c')));
    expect([...routes].sort()).toEqual(
      expect.arrayContaining([
        'DELETE /connections/:p/:c',
        'GET /connections',
        'GET /connections/:p/:c',
        'GET /connections/:p/:c/token',
        'GET /providers',
        'PATCH /connections/:p/:c',
        'POST /connect-sessions',
        'POST /connections/:p/:c/refresh',
      ]),
    );
  });
});
