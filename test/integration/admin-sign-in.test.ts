import supertest from 'supertest';
import { FakeClock } from '../../src/clock';
import { ADMIN_SIGN_IN_FAILURES_PER_MINUTE } from '../../src/admin/admin-routes';
import { seedOAuthConnection } from '../helpers/seed';
import {
  ADMIN_KEY,
  OTHER_ADMIN_KEY,
  csrfOf,
  signIn,
  startConsole,
  type ConsoleHarness,
} from '../helpers/admin-console';
import { createHash } from 'node:crypto';

/**
 * The operator console's door (CONTRACT "Operator console"): off without ADMIN_API_KEYS, a
 * sign-in form with its own CSRF token, failed sign-ins limited per address, its own cookie,
 * sign-out, sessions that end after 12 hours, CSRF tokens on every action, and ADMIN_API_KEYS
 * reloaded on SIGHUP.
 */

const nameOf = (key: string) => `key-${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;

let c: ConsoleHarness | undefined;
afterEach(async () => {
  await c?.close();
  c = undefined;
});

describe('the operator console without ADMIN_API_KEYS', () => {
  it('answers every /admin route with a page that says how to enable it', async () => {
    c = await startConsole({ env: { ADMIN_API_KEYS: '' } });
    for (const path of ['/admin', '/admin/sign-in', '/admin/providers']) {
      const res = await supertest(c.latchkey.handler).get(path);
      expect(res.status).toBe(404);
      expect(res.headers['latchkey-error']).toBe('not_found');
      expect(res.text).toContain('The operator console is not enabled');
      expect(res.text).toContain('ADMIN_API_KEYS');
    }
    const posted = await supertest(c.latchkey.handler).post('/admin/sign-in').type('form').send({ key: 'x' });
    expect(posted.status).toBe(404);
  });
});

describe('signing in', () => {
  it('sends a browser without a session to the sign-in form, and refuses its actions', async () => {
    c = await startConsole();
    await seedOAuthConnection(c.h.store, c.h.sandbox, { connectionId: 'kept' });
    const page = await supertest(c.latchkey.handler).get('/admin');
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/admin/sign-in');
    for (const path of ['/admin/events', '/admin/deliveries', '/admin/providers', '/admin/connections/videoask/kept']) {
      expect((await supertest(c.latchkey.handler).get(path)).headers.location).toBe('/admin/sign-in');
    }
    const action = await supertest(c.latchkey.handler)
      .post('/admin/connections/videoask/kept/disconnect')
      .type('form')
      .send({ csrf: 'whatever', confirm: 'yes' });
    expect(action.status).toBe(401);
    expect(action.headers['latchkey-error']).toBe('unauthorized');
    expect(await c.h.store.getConnectionInfo('videoask', 'kept')).not.toBeNull();
  });

  it('signs in with a key of ADMIN_API_KEYS and names the key, never shows it', async () => {
    c = await startConsole();
    const browser = c.browser();
    await signIn(browser);
    const page = await browser.get('/admin');
    expect(page.text).toContain(`Signed in as <strong id="signed-in-key">${nameOf(ADMIN_KEY)}</strong>`);
    expect(page.text).not.toContain(ADMIN_KEY);
    const logged = c.lines.find((l) => l.action === 'sign_in');
    expect(logged).toMatchObject({ admin: nameOf(ADMIN_KEY) });
    expect(JSON.stringify(c.lines)).not.toContain(ADMIN_KEY);
  });

  it('refuses a wrong key on the form, then limits failed sign-ins per address', async () => {
    c = await startConsole({ env: { TRUST_PROXY: '1' } });
    const browser = c.browser();
    const csrf = csrfOf((await browser.get('/admin/sign-in')).text);
    const attempt = (key: string, address: string) =>
      browser.post('/admin/sign-in').set('X-Forwarded-For', address).type('form').send({ csrf, key });
    for (let i = 0; i < ADMIN_SIGN_IN_FAILURES_PER_MINUTE; i++) {
      const refused = await attempt('not-a-console-key-0123456789', '203.0.113.7');
      expect(refused.status).toBe(401);
      expect(refused.text).toContain('That is not a console key.');
      expect(refused.text).not.toContain('not-a-console-key-0123456789');
      expect(String(refused.headers['set-cookie'] ?? '')).not.toContain('latchkey.admin=');
    }
    const limited = await attempt('not-a-console-key-0123456789', '203.0.113.7');
    expect(limited.status).toBe(429);
    expect(limited.headers['latchkey-error']).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited.text).toContain('Too many failed sign-ins');
    // Another address has its own budget.
    expect((await attempt('not-a-console-key-0123456789', '203.0.113.8')).status).toBe(401);
    expect(c.lines.filter((l) => l.action === 'sign_in' && l.result === 'rate_limited')).toHaveLength(1);
  });

  it('refuses a sign-in form without this browser’s CSRF token', async () => {
    c = await startConsole();
    const browser = c.browser();
    const csrf = csrfOf((await browser.get('/admin/sign-in')).text);
    // No token, a wrong token, and the right token from a browser that never opened the form.
    const missing = await browser.post('/admin/sign-in').type('form').send({ key: ADMIN_KEY });
    const wrong = await browser
      .post('/admin/sign-in')
      .type('form')
      .send({ csrf: `${csrf}x`, key: ADMIN_KEY });
    const foreign = await c.browser().post('/admin/sign-in').type('form').send({ csrf, key: ADMIN_KEY });
    for (const res of [missing, wrong, foreign]) {
      expect(res.status).toBe(403);
      expect(res.headers['latchkey-error']).toBe('forbidden');
      expect(String(res.headers['set-cookie'] ?? '')).not.toMatch(/latchkey\.admin=[A-Za-z0-9_-]/);
    }
  });

  it('sets its own cookie: HttpOnly, SameSite=Strict, path /admin, apart from the Connect page’s', async () => {
    c = await startConsole();
    const browser = c.browser();
    const form = await browser.get('/admin/sign-in');
    // The browser routes' headers: a strict CSP (no inline code, never framed), no caching, no Referer.
    expect(form.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(form.headers['content-security-policy']).toContain("script-src 'self'");
    expect(form.headers['cache-control']).toBe('no-store');
    expect(form.headers['referrer-policy']).toBe('no-referrer');
    const res = await browser
      .post('/admin/sign-in')
      .type('form')
      .send({ csrf: csrfOf(form.text), key: ADMIN_KEY });
    const cookie = (res.headers['set-cookie'] as unknown as string[]).find((s) => s.startsWith('latchkey.admin='))!;
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).toMatch(/; Path=\/admin(;|$)/);
    expect(cookie).toMatch(/; Max-Age=43200/);
    expect(cookie).not.toMatch(/; Secure/);
    expect(cookie).not.toMatch(/^latchkey\.sid=/);
    // The console's session does not open the Connect page's, nor the other way round.
    const token = /^latchkey\.admin=([^;]+)/.exec(cookie)![1]!;
    expect(await c.h.store.getBrowserSession(token)).toBeNull();
    const asConnectSession = await supertest(c.latchkey.handler).get('/admin').set('Cookie', `latchkey.sid=${token}`);
    expect(asConnectSession.status).toBe(303);
  });

  it('marks its cookies Secure when PUBLIC_URL is https', async () => {
    c = await startConsole({ env: { PUBLIC_URL: 'https://latchkey.test' } });
    const form = await supertest(c.latchkey.handler).get('/admin/sign-in');
    const preCookie = (form.headers['set-cookie'] as unknown as string[])[0]!;
    expect(preCookie).toMatch(/^latchkey\.admin\.signin=.*; Secure/);
    const res = await supertest(c.latchkey.handler)
      .post('/admin/sign-in')
      .set('Cookie', preCookie.split(';')[0]!)
      .type('form')
      .send({ csrf: csrfOf(form.text), key: ADMIN_KEY });
    const cookie = (res.headers['set-cookie'] as unknown as string[]).find((s) => s.startsWith('latchkey.admin='))!;
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; SameSite=Strict/);
  });
});

describe('a console session', () => {
  it('ends at sign-out: the cookie is cleared and its id no longer opens the console', async () => {
    c = await startConsole();
    const browser = c.browser();
    const form = await browser.get('/admin/sign-in');
    const signedIn = await browser
      .post('/admin/sign-in')
      .type('form')
      .send({ csrf: csrfOf(form.text), key: ADMIN_KEY });
    const stolen = (signedIn.headers['set-cookie'] as unknown as string[])
      .find((s) => s.startsWith('latchkey.admin='))!
      .split(';')[0]!;
    const csrf = csrfOf((await browser.get('/admin')).text);
    expect((await browser.get('/admin/sign-in')).status).toBe(303); // signed in already
    const out = await browser.post('/admin/sign-out').type('form').send({ csrf });
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/admin/sign-in?done=signed_out');
    expect((out.headers['set-cookie'] as unknown as string[]).join(';')).toMatch(/latchkey\.admin=;/);
    expect((await browser.get('/admin')).status).toBe(303);
    // The old cookie, replayed, is no session either: the record is gone from the store.
    const replayed = await supertest(c.latchkey.handler).get('/admin').set('Cookie', stolen);
    expect(replayed.status).toBe(303);
    expect(c.lines.find((l) => l.action === 'sign_out')).toMatchObject({ admin: nameOf(ADMIN_KEY) });
  });

  it('expires 12 hours after sign-in', async () => {
    const clock = new FakeClock(Date.now());
    c = await startConsole({ clock });
    const browser = c.browser();
    await signIn(browser);
    clock.advance(12 * 3600_000 - 60_000);
    expect((await browser.get('/admin')).status).toBe(200);
    clock.advance(2 * 60_000);
    const expired = await browser.get('/admin');
    expect(expired.status).toBe(303);
    expect(expired.headers.location).toBe('/admin/sign-in');
  });

  it('refuses an action whose CSRF token is missing or wrong, and does nothing', async () => {
    c = await startConsole();
    await seedOAuthConnection(c.h.store, c.h.sandbox, { connectionId: 'guarded' });
    const browser = c.browser();
    const csrf = await signIn(browser);
    const before = c.h.sandbox.stats.tokenRequests;
    const attempts = [
      browser.post('/admin/connections/videoask/guarded/refresh').type('form').send({}),
      browser
        .post('/admin/connections/videoask/guarded/refresh')
        .type('form')
        .send({ csrf: `${csrf.slice(1)}A` }),
      browser.post('/admin/connections/videoask/guarded/disconnect').type('form').send({ confirm: 'yes' }),
      browser
        .post('/admin/connections/videoask/guarded/disconnect')
        .type('form')
        .send({ csrf: csrfOf((await c.browser().get('/admin/sign-in')).text), confirm: 'yes' }),
      browser.post('/admin/sign-out').type('form').send({ csrf: 'nope' }),
    ];
    for (const res of await Promise.all(attempts)) {
      expect(res.status).toBe(403);
      expect(res.headers['latchkey-error']).toBe('forbidden');
      expect(res.text).toContain('CSRF token missing or wrong');
    }
    expect(c.h.sandbox.stats.tokenRequests).toBe(before);
    expect(await c.h.store.getConnectionInfo('videoask', 'guarded')).not.toBeNull();
    expect((await browser.get('/admin')).status).toBe(200); // still signed in
  });
});

describe('ADMIN_API_KEYS on SIGHUP', () => {
  it('is read again: a new key signs in, a removed key’s sessions end, a bad value changes nothing', async () => {
    let value: string | undefined = ADMIN_KEY;
    c = await startConsole({ readAdminApiKeys: () => value });
    const first = c.browser();
    await signIn(first, ADMIN_KEY);

    value = `${ADMIN_KEY},${OTHER_ADMIN_KEY}`;
    c.latchkey.reload();
    const second = c.browser();
    await signIn(second, OTHER_ADMIN_KEY);

    value = OTHER_ADMIN_KEY;
    c.latchkey.reload();
    expect((await first.get('/admin')).status).toBe(303);
    expect((await second.get('/admin')).status).toBe(200);

    value = 'short';
    c.latchkey.reload();
    expect((await second.get('/admin')).status).toBe(200);
    const problems = c.lines.find((l) => String(l.msg).startsWith('ADMIN_API_KEYS not reloaded'));
    expect(problems?.problems).toEqual(['ADMIN_API_KEYS (item 1): must have at least 16 characters']);
    expect(JSON.stringify(c.lines)).not.toContain(OTHER_ADMIN_KEY);
  });
});
