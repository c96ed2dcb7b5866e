import supertest from 'supertest';
import { createApp, type LatchkeyApp } from '../../src/app';
import { systemClock } from '../../src/clock';
import { createLogger } from '../../src/logger';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient } from '../../src/store/redis-client';
import { callbackPath, connectVideoAsk, consent, startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { brokenProviderEntry, sitedProviderEntry } from '../helpers/incomplete-providers';
import { apiAuth, apiRequestsOf, listen, rawRequest, type Listening } from '../helpers/proxy-harness';
import { TEST_REDIS_URL } from '../helpers/redis';
import { feedName } from '../helpers/redis-feed';
import { FeedRecorder } from '../helpers/store-contract';

/** Runs a whole flow for `providerId` in a fresh browser and returns the callback response. */
async function connect(h: Harness, providerId: string, connectionId: string): Promise<supertest.Response> {
  const browser = h.browser();
  const start = await browser.get(`/auth/${providerId}?connection_id=${connectionId}`);
  if (start.status !== 302) throw new Error(`/auth answered ${start.status}: ${start.text.slice(0, 300)}`);
  return browser.get(callbackPath(await consent(start.headers.location!, 'approve')));
}

const auth = { Authorization: `Bearer ${TEST_API_KEY}` };

/**
 * Issue 10 parts 2–5 end to end on real Redis against the sandbox: what a connect captures
 * (`postConnect`, `tokenResponseMetadata`) becomes metadata, and the proxy resolves `apiBaseUrl`
 * and `apiHeaders` per connection from it.
 */
describe('per-connection metadata through the connect flow and the proxy', () => {
  let h: Harness;
  let port: number;
  let a: Listening;

  beforeAll(async () => {
    h = await startHarness({
      sandbox: { tokenResponseExtras: { site: 'acme', ignored: 'x' } },
      env: {
        SITED_CLIENT_ID: 'sandbox-client',
        SITED_CLIENT_SECRET: 'sandbox-secret',
        BROKEN_CLIENT_ID: 'sandbox-client',
        BROKEN_CLIENT_SECRET: 'sandbox-secret',
      },
      providerSources: (sandboxUrl) => [
        {
          source: 'test providers',
          entries: [
            // The API path takes a value captured from the token response.
            {
              id: 'sited',
              displayName: 'Sited',
              authMode: 'oauth2',
              authorizationUrl: `${sandboxUrl}/authorize`,
              tokenUrl: `${sandboxUrl}/oauth/token`,
              apiBaseUrl: `${sandboxUrl}/echo/t/{metadata.site}`,
              apiHeaders: { 'x-site': '{metadata.site}', 'x-fixed': 'yes' },
              tokenResponseMetadata: { site: 'site' },
            },
            // VideoAsk-like, whose post-connect call fails (the sandbox answers 503).
            brokenProviderEntry(sandboxUrl),
          ],
        },
      ],
    });
    a = await listen(h.app);
    port = a.port;
  });
  afterAll(async () => {
    await a?.close();
    await h?.close();
  });

  const proxy = (path: string, connectionId: string, headers: Record<string, string> = {}) =>
    rawRequest(port, { path, headers: { ...apiAuth, 'connection-id': connectionId, ...headers } });

  it('captures the VideoAsk organisation at connect, through the pinned path with the new token', async () => {
    const callback = await connectVideoAsk(h.browser(), '?connection_id=va-1');
    expect(callback.status).toBe(303);
    expect(callback.headers.location).toContain('status=connected');
    const stored = await h.store.getConnection('videoask', 'va-1');
    expect(stored?.metadata).toEqual({ organizationId: 'org_sandbox_0001' });
    const organizations = apiRequestsOf(h).filter((r) => r.path === '/organizations');
    expect(organizations.length).toBeGreaterThanOrEqual(1);
    const view = await supertest(h.app).get('/connections/videoask/va-1').set(auth).expect(200);
    expect(view.body).toMatchObject({
      metadata: { organizationId: 'org_sandbox_0001' },
      config: {},
      account: { id: 'usr_sandbox_0001', label: 'sandbox.user@example.com' },
    });
  });

  it('GET /proxy/videoask/forms works with no header from the caller', async () => {
    const res = await proxy('/proxy/videoask/forms', 'va-1');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).results.map((f: { title: string }) => f.title)).toEqual([
      'Customer feedback',
      'Job application',
      'Product demo request',
    ]);
  });

  it("sends the caller's own organization-id instead when it sends one (an account with two organisations)", async () => {
    const res = await proxy('/proxy/videoask/forms', 'va-1', { 'organization-id': 'org_sandbox_0002' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).results).toEqual([{ form_id: 'form_sandbox_0101', title: 'Client onboarding' }]);
  });

  it('PATCH changes the header the next proxy call sends', async () => {
    await supertest(h.app)
      .patch('/connections/videoask/va-1')
      .set(auth)
      .send({ metadata: { organizationId: 'org_sandbox_0002' } })
      .expect(200);
    const res = await proxy('/proxy/videoask/forms', 'va-1');
    expect(JSON.parse(res.body).results).toEqual([{ form_id: 'form_sandbox_0101', title: 'Client onboarding' }]);
  });

  it('a reconnect captures the organisation again, and keeps metadata the provider does not capture', async () => {
    await supertest(h.app)
      .patch('/connections/videoask/va-1')
      .set(auth)
      .send({ metadata: { team: 'sales' } })
      .expect(200);
    await connectVideoAsk(h.browser(), '?connection_id=va-1');
    const stored = await h.store.getConnection('videoask', 'va-1');
    expect(stored?.metadata).toEqual({ organizationId: 'org_sandbox_0001', team: 'sales' });
  });

  it('captures tokenResponseMetadata, and the API path and header are built from it', async () => {
    const callback = await connect(h, 'sited', 'site-1');
    expect(callback.headers.location).toContain('status=connected');
    expect((await h.store.getConnection('sited', 'site-1'))?.metadata).toEqual({ site: 'acme' });
    const res = await proxy('/proxy/sited/forms?x=1', 'site-1', { 'x-fixed': 'caller' });
    expect(res.status).toBe(200);
    const echo = JSON.parse(res.body);
    expect(echo.path).toBe('/echo/t/acme/forms');
    expect(echo.headers['x-site']).toBe('acme');
    // Only a {metadata.*} header gives way to the caller.
    expect(echo.headers['x-fixed']).toBe('yes');
  });

  it('answers 409 connection_incomplete naming the value when the API URL needs a value the connection lacks, and sends nothing', async () => {
    await supertest(h.app)
      .patch('/connections/sited/site-1')
      .set(auth)
      .send({ metadata: { site: null } })
      .expect(200);
    const before = apiRequestsOf(h).length;
    const res = await proxy('/proxy/sited/forms', 'site-1');
    expect(res.status).toBe(409);
    const body = JSON.parse(res.body);
    expect(body.error.code).toBe('connection_incomplete');
    expect(body.error.message).toContain('metadata.site');
    expect(apiRequestsOf(h).length).toBe(before);
  });

  it('a failed post-connect call leaves the connection active without the value, and the header is left out', async () => {
    const callback = await connect(h, 'broken', 'b-1');
    expect(callback.headers.location).toContain('status=connected');
    const stored = await h.store.getConnection('broken', 'b-1');
    expect(stored).toMatchObject({ status: 'active', metadata: {} });
    expect(apiRequestsOf(h).some((r) => r.path === '/status/503')).toBe(true);
    const res = await proxy('/proxy/broken/echo/x', 'b-1');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).headers['organization-id']).toBeUndefined();
  });
});

