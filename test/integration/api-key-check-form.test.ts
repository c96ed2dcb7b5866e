import { SANDBOX_API_KEY } from '../../src/sandbox/sandbox';
import { startHarness, type Harness } from '../helpers/harness';

/**
 * The API-key form tries a pasted key once with the provider's `apiKey.check` before storing it
 * (CONTRACT "Additions": `apiKey.check`), here against the sandbox's WebinarGeek and Livestorm
 * stand-ins, which accept only the keys in `sandbox.options.apiKeys`.
 */
describe('the API-key form checks the key before storing it', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h?.close());

  async function openForm(provider = 'webinargeek', connectionId = 'wg') {
    const browser = h.browser();
    const form = await browser.get(`/auth/${provider}?connection_id=${connectionId}`);
    expect(form.status).toBe(200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)?.[1];
    if (!csrf) throw new Error('no csrf on the form');
    const submit = (apiKey: string) => browser.post(`/auth/${provider}`).type('form').send({ csrf, api_key: apiKey });
    return { submit };
  }

  /** The requests the sandbox's stand-in received on `path`. */
  const checksOn = (path: string) => h.sandbox.stats.requests.filter((r) => r.path === path);

  it('refuses a wrong WebinarGeek key on the form (400 invalid_request), after exactly one check, storing nothing', async () => {
    const { submit } = await openForm();
    const res = await submit('wg-wrong-key-canary');
    expect(res.status).toBe(400);
    expect(res.headers['latchkey-error']).toBe('invalid_request');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toContain('name="api_key"');
    expect(res.text).toContain('WebinarGeek did not accept this API key');
    expect(res.text).not.toContain('wg-wrong-key-canary');
    expect(checksOn('/webinargeek/account').map((r) => r.headers['api-token'])).toEqual(['wg-wrong-key-canary']);
    expect(h.sandbox.stats.apiKeyRequests).toBe(1);
    expect(await h.store.getConnection('webinargeek', 'wg')).toBeNull();
  });

  it('stores a right key after exactly one check, also on the same form after a wrong one', async () => {
    const { submit } = await openForm();
    expect((await submit('wg-wrong-key')).status).toBe(400);
    const res = await submit(SANDBOX_API_KEY);
    expect(res.status).toBe(303);
    expect(res.headers.location).toContain('status=connected');
    expect(checksOn('/webinargeek/account').map((r) => r.headers['api-token'])).toEqual([
      'wg-wrong-key',
      SANDBOX_API_KEY,
    ]);
    expect((await h.store.getConnection('webinargeek', 'wg'))?.credentials.apiKey).toBe(SANDBOX_API_KEY);
  });

  it.each([
    ['the connection is dropped', 'drop' as const],
    ['the provider answers 503', 503],
  ])('when %s during the check, says so on the form (502), stores nothing, and a retry works', async (_what, mode) => {
    const { submit } = await openForm();
    h.sandbox.failNextApiKeyRequests(1, mode);
    const res = await submit(SANDBOX_API_KEY);
    expect(res.status).toBe(502);
    expect(res.headers['latchkey-error']).toBe('provider_error');
    expect(res.text).toContain('Latchkey could not check the key with WebinarGeek, so it was not saved');
    expect(res.text).not.toContain(SANDBOX_API_KEY);
    expect(h.sandbox.stats.apiKeyRequests).toBe(1);
    expect(await h.store.getConnection('webinargeek', 'wg')).toBeNull();

    expect((await submit(SANDBOX_API_KEY)).status).toBe(303);
    expect(h.sandbox.stats.apiKeyRequests).toBe(2);
  });

  it('checks a Livestorm API token raw in Authorization on /me', async () => {
    const { submit } = await openForm('livestorm-token', 'ls');
    expect((await submit('ls-wrong-token')).status).toBe(400);
    expect((await submit(SANDBOX_API_KEY)).status).toBe(303);
    expect(checksOn('/livestorm/me').map((r) => [r.headers.authorization, r.headers.accept])).toEqual([
      ['ls-wrong-token', 'application/vnd.api+json'],
      [SANDBOX_API_KEY, 'application/vnd.api+json'],
    ]);
    expect((await h.store.getConnection('livestorm-token', 'ls'))?.credentials.apiKey).toBe(SANDBOX_API_KEY);
  });

  it('does not call the provider for a key the form refuses by itself', async () => {
    const { submit } = await openForm();
    expect((await submit('has spaces in it')).status).toBe(400);
    expect((await submit('')).status).toBe(400);
    expect(h.sandbox.stats.apiKeyRequests).toBe(0);
  });
});
