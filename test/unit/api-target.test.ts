import { isAppError } from '../../src/errors';
import { parseApiBase, resolveApiUrl, resolveTargetPath } from '../../src/providers/api-target';

/**
 * SECURITY.md §27, path pinning beyond WHATWG: what a server between Latchkey and the
 * provider's code could decode, normalise or re-parse into another path is refused, by the one
 * implementation the proxy (resolveTargetPath), the API client and the post-connect calls
 * (resolveApiUrl) share. Every case runs against a root base and a base with a path, through
 * both entry points.
 *
 * Raw bytes outside printable ASCII (NUL, controls, space, DEL, anything ≥ 0x80) never reach the
 * proxy: Node's HTTP parser answers 400 itself (test/integration/proxy-pinning.test.ts records
 * which). They are refused here all the same, for the client's and post-connect's JavaScript
 * strings, and for a Node started with --insecure-http-parser.
 */

const root = parseApiBase('https://api.videoask.com');
const v1 = parseApiBase('https://api.livestorm.co/v1/');

/** The refusal's message (the rule that was taken), or undefined when the path passes. */
function refusal(resolve: () => string): string | undefined {
  try {
    resolve();
    return undefined;
  } catch (err) {
    if (isAppError(err) && err.code === 'invalid_request' && err.status === 400) return err.message;
    throw err;
  }
}

function expectRefused(rest: string, rule: RegExp): void {
  for (const base of [root, v1]) {
    expect(refusal(() => resolveTargetPath(base, rest))).toMatch(rule);
    expect(refusal(() => resolveApiUrl(base, rest))).toMatch(rule);
  }
  expect(refusal(() => resolveApiUrl('https://api.livestorm.co/v1', rest))).toMatch(rule);
}

const hex = (b: number) => b.toString(16).padStart(2, '0');
const DOT_SEGMENT = /dot segments/;
const DOUBLE = /double-encoded/;
const CONTROL = /NUL and control/;
const UTF8 = /UTF-8 escapes/;
const MALFORMED = /two-digit hex escape/;
const NON_ASCII = /outside ASCII/;
const CONFUSABLE = /normalise to/;
const EMPTY = /empty segment|start with ;/;

