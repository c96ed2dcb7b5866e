import supertest from 'supertest';
import { callbackPath, connectVideoAsk, consent, startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { incompleteProviders } from '../helpers/incomplete-providers';

const auth = { Authorization: `Bearer ${TEST_API_KEY}` };

/**
 * The Connect page after a connect that left a value missing (issue 10 part 2): it names the
 * value and says what it means for calls, as the proxy then behaves, and shows no secret.
 */
describe('the Connect page says what a connection lacks', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness(incompleteProviders);
  });
  afterAll(async () => h?.close());

  /** Connects `provider` in a fresh browser and returns the Connect page the callback leads to. */
  async function connectAndShow(provider: string, connectionId: string): Promise<string> {
    const browser = h.browser();
    const start = await browser.get(`/auth/${provider}?connection_id=${connectionId}`).expect(302);
    const callback = await browser.get(callbackPath(await consent(start.headers.location!, 'approve'))).expect(303);
    return showConnectPage(browser, callback);
  }

  /** Follows a callback's redirect to the Connect page (PUBLIC_URL's `/`) in the same browser. */
  async function showConnectPage(browser: ReturnType<Harness['browser']>, callback: supertest.Response) {
    const back = new URL(callback.headers.location!);
    expect(`${back.origin}${back.pathname}`).toBe(`${h.config.publicUrl.replace(/\/$/, '')}/`);
    return (await browser.get(`${back.pathname}${back.search}`).expect(200)).text;
  }

  /** The secrets of a stored connection, none of which a page may show. */
  async function secretsOf(provider: string, connectionId: string): Promise<string[]> {
    const { credentials } = (await h.store.getConnection(provider, connectionId))!;
    return [credentials.accessToken, credentials.refreshToken].filter((s): s is string => !!s);
  }

  it('names a header value a failed post-connect call left missing, and says the header is left out', async () => {
    const html = await connectAndShow('broken', 'b-1');
    expect(html).toContain('Broken is connected');
    const notice = /<div class="notice warn" role="status" id="missing-values">([\s\S]*?)<\/div>/.exec(html)?.[1];
    expect(notice).toContain('<li data-missing="metadata.organizationId"><strong>organization id</strong>');
    expect(notice).toContain('could not be read from Broken');
    expect(notice).toContain('calls are sent without the <code>organization-id</code> header');
    expect(notice).not.toContain('connection_incomplete');
    expect(html).toContain('<span class="sub missing">organization id missing</span>');
    for (const secret of await secretsOf('broken', 'b-1')) expect(html).not.toContain(secret);

    // The event says so too (names only), for a backend that hears of it by webhook.
    const events = await supertest(h.app).get('/connections/broken/b-1/events').set(auth).expect(200);
    const created = events.body.events.find((e: { type: string }) => e.type === 'connection.created');
    expect(created.detail).toEqual({ missing: 'organizationId' });

    // What the page says is what the proxy does: the call goes out, without the header.
    const res = await supertest(h.app).get('/proxy/broken/echo/x').set(auth).set('connection-id', 'b-1').expect(200);
    expect(res.body.headers['organization-id']).toBeUndefined();
  });

  it('names a URL value the token response lacked, and says calls answer 409 connection_incomplete', async () => {
    const html = await connectAndShow('sited', 's-1');
    const notice = /id="missing-values">([\s\S]*?)<\/div>/.exec(html)?.[1];
    expect(notice).toContain('<li data-missing="metadata.site"><strong>site</strong>');
    expect(notice).toContain('calls to Sited answer <code>409 connection_incomplete</code> until it is set');
    for (const secret of await secretsOf('sited', 's-1')) expect(html).not.toContain(secret);

    const events = await supertest(h.app).get('/connections/sited/s-1/events').set(auth).expect(200);
    expect(events.body.events.map((e: { type: string; detail: object }) => [e.type, e.detail])).toEqual([
      ['connection.created', { missing: 'site' }],
    ]);

    const res = await supertest(h.app).get('/proxy/sited/forms').set(auth).set('connection-id', 's-1').expect(409);
    expect(res.body.error.code).toBe('connection_incomplete');
  });

  it('says nothing is missing once the value is set, and nothing for a complete connection', async () => {
    const browser = h.browser();
    const start = await browser.get('/auth/broken?connection_id=b-2').expect(302);
    await browser.get(callbackPath(await consent(start.headers.location!, 'approve'))).expect(303);
    await supertest(h.app)
      .patch('/connections/broken/b-2')
      .set(auth)
      .send({ metadata: { organizationId: 'org_1' } })
      .expect(200);
    const page = (await browser.get('/').expect(200)).text;
    expect(page).toContain('Broken is connected');
    expect(page).not.toContain('missing-values');
    expect(page).not.toContain('class="sub missing"');

    const videoask = h.browser();
    const callback = await connectVideoAsk(videoask, '?connection_id=va-1');
    const complete = await showConnectPage(videoask, callback);
    expect(complete).toContain('VideoAsk is connected');
    expect(complete).not.toContain('missing');
    const events = await supertest(h.app).get('/connections/videoask/va-1/events').set(auth).expect(200);
    expect(events.body.events[0]).toMatchObject({ type: 'connection.created', detail: {} });
  });
});
