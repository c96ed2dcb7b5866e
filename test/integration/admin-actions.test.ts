import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type supertest from 'supertest';
import { TEST_API_KEY } from '../helpers/harness';
import { waitUntil } from '../helpers/latchkey-process';
import { seedApiKeyConnection, seedOAuthConnection } from '../helpers/seed';
import { ADMIN_KEY, signIn, startConsole, type ConsoleHarness } from '../helpers/admin-console';

/**
 * The operator console's pages and actions (CONTRACT "Operator console"): the list over the
 * listing index (search, filters, counts, pages), a connection's page and its actions (refresh
 * now at the provider, disconnect, a new connect link), the event feed, a dead delivery retried,
 * the providers; and no secret in any page.
 */

const adminName = `key-${createHash('sha256').update(ADMIN_KEY).digest('hex').slice(0, 8)}`;
const WEBINAR_KEY = 'webinargeek-api-key-canary-0123456789';

let c: ConsoleHarness;
let browser: ReturnType<typeof supertest.agent>;
let csrf: string;

beforeEach(async () => {
  c = await startConsole();
  browser = c.browser();
  csrf = await signIn(browser);
});
afterEach(() => c.close());

/** Stores a dead delivery of a new event of the connection, as the webhook sender would after its max age. */
async function buryOneEvent(provider: string, connectionId: string): Promise<string> {
  // Joined first: a group made now starts with the events appended from now on.
  const consumer = await c.h.store.eventLog.consumer('admin-test');
  try {
    const event = await c.h.store.eventLog.append({
      type: 'connection.refresh_failed',
      provider,
      connectionId,
      at: Date.now(),
      detail: { code: 'provider_error' },
    });
    const deliveries = await consumer.read(100, 100);
    const mine = deliveries.find((d) => d.event.id === event.id)!;
    for (const other of deliveries.filter((d) => d !== mine)) await consumer.ack(other.entryId);
    await consumer.bury(mine, 7, 'status 503');
    return event.id;
  } finally {
    await consumer.close();
  }
}

describe('the connections list', () => {
  it('searches, filters by provider and status, counts by status and pages with the listing cursor', async () => {
    for (let i = 0; i < 60; i++) {
      await seedOAuthConnection(c.h.store, c.h.sandbox, {
        connectionId: `user-${String(i).padStart(3, '0')}`,
        status: i % 4 === 0 ? 'reauth_required' : 'active',
        account: { id: `acct-${i}`, label: i === 7 ? 'Ada Lovelace' : `Person ${i}` },
      });
    }
    await seedApiKeyConnection(c.h.store, 'webinargeek', 'team-a', WEBINAR_KEY);

    const first = await browser.get('/admin');
    expect(first.status).toBe(200);
    expect(first.text).toMatch(/data-status-count="all"><span class="count">61<\/span>/);
    expect(first.text).toMatch(/data-status-count="reauth_required"><span class="count">15<\/span>/);
    expect(first.text).toMatch(/data-status-count="active"><span class="count">46<\/span>/);
    const rows = (html: string) => [...html.matchAll(/class="connection-link">([^<]+)</g)].map((m) => m[1]);
    expect(rows(first.text)).toHaveLength(50);
    const next = /id="next-page" href="([^"]+)"/.exec(first.text)![1]!.replace(/&amp;/g, '&');
    const second = await browser.get(next);
    expect(rows(second.text)).toHaveLength(11);
    expect(second.text).not.toContain('id="next-page"');
    // Every connection once, in (provider, connection_id) order.
    const all = [...rows(first.text), ...rows(second.text)];
    expect(new Set(all).size).toBe(61);
    expect(all.at(-1)).toBe('team-a');

    const byLabel = await browser.get('/admin?q=ada');
    expect(rows(byLabel.text)).toEqual(['user-007']);
    const byPrefix = await browser.get('/admin?q=USER-05');
    expect(rows(byPrefix.text)).toHaveLength(10);
    const reauth = await browser.get('/admin?provider=videoask&status=reauth_required');
    expect(rows(reauth.text)).toHaveLength(15);
    expect(reauth.text).toContain('<option value="reauth_required" selected>');
    const webinar = await browser.get('/admin?provider=webinargeek');
    expect(rows(webinar.text)).toEqual(['team-a']);
    expect((await browser.get('/admin?q=nobody')).text).toContain('No connection matches.');
  });

  it('answers a bad filter or cursor with the console’s error page', async () => {
    const status = await browser.get('/admin?status=broken');
    expect(status.status).toBe(400);
    expect(status.headers['latchkey-error']).toBe('invalid_request');
    expect(status.text).toContain('id="error-code">invalid_request<');
    expect((await browser.get('/admin?cursor=not-a-cursor')).status).toBe(400);
    expect((await browser.get('/admin?provider=nope')).status).toBe(404);
    expect((await browser.get('/admin?q=a&q=b')).status).toBe(400);
    expect((await browser.get('/admin/nowhere')).status).toBe(404);
  });
});

