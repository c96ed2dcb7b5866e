import type { Page, Response } from 'playwright-core';
import {
  findContrastProblems,
  focusedElement,
  recordRequests,
  screenshot,
  useBrowserSuite,
  waitForConnectPage,
} from '../helpers/browser';
import { keysUnder, rawRedis } from '../helpers/redis';

/** Latchkey's own pages in a real browser: the Connect page, the consent round trip, errors, the API-key form. */
describe('the Connect page in a real browser', () => {
  const suite = useBrowserSuite();

  async function newPage(options: { javaScriptEnabled?: boolean } = {}): Promise<{ page: Page; requests: string[] }> {
    const context = await suite.newContext(options);
    const requests = recordRequests(context);
    return { page: await context.newPage(), requests };
  }

  /** The response of the first /callback request, to check its headers. */
  function callbackResponse(page: Page): Promise<Response> {
    return page.waitForResponse((r) => new URL(r.url()).pathname === '/callback');
  }

  it('with JavaScript off, Connect VideoAsk then Approve shows the connection, and Redis holds it', async () => {
    const { page, requests } = await newPage({ javaScriptEnabled: false });
    await page.goto(`${suite.h.latchkeyUrl}/`);
    await expect(page.locator('h1').textContent()).resolves.toBe('Connect your accounts');
    await expect(page.locator('.provider .button').first().textContent()).resolves.toBe('Connect VideoAsk');
    await screenshot(page, '01-connect-page-before');

    // Keyboard only: the first thing Tab reaches is the Connect VideoAsk button.
    await page.keyboard.press('Tab');
    expect(await focusedElement(page)).toMatchObject({ tag: 'a', text: 'Connect VideoAsk' });
    await Promise.all([page.waitForURL(`${suite.h.sandboxUrl}/authorize?**`), page.keyboard.press('Enter')]);
    await expect(page.locator('h1').textContent()).resolves.toContain('wants access to your account');
    await screenshot(page, '02-sandbox-consent');

    const callback = callbackResponse(page);
    await page.getByRole('button', { name: 'Approve' }).click();
    const answered = await callback;
    expect(answered.status()).toBe(303);
    expect(answered.headers()['cache-control']).toBe('no-store');
    expect(answered.headers()['referrer-policy']).toBe('no-referrer');
    await waitForConnectPage(page, suite.h.latchkeyUrl);

    const shown = new URL(page.url());
    expect(shown.searchParams.has('code')).toBe(false);
    expect(shown.searchParams.has('state')).toBe(false);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('VideoAsk is connected');
    const row = page.locator('tr[data-provider="videoask"][data-connection-id="default"]');
    await expect(row.locator('.account').textContent()).resolves.toContain('sandbox.user@example.com');
    await expect(row.locator('.badge').textContent()).resolves.toBe('Connected');
    await expect(row.locator('time').textContent()).resolves.toBe('just now');
    await screenshot(page, '03-connect-page-after');

    const stored = await suite.h.store.getConnection('videoask', 'default');
    expect(stored).toMatchObject({ status: 'active', account: { label: 'sandbox.user@example.com' } });
    expect(stored?.credentials.accessToken).toMatch(/^sbx_at_/);
    const redis = rawRedis();
    try {
      expect(
        (await keysUnder(redis, suite.h.prefix)).some((k) => k.includes('videoask') && k.includes('default')),
      ).toBe(true);
    } finally {
      redis.disconnect();
    }

    // Everything the browser fetched came from Latchkey or the provider: no CDN, font or tracker.
    const origins = new Set(requests.map((u) => new URL(u).origin));
    expect([...origins].sort()).toEqual([suite.h.latchkeyUrl, suite.h.sandboxUrl].sort());

    // The notice is shown once; the connection stays listed.
    await page.reload();
    await expect(page.locator('#result').count()).resolves.toBe(0);
    await expect(row.count()).resolves.toBe(1);

    // Another browser sees none of it.
    const other = await newPage();
    await other.page.goto(`${suite.h.latchkeyUrl}/`);
    await expect(other.page.locator('#connections-heading + .empty').textContent()).resolves.toContain(
      'Nothing is connected',
    );
    await expect(other.page.locator('tbody tr').count()).resolves.toBe(0);
    await expect(other.page.content()).resolves.not.toContain('sandbox.user@example.com');
  });

  it('choosing Deny shows a clear "you declined" message with its code, and stores nothing', async () => {
    const { page } = await newPage();
    await page.goto(`${suite.h.latchkeyUrl}/`);
    await page.getByRole('link', { name: 'Connect VideoAsk' }).click();
    await page.getByRole('button', { name: 'Deny' }).click();
    await page.waitForURL(`${suite.h.latchkeyUrl}/**`);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('You declined the connection to VideoAsk');
    await expect(page.locator('#result').textContent()).resolves.toContain('Nothing was stored');
    await expect(page.locator('#result code').textContent()).resolves.toBe('access_denied');
    await screenshot(page, '04-connect-page-denied');
    // page.js has taken ?status=denied&… off the address bar.
    expect(new URL(page.url()).search).toBe('');
    expect(suite.h.sandbox.stats.tokenRequests).toBe(0);
    expect(await suite.h.store.listConnections()).toEqual([]);
  });

  it('a connect link used twice says it was already used, with the code link_expired', async () => {
    const created = await suite.h
      .api()
      .post('/connect-sessions')
      .send({ provider: 'videoask', connection_id: 'user-expired' });
    expect((await suite.h.browser().get(`/auth/videoask?token=${created.body.token}`)).status).toBe(302);
    const { page } = await newPage();
    const answer = await page.goto(created.body.url);
    expect(answer?.status()).toBe(410);
    await expect(page.locator('h1').textContent()).resolves.toBe('This connect link was already used');
    await expect(page.locator('#error-code').textContent()).resolves.toBe('link_expired');
    await expect(page.getByRole('link', { name: 'Go to the Connect page' }).count()).resolves.toBe(1);
    // The token is gone from the address bar too.
    expect(new URL(page.url()).search).toBe('');
    await screenshot(page, '05-error-link-used');
  });

  it('a connect link that is not (or no longer) valid says it has expired, with the code link_expired', async () => {
    const { page } = await newPage();
    const answer = await page.goto(`${suite.h.latchkeyUrl}/auth/videoask?token=${'Q'.repeat(43)}`);
    expect(answer?.status()).toBe(410);
    await expect(page.locator('h1').textContent()).resolves.toBe('This connect link has expired');
    await expect(page.locator('#error-code').textContent()).resolves.toBe('link_expired');
    await screenshot(page, '05b-error-link-expired');
    expect(suite.h.sandbox.stats.requests).toEqual([]);
  });

  it('a forged callback shows a plain-language invalid_state page, and the code and state leave the address bar', async () => {
    const { page } = await newPage();
    const answer = await page.goto(`${suite.h.latchkeyUrl}/callback?code=stolen-code&state=forged-state`);
    expect(answer?.status()).toBe(400);
    expect(answer?.headers()['cache-control']).toBe('no-store');
    expect(answer?.headers()['referrer-policy']).toBe('no-referrer');
    await expect(page.locator('h1').textContent()).resolves.toBe('This sign-in link is no longer valid');
    await expect(page.locator('#error-code').textContent()).resolves.toBe('invalid_state');
    expect(page.url()).toBe(`${suite.h.latchkeyUrl}/callback`);
    await screenshot(page, '06-error-invalid-state');
    expect(suite.h.sandbox.stats.tokenRequests).toBe(0);
  });

  it('a token endpoint failure after consent goes back to the Connect page with provider_error, storing nothing', async () => {
    suite.h.sandbox.failNextTokenRequests(1, 500);
    const { page } = await newPage();
    await page.goto(`${suite.h.latchkeyUrl}/auth/videoask?connection_id=broken`);
    const callback = callbackResponse(page);
    await page.getByRole('button', { name: 'Approve' }).click();
    const answered = await callback;
    expect(answered.status()).toBe(303);
    expect(Object.fromEntries(new URL(answered.headers().location!).searchParams)).toEqual({
      status: 'error',
      provider: 'videoask',
      connection_id: 'broken',
      error: 'provider_error',
    });
    await page.waitForURL(`${suite.h.latchkeyUrl}/**`);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('VideoAsk was not connected');
    await expect(page.locator('#result').textContent()).resolves.toContain(
      'The service did not complete the connection',
    );
    await expect(page.locator('#result code').textContent()).resolves.toBe('provider_error');
    // page.js has taken ?status=error&… off the address bar.
    expect(new URL(page.url()).search).toBe('');
    await screenshot(page, '07-connect-page-provider-error');
    expect(suite.h.sandbox.stats.tokenRequests).toBe(1);
    expect(await suite.h.store.getConnection('videoask', 'broken')).toBeNull();
  });

  it('an error sent back by the provider shows on the Connect page in plain language, with its code', async () => {
    const { page } = await newPage();
    await page.goto(`${suite.h.latchkeyUrl}/auth/videoask?connection_id=refused`);
    const state = new URL(page.url()).searchParams.get('state')!;
    await page.goto(`${suite.h.latchkeyUrl}/callback?error=temporarily_unavailable&state=${encodeURIComponent(state)}`);
    await page.waitForURL(`${suite.h.latchkeyUrl}/**`);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('VideoAsk was not connected');
    await expect(page.locator('#result').textContent()).resolves.toContain('The service is busy');
    await expect(page.locator('#result code').textContent()).resolves.toBe('temporarily_unavailable');
    await screenshot(page, '10-connect-page-provider-error');
    expect(await suite.h.store.getConnection('videoask', 'refused')).toBeNull();
  });

  it("an error that is not on RFC 6749's list shows as server_error, and error_description nowhere", async () => {
    const { page } = await newPage();
    await page.goto(`${suite.h.latchkeyUrl}/auth/videoask?connection_id=odd`);
    const state = new URL(page.url()).searchParams.get('state')!;
    const description = encodeURIComponent('<img src=x onerror=alert(1)> desc-canary');
    await page.goto(
      `${suite.h.latchkeyUrl}/callback?error=login_required&error_description=${description}&state=${encodeURIComponent(state)}`,
    );
    await page.waitForURL(`${suite.h.latchkeyUrl}/`);
    await expect(page.locator('#result code').textContent()).resolves.toBe('server_error');
    await expect(page.locator('#result').textContent()).resolves.toContain('The service had a problem');
    await expect(page.content()).resolves.not.toContain('desc-canary');
    await expect(page.content()).resolves.not.toContain('login_required');
    expect(suite.h.sandbox.stats.tokenRequests).toBe(0);
  });

  it("another browser opening the victim's callback gets the 400 page, and the victim still connects", async () => {
    const victim = await newPage();
    await victim.page.goto(`${suite.h.latchkeyUrl}/auth/videoask?connection_id=victim`);
    // The victim approves; the stranger gets hold of the callback URL before the victim's browser uses it.
    let steal!: (url: string) => void;
    const intercepted = new Promise<string>((resolve) => (steal = resolve));
    // The provider's answer redirects to /callback; a route sees only the first request of a redirect chain.
    await victim.page.route('**/authorize/decision', async (route) => {
      const answer = await route.fetch({ maxRedirects: 0 });
      steal(answer.headers().location!);
      return route.fulfill({ status: 200, contentType: 'text/plain', body: 'held back' });
    });
    await victim.page.getByRole('button', { name: 'Approve' }).click();
    const stolen = await intercepted;

    const stranger = await newPage();
    const refused = await stranger.page.goto(stolen);
    expect(refused?.status()).toBe(400);
    await expect(stranger.page.locator('#error-code').textContent()).resolves.toBe('invalid_state');
    expect(suite.h.sandbox.stats.tokenRequests).toBe(0);

    await victim.page.goto(stolen);
    await victim.page.waitForURL(`${suite.h.latchkeyUrl}/`);
    await expect(victim.page.locator('#result h2').textContent()).resolves.toBe('VideoAsk is connected');
    expect(suite.h.sandbox.stats.tokenRequests).toBe(1);
  });

  it('the WebinarGeek key form labels its field, explains a bad key without echoing it, and stores a good one encrypted', async () => {
    const canary = 'wg-e2e-key-canary-0123456789';
    suite.h.sandbox.options.apiKeys.push(canary); // the sandbox's WebinarGeek accepts it
    const { page } = await newPage();
    await page.goto(`${suite.h.latchkeyUrl}/`);
    await page.getByRole('link', { name: 'Connect WebinarGeek' }).click();
    const field = page.getByLabel('WebinarGeek API key');
    await expect(field.getAttribute('type')).resolves.toBe('password');

    await page.getByRole('button', { name: 'Connect WebinarGeek' }).click();
    await expect(page.locator('#api-key-error').textContent()).resolves.toBe('Enter your API key.');
    await expect(field.getAttribute('aria-invalid')).resolves.toBe('true');

    await field.fill(`${canary} with spaces`);
    await page.getByRole('button', { name: 'Connect WebinarGeek' }).click();
    await expect(page.locator('#api-key-error').textContent()).resolves.toContain('does not look like an API key');
    await expect(field.inputValue()).resolves.toBe('');
    await expect(page.content()).resolves.not.toContain(canary);
    await screenshot(page, '08-api-key-form-error');

    await field.fill(canary);
    await page.getByRole('button', { name: 'Connect WebinarGeek' }).click();
    await page.waitForURL(`${suite.h.latchkeyUrl}/**`);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('WebinarGeek is connected');
    await expect(page.locator('tr[data-provider="webinargeek"] .badge').textContent()).resolves.toBe('Connected');
    await expect(page.content()).resolves.not.toContain(canary);
    await screenshot(page, '09-connect-page-api-key-connected');

    expect((await suite.h.store.getConnection('webinargeek', 'default'))?.credentials.apiKey).toBe(canary);
    const redis = rawRedis();
    try {
      for (const key of await keysUnder(redis, suite.h.prefix)) {
        const type = await redis.type(key);
        const value =
          type === 'hash' ? JSON.stringify(await redis.hgetall(key)) : type === 'string' ? await redis.get(key) : '';
        expect(value).not.toContain(canary);
      }
    } finally {
      redis.disconnect();
    }
  });

  it('without anonymous connect, shows no dead buttons, says where to start, and lists what this browser connected', async () => {
    await suite.restartHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const { page } = await newPage();
    await page.goto(`${suite.h.latchkeyUrl}/`);
    await expect(page.locator('.provider').count()).resolves.toBeGreaterThan(0);
    await expect(page.locator('.provider .button').count()).resolves.toBe(0);
    await expect(page.locator('a[href*="/auth/"]').count()).resolves.toBe(0);
    await expect(page.locator('#connect-from-app').textContent()).resolves.toContain(
      'Connections are started from your application',
    );
    await expect(page.locator('#connections-heading + .empty').textContent()).resolves.toContain(
      'Nothing is connected',
    );
    expect(await findContrastProblems(page)).toEqual([]);
    await screenshot(page, '14-connect-page-production');

    // Without a link, /auth says what is missing: not "expired", not an API-key error.
    const bare = await page.goto(`${suite.h.latchkeyUrl}/auth/videoask`);
    expect(bare?.status()).toBe(400);
    await expect(page.locator('h1').textContent()).resolves.toBe('Connect from your application');
    await expect(page.locator('#error-code').textContent()).resolves.toBe('invalid_request');
    await screenshot(page, '15-error-no-link');

    const created = await suite.h
      .api()
      .post('/connect-sessions')
      .send({ provider: 'videoask', connection_id: 'user-prod', return_to: '/' });
    await page.goto(created.body.url);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL(`${suite.h.latchkeyUrl}/`);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('VideoAsk is connected');
    const row = page.locator('tr[data-provider="videoask"][data-connection-id="user-prod"]');
    await expect(row.locator('.badge').textContent()).resolves.toBe('Connected');
    await expect(page.locator('.provider .button').count()).resolves.toBe(0);
    await screenshot(page, '16-connect-page-production-connected');
  });

  it('its pages meet WCAG AA contrast and show a visible focus ring', async () => {
    const { page } = await newPage();
    // A page with a notice, a connection row and both button styles.
    await page.goto(`${suite.h.latchkeyUrl}/auth/videoask?connection_id=contrast`);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL(`${suite.h.latchkeyUrl}/**`);
    expect(await findContrastProblems(page)).toEqual([]);
    await page.keyboard.press('Tab');
    const focused = await focusedElement(page);
    expect(focused.outlineStyle).toBe('solid');
    expect(focused.outlineWidth).toBeGreaterThanOrEqual(2);

    await page.goto(`${suite.h.latchkeyUrl}/callback?state=nope`);
    expect(await findContrastProblems(page)).toEqual([]);
    await page.goto(`${suite.h.latchkeyUrl}/auth/webinargeek?connection_id=contrast`);
    await page.getByRole('button', { name: 'Connect WebinarGeek' }).click();
    expect(await findContrastProblems(page)).toEqual([]);
  });
});
