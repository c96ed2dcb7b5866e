import supertest from 'supertest';
import { createApp } from '../../src/app';
import { AppError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import type { Store } from '../../src/store';
import {
  callbackPath,
  connectVideoAsk,
  consent,
  FakeClock,
  PUBLIC_URL,
  startHarness,
  type Harness,
} from '../helpers/harness';

/**
 * Single-use things are used up only by the request that uses them: a connect link by a flow
 * that starts, a flow state by the browser that started it (CONTRACT.md "Routes for browsers",
 * SECURITY.md 1 and 7). And what the person reads says what really happened.
 */

async function newLink(h: Harness, body: Record<string, unknown> = {}): Promise<string> {
  const created = await h
    .api()
    .post('/connect-sessions')
    .send({ provider: 'videoask', connection_id: 'user-1', ...body });
  expect(created.status).toBe(201);
  return created.body.token as string;
}

/** The page's headline, as a person reads it. */
function headline(html: string): string | undefined {
  return /<h1[^>]*>([^<]*)<\/h1>/.exec(html)?.[1];
}

describe('a connect link is used up only by the request that uses it', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  const failing: Array<[string, (token: string) => string, number, string]> = [
    [
      'a return_to on another origin',
      (t) => `/auth/videoask?token=${t}&return_to=https%3A%2F%2Fevil.com`,
      400,
      'invalid_request',
    ],
    [
      'a protocol-relative return_to',
      (t) => `/auth/videoask?token=${t}&return_to=%2F%2Fevil.com`,
      400,
      'invalid_request',
    ],
    [
      'a javascript: return_to',
      (t) => `/auth/videoask?token=${t}&return_to=javascript%3Aalert(1)`,
      400,
      'invalid_request',
    ],
    ['another provider', (t) => `/auth/webinargeek?token=${t}`, 400, 'invalid_request'],
    ['an unknown provider', (t) => `/auth/nope?token=${t}`, 404, 'unknown_provider'],
    ['a provider that is not enabled', (t) => `/auth/livestorm?token=${t}`, 404, 'provider_not_enabled'],
    ['the token given twice', (t) => `/auth/videoask?token=${t}&token=${t}`, 400, 'invalid_request'],
    ['return_to given twice', (t) => `/auth/videoask?token=${t}&return_to=%2F&return_to=%2F`, 400, 'invalid_request'],
    [
      'a popup opened by an origin that is not allowed',
      (t) => `/auth/videoask?token=${t}&popup=1&origin=${encodeURIComponent('https://evil.example')}`,
      400,
      'invalid_request',
    ],
  ];

  it.each(failing)('a request with %s fails and leaves the link usable', async (_name, path, status, code) => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const token = await newLink(h, { connection_id: 'kept-link' });
    const refused = await h.browser().get(path(token));
    expect(refused.status).toBe(status);
    expect(refused.headers['latchkey-error']).toBe(code);

    const browser = h.browser();
    const done = await connectVideoAsk(browser, `?token=${token}`);
    expect(done.status).toBe(303);
    expect(Object.fromEntries(new URL(done.headers.location!).searchParams)).toEqual({
      status: 'connected',
      provider: 'videoask',
      connection_id: 'kept-link',
    });
  });

  it('says which provider a link for another provider is for, without using it up, however often', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const token = await newLink(h);
    for (let i = 0; i < 3; i++) {
      const res = await h.browser().get(`/auth/webinargeek?token=${token}`);
      expect(res.status).toBe(400);
      expect(headline(res.text)).toBe('This connect link is for another service');
    }
    expect((await h.browser().get(`/auth/videoask?token=${token}`)).status).toBe(302);
  });

  it('gives the link back when the flow cannot be written (a store failure), so a retry works', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const token = await newLink(h, { connection_id: 'after-outage' });
    let failures = 0;
    const flaky: Store = Object.assign(Object.create(h.store) as Store, {
      saveFlowState: async () => {
        failures += 1;
        throw new AppError('store_unavailable', 'The store is unavailable');
      },
    });
    const broken = createApp({
      config: h.config,
      store: flaky,
      providers: h.providers,
      logger: createLogger('silent'),
    });
    try {
      const res = await supertest(broken.handler).get(`/auth/videoask?token=${token}`);
      expect(res.status).toBe(503);
      expect(res.headers['latchkey-error']).toBe('store_unavailable');
      expect(failures).toBe(1);
    } finally {
      await broken.close();
    }
    const done = await connectVideoAsk(h.browser(), `?token=${token}`);
    expect(new URL(done.headers.location!).searchParams.get('connection_id')).toBe('after-outage');
  });

  it('of concurrent uses, exactly one starts a flow', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const token = await newLink(h);
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => h.browser().get(`/auth/videoask?token=${token}`)),
    );
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([302, 410, 410, 410, 410, 410]);
    for (const r of answers.filter((a) => a.status === 410)) expect(r.headers['latchkey-error']).toBe('link_expired');
  });

  it('of concurrent uses of an API-key link, exactly one gets the form', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const token = await newLink(h, { provider: 'webinargeek' });
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => h.browser().get(`/auth/webinargeek?token=${token}`)),
    );
    expect(answers.map((r) => r.status).sort()).toEqual([200, 410, 410, 410]);
  });
});

