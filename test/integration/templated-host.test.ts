import supertest from 'supertest';
import { createApiClient } from '../../src/client/api-client';
import { credentialSourceFor, startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { startExampleTestHosts, tenantProvider, type ExampleTestHosts } from '../helpers/example-test-hosts';

const auth = { Authorization: `Bearer ${TEST_API_KEY}` };

/**
 * Issue 10 part 9 over real sockets: a provider whose hosts are `https://{config.subdomain}.example.test`
 * and whose API path takes `{metadata.site}` from the token response. A resolver injected into
 * the app (the proxy's undici agents and its axios) sends `*.example.test` to one TLS server on
 * loopback whose certificate the app is told to trust; the server reads the TLS server name and
 * the Host header of every request, so the test sees which host each call really went to.
 */
describe('a templated host, connected to for real', () => {
  let hosts: ExampleTestHosts;
  let h: Harness;
  let origin: (tenant: string) => string;

  beforeAll(async () => {
    hosts = await startExampleTestHosts();
    hosts.setHandler(tenantProvider);
    const base = `https://{config.subdomain}.example.test:${hosts.port}`;
    origin = (tenant) => `https://${tenant}.example.test:${hosts.port}`;
    h = await startHarness({
      env: { TENANTED_CLIENT_ID: 'tenanted-client', TENANTED_CLIENT_SECRET: 'tenanted-secret' },
      app: hosts.appDeps,
      providerSources: () => [
        {
          source: 'test providers',
          entries: [
            {
              id: 'tenanted',
              displayName: 'Tenanted',
              authMode: 'oauth2',
              connectionConfig: { subdomain: { label: 'Subdomain', pattern: '[a-z0-9-]{1,63}', required: true } },
              authorizationUrl: `${base}/oauth/authorize`,
              tokenUrl: `${base}/oauth/token`,
              apiBaseUrl: `${base}/api/t/{metadata.site}`,
              tokenResponseMetadata: { site: 'site' },
              postConnect: [{ method: 'GET', path: '/whoami', capture: { tenantNumber: 'tenant_number' } }],
            },
          ],
        },
      ],
    });
  });
  afterAll(async () => {
    await h?.close();
    await hosts?.close();
  });

  /** Connects `tenant` through a connect link that carries its subdomain; returns the authorize URL. */
  async function connect(tenant: string): Promise<URL> {
    const link = await supertest(h.app)
      .post('/connect-sessions')
      .set(auth)
      .send({ provider: 'tenanted', connection_id: tenant, connection_config: { subdomain: tenant } })
      .expect(201);
    const browser = h.browser();
    const start = await browser.get(`/auth/tenanted?token=${link.body.token}`).expect(302);
    const authorize = new URL(start.headers.location!);
    const callback = await browser.get(`/callback?code=code-${tenant}&state=${authorize.searchParams.get('state')}`);
    expect(callback.status).toBe(303);
    expect(callback.headers.location).toContain('status=connected');
    return authorize;
  }

  const seenBy = (tenant: string) => hosts.requests.filter((r) => r.sni === `${tenant}.example.test`);

  it('sends the authorize, token, post-connect, proxy, API-client and refresh calls of each connection to its own host', async () => {
    for (const tenant of ['acme', 'globex']) {
      const authorize = await connect(tenant);
      expect(authorize.origin).toBe(origin(tenant));
      expect(authorize.pathname).toBe('/oauth/authorize');

      const stored = await h.store.getConnection('tenanted', tenant);
      expect(stored?.config).toEqual({ subdomain: tenant });
      expect(stored?.metadata).toEqual({ site: `site-${tenant}`, tenantNumber: `n-${tenant}` });

      const proxied = await supertest(h.app).get('/proxy/tenanted/forms?page=2').set(auth).set('connection-id', tenant);
      expect(proxied.status).toBe(200);
      expect(proxied.body).toEqual({ tenant, path: `/api/t/site-${tenant}/forms` });

      const client = createApiClient({
        credentials: credentialSourceFor(h),
        providers: h.providers,
        http: hosts.axios(),
      });
      const viaClient = await client.forConnection('tenanted', tenant).get('/me');
      expect(viaClient.data).toEqual({ tenant, path: `/api/t/site-${tenant}/me` });

      await supertest(h.app).post(`/connections/tenanted/${tenant}/refresh`).set(auth).expect(200);
      const after = await supertest(h.app).get('/proxy/tenanted/after').set(auth).set('connection-id', tenant);
      expect(after.body).toEqual({ tenant, path: `/api/t/site-${tenant}/after` });
    }

    for (const tenant of ['acme', 'globex']) {
      // What the server saw on the connections to this host: its name in SNI and in Host, and this connection's tokens.
      const seen = seenBy(tenant);
      expect(seen.map((r) => `${r.method} ${r.path} ${r.authorization ?? '-'}`)).toEqual([
        `POST /oauth/token -`,
        `GET /api/t/site-${tenant}/whoami Bearer at-${tenant}-1`,
        `GET /api/t/site-${tenant}/forms?page=2 Bearer at-${tenant}-1`,
        `GET /api/t/site-${tenant}/me Bearer at-${tenant}-1`,
        `POST /oauth/token -`,
        `GET /api/t/site-${tenant}/after Bearer at-${tenant}-2`,
      ]);
      for (const r of seen) expect(r.host).toBe(`${tenant}.example.test:${hosts.port}`);
    }
    // Every request came with one of the two names, and nothing else was ever looked up.
    expect(hosts.requests).toHaveLength(seenBy('acme').length + seenBy('globex').length);
    expect(new Set(hosts.resolved)).toEqual(new Set(['acme.example.test', 'globex.example.test']));
  });
});
