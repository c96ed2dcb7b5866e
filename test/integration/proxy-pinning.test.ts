import { startHarness, type Harness } from '../helpers/harness';
import {
  apiAuth,
  apiRequestsOf,
  listen,
  rawRequest,
  seedVideoAsk,
  startTrap,
  type Listening,
} from '../helpers/proxy-harness';

/**
 * SECURITY.md §10 (OWASP API7:2023 SSRF): whatever path a caller sends, the proxied call goes to
 * the provider's apiBaseUrl or nowhere. A loopback "attacker" server stands in for every other
 * host and must never see a request.
 */
describe('proxy: target pinning', () => {
  let h: Harness;
  let latchkey: Listening;
  let trap: Awaited<ReturnType<typeof startTrap>>;
  let evil: string;

  beforeAll(async () => {
    trap = await startTrap();
    evil = `127.0.0.1:${trap.port}`;
    h = await startHarness({ videoask: {} });
    latchkey = await listen(h.app);
    await seedVideoAsk(h);
  });

  afterAll(async () => {
    await latchkey.close();
    await trap.close();
    await h.close();
  });

  /** EVIL is replaced by the trap's host:port when the test runs. */
  const attacks = [
    '/proxy/videoask//EVIL',
    '/proxy/videoask//EVIL/me',
    '/proxy/videoask///EVIL/me',
    '/proxy/videoask/@EVIL/me',
    '/proxy/videoask/%40EVIL/me',
    '/proxy/videoask/me/..%2f..%2fEVIL',
    '/proxy/videoask/..%2F..%2Fme',
    '/proxy/videoask/%2e%2e/%2e%2e/me',
    '/proxy/videoask/%2E%2E/me',
    '/proxy/videoask/.%2e/me',
    '/proxy/videoask/%5cEVIL/me',
    '/proxy/videoask/%5C%5CEVIL/me',
    '/proxy/videoask/../../me',
    '/proxy/videoask/me/../../_sandbox/stats',
    '/proxy/videoask/./me',
    '/proxy/videoask/http://EVIL/me',
    '/proxy/videoask/https:%2f%2fEVIL/me',
    'http://EVIL/proxy/videoask/me',
    '/PROXY/videoask/me',
  ];

  it.each(attacks)('refuses %s with 400 invalid_request, and nothing reaches any host', async (attack) => {
    const res = await rawRequest(latchkey.port, { path: attack.replace('EVIL', evil), headers: apiAuth });
    expect(res.status).toBe(400);
    expect(res.headers['latchkey-error']).toBe('invalid_request');
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'invalid_request' } });
    expect(trap.hits).toEqual([]);
    expect(apiRequestsOf(h)).toEqual([]);
  });

  it('refuses a raw backslash before anything is forwarded (the HTTP parser or the proxy answers 400)', async () => {
    const res = await rawRequest(latchkey.port, { path: `/proxy/videoask/\\\\${evil}/me`, headers: apiAuth });
    expect(res.status).toBe(400);
    expect(trap.hits).toEqual([]);
    expect(apiRequestsOf(h)).toEqual([]);
  });

  it('still forwards an ordinary path, so the refusals above are about the paths', async () => {
    const res = await rawRequest(latchkey.port, { path: '/proxy/videoask/me?fields=email', headers: apiAuth });
    expect(res.status).toBe(200);
    expect(apiRequestsOf(h).map((r) => r.url)).toEqual(['/me?fields=email']);
    expect(trap.hits).toEqual([]);
  });
});
