import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, observeHost, screenshot, useBrowserSuite, waitForOutcome } from '../helpers/browser';

/**
 * Makes the provider answer the authorization with `error` instead of a code, as a provider
 * that refuses does. The provider's answer is a redirect to /callback, and a route sees only the
 * first request of a redirect chain, so the redirect itself is rewritten.
 */
async function answerWithError(context: BrowserContext, error: string): Promise<void> {
  await context.route('**/authorize/decision', async (route) => {
    const answer = await route.fetch({ maxRedirects: 0 });
    const callback = new URL(answer.headers().location!);
    const back = new URL('/callback', callback);
    back.searchParams.set('error', error);
    back.searchParams.set('error_description', 'desc-canary');
    back.searchParams.set('state', callback.searchParams.get('state')!);
    return route.fulfill({ status: 302, headers: { Location: back.toString() } });
  });
}

/**
 * connect.js embedded in a host application on another origin: the popup, its postMessage for
 * exact origins only, denial, a closed popup, an expired link, and the redirect fallback.
 */
describe('connect.js in a host application', () => {
  const suite = useBrowserSuite({ viewport: { width: 900, height: 640 } });
  const newPage = (on?: Browser): Promise<Page> => suite.newPage({}, on);

  /** Clicks the host page's button and returns the popup connect.js opened. */
  async function openPopup(page: Page): Promise<Page> {
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#connect')]);
    return popup;
  }

  /** Clicks a consent button in the popup, which then closes itself. */
  async function decideAndWaitForClose(popup: Page, decision: 'Approve' | 'Deny'): Promise<void> {
    await popup.waitForURL(`${suite.h.sandboxUrl}/authorize?**`);
    const closed = popup.waitForEvent('close', { timeout: 10_000 });
    await popup.getByRole('button', { name: decision }).click();
    await closed;
  }

  it('from an allowed origin, resolves with the connection id and the popup closes', async () => {
    const page = await newPage();
    await page.goto(`${suite.h.hostUrl}/?user=user-7`);
    const popup = await openPopup(page);
    await popup.waitForURL(`${suite.h.sandboxUrl}/authorize?**`);
    await screenshot(popup, '11-popup-consent');
    await decideAndWaitForClose(popup, 'Approve');

    const seen = await waitForOutcome(page);
    expect(seen.outcome).toEqual({ resolved: { provider: 'videoask', connectionId: 'user-7' } });
    expect(seen.messages).toEqual([
      {
        origin: suite.h.latchkeyUrl,
        data: { type: 'latchkey:result', provider: 'videoask', connectionId: 'user-7', status: 'connected' },
      },
    ]);
    expect(popup.isClosed()).toBe(true);
    await screenshot(page, '12-host-page-connected');
    expect(await suite.h.store.getConnection('videoask', 'user-7')).toMatchObject({ status: 'active' });
  });

  it('denying in the popup rejects with access_denied and stores nothing', async () => {
    const page = await newPage();
    await page.goto(`${suite.h.hostUrl}/?user=user-8`);
    await decideAndWaitForClose(await openPopup(page), 'Deny');
    expect((await waitForOutcome(page)).outcome).toEqual({ rejected: { code: 'access_denied' } });
    expect(await suite.h.store.getConnection('videoask', 'user-8')).toBeNull();
  });

  it('closing the popup rejects with closed', async () => {
    const page = await newPage();
    await page.goto(`${suite.h.hostUrl}/?user=user-9`);
    const popup = await openPopup(page);
    await popup.waitForURL(`${suite.h.sandboxUrl}/authorize?**`);
    await popup.close();
    expect((await waitForOutcome(page)).outcome).toEqual({ rejected: { code: 'closed' } });
    expect(await suite.h.store.getConnection('videoask', 'user-9')).toBeNull();
  });

  it('an already used connect link rejects with link_expired, reported by the popup itself', async () => {
    const page = await newPage();
    await page.goto(`${suite.h.hostUrl}/?user=user-10`);
    const token = await page.locator('body').getAttribute('data-token');
    expect((await suite.h.browser().get(`/auth/videoask?token=${token}`)).status).toBe(302);
    const popup = await openPopup(page);
    const seen = await waitForOutcome(page);
    expect(seen.outcome).toEqual({ rejected: { code: 'link_expired' } });
    expect(seen.messages).toEqual([
      {
        origin: suite.h.latchkeyUrl,
        data: expect.objectContaining({ type: 'latchkey:result', status: 'error', code: 'link_expired' }),
      },
    ]);
    // The popup closes itself once it has posted; it may already be gone.
    if (!popup.isClosed()) await popup.waitForEvent('close', { timeout: 10_000 });
    expect(popup.isClosed()).toBe(true);
  });

  it.each([
    ['answers 500', 500],
    ['refuses the code with a 400', 400],
  ])('when the token endpoint %s after consent, the popup posts provider_error and closes', async (_name, status) => {
    suite.h.sandbox.failNextTokenRequests(1, status);
    const page = await newPage();
    await page.goto(`${suite.h.hostUrl}/?user=user-14`);
    const popup = await openPopup(page);
    await decideAndWaitForClose(popup, 'Approve');
    const seen = await waitForOutcome(page);
    expect(seen.outcome).toEqual({ rejected: { code: 'provider_error' } });
    expect(seen.messages).toEqual([
      {
        origin: suite.h.latchkeyUrl,
        data: {
          type: 'latchkey:result',
          provider: 'videoask',
          connectionId: 'user-14',
          status: 'error',
          code: 'provider_error',
        },
      },
    ]);
    expect(popup.isClosed()).toBe(true);
    expect(suite.h.sandbox.stats.tokenRequests).toBe(1);
    expect(await suite.h.store.getConnection('videoask', 'user-14')).toBeNull();
  });

  it("an error the provider sends back is posted from the closed list, never as the provider's text", async () => {
    const page = await newPage();
    // The provider answers the popup's authorization with an error of its own (OIDC's login_required).
    await answerWithError(page.context(), 'login_required');
    await page.goto(`${suite.h.hostUrl}/?user=user-16`);
    await decideAndWaitForClose(await openPopup(page), 'Approve');
    const seen = await waitForOutcome(page);
    expect(seen.outcome).toEqual({ rejected: { code: 'server_error' } });
    expect(JSON.stringify(seen.messages)).not.toContain('canary');
    expect(JSON.stringify(seen.messages)).not.toContain('login_required');
    expect(suite.h.sandbox.stats.tokenRequests).toBe(0);
    expect(await suite.h.store.getConnection('videoask', 'user-16')).toBeNull();
  });

  it('connects an api_key provider through the key form in the popup', async () => {
    const page = await newPage();
    suite.h.sandbox.options.apiKeys.push('wg-popup-key-0123456789'); // the sandbox's WebinarGeek accepts it
    await page.goto(`${suite.h.hostUrl}/?provider=webinargeek&user=user-15`);
    const popup = await openPopup(page);
    await popup.getByLabel('WebinarGeek API key').fill('wg-popup-key-0123456789');
    const closed = popup.waitForEvent('close', { timeout: 10_000 });
    await popup.getByRole('button', { name: 'Connect WebinarGeek' }).click();
    await closed;
    expect((await waitForOutcome(page)).outcome).toEqual({
      resolved: { provider: 'webinargeek', connectionId: 'user-15' },
    });
    expect((await suite.h.store.getConnection('webinargeek', 'user-15'))?.credentials.apiKey).toBe(
      'wg-popup-key-0123456789',
    );
  });

  it('from an origin that is not allowed, the popup refuses to start and nothing is delivered', async () => {
    const page = await newPage();
    await page.goto(`${suite.h.strangerUrl}/?user=user-11`);
    const popup = await openPopup(page);
    await popup.waitForLoadState();
    await expect(popup.locator('#error-code').textContent()).resolves.toBe('invalid_request');
    await expect(popup.locator('.detail').textContent()).resolves.toContain('not on an allowed origin');
    await screenshot(popup, '13-popup-origin-not-allowed');
    expect(suite.h.sandbox.stats.requests).toEqual([]);
    await popup.close();
    const seen = await waitForOutcome(page);
    expect(seen.outcome).toEqual({ rejected: { code: 'closed' } });
    expect(seen.messages).toEqual([]);
  });

  it('a page on another origin that claims an allowed origin gets nothing, even when the flow completes', async () => {
    const page = await newPage();
    await page.goto(`${suite.h.strangerUrl}/spoof?claim=${encodeURIComponent(suite.h.hostUrl)}`);
    const popup = await openPopup(page);
    await decideAndWaitForClose(popup, 'Approve');
    // The flow did finish and the result was posted, for the claimed origin only: the browser
    // drops it, since the real opener is elsewhere. (Posting happened before the popup closed.)
    expect(await suite.h.store.getConnection('videoask', 'victim')).toMatchObject({ status: 'active' });
    expect((await observeHost(page)).messages).toEqual([]);
  });

  describe('with the popup blocker on', () => {
    let blocking: Browser;

    beforeAll(async () => {
      blocking = await launchChromium({ popupBlocking: true });
    });

    afterAll(async () => {
      await blocking?.close();
    });

    it('a blocked popup falls back to a full-page redirect that comes back to the host page', async () => {
      const page = await newPage(blocking);
      // auto=1 calls Latchkey.connect on load, without a user gesture: the browser blocks the popup.
      await page.goto(`${suite.h.hostUrl}/?user=user-12&auto=1`);
      await page.waitForURL(`${suite.h.sandboxUrl}/authorize?**`);
      await page.getByRole('button', { name: 'Approve' }).click();
      await page.waitForURL(`${suite.h.hostUrl}/?**`);
      const seen = await waitForOutcome(page);
      expect(seen.outcome?.returned).toMatchObject({
        status: 'connected',
        provider: 'videoask',
        connection_id: 'user-12',
      });
      expect(page.context().pages()).toHaveLength(1);
      expect(await suite.h.store.getConnection('videoask', 'user-12')).toMatchObject({ status: 'active' });
    });

    it('a token endpoint failure in the redirect fallback comes back to the host page with status=error', async () => {
      suite.h.sandbox.failNextTokenRequests(1, 503);
      const page = await newPage(blocking);
      await page.goto(`${suite.h.hostUrl}/?user=user-17&auto=1`);
      await page.waitForURL(`${suite.h.sandboxUrl}/authorize?**`);
      await page.getByRole('button', { name: 'Approve' }).click();
      await page.waitForURL(`${suite.h.hostUrl}/?**`);
      const seen = await waitForOutcome(page);
      // The host page's own query (user, auto) is kept; the result is added to it.
      expect(seen.outcome?.returned).toEqual({
        user: 'user-17',
        auto: '1',
        status: 'error',
        provider: 'videoask',
        connection_id: 'user-17',
        error: 'provider_error',
      });
      expect(page.context().pages()).toHaveLength(1);
      await screenshot(page, '17-host-page-returned-error');
      expect(await suite.h.store.getConnection('videoask', 'user-17')).toBeNull();
    });

    it("a provider's error in the redirect fallback comes back mapped, without its description", async () => {
      const page = await newPage(blocking);
      await answerWithError(page.context(), 'temporarily_unavailable');
      await page.goto(`${suite.h.hostUrl}/?user=user-18&auto=1`);
      await page.waitForURL(`${suite.h.sandboxUrl}/authorize?**`);
      await page.getByRole('button', { name: 'Approve' }).click();
      await page.waitForURL(`${suite.h.hostUrl}/?**`);
      const seen = await waitForOutcome(page);
      // The host page's own query (user, auto) is kept; the result is added to it.
      expect(seen.outcome?.returned).toEqual({
        user: 'user-18',
        auto: '1',
        status: 'error',
        provider: 'videoask',
        connection_id: 'user-18',
        error: 'temporarily_unavailable',
      });
      expect(page.url()).not.toContain('canary');
      expect(suite.h.sandbox.stats.tokenRequests).toBe(0);
    });

    it('on an origin that is not allowed, the redirect fallback does not ask to come back there', async () => {
      const page = await newPage(blocking);
      await page.goto(`${suite.h.strangerUrl}/?user=user-13&auto=1`);
      await page.waitForURL(`${suite.h.sandboxUrl}/authorize?**`);
      await page.getByRole('button', { name: 'Approve' }).click();
      // Latchkey's Connect page, not a 400 for a return_to it would refuse.
      await page.waitForURL(`${suite.h.latchkeyUrl}/**`);
      await expect(page.locator('#result h2').textContent()).resolves.toBe('VideoAsk is connected');
      expect(await suite.h.store.getConnection('videoask', 'user-13')).toMatchObject({ status: 'active' });
    });
  });
});