describe("a connection's page and actions", () => {
  it('shows its config, metadata, account, times and timeline', async () => {
    await c.h.store.saveConnection({
      ...(await seedOAuthConnection(c.h.store, c.h.sandbox, { connectionId: 'shown' })).connection,
      account: { id: 'acct-9', label: 'Grace <Hopper>' },
      config: { region: 'eu' },
      metadata: { organizationId: 'org-42', seats: 3 },
    });
    await c.h.api().post('/connections/videoask/shown/refresh').expect(200);
    const page = await browser.get('/admin/connections/videoask/shown');
    expect(page.status).toBe(200);
    expect(page.text).toContain('Grace &lt;Hopper&gt;');
    expect(page.text).not.toContain('Grace <Hopper>');
    expect(page.text).toContain('<th scope="row">region</th><td class="account"><code>&quot;eu&quot;</code>');
    expect(page.text).toContain('<th scope="row">seats</th><td class="account"><code>3</code>');
    expect(page.text).toMatch(/<th scope="row">refreshed<\/th>/);
    expect((await browser.get('/admin/connections/videoask/missing')).status).toBe(404);
  });

  it('refreshes now at the provider, and logs it with the key name', async () => {
    const seeded = await seedOAuthConnection(c.h.store, c.h.sandbox, { connectionId: 'fresh' });
    const before = c.h.sandbox.stats.refreshGrants;
    const res = await browser.post('/admin/connections/videoask/fresh/refresh').type('form').send({ csrf });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/admin/connections/videoask/fresh?done=refreshed');
    expect(c.h.sandbox.stats.refreshGrants).toBe(before + 1);
    const stored = await c.h.store.getConnection('videoask', 'fresh');
    expect(stored!.credentials.accessToken).not.toBe(seeded.accessToken);
    const page = await browser.get(res.headers.location!);
    expect(page.text).toContain('Refreshed: the provider issued a new access token.');
    expect(c.lines.find((l) => l.action === 'refresh')).toMatchObject({
      admin: adminName,
      provider: 'videoask',
      connectionId: 'fresh',
      result: 'refreshed',
    });
  });

  it('shows a failed refresh on the page with its code', async () => {
    await seedOAuthConnection(c.h.store, c.h.sandbox, { connectionId: 'flaky' });
    c.h.sandbox.failNextTokenRequests(1, 503);
    const res = await browser.post('/admin/connections/videoask/flaky/refresh').type('form').send({ csrf });
    expect(res.status).toBe(502);
    expect(res.headers['latchkey-error']).toBe('provider_error');
    expect(res.text).toContain('Refresh failed (provider_error)');
    expect(res.text).toContain('id="connection-title">flaky<');
  });

  it('disconnects only once confirmed: revoked at the provider and deleted', async () => {
    await seedOAuthConnection(c.h.store, c.h.sandbox, { connectionId: 'leaving' });
    const unconfirmed = await browser
      .post('/admin/connections/videoask/leaving/disconnect')
      .type('form')
      .send({ csrf });
    expect(unconfirmed.status).toBe(400);
    expect(await c.h.store.getConnectionInfo('videoask', 'leaving')).not.toBeNull();

    const revocations = c.h.sandbox.stats.revocations;
    const res = await browser
      .post('/admin/connections/videoask/leaving/disconnect')
      .type('form')
      .send({ csrf, confirm: 'yes' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/admin?done=disconnected');
    expect(await c.h.store.getConnectionInfo('videoask', 'leaving')).toBeNull();
    expect(c.h.sandbox.stats.revocations).toBeGreaterThan(revocations);
    expect(c.lines.find((l) => l.action === 'disconnect')).toMatchObject({ admin: adminName, connectionId: 'leaving' });
  });

  it('makes a new connect link that starts a flow for that connection', async () => {
    await seedOAuthConnection(c.h.store, c.h.sandbox, { connectionId: 'again' });
    const res = await browser.post('/admin/connections/videoask/again/connect-link').type('form').send({ csrf });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const url = new URL(
      /id="connect-link" type="text" readonly value="([^"]+)"/.exec(res.text)![1]!.replace(/&amp;/g, '&'),
    );
    expect(url.pathname).toBe('/auth/videoask');
    const token = url.searchParams.get('token')!;
    expect(JSON.stringify(c.lines)).not.toContain(token);
    const start = await c.browser().get(`${url.pathname}${url.search}`);
    expect(start.status).toBe(302);
    expect(start.headers.location).toContain(`${c.h.sandboxUrl}/authorize`);
    // Single use.
    expect((await c.browser().get(`${url.pathname}${url.search}`)).status).toBe(410);
  });
});

