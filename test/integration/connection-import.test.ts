import supertest from 'supertest';
import { SANDBOX_API_KEY } from '../../src/sandbox/sandbox';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { apiAuth, apiRequestsOf, listen, rawRequest, type Listening } from '../helpers/proxy-harness';

const auth = { Authorization: `Bearer ${TEST_API_KEY}` };

/** `PUT /connections/:provider/:connectionId` (CONTRACT "Connections"): imports, on real Redis against the sandbox. */
describe('importing credentials', () => {
  let h: Harness;
  let a: Listening;
  const put = (provider: string, id: string, body: object) =>
    supertest(h.app).put(`/connections/${provider}/${id}`).set(auth).send(body);
  const forms = (id: string) =>
    rawRequest(a.port, { path: '/proxy/videoask/forms', headers: { ...apiAuth, 'connection-id': id } });

  beforeAll(async () => {
    h = await startHarness();
    a = await listen(h.app);
  });
  afterAll(async () => {
    await a?.close();
    await h?.close();
  });

  it('imports an oauth2 access and refresh token: 201, post-connect run, usable at once by the proxy; again: 200', async () => {
    const tokens = h.sandbox.issueTokensDirectly();
    const res = await put('videoask', 'imp-1', {
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      expires_at: new Date(Date.now() + 3600_000).toISOString(),
      metadata: { team: 'ops' },
    }).expect(201);
    expect(res.body).toMatchObject({ status: 'active', metadata: { organizationId: 'org_sandbox_0001', team: 'ops' } });
    expect((await forms('imp-1')).status).toBe(200);
    const again = h.sandbox.issueTokensDirectly();
    await put('videoask', 'imp-1', { access_token: again.access_token, refresh_token: again.refresh_token }).expect(
      200,
    );
    const stored = await h.store.getConnection('videoask', 'imp-1');
    expect(stored?.credentials.refreshToken).toBe(again.refresh_token);
    expect(stored?.metadata).toEqual({ organizationId: 'org_sandbox_0001', team: 'ops' });
  });

  it('imports a refresh token alone without spending it; the first call refreshes it', async () => {
    const tokens = h.sandbox.issueTokensDirectly();
    const grantsBefore = h.sandbox.stats.refreshGrants;
    await put('videoask', 'imp-2', { refresh_token: tokens.refresh_token }).expect(201);
    expect(h.sandbox.stats.refreshGrants).toBe(grantsBefore);
    await supertest(h.app)
      .patch('/connections/videoask/imp-2')
      .set(auth)
      .send({ metadata: { organizationId: 'org_sandbox_0001' } })
      .expect(200);
    expect((await forms('imp-2')).status).toBe(200);
    expect(h.sandbox.stats.refreshGrants).toBe(grantsBefore + 1);
  });

  it('refuses an access token the provider refuses (400) and stores nothing', async () => {
    const res = await put('videoask', 'imp-3', { access_token: 'not-a-sandbox-token' }).expect(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(await h.store.getConnectionInfo('videoask', 'imp-3')).toBeNull();
  });

  it('imports an API key checked once with apiKey.check; a refused key stores nothing', async () => {
    const before = h.sandbox.stats.apiKeyRequests;
    await put('webinargeek', 'key-1', { api_key: SANDBOX_API_KEY }).expect(201);
    expect(h.sandbox.stats.apiKeyRequests).toBe(before + 1);
    expect((await h.store.getConnection('webinargeek', 'key-1'))?.credentials.apiKey).toBe(SANDBOX_API_KEY);
    const refused = await put('webinargeek', 'key-2', { api_key: 'wrong-key' }).expect(400);
    expect(refused.body.error.code).toBe('invalid_request');
    expect(await h.store.getConnectionInfo('webinargeek', 'key-2')).toBeNull();
  });

  it.each([
    ['videoask', {}],
    ['videoask', { api_key: 'k' }],
    ['videoask', { access_token: 'two words' }],
    ['videoask', { access_token: 'x', unknown: 1 }],
    ['videoask', { access_token: 'x', metadata: { '1bad': 1 } }],
    ['videoask', { access_token: 'x', config: { subdomain: 'a' } }],
    ['webinargeek', { access_token: 'x' }],
    ['webinargeek', { api_key: 'clé\u2019' }],
  ])('refuses %s %j with 400 and stores nothing', async (provider, body) => {
    const requests = apiRequestsOf(h).length;
    const res = await put(provider, 'refused', body).expect(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(await h.store.getConnectionInfo(provider, 'refused')).toBeNull();
    expect(apiRequestsOf(h).length).toBe(requests);
  });
});
