import type { Page } from 'playwright-core';
import { SANDBOX_API_KEY } from '../../src/sandbox/sandbox';
import { screenshot, useBrowserSuite, waitForConnectPage } from '../helpers/browser';

/**
 * The WebinarGeek key form in a real browser, against the sandbox's WebinarGeek stand-in: a
 * wrong key is refused on the form, a right one is stored, and the provider is asked exactly
 * once per submission (CONTRACT "Additions": `apiKey.check`).
 */
describe('the API-key form checks the key with the provider, in a real browser', () => {
  const suite = useBrowserSuite();

  async function openWebinarGeekForm(): Promise<Page> {
    const page = await suite.newPage();
    // A step that does not happen fails within seconds, naming itself, instead of at the test's timeout.
    page.setDefaultTimeout(10_000);
    await page.goto(`${suite.h.latchkeyUrl}/`);
    await page.getByRole('link', { name: 'Connect WebinarGeek' }).click();
    await page.getByLabel('WebinarGeek API key').waitFor();
    return page;
  }

  const checks = () => suite.h.sandbox.stats.requests.filter((r) => r.path === '/webinargeek/account');

  it('refuses a wrong key on the form, then stores a right one, with one check each time', async () => {
    const page = await openWebinarGeekForm();
    const field = page.getByLabel('WebinarGeek API key');
    const wrong = 'wg-e2e-wrong-key-0123456789';

    await field.fill(wrong);
    const refused = page.waitForResponse((r) => r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Connect WebinarGeek' }).click();
    const answer = await refused;
    expect(answer.status()).toBe(400);
    expect(answer.headers()['latchkey-error']).toBe('invalid_request');
    await expect(page.locator('#api-key-error').textContent()).resolves.toContain(
      'WebinarGeek did not accept this API key',
    );
    await expect(field.getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(field.inputValue()).resolves.toBe('');
    await expect(page.content()).resolves.not.toContain(wrong);
    await screenshot(page, '20-api-key-refused-by-provider');
    expect(checks().map((r) => r.headers['api-token'])).toEqual([wrong]);
    expect(await suite.h.store.getConnection('webinargeek', 'default')).toBeNull();

    await field.fill(SANDBOX_API_KEY);
    await page.getByRole('button', { name: 'Connect WebinarGeek' }).click();
    await waitForConnectPage(page, suite.h.latchkeyUrl);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('WebinarGeek is connected');
    await expect(page.locator('tr[data-provider="webinargeek"] .badge').textContent()).resolves.toBe('Connected');
    await screenshot(page, '21-api-key-checked-and-connected');
    expect(checks().map((r) => r.headers['api-token'])).toEqual([wrong, SANDBOX_API_KEY]);
    expect((await suite.h.store.getConnection('webinargeek', 'default'))?.credentials.apiKey).toBe(SANDBOX_API_KEY);
  });

  it('says on the form that the key could not be checked when the provider cannot be reached, and stores nothing', async () => {
    const page = await openWebinarGeekForm();
    suite.h.sandbox.failNextApiKeyRequests(1, 'drop');
    await page.getByLabel('WebinarGeek API key').fill(SANDBOX_API_KEY);
    const failed = page.waitForResponse((r) => r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Connect WebinarGeek' }).click();
    expect((await failed).status()).toBe(502);
    await expect(page.locator('#api-key-error').textContent()).resolves.toContain(
      'Latchkey could not check the key with WebinarGeek, so it was not saved',
    );
    await screenshot(page, '22-api-key-check-failed');
    expect(suite.h.sandbox.stats.apiKeyRequests).toBe(1);
    expect(await suite.h.store.getConnection('webinargeek', 'default')).toBeNull();
  });
});
