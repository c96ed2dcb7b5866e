import { Latchkey, LatchkeyError } from '../../src/sdk';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { apiRequestsOf, listen, seedVideoAsk, type Listening } from '../helpers/proxy-harness';

/** The typed Node client against a running Latchkey (real HTTP, real Redis, the sandbox provider). */
describe('Node client (latchkey/client)', () => {
  let h: Harness;
  let server: Listening;
  let latchkey: Latchkey;

  beforeAll(async () => {
    h = await startHarness();
    server = await listen(h.app);
    latchkey = new Latchkey({ baseUrl: `${server.url}/`, apiKey: TEST_API_KEY });
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

  it('creates a connect session', async () => {
    const session = await latchkey.connectSessions.create({ provider: 'videoask', connectionId: 'sdk-new' });
    expect(session).toEqual({
      token: expect.any(String),
      url: expect.stringContaining('/auth/videoask?token='),
      expiresAt: expect.any(String),
    });
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
    });

    const refreshed = await latchkey.connections.refresh('videoask', 'sdk-a');
    expect(refreshed.lastRefreshedAt).toEqual(expect.any(String));
    expect(h.sandbox.stats.refreshGrants).toBe(1);

    expect(await latchkey.connections.delete('videoask', 'sdk-a')).toEqual({ revocation: 'revoked' });
    expect((await rejection(latchkey.connections.get('videoask', 'sdk-a'))).code).toBe('connection_not_found');
  });

  it('gets a working access token', async () => {
    const { accessToken } = await seedVideoAsk(h, 'sdk-token');
    expect(await latchkey.token('videoask', 'sdk-token')).toEqual({
      accessToken,
      tokenType: 'Bearer',
      expiresAt: expect.any(String),
    });
  });

  it('calls the provider through the proxy with JSON in and out, query and headers', async () => {
    await seedVideoAsk(h, 'sdk-proxy');
    const me = await latchkey.proxy.get<{ email: string }>('videoask', '/me', { connectionId: 'sdk-proxy' });
    expect(me).toMatchObject({ status: 200, ok: true, data: { email: 'sandbox.user@example.com' } });

    const echoed = await latchkey.proxy.post<{
      method: string;
      query: Record<string, string>;
      body: string;
      headers: Record<string, string>;
    }>('videoask', 'echo/items', {
      connectionId: 'sdk-proxy',
      query: { page: 2, tags: ['a', 'b'], skip: undefined },
      headers: { 'X-Trace': 't-1' },
      body: { name: 'Ada' },
    });
    expect(echoed.data.method).toBe('POST');
    expect(echoed.data.query).toEqual({ page: '2', tags: ['a', 'b'] });
    expect(apiRequestsOf(h).at(-1)?.url).toBe('/echo/items?page=2&tags=a&tags=b');
    expect(JSON.parse(echoed.data.body)).toEqual({ name: 'Ada' });
    expect(echoed.data.headers['content-type']).toBe('application/json');
    expect(echoed.data.headers['x-trace']).toBe('t-1');
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

    const wrongKey = new Latchkey({ baseUrl: server.url, apiKey: 'not-the-key-not-the-key' });
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
});
