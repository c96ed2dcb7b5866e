import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import {
  findContrastProblems,
  focusedElement,
  launchChromium,
  recordRequests,
  screenshot,
  startBrowserHarness,
  type BrowserHarness,
} from '../helpers/browser';
import { keysUnder, rawRedis } from '../helpers/redis';

/** Latchkey's own pages in a real browser: the Connect page, the consent round trip, errors, the API-key form. */
describe('the Connect page in a real browser', () => {
  let browser: Browser;
  let h: BrowserHarness;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
  });

  beforeEach(async () => {
    h = await startBrowserHarness();
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
    await h?.close();
  });

  afterAll(async () => {
    await browser?.close();
  });

  async function newPage(options: { javaScriptEnabled?: boolean } = {}): Promise<{ page: Page; requests: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1000, height: 760 }, ...options });
    contexts.push(context);
    const requests = recordRequests(context);
    return { page: await context.newPage(), requests };
  }

  /** The response of the first /callback request, to check its headers. */
  function callbackResponse(page: Page): Promise<Response> {
    return page.waitForResponse((r) => new URL(r.url()).pathname === '/callback');
  }

  it('with JavaScript off, Connect VideoAsk then Approve shows the connection, and Redis holds it', async () => {
    const { page, requests } = await newPage({ javaScriptEnabled: false });
    await page.goto(`${h.latchkeyUrl}/`);
    await expect(page.locator('h1').textContent()).resolves.toBe('Connect your accounts');
    await expect(page.locator('.provider .button').first().textContent()).resolves.toBe('Connect VideoAsk');
    await screenshot(page, '01-connect-page-before');

    // Keyboard only: the first thing Tab reaches is the Connect VideoAsk button.
    await page.keyboard.press('Tab');
    expect(await focusedElement(page)).toMatchObject({ tag: 'a', text: 'Connect VideoAsk' });
    await Promise.all([page.waitForURL(`${h.sandboxUrl}/authorize?**`), page.keyboard.press('Enter')]);
    await expect(page.locator('h1').textContent()).resolves.toContain('wants access to your account');
    await screenshot(page, '02-sandbox-consent');

    const callback = callbackResponse(page);
    await page.getByRole('button', { name: 'Approve' }).click();
    const answered = await callback;
    expect(answered.status()).toBe(303);
    expect(answered.headers()['cache-control']).toBe('no-store');
    expect(answered.headers()['referrer-policy']).toBe('no-referrer');
    await page.waitForURL(`${h.latchkeyUrl}/?**`);

    const shown = new URL(page.url());
    expect(shown.searchParams.has('code')).toBe(false);
    expect(shown.searchParams.has('state')).toBe(false);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('VideoAsk is connected');
    const row = page.locator('tr[data-provider="videoask"][data-connection-id="default"]');
    await expect(row.locator('.account').textContent()).resolves.toContain('sandbox.user@example.com');
    await expect(row.locator('.badge').textContent()).resolves.toBe('Connected');
    await expect(row.locator('time').textContent()).resolves.toBe('just now');
    await screenshot(page, '03-connect-page-after');

    const stored = await h.store.getConnection('videoask', 'default');
    expect(stored).toMatchObject({ status: 'active', account: { label: 'sandbox.user@example.com' } });
    expect(stored?.credentials.accessToken).toMatch(/^sbx_at_/);
    const redis = rawRedis();
    try {
      expect((await keysUnder(redis, h.prefix)).some((k) => k.includes('videoask') && k.includes('default'))).toBe(
        true,
      );
    } finally {
      redis.disconnect();
    }

    // Everything the browser fetched came from Latchkey or the provider: no CDN, font or tracker.
    const origins = new Set(requests.map((u) => new URL(u).origin));
    expect([...origins].sort()).toEqual([h.latchkeyUrl, h.sandboxUrl].sort());

    // The notice is shown once; the connection stays listed.
    await page.reload();
    await expect(page.locator('#result').count()).resolves.toBe(0);
    await expect(row.count()).resolves.toBe(1);

    // Another browser sees none of it.
    const other = await newPage();
    await other.page.goto(`${h.latchkeyUrl}/`);
    await expect(other.page.locator('#connections-heading + .empty').textContent()).resolves.toContain(
      'Nothing is connected',
    );
    await expect(other.page.locator('tbody tr').count()).resolves.toBe(0);
    await expect(other.page.content()).resolves.not.toContain('sandbox.user@example.com');
  });

  it('choosing Deny shows a clear "you declined" message with its code, and stores nothing', async () => {
    const { page } = await newPage();
    await page.goto(`${h.latchkeyUrl}/`);
    await page.getByRole('link', { name: 'Connect VideoAsk' }).click();
    await page.getByRole('button', { name: 'Deny' }).click();
    await page.waitForURL(`${h.latchkeyUrl}/**`);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('You declined the connection to VideoAsk');
    await expect(page.locator('#result').textContent()).resolves.toContain('Nothing was stored');
    await expect(page.locator('#result code').textContent()).resolves.toBe('access_denied');
    await screenshot(page, '04-connect-page-denied');
    // page.js has taken ?status=denied&… off the address bar.
    expect(new URL(page.url()).search).toBe('');
    expect(h.sandbox.stats.tokenRequests).toBe(0);
    expect(await h.store.listConnections()).toEqual([]);
  });

  it('a connect link used twice shows "this connect link has expired" with the code unauthorized', async () => {
    const created = await h
      .api()
      .post('/connect-sessions')
      .send({ provider: 'videoask', connection_id: 'user-expired' });
    expect((await h.browser().get(`/auth/videoask?token=${created.body.token}`)).status).toBe(302);
    const { page } = await newPage();
    const answer = await page.goto(created.body.url);
    expect(answer?.status()).toBe(401);
    await expect(page.locator('h1').textContent()).resolves.toBe('This connect link has expired');
    await expect(page.locator('#error-code').textContent()).resolves.toBe('unauthorized');
    await expect(page.getByRole('link', { name: 'Go to the Connect page' }).count()).resolves.toBe(1);
    // The token is gone from the address bar too.
    expect(new URL(page.url()).search).toBe('');
    await screenshot(page, '05-error-link-expired');
  });

  it('a forged callback shows a plain-language invalid_state page, and the code and state leave the address bar', async () => {
    const { page } = await newPage();
    const answer = await page.goto(`${h.latchkeyUrl}/callback?code=stolen-code&state=forged-state`);
    expect(answer?.status()).toBe(400);
    expect(answer?.headers()['cache-control']).toBe('no-store');
    expect(answer?.headers()['referrer-policy']).toBe('no-referrer');
    await expect(page.locator('h1').textContent()).resolves.toBe('This sign-in link is no longer valid');
    await expect(page.locator('#error-code').textContent()).resolves.toBe('invalid_state');
    expect(page.url()).toBe(`${h.latchkeyUrl}/callback`);
    await screenshot(page, '06-error-invalid-state');
    expect(h.sandbox.stats.tokenRequests).toBe(0);
  });

  it('a token endpoint failure shows provider_error and nothing is stored', async () => {
    h.sandbox.failNextTokenRequests(1, 500);
    const { page } = await newPage();
    await page.goto(`${h.latchkeyUrl}/auth/videoask?connection_id=broken`);
    const callback = callbackResponse(page);
    await page.getByRole('button', { name: 'Approve' }).click();
    expect((await callback).status()).toBe(502);
    await expect(page.locator('h1').textContent()).resolves.toBe('The service did not complete the connection');
    await expect(page.locator('#error-code').textContent()).resolves.toBe('provider_error');
    expect(page.url()).toBe(`${h.latchkeyUrl}/callback`);
    await screenshot(page, '07-error-provider');
    expect(await h.store.getConnection('videoask', 'broken')).toBeNull();
  });

  it('an error sent back by the provider shows on the Connect page in plain language, with its code', async () => {
    const { page } = await newPage();
    await page.goto(`${h.latchkeyUrl}/auth/videoask?connection_id=refused`);
    const state = new URL(page.url()).searchParams.get('state')!;
    await page.goto(`${h.latchkeyUrl}/callback?error=temporarily_unavailable&state=${encodeURIComponent(state)}`);
    await page.waitForURL(`${h.latchkeyUrl}/**`);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('VideoAsk was not connected');
    await expect(page.locator('#result').textContent()).resolves.toContain('The service is busy');
    await expect(page.locator('#result code').textContent()).resolves.toBe('temporarily_unavailable');
    await screenshot(page, '10-connect-page-provider-error');
    expect(await h.store.getConnection('videoask', 'refused')).toBeNull();
  });

  it('the WebinarGeek key form labels its field, explains a bad key without echoing it, and stores a good one encrypted', async () => {
    const canary = 'wg-e2e-key-canary-0123456789';
    const { page } = await newPage();
    await page.goto(`${h.latchkeyUrl}/`);
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
    await page.waitForURL(`${h.latchkeyUrl}/**`);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('WebinarGeek is connected');
    await expect(page.locator('tr[data-provider="webinargeek"] .badge').textContent()).resolves.toBe('Connected');
    await expect(page.content()).resolves.not.toContain(canary);
    await screenshot(page, '09-connect-page-api-key-connected');

    expect((await h.store.getConnection('webinargeek', 'default'))?.credentials.apiKey).toBe(canary);
    const redis = rawRedis();
    try {
      for (const key of await keysUnder(redis, h.prefix)) {
        const type = await redis.type(key);
        const value =
          type === 'hash' ? JSON.stringify(await redis.hgetall(key)) : type === 'string' ? await redis.get(key) : '';
        expect(value).not.toContain(canary);
      }
    } finally {
      redis.disconnect();
    }
  });

  it('its pages meet WCAG AA contrast and show a visible focus ring', async () => {
    const { page } = await newPage();
    // A page with a notice, a connection row and both button styles.
    await page.goto(`${h.latchkeyUrl}/auth/videoask?connection_id=contrast`);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL(`${h.latchkeyUrl}/**`);
    expect(await findContrastProblems(page)).toEqual([]);
    await page.keyboard.press('Tab');
    const focused = await focusedElement(page);
    expect(focused.outlineStyle).toBe('solid');
    expect(focused.outlineWidth).toBeGreaterThanOrEqual(2);

    await page.goto(`${h.latchkeyUrl}/callback?state=nope`);
    expect(await findContrastProblems(page)).toEqual([]);
    await page.goto(`${h.latchkeyUrl}/auth/webinargeek?connection_id=contrast`);
    await page.getByRole('button', { name: 'Connect WebinarGeek' }).click();
    expect(await findContrastProblems(page)).toEqual([]);
  });
});