describe('path pinning beyond WHATWG (SECURITY.md §27)', () => {
  describe('path parameters on dot segments (Tomcat, Jetty, Spring)', () => {
    it.each([
      ['/..;/admin', DOT_SEGMENT],
      ['/forms/..;/admin', DOT_SEGMENT],
      ['/forms/..;', DOT_SEGMENT],
      ['/.;/forms', DOT_SEGMENT],
      ['/forms/.;', DOT_SEGMENT],
      ['/..;x=1/admin', DOT_SEGMENT],
      ['/.;jsessionid=0A1B/admin', DOT_SEGMENT],
      ['/forms/..;a;b/admin', DOT_SEGMENT],
      ['/..%3b/admin', DOT_SEGMENT],
      ['/..%3B/admin', DOT_SEGMENT],
      ['/.%3bx/admin', DOT_SEGMENT],
      ['/%2e%2e;/admin', /encoded dots/],
      ['/%2E%2E%3B/admin', /encoded dots/],
      ['/.%2e;/admin', /encoded dots/],
      ['/%2e;/admin', /encoded dots/],
      ['/...;/admin', DOT_SEGMENT],
      ['/forms/.../admin', DOT_SEGMENT],
      ['/forms/..../admin', DOT_SEGMENT],
      ['/forms/...', DOT_SEGMENT],
      ['/forms/..%20/admin', DOT_SEGMENT],
      ['/forms/..%20%20', DOT_SEGMENT],
      ['/forms/.%20', DOT_SEGMENT],
      ['/forms/..%20;x/admin', DOT_SEGMENT],
      ['/forms/.. /admin', DOT_SEGMENT],
      ['/;/admin', EMPTY],
      ['/;x/admin', EMPTY],
      ['/forms/;jsessionid=1', EMPTY],
      ['/forms/%3b/admin', EMPTY],
      ['/forms/%3Bx', EMPTY],
    ])('refuses %s', (rest, rule) => expectRefused(rest, rule));
  });

  describe('double encoding', () => {
    it.each([
      ['/%252e%252e/admin', DOUBLE],
      ['/%252E%252E/admin', DOUBLE],
      ['/forms/%252e', DOUBLE],
      ['/..%252fadmin', DOUBLE],
      ['/..%252Fadmin', DOUBLE],
      ['/forms/%255cadmin', DOUBLE],
      ['/forms/%255C', DOUBLE],
      ['/forms/%2500', DOUBLE],
      ['/forms/%2540x', DOUBLE],
      ['/forms/%2541', DOUBLE],
      ['/forms/%25252e', DOUBLE],
      ['/forms/%25%32%65', DOUBLE],
      ['/forms/%25%32e', DOUBLE],
      ['/forms/%252%65', DOUBLE],
      ['/forms/%25u002e', DOUBLE],
      ['/forms/%25U002E', DOUBLE],
      ['/forms/%25%75002e', DOUBLE],
      ['/forms/%%32%65', MALFORMED],
    ])('refuses %s', (rest, rule) => expectRefused(rest, rule));
  });

  describe('NUL and other control characters', () => {
    const encoded = [...Array.from({ length: 0x20 }, (_, b) => b), 0x7f].flatMap((b) => [
      `/forms/a%${hex(b)}z`,
      `/forms/a%${hex(b).toUpperCase()}z`,
    ]);
    it.each(encoded)('refuses the escape in %s', (rest) => expectRefused(rest, CONTROL));

    const raw = [...Array.from({ length: 0x20 }, (_, b) => b), 0x7f].map((b) => `/forms/a${String.fromCharCode(b)}z`);
    it.each(raw)('refuses the raw character in %j', (rest) => expectRefused(rest, CONTROL));

    it.each([
      ['/forms%00', CONTROL],
      ['/forms/report.pdf%00.json', CONTROL],
      ['/%00/admin', CONTROL],
      ['/forms/%0d%0aX-Injected:%20yes', CONTROL],
      ['/forms/%c0%80', UTF8],
      ['/forms/%c2%80', CONTROL],
      ['/forms/%C2%85', CONTROL],
      ['/forms/%c2%9f', CONTROL],
    ])('refuses %s', (rest, rule) => expectRefused(rest, rule));
  });

  describe('overlong and invalid UTF-8', () => {
    it.each([
      '/%c0%ae%c0%ae/admin',
      '/%C0%AE%C0%AE/admin',
      '/%c0%Ae',
      '/forms/%c0%af',
      '/forms/%c1%9c',
      '/forms/%c1%1c',
      '/forms/%c1%bf',
      '/forms/%e0%80%ae',
      '/forms/%E0%80%AF',
      '/forms/%e0%81%9c',
      '/forms/%e0%9f%bf',
      '/forms/%f0%80%80%ae',
      '/forms/%f0%8f%bf%bf',
      '/forms/%f8%80%80%80%af',
      '/forms/%fc%80%80%80%80%af',
      '/forms/%c3',
      '/forms/%c3x',
      '/forms/%c3%28',
      '/forms/%c3%c3%a9',
      '/forms/%e2%82',
      '/forms/%e2%82%2f',
      '/forms/%e2%28%a1',
      '/forms/%f0%9f%98',
      '/forms/%ed%a0%80',
      '/forms/%ED%BF%BF',
      '/forms/%f4%90%80%80',
      '/forms/%f5%80%80%80',
      '/forms/caf%c3%a9%a9',
      '/forms/%c3.%a9',
      ...Array.from({ length: 0x42 }, (_, i) => `/forms/%${hex(0x80 + i)}`), // lone continuation bytes, C0, C1
      ...Array.from({ length: 0x0b }, (_, i) => `/forms/%${hex(0xf5 + i)}`), // never in UTF-8
      ...Array.from({ length: 0x40 }, (_, i) => `/forms/%c0%${hex(0x80 + i)}`), // every overlong 2-byte form of ASCII
      ...Array.from({ length: 0x40 }, (_, i) => `/forms/%c1%${hex(0x80 + i)}`),
      ...Array.from({ length: 0x20 }, (_, i) => `/forms/%e0%${hex(0x80 + i)}%ae`), // overlong 3-byte forms
    ])('refuses %s', (rest) => expectRefused(rest, UTF8));
  });

  describe('escapes that are not escapes', () => {
    it.each([
      '/forms/%',
      '/forms/%zz',
      '/forms/%2',
      '/forms/%2/x',
      '/forms/%g0',
      '/%u002e%u002e/admin',
      '/forms/%U002F',
    ])('refuses %s', (rest) => expectRefused(rest, MALFORMED));
  });

  describe('raw characters outside ASCII', () => {
    it.each(['/café', '/caf\u00e9/x', '/\u00ff', '/\u2025/admin', '/\uff0e\uff0e/admin', '/forms/\ud800', '/forms/😀'])(
      'refuses %j (percent-encode it as UTF-8)',
      (rest) => expectRefused(rest, NON_ASCII),
    );
  });

  describe('characters that normalise (NFKC) or best-fit map to URL syntax', () => {
    it.each([
      ['/%ef%bc%8e%ef%bc%8e/admin', 'fullwidth full stops'],
      ['/forms/%EF%BC%8F', 'fullwidth solidus'],
      ['/forms/%ef%bc%bc', 'fullwidth reverse solidus'],
      ['/forms/%e2%80%a4%e2%80%a4', 'one dot leaders'],
      ['/forms/%e2%80%a5', 'two dot leader'],
      ['/forms/%e2%80%a6', 'horizontal ellipsis'],
      ['/forms/%ef%b9%92%ef%b9%92', 'small full stops'],
      ['/forms/%ef%b9%a8', 'small reverse solidus'],
      ['/forms/%e2%88%95', 'division slash (best fit)'],
      ['/forms/%e2%81%84', 'fraction slash (best fit)'],
      ['/forms/%e2%88%96', 'set minus (best fit)'],
      ['/forms/%c2%a5', 'yen sign (Shift-JIS best fit to \\)'],
      ['/forms/%e2%82%a9', 'won sign (best fit to \\)'],
      ['/forms/..%ef%bc%9b', 'fullwidth semicolon'],
      ['/forms/%cd%be', 'Greek question mark (NFKC ;)'],
      ['/forms/%ef%bc%85', 'fullwidth percent sign'],
      ['/forms/%ef%bc%9f', 'fullwidth question mark'],
      ['/forms/%ef%bc%83', 'fullwidth number sign'],
      ['/%ef%bc%a0evil.example', 'fullwidth commercial at'],
    ])('refuses %s (%s)', (rest) => expectRefused(rest, CONFUSABLE));
  });

  describe('the query', () => {
    it.each([
      ['/forms?x=\u0000', CONTROL],
      ['/forms?x=a\tb', CONTROL],
      ['/forms?x=a\nb', CONTROL],
      ['/forms?x=a\r\nHost:%20evil', CONTROL],
      ['/forms?x=\u007f', CONTROL],
      ['/forms?x=\u001b[31m', CONTROL],
      ['?x=\u0001', CONTROL],
      ['/forms?q=café', NON_ASCII],
      ['/forms?q=\ud83d', NON_ASCII],
      ['/forms?x=1#frag', /fragment/],
      ['?#', /fragment/],
    ])('refuses %j', (rest, rule) => expectRefused(rest, rule));

    /**
     * Escapes in the query pass as sent: a query is data for the provider and cannot move the
     * target, whose origin and path are fixed before it, and values legitimately hold them
     * (a search for "%2e", "100%", a multi-line note, an opaque cursor).
     */
    it.each([
      '/forms?q=%2e%2e%2f',
      '/forms?q=%252e%252f',
      '/forms?q=100%25',
      '/forms?note=line%0Aline&x=%00',
      '/forms?q=%c0%ae',
      '/forms?q=%zz',
      '/forms?next=/a/../b&dots=..;',
      '/forms?q=a;b&r=%3B',
      '/forms?q=%EF%BC%8E',
      '?page=2',
    ])('passes the escapes of %s through unchanged', (rest) => {
      expect(resolveTargetPath(root, rest)).toBe(rest === '?page=2' ? '/?page=2' : rest);
      expect(resolveTargetPath(v1, rest)).toBe(`/v1${rest === '?page=2' ? '/?page=2' : rest}`);
    });
  });

  describe('what still passes, unchanged', () => {
    const printable = Array.from({ length: 0x7f - 0x21 }, (_, i) => 0x21 + i)
      .filter((b) => ![0x2e, 0x2f, 0x5c].includes(b))
      .flatMap((b) => [`/forms/a%${hex(b)}z`, `/forms/a%${hex(b).toUpperCase()}z`]);

    it.each([
      '/forms/123',
      '/a/b?x=1&y=%20z',
      '/files/report%20final.pdf',
      '/caf%C3%A9',
      '/caf%c3%a9',
      '/price/%E2%82%AC12',
      '/emoji/%F0%9F%98%80',
      '/%E4%B8%AD%E6%96%87/%D0%BF%D1%80%D0%B8',
      '/x/%F4%8F%BF%BF',
      '/x/%EF%BF%BD',
      '/x/%C2%A0',
      '/x/%C2%BD',
      '/x/%E2%80%8D',
      '/.well-known/openid-configuration',
      '/files/.hidden',
      '/files/..hidden',
      '/files/a.b.c',
      '/files/name.',
      '/files/name..',
      '/v1.2/forms',
      '/forms;jsessionid=abc',
      '/a;b=c/d',
      '/forms/x;',
      '/search/a%20b%3Fc',
      '/tags/%23hash',
      '/discount/50%25',
      '/discount/50%25off',
      '/discount/%252',
      '/users/someone@example.com',
      '/users/someone%40example.com',
      '/forms/',
      '/forms%20/x',
      '/%20./x',
      '/. ./x'.replace(' ', '%20'),
      '/a/%7E~',
      '',
      ...printable,
    ])('passes %s', (rest) => {
      expect(resolveTargetPath(root, rest)).toBe(rest === '' ? '/' : rest);
      expect(resolveTargetPath(v1, rest)).toBe(`/v1${rest === '' ? '/' : rest}`);
      expect(resolveApiUrl('https://api.livestorm.co/v1/', rest)).toBe(
        `https://api.livestorm.co/v1${rest === '' ? '/' : rest}`,
      );
    });

    it('lets the URL parser encode what is unambiguous in a client’s path (a space, quotes, braces)', () => {
      expect(resolveApiUrl('https://api.livestorm.co/v1', '/files/report final.pdf')).toBe(
        'https://api.livestorm.co/v1/files/report%20final.pdf',
      );
      expect(resolveApiUrl('https://api.livestorm.co/v1', '/q/"a"{b}')).toBe(
        'https://api.livestorm.co/v1/q/%22a%22%7Bb%7D',
      );
    });
  });

  describe('resolveApiUrl, for the client and the post-connect calls', () => {
    it('reads a path without its leading slash under the base, and a query alone on the base', () => {
      expect(resolveApiUrl('https://api.videoask.com', 'organizations')).toBe('https://api.videoask.com/organizations');
      expect(resolveApiUrl('https://api.livestorm.co/v1/', 'events/1?x=1')).toBe(
        'https://api.livestorm.co/v1/events/1?x=1',
      );
      expect(resolveApiUrl(v1, '?page=2')).toBe('https://api.livestorm.co/v1/?page=2');
    });

    it.each([
      'https://evil.example/x',
      'http:evil.example',
      'javascript:alert(1)',
      'mailto:x@evil.example',
      'evil.example:443/x',
      '//evil.example/x',
      '\\\\evil.example',
      '..',
      '../v2',
      './x',
      '..;/v2',
    ])('refuses %s', (path) => {
      expect(refusal(() => resolveApiUrl(v1, path))).toBeDefined();
      expect(refusal(() => resolveApiUrl('https://api.videoask.com', path))).toBeDefined();
    });
  });
});
