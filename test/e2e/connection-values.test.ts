import type { BrowserContext, Page } from 'playwright-core';
import {
  findContrastProblems,
  screenshot,
  useBrowserSuite,
  waitForConnectPage,
  waitForOutcome,
} from '../helpers/browser';
import { startExampleTestHosts, tenantProvider, type ExampleTestHosts } from '../helpers/example-test-hosts';
import { incompleteProviders } from '../helpers/incomplete-providers';

// Each test is a whole connect in a browser; the shared machine can be slow (the suite's default is 30 s).
jest.setTimeout(60_000);

/**
 * Per-connection values in a real browser (issue 10 part 2): the form at `/auth/:provider` that
 * asks for a `connectionConfig` value the link did not give (with and without JavaScript, and in
 * the connect.js popup), and the Connect page that says which value a connection lacks.
 *
 * `subby`'s hosts are `https://{config.subdomain}.example.test:<port>`. The browser's visit to
 * the authorize page is answered by a route (a provider that approves at once), so the test sees
 * which host the browser was sent to; Latchkey's own calls (the token exchange) reach a TLS
 * server on loopback through an injected resolver, which records the host name each came with.
 */
describe('per-connection values in a real browser', () => {
  let hosts: ExampleTestHosts;

  beforeAll(async () => {
    hosts = await startExampleTestHosts();
    hosts.setHandler(tenantProvider);
  });
  afterAll(async () => hosts?.close());

  const suite = useBrowserSuite({
    harness: () => ({
      env: { ...incompleteProviders.env, SUBBY_CLIENT_ID: 'subby-client', SUBBY_CLIENT_SECRET: 'subby-secret' },
      app: hosts.appDeps,
      providerSources: (sandboxUrl) => [
        ...incompleteProviders.providerSources!(sandboxUrl),
        {
          source: 'subdomain provider',
          entries: [
            {
              id: 'subby',
              displayName: 'Subby',
              authMode: 'oauth2',
              connectionConfig: { subdomain: { label: 'Subdomain', pattern: '[a-z0-9-]{1,63}', required: true } },
              authorizationUrl: `https://{config.subdomain}.example.test:${hosts.port}/oauth/authorize`,
              tokenUrl: `https://{config.subdomain}.example.test:${hosts.port}/oauth/token`,
              apiBaseUrl: `https://{config.subdomain}.example.test:${hosts.port}/api`,
            },
          ],
        },
      ],
    }),
  });

  /** The authorize URLs the browser was sent to; each is answered at once with a code for its tenant. */
  async function approveAtOnce(context: BrowserContext): Promise<URL[]> {
    const visited: URL[] = [];
    await context.route(/^https:\/\/[^/]+\.example\.test(:\d+)?\//, async (route) => {
      const url = new URL(route.request().url());
      visited.push(url);
      const back = new URL(url.searchParams.get('redirect_uri')!);
      back.searchParams.set('code', `code-${url.hostname.split('.')[0]}`);
      back.searchParams.set('state', url.searchParams.get('state')!);
      await route.fulfill({ status: 302, headers: { Location: back.toString() } });
    });
    return visited;
  }

  /** Submits a wrong subdomain, checks the refusal on the form, then submits `tenant`. */
  async function fillConfigForm(page: Page, tenant: string, shot: string): Promise<void> {
    const field = page.getByLabel('Subdomain');
    await field.waitFor();
    await expect(page.locator('h1').textContent()).resolves.toBe('Connect Subby');
    await field.fill('evil.com#');
    const refused = page.waitForResponse((r) => r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Continue' }).click();
    const answer = await refused;
    expect(answer.status()).toBe(400);
    expect(answer.headers()['latchkey-error']).toBe('invalid_request');
    await expect(page.locator('#config-subdomain-error').textContent()).resolves.toBe(
      'Subdomain must match [a-z0-9-]{1,63}',
    );
    await expect(field.getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(field.getAttribute('aria-describedby')).resolves.toBe('config-subdomain-error');
    // Config is not secret: what the person typed is shown again, to correct.
    await expect(field.inputValue()).resolves.toBe('evil.com#');
    expect(await findContrastProblems(page)).toEqual([]);
    await screenshot(page, shot);
    await field.fill(tenant);
    await page.getByRole('button', { name: 'Continue' }).click();
  }

  /** What the test TLS server received for `tenant`: the token exchange, on its own host. */
  const tokenRequestsOf = (tenant: string) =>
    hosts.requests.filter((r) => r.sni === `${tenant}.example.test` && r.path === '/oauth/token');

  it.each([
    ['with JavaScript', true, 'acme'],
    ['without JavaScript', false, 'globex'],
  ])('%s, the config form refuses a wrong subdomain, then connects to the host it names', async (_, js, tenant) => {
    const context = await suite.newContext({ javaScriptEnabled: js });
    const visited = await approveAtOnce(context);
    const page = await context.newPage();
    await page.goto(`${suite.h.latchkeyUrl}/`);
    await page.getByRole('link', { name: 'Connect Subby' }).click();
    await fillConfigForm(page, tenant, `30-config-form-refused-${js ? 'js' : 'no-js'}`);

    await waitForConnectPage(page, suite.h.latchkeyUrl);
    await expect(page.locator('#result h2').textContent()).resolves.toBe('Subby is connected');
    await expect(page.locator('#missing-values').count()).resolves.toBe(0);
    await screenshot(page, `31-config-form-connected-${js ? 'js' : 'no-js'}`);
    expect(visited.map((u) => `${u.hostname}${u.pathname}`)).toEqual([`${tenant}.example.test/oauth/authorize`]);
    expect(tokenRequestsOf(tenant)).toHaveLength(1);
    expect(await suite.h.store.getConnection('subby', 'default')).toMatchObject({
      status: 'active',
      config: { subdomain: tenant },
    });
  });

  it('inside the connect.js popup, the config form refuses, accepts, and the host page gets the connection', async () => {
    const context = await suite.newContext({ viewport: { width: 900, height: 640 } });
    const visited = await approveAtOnce(context);
    const page = await context.newPage();
    await page.goto(`${suite.h.hostUrl}/?provider=subby&user=popup-user`);
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#connect')]);
    const closed = popup.waitForEvent('close', { timeout: 10_000 });
    await fillConfigForm(popup, 'initech', '32-config-form-refused-popup');
    await closed;

    const seen = await waitForOutcome(page);
    expect(seen.outcome).toEqual({ resolved: { provider: 'subby', connectionId: 'popup-user' } });
    expect(visited.map((u) => u.hostname)).toEqual(['initech.example.test']);
    expect(tokenRequestsOf('initech')).toHaveLength(1);
    expect(await suite.h.store.getConnection('subby', 'popup-user')).toMatchObject({
      config: { subdomain: 'initech' },
    });
  });

  it('after a connect whose post-connect call failed, the Connect page says which value is missing and what it means', async () => {
    const page = await suite.newPage();
    await page.goto(`${suite.h.latchkeyUrl}/`);
    await page.getByRole('link', { name: 'Connect Broken' }).click();
    await page.waitForURL(`${suite.h.sandboxUrl}/authorize?**`);
    await page.getByRole('button', { name: 'Approve' }).click();
    await waitForConnectPage(page, suite.h.latchkeyUrl);

    await expect(page.locator('#result h2').textContent()).resolves.toBe('Broken is connected');
    const missing = page.locator('#missing-values');
    await expect(missing.locator('h2').textContent()).resolves.toBe('Something is missing');
    await expect(missing.locator('li').allTextContents()).resolves.toEqual([
      'organization id (metadata.organizationId) could not be read from Broken: calls are sent without the organization-id header, so those that need it fail.',
    ]);
    const row = page.locator('tr[data-provider="broken"][data-connection-id="default"]');
    await expect(row.locator('.missing').textContent()).resolves.toBe('organization id missing');
    expect(await findContrastProblems(page)).toEqual([]);
    await screenshot(page, '33-connect-page-value-missing');

    const { credentials } = (await suite.h.store.getConnection('broken', 'default'))!;
    const html = await page.content();
    for (const secret of [credentials.accessToken, credentials.refreshToken]) {
      expect(secret).toBeTruthy();
      expect(html).not.toContain(secret);
    }
  });
});
