import type { Page } from 'playwright-core';
import { findContrastProblems, focusedElement, recordRequests, screenshot, useBrowserSuite } from '../helpers/browser';
import { seedOAuthConnection } from '../helpers/seed';

/**
 * The operator console in Chromium (CONTRACT "Operator console"; issue 11 "Tests must show"):
 * sign-in, search, filter, paginate, a connection's timeline, refresh and disconnect, a dead
 * delivery retried, all from the keyboard, with nothing but Latchkey's own assets and no CSP
 * violation. Screenshots in test-output/screenshots.
 */

const ADMIN_KEY = 'e2e-console-key-0123456789abcdef';

describe('the operator console in a real browser', () => {
  const suite = useBrowserSuite({
    harness: { env: { ADMIN_API_KEYS: ADMIN_KEY } },
    viewport: { width: 1280, height: 900 },
  });

  /** A page whose CSP reports and page errors are collected. */
  async function newPage(options: { javaScriptEnabled?: boolean } = {}) {
    const context = await suite.newContext(options);
    const requests = recordRequests(context);
    const page = await context.newPage();
    // A step that does not happen fails within seconds, naming itself, instead of at the test's timeout.
    page.setDefaultTimeout(10_000);
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    page.on('pageerror', (e) => violations.push(e.message));
    return { page, requests, violations };
  }

  async function signIn(page: Page): Promise<void> {
    await page.goto(`${suite.h.latchkeyUrl}/admin`);
    await page.waitForURL(`${suite.h.latchkeyUrl}/admin/sign-in`);
    // The key field takes the focus by itself (autofocus, no script): typing and Enter are enough.
    // The browser applies autofocus at its next rendering step after load, so wait for it; keys
    // typed before then go nowhere.
    await page.locator('#admin-key:focus').waitFor();
    await page.keyboard.type(ADMIN_KEY);
    await Promise.all([page.waitForURL(`${suite.h.latchkeyUrl}/admin`), page.keyboard.press('Enter')]);
  }

  const rowIds = (page: Page) => page.locator('.connection-link').allTextContents();

  it('signs in, searches, filters, pages, shows a timeline, refreshes and disconnects, from the keyboard', async () => {
    const { store, sandbox } = suite.h;
    await Promise.all(
      Array.from({ length: 56 }, (_, i) =>
        seedOAuthConnection(store, sandbox, {
          connectionId: `user-${String(i).padStart(3, '0')}`,
          status: i % 7 === 3 ? 'reauth_required' : 'active',
          account: { id: `acct-${i}`, label: i === 12 ? 'Ada Lovelace' : `person${i}@example.com` },
        }),
      ),
    );
    // A timeline to show: one refresh through the service API before the console opens.
    const refreshed = await fetch(`${suite.h.latchkeyUrl}/connections/videoask/user-012/refresh`, {
      method: 'POST',
      headers: { Authorization: 'Bearer test-api-key-0123456789abcdef' },
    });
    expect(refreshed.status).toBe(200);

    const { page, requests, violations } = await newPage();
    await page.goto(`${suite.h.latchkeyUrl}/admin`);
    await page.waitForURL(`${suite.h.latchkeyUrl}/admin/sign-in`);
    await expect(page.locator('h1').textContent()).resolves.toBe('Operator console');
    await screenshot(page, 'admin-01-sign-in');

    // A wrong key: the form again, with the message tied to the field.
    await page.locator('#admin-key:focus').waitFor();
    await page.keyboard.type('not-the-console-key-0123456789');
    await Promise.all([page.waitForResponse((r) => r.url().endsWith('/admin/sign-in')), page.keyboard.press('Enter')]);
    await expect(page.locator('#admin-key-error').textContent()).resolves.toBe('That is not a console key.');
    await expect(page.locator('#admin-key').getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(page.locator('#admin-key').inputValue()).resolves.toBe('');
    await screenshot(page, 'admin-02-wrong-key');

    await signIn(page);
    await expect(page.locator('h1').textContent()).resolves.toBe('Connections');
    await expect(page.locator('[data-status-count="all"] .count').textContent()).resolves.toBe('56');
    await expect(page.locator('[data-status-count="reauth_required"] .count').textContent()).resolves.toBe('8');
    expect(await rowIds(page)).toHaveLength(50);
    expect(await findContrastProblems(page)).toEqual([]);
    await screenshot(page, 'admin-03-connections');

    // Keyboard: the first stop is the navigation, with a visible focus ring.
    await page.keyboard.press('Tab');
    const focused = await focusedElement(page);
    expect(focused).toMatchObject({ tag: 'a', text: 'Connections', outlineStyle: 'solid' });
    expect(focused.outlineWidth).toBeGreaterThanOrEqual(2);

    // Paginate: the next page holds the rest, in order.
    await Promise.all([page.waitForURL('**/admin?cursor=*'), page.locator('#next-page').click()]);
    expect(await rowIds(page)).toEqual(['user-050', 'user-051', 'user-052', 'user-053', 'user-054', 'user-055']);
    await expect(page.locator('#next-page').count()).resolves.toBe(0);
    await screenshot(page, 'admin-04-second-page');

    // Search by account label, typed in the search field and sent with Enter.
    await page.locator('#q').focus();
    await page.keyboard.type('ada');
    await Promise.all([page.waitForURL((u) => u.searchParams.get('q') === 'ada'), page.keyboard.press('Enter')]);
    expect(await rowIds(page)).toEqual(['user-012']);

    // Filter by status with the select, from the keyboard.
    await page.locator('#q').fill('');
    await page.locator('#status').focus();
    await page.locator('#status').selectOption('reauth_required');
    await Promise.all([
      page.waitForURL((u) => u.searchParams.get('status') === 'reauth_required'),
      page.getByRole('button', { name: 'Show' }).press('Enter'),
    ]);
    const reauth = await rowIds(page);
    expect(reauth).toHaveLength(8);
    await expect(page.locator('tbody .badge').allTextContents()).resolves.toEqual(Array(8).fill('reauth_required'));
    await screenshot(page, 'admin-05-filtered');

    // One connection: its facts and timeline.
    await page.locator('#q').fill('user-012');
    await page.locator('#status').selectOption('');
    await Promise.all([
      page.waitForURL((u) => u.searchParams.get('q') === 'user-012' && !u.searchParams.get('status')),
      page.locator('#q').press('Enter'),
    ]);
    await Promise.all([
      page.waitForURL('**/admin/connections/videoask/user-012'),
      page.locator('.connection-link').press('Enter'),
    ]);
    await expect(page.locator('#connection-title').textContent()).resolves.toBe('user-012');
    await expect(page.locator('.facts').textContent()).resolves.toContain('Ada Lovelace');
    await expect(page.locator('.timeline tbody tr').count()).resolves.toBe(1);
    await expect(page.locator('.timeline tbody th').first().textContent()).resolves.toBe('refreshed');
    expect(await findContrastProblems(page)).toEqual([]);
    await screenshot(page, 'admin-06-connection');

    // Refresh now, from the keyboard: one refresh at the provider, and one more line on the timeline.
    const grants = sandbox.stats.refreshGrants;
    await Promise.all([
      page.waitForURL('**/admin/connections/videoask/user-012?done=refreshed'),
      page.getByRole('button', { name: 'Refresh now' }).press('Enter'),
    ]);
    expect(sandbox.stats.refreshGrants).toBe(grants + 1);
    await expect(page.locator('#notice').textContent()).resolves.toContain('Refreshed');
    await expect(page.locator('.timeline tbody tr').count()).resolves.toBe(2);
    await screenshot(page, 'admin-07-refreshed');

    // Disconnect: the box must be ticked first (Space on the checkbox), then the button.
    await page.locator('#confirm-disconnect').focus();
    await page.keyboard.press('Space');
    await expect(page.locator('#confirm-disconnect').isChecked()).resolves.toBe(true);
    await Promise.all([
      page.waitForURL('**/admin?done=disconnected'),
      page.getByRole('button', { name: 'Disconnect' }).press('Enter'),
    ]);
    await expect(page.locator('#notice').textContent()).resolves.toContain('Disconnected');
    await expect(page.locator('[data-status-count="all"] .count').textContent()).resolves.toBe('55');
    expect(await store.getConnectionInfo('videoask', 'user-012')).toBeNull();
    await screenshot(page, 'admin-08-disconnected');

    // Sign out: the console is closed to this browser again.
    await Promise.all([
      page.waitForURL('**/admin/sign-in?done=signed_out'),
      page.getByRole('button', { name: 'Sign out' }).click(),
    ]);
    await page.goto(`${suite.h.latchkeyUrl}/admin/providers`);
    await page.waitForURL(`${suite.h.latchkeyUrl}/admin/sign-in`);

    expect(violations).toEqual([]);
    const origins = new Set(requests.map((u) => new URL(u).origin));
    expect([...origins]).toEqual([suite.h.latchkeyUrl]);
  }, 90_000);

  it('retries a dead delivery, with JavaScript off, and shows the providers', async () => {
    const { store, sandbox } = suite.h;
    await seedOAuthConnection(store, sandbox, { connectionId: 'hooked' });
    const consumer = await store.eventLog.consumer('e2e-dead');
    const event = await store.eventLog.append({
      type: 'connection.reauth_required',
      provider: 'videoask',
      connectionId: 'hooked',
      at: Date.now(),
      detail: { code: 'invalid_grant' },
    });
    const [delivery] = (await consumer.read(10, 100)).filter((d) => d.event.id === event.id);
    await consumer.bury(delivery!, 12, 'network ECONNREFUSED');
    await consumer.close();

    const { page, violations } = await newPage({ javaScriptEnabled: false });
    await signIn(page);
    await page.getByRole('link', { name: 'Webhook deliveries' }).click();
    await page.waitForURL('**/admin/deliveries');
    const row = page.locator(`tr[data-event-id="${event.id}"]`);
    await expect(row.textContent()).resolves.toContain('network ECONNREFUSED');
    await expect(page.locator('.admin-nav [aria-current="page"]').textContent()).resolves.toBe('Webhook deliveries');
    expect(await findContrastProblems(page)).toEqual([]);
    await screenshot(page, 'admin-09-dead-delivery');

    await Promise.all([
      page.waitForURL('**/admin/deliveries?done=retried'),
      row.getByRole('button', { name: 'Retry' }).press('Enter'),
    ]);
    await expect(page.locator('#notice').textContent()).resolves.toContain('same webhook-id');
    await expect(page.locator('#no-dead').count()).resolves.toBe(1);
    expect(await store.eventLog.deadDeliveries(10)).toEqual([]);
    await screenshot(page, 'admin-10-retried');

    await page.getByRole('link', { name: 'Events' }).click();
    await page.waitForURL('**/admin/events');
    await expect(page.locator(`tr[data-event-id="${event.id}"]`).count()).resolves.toBe(1);
    await screenshot(page, 'admin-11-events');

    await page.getByRole('link', { name: 'Providers' }).click();
    await page.waitForURL('**/admin/providers');
    await expect(page.locator('tr[data-provider="interact"]').textContent()).resolves.toContain(
      'INTERACT_CLIENT_SECRET',
    );
    expect(await findContrastProblems(page)).toEqual([]);
    await screenshot(page, 'admin-12-providers');
    expect(violations).toEqual([]);
  }, 60_000);
});