/** The same, seen from a second instance on the same Redis prefix: its cache drops what a write on the first changed. */
describe('metadata changes reach every instance', () => {
  let h: Harness;
  let a: Listening;
  let b: Listening;
  let appB: LatchkeyApp;
  let storeB: KvStore;
  const feedB = new FeedRecorder();
  let unwatch: () => void;

  beforeAll(async () => {
    h = await startHarness({
      sandbox: { tokenResponseExtras: { site: 'first' } },
      env: { SITED_CLIENT_ID: 'sandbox-client', SITED_CLIENT_SECRET: 'sandbox-secret' },
      providerSources: (sandboxUrl) => [
        {
          source: 'test providers',
          entries: [sitedProviderEntry(sandboxUrl)],
        },
      ],
    });
    a = await listen(h.app);
    const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
    client.on('error', () => {});
    storeB = new KvStore({
      backend: new RedisBackend(client, { subscriber: { name: feedName('metadata-b') } }),
      cipher: new CredentialCipher(h.config.tokenEncryptionKeys),
      clock: systemClock,
      prefix: h.config.redisKeyPrefix,
    });
    expect(await storeB.ready(5000)).toBe(true);
    appB = createApp({ config: h.config, store: storeB, providers: h.providers, logger: createLogger('silent') });
    unwatch = storeB.watchConnections(feedB);
    await feedB.until('instance B to be subscribed', () => feedB.count('confirmed') >= 1);
    b = await listen(appB.handler);
  });
  afterAll(async () => {
    unwatch?.();
    await b?.close();
    await appB?.close();
    await storeB?.close();
    await a?.close();
    await h?.close();
  });

  const pathSeenBy = async (instance: Listening, id: string) => {
    const res = await rawRequest(instance.port, {
      path: '/proxy/sited/x',
      headers: { ...apiAuth, 'connection-id': id },
    });
    expect(res.status).toBe(200);
    return JSON.parse(res.body).path as string;
  };

  it('a reconnect (tokenResponseMetadata) and a PATCH on A change what B sends on its next call', async () => {
    await connect(h, 'sited', 's-1');
    await feedB.until('the connect to be announced', () => feedB.count('changed sited s-1') >= 1);
    expect(await pathSeenBy(b, 's-1')).toBe('/echo/t/first/x');
    expect(await pathSeenBy(b, 's-1')).toBe('/echo/t/first/x');

    h.sandbox.options.tokenResponseExtras = { site: 'second' };
    let heard = feedB.count('changed sited s-1');
    await connect(h, 'sited', 's-1');
    await feedB.until('the reconnect to be announced', () => feedB.count('changed sited s-1') > heard);
    expect(await pathSeenBy(b, 's-1')).toBe('/echo/t/second/x');

    heard = feedB.count('changed sited s-1');
    await supertest(h.app)
      .patch('/connections/sited/s-1')
      .set(auth)
      .send({ metadata: { site: 'third' } })
      .expect(200);
    await feedB.until('the PATCH to be announced', () => feedB.count('changed sited s-1') > heard);
    expect(await pathSeenBy(b, 's-1')).toBe('/echo/t/third/x');
    expect(await pathSeenBy(a, 's-1')).toBe('/echo/t/third/x');
  });
});