describe('events, deliveries and providers', () => {
  it('lists the event feed newest first, filtered, with a cursor', async () => {
    await seedOAuthConnection(c.h.store, c.h.sandbox, { connectionId: 'busy' });
    for (let i = 0; i < 3; i++) await c.h.api().post('/connections/videoask/busy/refresh').expect(200);
    const feed = await browser.get('/admin/events?provider=videoask&type=connection.refreshed');
    expect(feed.status).toBe(200);
    expect([...feed.text.matchAll(/<th scope="row">refreshed<\/th>/g)]).toHaveLength(3);
    expect((await browser.get('/admin/events?cursor=nonsense')).status).toBe(400);
    expect((await browser.get('/admin/events?type=connection.nothing')).status).toBe(400);
  });

  it('shows a dead delivery and retries it with the same event id', async () => {
    await seedOAuthConnection(c.h.store, c.h.sandbox, { connectionId: 'hooked' });
    const eventId = await buryOneEvent('videoask', 'hooked');
    const page = await browser.get('/admin/deliveries');
    expect(page.text).toContain(`data-event-id="${eventId}"`);
    expect(page.text).toContain('status 503');

    const res = await browser.post(`/admin/deliveries/${eventId}/retry`).type('form').send({ csrf });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/admin/deliveries?done=retried');
    expect(await c.h.store.eventLog.deadDeliveries(10)).toEqual([]);
    const after = await browser.get(res.headers.location!);
    expect(after.text).toContain('id="no-dead"');
    // Back in the queue: the next consumer to read gets the same event.
    const consumer = await c.h.store.eventLog.consumer('admin-test-2');
    try {
      const again = await consumer.read(100, 100);
      expect(again.map((d) => d.event.id)).toContain(eventId);
    } finally {
      await consumer.close();
    }
    expect(c.lines.find((l) => l.action === 'retry_delivery')).toMatchObject({ admin: adminName, eventId });
    // Retrying it twice: nothing dead to retry.
    expect((await browser.post(`/admin/deliveries/${eventId}/retry`).type('form').send({ csrf })).status).toBe(404);
  });

  it('shows the deliveries this instance is retrying, with their last failure', async () => {
    // A receiver that refuses everything; this console's own app delivers to it.
    const receiver = createServer((_req, res) => res.writeHead(503).end());
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    const hooked = await startConsole({ config: { webhookUrl: url, webhookSecret: 'admin-test-webhook-secret-0123' } });
    try {
      const operator = hooked.browser();
      await signIn(operator);
      await seedOAuthConnection(hooked.h.store, hooked.h.sandbox, { connectionId: 'unheard' });
      await hooked.h.api().post('/connections/videoask/unheard/refresh').expect(200);
      let page = '';
      await waitUntil(async () => {
        page = (await operator.get('/admin/deliveries')).text;
        return page.includes('status 503');
      });
      expect(page).toContain('Failed deliveries being retried');
      expect(page).toContain(`<code>${new URL(url).origin}</code>`);
      expect(page).not.toContain('/hooks');
    } finally {
      await hooked.close();
      await new Promise((r) => receiver.close(r));
    }
  });

  it('shows each provider: enabled, verified and the variables it is missing', async () => {
    const page = await browser.get('/admin/providers');
    expect(page.status).toBe(200);
    const row = (id: string) => new RegExp(`<tr data-provider="${id}">([\\s\\S]*?)</tr>`).exec(page.text)![1]!;
    expect(row('videoask')).toContain('badge ok">enabled');
    expect(row('videoask')).toContain('<span class="sub">nothing</span>');
    expect(row('interact')).toContain('not configured');
    expect(row('interact')).toContain('<code>INTERACT_CLIENT_ID</code> <code>INTERACT_CLIENT_SECRET</code>');
    expect(row('interact')).toContain('unverified');
  });
});

