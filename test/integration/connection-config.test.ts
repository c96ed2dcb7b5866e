import nock from 'nock';
import supertest from 'supertest';
import { credentialSourceFor, startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { createApiClient } from '../../src/client/api-client';
import { resolveConnectionTarget } from '../../src/client/connection-target';
import { useStrictNock } from '../helpers/strict-nock';

const auth = { Authorization: `Bearer ${TEST_API_KEY}` };
const HOST = 'https://acme.example.test';

/**
 * Connect-time config (issue 10 part 2 and 9): a subdomain provider whose authorize, token and
 * API URLs are built from the connection's `subdomain`. The provider's hosts are faked with nock
 * at the network edge (the browser's authorize step is read from the redirect), so every request
 * to a host other than the substituted one fails the test.
 */
describe('connection config: a subdomain provider', () => {
  useStrictNock();
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      env: { SUBBY_CLIENT_ID: 'subby-client', SUBBY_CLIENT_SECRET: 'subby-secret' },
      providerSources: () => [
        {
          source: 'test providers',
          entries: [
            {
              id: 'subby',
              displayName: 'Subby',
              authMode: 'oauth2',
              // The schema refuses a host pattern that could admit more than one label (start-up check).
              connectionConfig: { subdomain: { label: 'Subdomain', pattern: '[a-z0-9-]{1,63}', required: true } },
              authorizationUrl: 'https://{config.subdomain}.example.test/oauth/authorize',
              tokenUrl: 'https://{config.subdomain}.example.test/oauth/token',
              authorizationParams: { tenant: '{config.subdomain}' },
              apiBaseUrl: 'https://{config.subdomain}.example.test/api',
            },
          ],
        },
      ],
    });
  });
  afterAll(async () => h.close());

  const session = (connection_config?: Record<string, string>) =>
    supertest(h.app)
      .post('/connect-sessions')
      .set(auth)
      .send({ provider: 'subby', connection_id: 'c-1', ...(connection_config ? { connection_config } : {}) });

  it.each([['evil.com#'], ['a.b'], ['x@y'], ['../'], [''], ['a'.repeat(64)], ['12345']])(
    'refuses %j at the connect session, naming the field',
    async (value) => {
      const res = await session({ subdomain: value }).expect(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.message).toContain('connection_config.subdomain');
    },
  );

  it('refuses a name the provider does not declare', async () => {
    const res = await session({ region: 'eu' }).expect(400);
    expect(res.body.error.message).toContain('connection_config.region');
  });

  /** Follows a connect link to the provider's authorize redirect and answers the callback with a code. */
  async function authorizeAndCallBack(browser: ReturnType<Harness['browser']>, start: supertest.Response) {
    expect(start.status).toBe(302);
    await callBack(browser, new URL(start.headers.location!));
  }

  /** Checks the authorize URL the browser was sent to and answers the callback with a code. */
  async function callBack(browser: ReturnType<Harness['browser']>, authorize: URL) {
    expect(authorize.origin).toBe(HOST);
    expect(authorize.pathname).toBe('/oauth/authorize');
    expect(authorize.searchParams.get('tenant')).toBe('acme');
    const token = nock(HOST)
      .post('/oauth/token', (body: Record<string, string>) => body.code === 'the-code')
      .reply(200, { access_token: 'at-acme', refresh_token: 'rt-acme', token_type: 'Bearer', expires_in: 3600 });
    const callback = await browser.get(`/callback?code=the-code&state=${authorize.searchParams.get('state')}`);
    expect(token.isDone()).toBe(true);
    expect(callback.status).toBe(303);
    expect(callback.headers.location).toContain('status=connected');
  }

  it('builds the authorize, token and API URLs from the link’s config', async () => {
    const link = (await session({ subdomain: 'acme' }).expect(201)).body as { url: string; token: string };
    const browser = h.browser();
    await authorizeAndCallBack(browser, await browser.get(`/auth/subby?token=${link.token}`));

    const view = await supertest(h.app).get('/connections/subby/c-1').set(auth).expect(200);
    expect(view.body.config).toEqual({ subdomain: 'acme' });

    const provider = h.providers.require('subby');
    const stored = await h.store.getConnection('subby', 'c-1');
    const target = resolveConnectionTarget(provider, stored!);
    expect('base' in target && target.base).toEqual({ origin: HOST, basePath: '/api' });

    nock(HOST).get('/api/me').matchHeader('authorization', 'Bearer at-acme').reply(200, { ok: true });
    const client = createApiClient({ credentials: credentialSourceFor(h), providers: h.providers });
    const res = await client.forConnection('subby', 'c-1').get('/me');
    expect(res.data).toEqual({ ok: true });

    // The refresh goes to the connection's own token URL too.
    const refresh = nock(HOST)
      .post('/oauth/token', (body: Record<string, string>) => body.refresh_token === 'rt-acme')
      .reply(200, { access_token: 'at-acme-2', refresh_token: 'rt-acme-2', token_type: 'Bearer', expires_in: 3600 });
    await supertest(h.app).post('/connections/subby/c-1/refresh').set(auth).expect(200);
    expect(refresh.isDone()).toBe(true);
  });

  it('asks for a required value the link did not give on a form, checked and CSRF-protected', async () => {
    const link = (await session().expect(201)).body as { token: string };
    const browser = h.browser();
    const form = await browser.get(`/auth/subby?token=${link.token}`).expect(200);
    expect(form.text).toContain('name="subdomain"');
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!;

    const forged = await browser.post('/auth/subby/config').type('form').send({ csrf: 'wrong', subdomain: 'acme' });
    expect(forged.status).toBe(400);
    expect(forged.headers.location).toBeUndefined();

    for (const value of ['evil.com#', 'a.b', 'x@y', '../', '', 'a'.repeat(64)]) {
      const refused = await browser.post('/auth/subby/config').type('form').send({ csrf, subdomain: value });
      expect(refused.status).toBe(400);
      expect(refused.headers.location).toBeUndefined();
      expect(refused.text).toContain('aria-invalid="true"');
    }

    // Accepted: a page that moves on to the provider at once (a 302 from a form's POST to another
    // origin is refused by the CSP's form-action), with the same URL as its link.
    const accepted = await browser.post('/auth/subby/config').type('form').send({ csrf, subdomain: 'acme' });
    expect(accepted.status).toBe(200);
    expect(accepted.headers.location).toBeUndefined();
    const next = /<a class="button" id="continue" href="([^"]+)"/.exec(accepted.text)![1]!.replace(/&amp;/g, '&');
    expect(accepted.text).toContain(`<meta http-equiv="refresh" content="0; url=${next.replace(/&/g, '&amp;')}">`);
    await callBack(browser, new URL(next));
    expect((await h.store.getConnection('subby', 'c-1'))?.config).toEqual({ subdomain: 'acme' });
  });
});