describe('what a link that cannot be used says', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('a used link is 410 link_expired, "already used", every time it comes back', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const token = await newLink(h);
    expect((await h.browser().get(`/auth/videoask?token=${token}`)).status).toBe(302);
    for (let i = 0; i < 3; i++) {
      const again = await h.browser().get(`/auth/videoask?token=${token}`);
      expect(again.status).toBe(410);
      expect(again.headers['latchkey-error']).toBe('link_expired');
      expect(headline(again.text)).toBe('This connect link was already used');
      expect(again.text).toContain('already used');
      expect(again.text).toContain('<code class="code" id="error-code">link_expired</code>');
    }
  });

  it('a used link brought back for another provider still says "already used"', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const token = await newLink(h);
    expect((await h.browser().get(`/auth/videoask?token=${token}`)).status).toBe(302);
    const other = await h.browser().get(`/auth/webinargeek?token=${token}`);
    expect(other.status).toBe(410);
    expect(headline(other.text)).toBe('This connect link was already used');
  });

  it('an API-key link is used once its form is shown', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const token = await newLink(h, { provider: 'webinargeek' });
    expect((await h.browser().get(`/auth/webinargeek?token=${token}`)).status).toBe(200);
    const again = await h.browser().get(`/auth/webinargeek?token=${token}`);
    expect(again.status).toBe(410);
    expect(headline(again.text)).toBe('This connect link was already used');
  });

  it('an expired link is 410 link_expired, "expired", and starts nothing', async () => {
    const clock = new FakeClock(Date.now());
    h = await startHarness({ clock, env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const token = await newLink(h);
    clock.advance(15 * 60_000 + 1000);
    const res = await h.browser().get(`/auth/videoask?token=${token}`);
    expect(res.status).toBe(410);
    expect(res.headers['latchkey-error']).toBe('link_expired');
    expect(headline(res.text)).toBe('This connect link has expired');
    expect(res.text).not.toContain('already used');
    expect(h.sandbox.stats.requests).toEqual([]);
  });

  it('a used link still says "already used" after it would have expired', async () => {
    const clock = new FakeClock(Date.now());
    h = await startHarness({ clock, env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const token = await newLink(h);
    expect((await h.browser().get(`/auth/videoask?token=${token}`)).status).toBe(302);
    clock.advance(20 * 60_000);
    const res = await h.browser().get(`/auth/videoask?token=${token}`);
    expect(res.status).toBe(410);
    expect(headline(res.text)).toBe('This connect link was already used');
  });

  it.each([
    ['a token Latchkey never issued', 'A'.repeat(43)],
    ['a short token', 'abc'],
    ['a token with characters no token has', 'abc.def~ghi!jklmnopqrstu'],
    ['a very long token', 'a'.repeat(3000)],
  ])('%s is 410 link_expired, "expired"', async (_name, token) => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const res = await h.browser().get(`/auth/videoask?token=${encodeURIComponent(token)}`);
    expect(res.status).toBe(410);
    expect(res.headers['latchkey-error']).toBe('link_expired');
    expect(headline(res.text)).toBe('This connect link has expired');
  });

  it.each([
    ['no token and no connection_id', '/auth/videoask'],
    ['a connection_id without a link', '/auth/videoask?connection_id=someone'],
    ['an empty token', '/auth/videoask?token='],
    ['an API-key provider without a link', '/auth/webinargeek?connection_id=someone'],
  ])('without anonymous connect, %s is 400 invalid_request: "connect from your application"', async (_name, path) => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const res = await h.browser().get(path);
    expect(res.status).toBe(400);
    expect(res.headers['latchkey-error']).toBe('invalid_request');
    expect(headline(res.text)).toBe('Connect from your application');
    expect(h.sandbox.stats.requests).toEqual([]);
  });

  it('none of these is unauthorized, the API key code', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const used = await newLink(h);
    await h.browser().get(`/auth/videoask?token=${used}`);
    for (const path of [
      `/auth/videoask?token=${used}`,
      '/auth/videoask?token=forged-token-0000000000',
      '/auth/videoask',
    ]) {
      const res = await h.browser().get(path);
      expect(res.status).not.toBe(401);
      expect(res.headers['latchkey-error']).not.toBe('unauthorized');
    }
  });
});