describe('no secret in any page', () => {
  it('never writes a token, an API key, a client secret or a console key into the HTML', async () => {
    const seeded = await seedOAuthConnection(c.h.store, c.h.sandbox, { connectionId: 'canary' });
    await seedApiKeyConnection(c.h.store, 'webinargeek', 'canary-key', WEBINAR_KEY);
    const eventId = await buryOneEvent('videoask', 'canary');
    const pages: string[] = [];
    const visit = async (path: string) => {
      const res = await browser.get(path);
      expect(res.status).toBe(200);
      pages.push(res.text);
    };
    for (const path of [
      '/admin',
      '/admin?q=canary',
      '/admin/connections/videoask/canary',
      '/admin/connections/webinargeek/canary-key',
      '/admin/events',
      '/admin/deliveries',
      '/admin/providers',
    ])
      await visit(path);
    pages.push(
      (await browser.post('/admin/connections/videoask/canary/refresh').type('form').send({ csrf })).text,
      (await browser.post('/admin/connections/videoask/canary/connect-link').type('form').send({ csrf })).text,
      (await browser.post(`/admin/deliveries/${eventId}/retry`).type('form').send({ csrf })).text,
      (await c.browser().get('/admin/sign-in')).text,
    );
    await visit('/admin/connections/videoask/canary');
    const refreshed = (await c.h.store.getConnection('videoask', 'canary'))!.credentials;
    const secrets = [
      seeded.accessToken,
      seeded.refreshToken,
      refreshed.accessToken!,
      refreshed.refreshToken!,
      WEBINAR_KEY,
      ADMIN_KEY,
      TEST_API_KEY,
      'sandbox-secret',
      c.h.config.sessionSecrets[0]!,
      c.h.config.tokenEncryptionKeys[0]!.key.toString('base64'),
    ];
    for (const html of pages) for (const secret of secrets) expect(html).not.toContain(secret);
    // Nor is any script or style inline (the CSP forbids them).
    for (const html of pages) {
      expect(html).not.toMatch(/<script(?![^>]*\ssrc=)/);
      expect(html).not.toMatch(/<style|\sstyle=/);
    }
  });
});
