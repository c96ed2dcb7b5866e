import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { callbackPath, connectVideoAsk, consent, PUBLIC_URL, startHarness, type Harness } from '../helpers/harness';

/**
 * A flow whose state was accepted but that fails afterwards goes back to the host application
 * with `status=error&error=<code>` (CONTRACT.md "Flows"), with a code from a closed list; a
 * callback that belongs to no flow of this browser still gets the 400 page.
 */

type Browser = ReturnType<Harness['browser']>;

/** A token endpoint on loopback that answers however the test says, and counts what it was sent. */
interface FakeTokenEndpoint {
  url: string;
  requests: number;
  answer: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

async function startTokenEndpoint(): Promise<FakeTokenEndpoint> {
  const endpoint: FakeTokenEndpoint = {
    url: '',
    requests: 0,
    answer: (_req, res) => void res.writeHead(500).end(),
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    endpoint.requests += 1;
    req.resume();
    req.on('end', () => endpoint.answer(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth/token`;
  endpoint.close = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return endpoint;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
  return (_req: IncomingMessage, res: ServerResponse) =>
    void res.writeHead(status, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(body));
};

/** Starts a flow in `browser` and returns the provider's redirect back to /callback, not yet followed. */
async function approvedCallback(browser: Browser, query = ''): Promise<URL> {
  const start = await browser.get(`/auth/videoask${query}`);
  expect(start.status).toBe(302);
  return consent(start.headers.location!, 'approve');
}

/** The callback the provider would send with `error=` for the flow started in `browser`. */
async function errorCallback(browser: Browser, error: string, query = '', extra = ''): Promise<string> {
  const start = await browser.get(`/auth/videoask${query}`);
  const state = new URL(start.headers.location!).searchParams.get('state')!;
  return `/callback?error=${encodeURIComponent(error)}&state=${encodeURIComponent(state)}${extra}`;
}

function resultOf(location: string | undefined): Record<string, string> {
  return Object.fromEntries(new URL(location!).searchParams);
}

describe('a failure after the state was accepted goes back to the host application', () => {
  let h: Harness;
  let endpoint: FakeTokenEndpoint | undefined;
  afterEach(async () => {
    await h?.close();
    await endpoint?.close();
    endpoint = undefined;
  });

  describe('when the token exchange fails', () => {
    const failures: Array<[string, (req: IncomingMessage, res: ServerResponse) => void]> = [
      ['answers 500 with a page', (_req, res) => void res.writeHead(500, { 'Content-Type': 'text/html' }).end('<h1>')],
      ['answers 503 with Retry-After', json(503, { error: 'temporarily_unavailable' }, { 'Retry-After': '30' })],
      ['refuses the code with invalid_grant', json(400, { error: 'invalid_grant', error_description: 'canary-desc' })],
      ['refuses the client with 401 invalid_client', json(401, { error: 'invalid_client' })],
      ['answers 200 with a body that is not JSON', (_req, res) => void res.writeHead(200).end('access_token=x')],
      ['answers 200 without an access_token', json(200, { token_type: 'Bearer', expires_in: 60 })],
      ['answers 200 with an access_token that is not a string', json(200, { access_token: 42 })],
      ['answers with a redirect', (_req, res) => void res.writeHead(302, { Location: 'https://evil.example/' }).end()],
      ['drops the connection without answering', (req) => req.socket.destroy()],
    ];

    it.each(failures)(
      'when the token endpoint %s: 303 to return_to with error=provider_error, nothing stored',
      async (_name, answer) => {
        endpoint = await startTokenEndpoint();
        endpoint.answer = answer;
        h = await startHarness({
          env: { ALLOWED_RETURN_ORIGINS: 'https://app.example.com' },
          videoask: { tokenUrl: endpoint.url },
        });
        const browser = h.browser();
        const returnTo = encodeURIComponent('https://app.example.com/integrations?tab=video');
        const redirect = await approvedCallback(browser, `?connection_id=acct-9&return_to=${returnTo}`);
        const res = await browser.get(callbackPath(redirect));
        expect(res.status).toBe(303);
        expect(res.headers['cache-control']).toBe('no-store');
        expect(res.headers['referrer-policy']).toBe('no-referrer');
        const back = new URL(res.headers.location!);
        expect(back.origin + back.pathname).toBe('https://app.example.com/integrations');
        expect(Object.fromEntries(back.searchParams)).toEqual({
          tab: 'video',
          status: 'error',
          provider: 'videoask',
          connection_id: 'acct-9',
          error: 'provider_error',
        });
        expect(res.headers.location).not.toContain('canary');
        expect(endpoint.requests).toBe(1);
        expect(await h.store.getConnection('videoask', 'acct-9')).toBeNull();
      },
    );

    it('when the token endpoint is unreachable (nothing listens): error=provider_error', async () => {
      endpoint = await startTokenEndpoint();
      const closedUrl = endpoint.url;
      await endpoint.close();
      endpoint = undefined;
      h = await startHarness({ videoask: { tokenUrl: closedUrl } });
      const browser = h.browser();
      const res = await browser.get(callbackPath(await approvedCallback(browser, '?connection_id=down')));
      expect(res.status).toBe(303);
      expect(resultOf(res.headers.location)).toEqual({
        status: 'error',
        provider: 'videoask',
        connection_id: 'down',
        error: 'provider_error',
      });
    });

    it('when the token endpoint does not answer within TOKEN_REQUEST_TIMEOUT_MS: error=provider_error', async () => {
      endpoint = await startTokenEndpoint();
      endpoint.answer = () => undefined; // never answers; closed by endpoint.close()
      h = await startHarness({ env: { TOKEN_REQUEST_TIMEOUT_MS: '100' }, videoask: { tokenUrl: endpoint.url } });
      const browser = h.browser();
      const res = await browser.get(callbackPath(await approvedCallback(browser, '?connection_id=slow')));
      expect(res.status).toBe(303);
      expect(resultOf(res.headers.location)).toMatchObject({ status: 'error', error: 'provider_error' });
    });

    it('keeps the connection that was there before a failed reconnect', async () => {
      h = await startHarness();
      await connectVideoAsk(h.browser(), '?connection_id=kept');
      const before = await h.store.getConnection('videoask', 'kept');
      h.sandbox.failNextTokenRequests(1, 500);
      const res = await connectVideoAsk(h.browser(), '?connection_id=kept');
      expect(resultOf(res.headers.location)).toMatchObject({ status: 'error', error: 'provider_error' });
      const after = await h.store.getConnection('videoask', 'kept');
      expect(after?.version).toBe(before?.version);
      expect(after?.credentials.accessToken).toBe(before?.credentials.accessToken);
    });

    it('uses the state up: replaying the callback after the error is the 400 page, with no second token request', async () => {
      h = await startHarness();
      h.sandbox.failNextTokenRequests(1, 500);
      const browser = h.browser();
      const redirect = await approvedCallback(browser);
      expect((await browser.get(callbackPath(redirect))).status).toBe(303);
      const again = await browser.get(callbackPath(redirect));
      expect(again.status).toBe(400);
      expect(again.headers['latchkey-error']).toBe('invalid_state');
      expect(h.sandbox.stats.tokenRequests).toBe(1);
    });

    it('shows the error on the Connect page when the flow returns there', async () => {
      h = await startHarness();
      h.sandbox.failNextTokenRequests(1, 502);
      const browser = h.browser();
      const res = await connectVideoAsk(browser, '?connection_id=notice');
      expect(new URL(res.headers.location!).pathname).toBe('/');
      const page = await browser.get('/');
      expect(page.text).toContain('VideoAsk was not connected');
      expect(page.text).toContain('<code>provider_error</code>');
    });
  });

  describe('in a popup', () => {
    const opener = 'https://app.example.com';
    const popupQuery = `?connection_id=pop-1&popup=1&origin=${encodeURIComponent(opener)}`;

    async function popupResultOf(browser: Browser, callback: string) {
      const res = await browser.get(callback);
      expect(res.status).toBe(303);
      expect(res.headers.location).toBe('/callback/done');
      const done = await browser.get('/callback/done');
      expect(done.status).toBe(200);
      const data = /<script type="application\/json" id="latchkey-result">([^<]*)<\/script>/.exec(done.text)?.[1];
      return { page: done.text, posted: JSON.parse(data!) as unknown };
    }

    it('posts status error with provider_error to the opener when the token exchange fails', async () => {
      h = await startHarness({ env: { ALLOWED_RETURN_ORIGINS: opener } });
      h.sandbox.failNextTokenRequests(1, 500);
      const browser = h.browser();
      const { page, posted } = await popupResultOf(browser, callbackPath(await approvedCallback(browser, popupQuery)));
      expect(posted).toEqual({
        message: {
          type: 'latchkey:result',
          provider: 'videoask',
          connectionId: 'pop-1',
          status: 'error',
          code: 'provider_error',
        },
        targetOrigin: opener,
      });
      expect(page).toContain('popup-result.js');
      expect(await h.store.getConnection('videoask', 'pop-1')).toBeNull();
    });

    it("posts the provider's error, mapped to the closed list", async () => {
      h = await startHarness({ env: { ALLOWED_RETURN_ORIGINS: opener } });
      const browser = h.browser();
      const callback = await errorCallback(browser, 'login_required', popupQuery, '&error_description=canary-desc');
      const { page, posted } = await popupResultOf(browser, callback);
      expect(posted).toMatchObject({ message: { status: 'error', code: 'server_error' }, targetOrigin: opener });
      expect(page).not.toContain('login_required');
      expect(page).not.toContain('canary-desc');
      expect(h.sandbox.stats.tokenRequests).toBe(0);
    });

    it('a refused callback of its own flow (iss mismatch) is the 400 page, and it tells the opener', async () => {
      h = await startHarness({
        env: { ALLOWED_RETURN_ORIGINS: opener },
        sandbox: { issuer: 'https://sandbox.example' },
        videoask: { issuer: 'https://sandbox.example' },
      });
      const browser = h.browser();
      const redirect = await approvedCallback(browser, popupQuery);
      redirect.searchParams.set('iss', 'https://evil.example');
      const res = await browser.get(callbackPath(redirect));
      expect(res.status).toBe(400);
      expect(res.headers['latchkey-error']).toBe('invalid_request');
      const data = /<script type="application\/json" id="latchkey-result">([^<]*)<\/script>/.exec(res.text)?.[1];
      expect(JSON.parse(data!)).toEqual({
        message: {
          type: 'latchkey:result',
          provider: 'videoask',
          connectionId: 'pop-1',
          status: 'error',
          code: 'invalid_request',
        },
        targetOrigin: opener,
      });
      expect(h.sandbox.stats.tokenRequests).toBe(0);
    });

    it('a callback that belongs to no flow of this browser posts nothing to any opener', async () => {
      h = await startHarness({ env: { ALLOWED_RETURN_ORIGINS: opener } });
      const redirect = await approvedCallback(h.browser(), popupQuery);
      const res = await h.browser().get(callbackPath(redirect));
      expect(res.status).toBe(400);
      expect(res.text).not.toContain('latchkey-result');
      expect(h.sandbox.stats.tokenRequests).toBe(0);
    });
  });
});

describe('the error a provider sends back is passed on from a closed list, never as its own text', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  const mapped: Array<[string, string]> = [
    // RFC 6749 §4.1.2.1, as they are
    ['invalid_request', 'invalid_request'],
    ['unauthorized_client', 'unauthorized_client'],
    ['unsupported_response_type', 'unsupported_response_type'],
    ['invalid_scope', 'invalid_scope'],
    ['server_error', 'server_error'],
    ['temporarily_unavailable', 'temporarily_unavailable'],
    // anything else is server_error
    ['login_required', 'server_error'],
    ['consent_required', 'server_error'],
    ['invalid_grant', 'server_error'],
    ['provider_error', 'server_error'],
    ['Server_Error', 'server_error'],
    ['server_error ', 'server_error'],
    ['<script>alert(1)</script>', 'server_error'],
    ['https://evil.example/?x=1', 'server_error'],
    ['a'.repeat(5000), 'server_error'],
    ['', 'server_error'],
  ];

  /** [what the title shows, the code that goes back, what the provider sent] */
  const cases = mapped.map(([sent, code]) => [
    sent.length > 60 ? `${sent.slice(0, 8)}… (${sent.length} chars)` : sent,
    code,
    sent,
  ]);

  it.each(cases)(
    'error=%j goes back as error=%s, with nothing stored and no token request',
    async (_label, code, sent) => {
      const before = h.sandbox.stats.tokenRequests;
      const browser = h.browser();
      const connectionId = `mapped-${code}`;
      const res = await browser.get(await errorCallback(browser, sent, `?connection_id=${connectionId}`));
      expect(res.status).toBe(303);
      expect(resultOf(res.headers.location)).toEqual({
        status: 'error',
        provider: 'videoask',
        connection_id: connectionId,
        error: code,
      });
      expect(h.sandbox.stats.tokenRequests).toBe(before);
      expect(await h.store.getConnection('videoask', connectionId)).toBeNull();
    },
  );

  it('access_denied is status=denied, without an error parameter', async () => {
    const browser = h.browser();
    const res = await browser.get(await errorCallback(browser, 'access_denied', '?connection_id=declined'));
    expect(resultOf(res.headers.location)).toEqual({
      status: 'denied',
      provider: 'videoask',
      connection_id: 'declined',
    });
  });

  it('never puts error_description (or error_uri) in the return URL or on the Connect page', async () => {
    const browser = h.browser();
    const canary = 'desc-canary-<b>bold</b>';
    const callback = await errorCallback(
      browser,
      'temporarily_unavailable',
      '',
      `&error_description=${encodeURIComponent(canary)}&error_uri=${encodeURIComponent('https://evil.example/uri-canary')}`,
    );
    const res = await browser.get(callback);
    expect(res.headers.location).not.toContain('canary');
    expect(Object.keys(resultOf(res.headers.location)).sort()).toEqual([
      'connection_id',
      'error',
      'provider',
      'status',
    ]);
    const page = await browser.get('/');
    expect(page.text).toContain('<code>temporarily_unavailable</code>');
    expect(page.text).not.toContain('canary');
  });

  it('acts on error= only once the state is checked: a forged state with an error is the 400 page', async () => {
    const res = await h.browser().get('/callback?error=server_error&state=forged');
    expect(res.status).toBe(400);
    expect(res.headers['latchkey-error']).toBe('invalid_state');
    expect(res.headers.location).toBeUndefined();
  });

  it('an error callback from another browser is the 400 page and leaves the flow to its own browser', async () => {
    const victim = h.browser();
    const callback = await errorCallback(victim, 'server_error', '?connection_id=victim-err');
    const stranger = await h.browser().get(callback);
    expect(stranger.status).toBe(400);
    expect(stranger.headers['latchkey-error']).toBe('invalid_state');
    const own = await victim.get(callback);
    expect(own.status).toBe(303);
    expect(resultOf(own.headers.location)).toMatchObject({ status: 'error', error: 'server_error' });
  });
});

describe('the return URL of a failed flow', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('is built on the return_to recorded at /auth, never on anything in the callback', async () => {
    h = await startHarness({ env: { ALLOWED_RETURN_ORIGINS: 'https://app.example.com' } });
    const browser = h.browser();
    const callback = await errorCallback(
      browser,
      'server_error',
      `?return_to=${encodeURIComponent('https://app.example.com/back')}`,
      `&return_to=${encodeURIComponent('https://evil.example/')}`,
    );
    const res = await browser.get(callback);
    expect(res.status).toBe(303);
    expect(res.headers.location!.startsWith('https://app.example.com/back?')).toBe(true);
    expect(res.headers.location).not.toContain('evil');
  });

  it('is PUBLIC_URL/ by default', async () => {
    h = await startHarness();
    const browser = h.browser();
    const res = await browser.get(await errorCallback(browser, 'server_error'));
    expect(res.headers.location!.startsWith(`${PUBLIC_URL}/?`)).toBe(true);
  });
});
