import { connect } from 'node:net';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
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

/**
 * Sends one request whose target is `target`, byte for byte, on a raw socket: Node's HTTP client
 * refuses to send most of the bytes tried here. Resolves with the status and the header block.
 */
function sendRawTarget(port: number, target: Buffer): Promise<{ status: number; head: string }> {
  const request = Buffer.concat([
    Buffer.from('GET '),
    target,
    Buffer.from(` HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nConnection: close\r\n\r\n`),
  ]);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    // No half-close: Node's server ends a socket whose caller has ended before it answered.
    // `Connection: close` makes the server close it once the answer is written.
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const head = Buffer.concat(chunks).toString('latin1').split('\r\n\r\n')[0] ?? '';
      resolve({ status: Number(head.split(' ')[1]), head: head.toLowerCase() });
    });
  });
}

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

  /** SECURITY.md §27: what survives WHATWG parsing but some server would read as another path. */
  const beyondWhatwg = [
    '/proxy/videoask/..;/me',
    '/proxy/videoask/me/..;/_sandbox/stats',
    '/proxy/videoask/.;/me',
    '/proxy/videoask/..;x=1/me',
    '/proxy/videoask/..%3b/me',
    '/proxy/videoask/%2e%2e;/me',
    '/proxy/videoask/;/me',
    '/proxy/videoask/.../me',
    '/proxy/videoask/..%20/me',
    '/proxy/videoask/%252e%252e/me',
    '/proxy/videoask/..%252f_sandbox',
    '/proxy/videoask/%255cEVIL',
    '/proxy/videoask/me%2500',
    '/proxy/videoask/%25%32%65%25%32%65/me',
    '/proxy/videoask/me%00.json',
    '/proxy/videoask/me%0d%0aX-Injected:%20yes',
    '/proxy/videoask/me%7F',
    '/proxy/videoask/%c0%ae%c0%ae/me',
    '/proxy/videoask/%C0%AF_sandbox',
    '/proxy/videoask/%e0%80%ae%e0%80%ae/me',
    '/proxy/videoask/%c1%9c_sandbox',
    '/proxy/videoask/me%c3',
    '/proxy/videoask/me%ed%a0%80',
    '/proxy/videoask/%ef%bc%8e%ef%bc%8e/me',
    '/proxy/videoask/%e2%88%95EVIL',
    '/proxy/videoask/me%zz',
    '/proxy/videoask/%u002e%u002e/me',
    '/proxy/videoask/me#frag',
    '/proxy/videoask/me?fields=email#frag',
  ];

  it.each(beyondWhatwg)('refuses %s with 400 invalid_request, and nothing reaches any host', async (attack) => {
    const res = await sendRawTarget(latchkey.port, Buffer.from(attack.replace('EVIL', evil), 'latin1'));
    expect(res.status).toBe(400);
    expect(res.head).toContain('latchkey-error: invalid_request');
    expect(trap.hits).toEqual([]);
    expect(apiRequestsOf(h)).toEqual([]);
  });

  /**
   * What never reaches Latchkey's code (Node 20's llhttp, without --insecure-http-parser): every
   * raw byte outside 0x21–0x7E in the request target — NUL, the other C0 controls, tab, CR and
   * LF, a space (it ends the target), DEL, and every byte ≥ 0x80 (so raw UTF-8 too), in the path
   * and in the query alike. Node answers its own bare 400 (no Latchkey-Error header) and closes
   * the connection; the resolver refuses the same characters itself (test/unit/api-target.test.ts)
   * for the API client, the post-connect calls, and a lenient parser. Raw `\\`, `#`, `"`, `<`,
   * `>`, `{`, `}`, `|`, `^`, `` ` ``, `'`, `;` and `%` do reach the proxy, which decides.
   */
  const refusedByNode = [0x00, 0x01, 0x08, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x20, 0x7f, 0x80, 0xc0, 0xc3, 0xff];
  const hexOf = (b: number) => b.toString(16).padStart(2, '0');
  it.each(refusedByNode.flatMap((b) => [['path', hexOf(b), b] as const, ['query', hexOf(b), b] as const]))(
    'a raw byte in the %s (0x%s) is refused by Node’s parser before the proxy sees it',
    async (where, _hex, byte) => {
      const prefix = Buffer.from(where === 'path' ? '/proxy/videoask/me' : '/proxy/videoask/me?fields=');
      const res = await sendRawTarget(latchkey.port, Buffer.concat([prefix, Buffer.from([byte]), Buffer.from('x')]));
      expect(res.status).toBe(400);
      expect(res.head).not.toContain('latchkey-error');
      expect(trap.hits).toEqual([]);
      expect(apiRequestsOf(h)).toEqual([]);
    },
  );

  it('still forwards an ordinary path, so the refusals above are about the paths', async () => {
    const res = await rawRequest(latchkey.port, { path: '/proxy/videoask/me?fields=email', headers: apiAuth });
    expect(res.status).toBe(200);
    expect(apiRequestsOf(h).map((r) => r.url)).toEqual(['/me?fields=email']);
    expect(trap.hits).toEqual([]);
  });

  it('refuses raw UTF-8 (é) at the parser, yet forwards the same character percent-encoded', async () => {
    const seen = apiRequestsOf(h).length;
    const raw = await sendRawTarget(latchkey.port, Buffer.from('/proxy/videoask/me?name=caf\u00e9', 'utf8'));
    expect(raw.status).toBe(400);
    expect(apiRequestsOf(h)).toHaveLength(seen);
    const encoded = await rawRequest(latchkey.port, { path: '/proxy/videoask/me?name=caf%C3%A9', headers: apiAuth });
    expect(encoded.status).toBe(200);
    expect(
      apiRequestsOf(h)
        .slice(seen)
        .map((r) => r.url),
    ).toEqual(['/me?name=caf%C3%A9']);
  });

  /** SECURITY.md §27 (and §11): sent in mixed case on the wire; Node lower-cases, the proxy drops. */
  const forged: Record<string, string> = {
    'X-Original-URL': '/_sandbox/stats',
    'X-Original-URI': '/_sandbox/stats',
    'X-Rewrite-URL': '/_sandbox/stats',
    'X-Override-URL': '/_sandbox/stats',
    'X-Envoy-Original-Path': '/_sandbox/stats',
    'X-Forwarded-Path': '/_sandbox',
    'X-Forwarded-Prefix': '/_sandbox',
    'X-Original-Host': 'evil.example',
    'X-Host': 'evil.example',
    'X-Original-Method': 'DELETE',
    'X-HTTP-Method-Override': 'DELETE',
    'X-HTTP-Method': 'DELETE',
    'X-Method-Override': 'DELETE',
    'X-Middleware-Subrequest': 'middleware',
    'True-Client-IP': '203.0.113.7',
    'X-Client-IP': '203.0.113.7',
    'CF-Connecting-IP': '203.0.113.7',
    'X-Real-IP': '203.0.113.7',
    'X-Cluster-Client-IP': '203.0.113.7',
    'Fastly-Client-IP': '203.0.113.7',
    'X-Originating-IP': '203.0.113.7',
    'X-Remote-IP': '203.0.113.7',
    'X-Remote-Addr': '203.0.113.7',
    'Client-IP': '203.0.113.7',
    'X-ProxyUser-Ip': '203.0.113.7',
    'X-Envoy-External-Address': '203.0.113.7',
    Via: '1.1 evil-proxy',
    'Latchkey-Retries': '1',
    'Latchkey-Anything': 'x',
  };

  it('never lets the provider see a header that rewrites the target or the method, or forges an address', async () => {
    const seen = apiRequestsOf(h).length;
    const res = await rawRequest(latchkey.port, {
      path: '/proxy/videoask/me',
      headers: { ...apiAuth, ...forged, 'X-Kept': 'kept' },
    });
    expect(res.status).toBe(200);
    const [upstream, ...more] = apiRequestsOf(h).slice(seen);
    expect(more).toEqual([]);
    expect(upstream).toMatchObject({ method: 'GET', url: '/me' });
    expect(upstream!.headers['x-kept']).toBe('kept');
    const leaked = Object.keys(forged).filter((name) => name.toLowerCase() in upstream!.headers);
    expect(leaked).toEqual([]);
    expect(JSON.stringify(upstream!.headers)).not.toMatch(/203\.0\.113\.7|evil|_sandbox|DELETE/);
    expect(trap.hits).toEqual([]);
  });
});