describe('a flow state is used up only by the browser that started the flow', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  async function approved(browser: ReturnType<Harness['browser']>, query = ''): Promise<string> {
    const start = await browser.get(`/auth/videoask${query}`);
    return callbackPath(await consent(start.headers.location!, 'approve'));
  }

  it("a stranger replaying the victim's callback gets 400, and the victim can still finish", async () => {
    h = await startHarness();
    const victim = h.browser();
    const callback = await approved(victim, '?connection_id=victim');
    for (let i = 0; i < 3; i++) {
      const stranger = await h.browser().get(callback);
      expect(stranger.status).toBe(400);
      expect(stranger.headers['latchkey-error']).toBe('invalid_state');
    }
    expect(h.sandbox.stats.tokenRequests).toBe(0);
    const own = await victim.get(callback);
    expect(own.status).toBe(303);
    expect(new URL(own.headers.location!).searchParams.get('status')).toBe('connected');
    expect(h.sandbox.stats.tokenRequests).toBe(1);
    expect((await h.store.getConnection('videoask', 'victim'))?.status).toBe('active');
  });

  it("a stranger with a session of its own and the victim's callback gets 400 too", async () => {
    h = await startHarness();
    const stranger = h.browser();
    await approved(stranger, '?connection_id=stranger'); // the stranger has a session now
    const victim = h.browser();
    const callback = await approved(victim, '?connection_id=victim-2');
    expect((await stranger.get(callback)).status).toBe(400);
    expect(h.sandbox.stats.tokenRequests).toBe(0);
    expect((await victim.get(callback)).status).toBe(303);
  });

  it('of concurrent callbacks in the same browser, exactly one is acted on', async () => {
    h = await startHarness();
    const start = await h.browser().get('/auth/videoask?connection_id=raced');
    const cookie = start.headers['set-cookie']![0]!.split(';')[0]!;
    const callback = callbackPath(await consent(start.headers.location!, 'approve'));
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => supertest(h.app).get(callback).set('Cookie', cookie)),
    );
    expect(answers.map((r) => r.status).sort()).toEqual([303, 400, 400, 400, 400]);
    expect(h.sandbox.stats.tokenRequests).toBe(1);
  });

  it('a replay after the flow finished is 400 with no second token request', async () => {
    h = await startHarness();
    const browser = h.browser();
    const callback = await approved(browser);
    expect((await browser.get(callback)).status).toBe(303);
    expect((await browser.get(callback)).status).toBe(400);
    expect((await h.browser().get(callback)).status).toBe(400);
    expect(h.sandbox.stats.tokenRequests).toBe(1);
  });
});

describe('the Connect page without anonymous connect', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('shows no Connect button, says where connections start, and lists what this browser connected', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const browser = h.browser();
    const before = await browser.get('/');
    expect(before.status).toBe(200);
    expect(before.text).not.toContain('href="/auth/');
    expect(before.text).not.toMatch(/>Connect VideoAsk</);
    expect(before.text).toContain('id="connect-from-app"');
    expect(before.text).toContain('started from your application');
    expect(before.text).toContain('VideoAsk');
    expect(before.text).toContain('Nothing is connected from this browser yet.');

    const token = await newLink(h, { connection_id: 'mine', return_to: '/' });
    await connectVideoAsk(browser, `?token=${token}`);
    const after = await browser.get('/');
    expect(after.text).toContain('VideoAsk is connected');
    expect(after.text).toContain('data-connection-id="mine"');
    expect(after.text).toContain('sandbox.user@example.com');
    expect(after.text).not.toContain('href="/auth/');

    const other = await h.browser().get('/');
    expect(other.text).not.toContain('data-connection-id="mine"');
    expect(other.text).not.toContain('sandbox.user@example.com');
  });

  it('with anonymous connect on, the buttons are there', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'true' } });
    const page = await h.browser().get('/');
    expect(page.text).toContain('href="/auth/videoask"');
    expect(page.text).toContain('>Connect VideoAsk</a>');
    expect(page.text).not.toContain('id="connect-from-app"');
  });

  it('the link that connected lands back on the Connect page, PUBLIC_URL/', async () => {
    h = await startHarness({ env: { ALLOW_ANONYMOUS_CONNECT: 'false' } });
    const token = await newLink(h);
    const done = await connectVideoAsk(h.browser(), `?token=${token}`);
    expect(done.headers.location!.startsWith(`${PUBLIC_URL}/?`)).toBe(true);
  });
});
