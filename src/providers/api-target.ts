import { AppError } from '../errors';

/**
 * Where a call to a provider's API may go: the one implementation of path pinning
 * (SECURITY.md §10 and §27), used by the proxy, the API client and the post-connect calls.
 */

/** A provider's `apiBaseUrl`, split once: every call goes to `origin`, under `basePath`. */
export interface ApiBase {
  /** `https://api.example.com` — scheme, host and port, never anything else. */
  origin: string;
  /** The base URL's path without its trailing slash (`''` for the root, `/v1` for `…/v1/`). */
  basePath: string;
}

export function parseApiBase(apiBaseUrl: string): ApiBase {
  const url = new URL(apiBaseUrl);
  return { origin: url.origin, basePath: url.pathname.replace(/\/+$/, '') };
}

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const SEMICOLON = 0x3b;
const SPACE = 0x20;
const AT = 0x40;
const BACKSLASH = 0x5c;
const HASH = 0x23;
const QUESTION = 0x3f;
const DEL = 0x7f;

/** How much of a segment is dots so far: the shapes some server reads as `.` or `..`. */
const ONLY_DOTS = 0;
const DOTS_THEN_SPACES = 1;
const ANYTHING_ELSE = 2;

const DOT_SEGMENT =
  'dot segments are refused, also with ;parameters or trailing spaces (.., ..;, .;x, ..%3b, ..%20, ...)';

/**
 * Code points that Windows "best fit" conversions turn into a slash or a backslash although
 * NFKC leaves them alone (the WorstFit research, 2025): a provider on such a stack would read a
 * traversal into them. Their NFKC look-alikes (`．` `／` `＼` `﹒` `․` `‥` …) are caught by
 * {@link normalisesToSyntax}.
 */
const BEST_FIT_SEPARATORS = new Set([0x00a5, 0x20a9, 0x2044, 0x2215, 0x2216, 0x29f5, 0x29f8, 0x29f9]);
const URL_SYNTAX = /[./\\;%?#@]/;
/** 1 for the printable ASCII characters that need no thought in a path: most of any path. */
const PLAIN = new Uint8Array(0x80);
for (let c = 0x21; c < DEL; c++) PLAIN[c] = 1;
for (const c of '%/.;@\\#') PLAIN[c.charCodeAt(0)] = 0;

/** Raw controls, anything outside ASCII, and `#`: one scan of the query, in the regex engine. */
const QUERY_REFUSED = /[^\u0020-\u007e]|#/;

function refuse(detail: string): never {
  throw new AppError('invalid_request', `The API path is not allowed: ${detail}`);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/** The byte `%XY` at `i` stands for, or -1 when `s` has no well-formed escape there. */
function escapedByte(s: string, i: number): number {
  if (s.charCodeAt(i) !== PERCENT) return -1;
  const high = hexValue(s.charCodeAt(i + 1));
  const low = hexValue(s.charCodeAt(i + 2));
  return high < 0 || low < 0 ? -1 : (high << 4) | low;
}

/** Where the hex digit at `i`, raw or itself escaped (`%32`), ends; -1 when there is none. */
function hexDigitEnd(s: string, i: number): number {
  if (hexValue(s.charCodeAt(i)) >= 0) return i + 1;
  const b = escapedByte(s, i);
  return b >= 0 && hexValue(b) >= 0 ? i + 3 : -1;
}

/**
 * True when what follows an escaped `%` at `i` makes a new escape once decoded: `%252e`,
 * `%25%32%65` (escaped digits), `%25u002e` (IIS's `%u`). A server that decodes twice reads these
 * as the dots and slashes refused above.
 */
function makesAnEscape(s: string, i: number): boolean {
  const c = s.charCodeAt(i) | 0x20;
  const afterU = c === 0x75 ? i + 1 : (escapedByte(s, i) | 0x20) === 0x75 ? i + 3 : -1;
  if (afterU >= 0) return hexDigitEnd(s, afterU) >= 0;
  const next = hexDigitEnd(s, i);
  return next >= 0 && hexDigitEnd(s, next) >= 0;
}

/** True when NFKC (which many stacks apply before routing) turns `cp` into URL syntax. */
function normalisesToSyntax(cp: number): boolean {
  return URL_SYNTAX.test(String.fromCodePoint(cp).normalize('NFKC'));
}

/**
 * Checks the escaped UTF-8 sequence whose lead byte `lead` is escaped at `i`, byte by byte
 * against the well-formed table of RFC 3629 §4 (so overlong forms such as `%c0%ae`,
 * `%e0%80%ae`, surrogates and anything above U+10FFFF fail), then the character it encodes.
 * @returns the index just after the sequence
 */
function checkEscapedUtf8(s: string, i: number, lead: number): number {
  let more: number;
  let cp: number;
  let low = 0x80;
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    more = 1;
    cp = lead & 0x1f;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    more = 2;
    cp = lead & 0x0f;
    if (lead === 0xe0) low = 0xa0;
    if (lead === 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    more = 3;
    cp = lead & 0x07;
    if (lead === 0xf0) low = 0x90;
    if (lead === 0xf4) high = 0x8f;
  } else {
    return refuse('overlong or invalid UTF-8 escapes are refused');
  }
  let j = i + 3;
  for (; more > 0; more--, j += 3) {
    const b = escapedByte(s, j);
    if (b < low || b > high) refuse('overlong or invalid UTF-8 escapes are refused');
    cp = (cp << 6) | (b & 0x3f);
    low = 0x80;
    high = 0xbf;
  }
  if (cp <= 0x9f) refuse('NUL and control characters are refused');
  if (BEST_FIT_SEPARATORS.has(cp) || normalisesToSyntax(cp))
    refuse('characters that normalise to a dot, a slash, a backslash or other URL syntax are refused');
  return j;
}

/**
 * Refuses a path that some server between us and the provider's code (or the provider itself)
 * could decode, normalise or re-parse into a different path, in one pass over the raw string.
 * Raw bytes outside printable ASCII never pass Node's HTTP parser, but the API client and the
 * post-connect calls hand in JavaScript strings, so they are checked here too.
 */
function checkPath(path: string): void {
  if (path === '') return;
  if (path.charCodeAt(0) !== SLASH) refuse('it must start with /');
  let firstSegment = true;
  let length = 0;
  let dots = 0;
  let shape = ONLY_DOTS;
  for (let i = 1; i < path.length; i++) {
    let c = path.charCodeAt(i);
    if (c < 0x80 && PLAIN[c] === 1) {
      length++;
      shape = ANYTHING_ELSE;
      continue;
    }
    if (c === SLASH) {
      if (length === 0) refuse('empty segments (//) are refused');
      if (shape !== ANYTHING_ELSE && dots > 0) refuse(DOT_SEGMENT);
      firstSegment = false;
      length = dots = 0;
      shape = ONLY_DOTS;
      continue;
    }
    length++;
    if (c === PERCENT) {
      const b = escapedByte(path, i);
      if (b < 0) refuse('a % must start a two-digit hex escape');
      if (b >= 0x80) {
        i = checkEscapedUtf8(path, i, b) - 1;
        shape = ANYTHING_ELSE;
        continue;
      }
      i += 2;
      if (b === DOT || b === SLASH || b === BACKSLASH) refuse('encoded dots, slashes and backslashes are refused');
      if (b < SPACE || b === DEL) refuse('NUL and control characters are refused');
      if (b === PERCENT && makesAnEscape(path, i + 1))
        refuse('double-encoded escapes (%25 and hex digits) are refused');
      c = b;
    } else if (c < SPACE || c === DEL) {
      refuse('NUL and control characters are refused');
    } else if (c > DEL) {
      refuse('characters outside ASCII must be percent-encoded as UTF-8');
    } else if (c === BACKSLASH || c === HASH) {
      refuse('backslashes and fragments are refused');
    }
    if (c === DOT) {
      if (shape === ONLY_DOTS) dots++;
      else shape = ANYTHING_ELSE;
    } else if (c === SPACE) {
      if (shape === ONLY_DOTS) shape = dots > 0 ? DOTS_THEN_SPACES : ANYTHING_ELSE;
    } else if (c === SEMICOLON && shape !== ANYTHING_ELSE) {
      refuse(dots > 0 ? DOT_SEGMENT : 'a segment may not start with ; (it reads as an empty segment)');
    } else {
      shape = ANYTHING_ELSE;
      if (c === AT && firstSegment) refuse('@ is refused in the first segment');
    }
  }
  if (shape !== ANYTHING_ELSE && dots > 0) refuse(DOT_SEGMENT);
}

/**
 * The query is data for the provider and cannot move the target (origin and path are fixed
 * before it), so its escapes pass through as sent: values may legitimately hold `%25` and two
 * hex digits (a search for "%2e"), `%0A` (a multi-line note) or even `%00`. Raw characters are
 * another matter: the URL parser silently drops tabs and newlines and cuts at `#`, and raw
 * non-ASCII has no single byte form, so what is checked would no longer be what is sent.
 */
function checkQuery(query: string): void {
  if (!QUERY_REFUSED.test(query)) return;
  if (/[\u0000-\u001f\u007f]/.test(query)) refuse('raw NUL and control characters are refused in the query');
  if (/[^\u0000-\u007f]/.test(query)) refuse('characters outside ASCII must be percent-encoded as UTF-8');
  refuse('a fragment never belongs in a request target');
}

/**
 * Builds the request target (path and query, relative to the provider's origin) for a path
 * relative to `apiBaseUrl`, and proves it stays inside it (SECURITY.md §10 and §27, OWASP
 * API7:2023): refuse what could be decoded or normalised into something else (see
 * {@link checkPath}), join, let the WHATWG parser normalise, then check the origin and the path
 * prefix of the result. What is checked is exactly what is sent.
 *
 * @param rest the raw, undecoded path and query: `''`, `?page=2` or `/forms?limit=10`
 * @returns the path and query to send to `base.origin`
 * @throws AppError `invalid_request` (400) for anything that could leave the base
 */
export function resolveTargetPath(base: ApiBase, rest: string): string {
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q);
  checkPath(path);
  checkQuery(query);

  const joined = `${base.basePath}${path === '' ? '/' : path}${query}`;
  let url: URL;
  try {
    url = new URL(joined, base.origin);
  } catch {
    return refuse('it is not a valid URL path');
  }
  if (url.origin !== base.origin || !isUnder(url.pathname, base.basePath)) refuse('it leaves the provider API');
  return `${url.pathname}${url.search}`;
}

/**
 * The absolute URL for a path under a provider's API, pinned as {@link resolveTargetPath} pins
 * the proxy's: for the API client and the calls made right after a connect
 * (`resolveApiUrl(provider.apiBaseUrl, '/organizations')`). A path without its leading slash
 * (`me`) is read as `/me`; one whose first segment holds a colon is a scheme (RFC 3986 §4.2),
 * i.e. an absolute URL, and is refused.
 *
 * @throws AppError `invalid_request` (400) for anything that could leave the base
 */
export function resolveApiUrl(apiBase: ApiBase | string, pathAndQuery: string): string {
  const base = typeof apiBase === 'string' ? parseApiBase(apiBase) : apiBase;
  return `${base.origin}${resolveTargetPath(base, asOriginRelative(pathAndQuery))}`;
}

function asOriginRelative(path: string): string {
  const c = path.charCodeAt(0);
  if (path === '' || c === SLASH || c === QUESTION) return path;
  const end = path.search(/[/?]/);
  if (path.slice(0, end === -1 ? path.length : end).includes(':')) refuse('absolute URLs are refused');
  return `/${path}`;
}

function isUnder(pathname: string, basePath: string): boolean {
  return basePath === '' ? pathname.startsWith('/') : pathname === basePath || pathname.startsWith(`${basePath}/`);
}
