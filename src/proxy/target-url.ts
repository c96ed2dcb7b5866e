import { AppError } from '../errors';

/** A provider's `apiBaseUrl`, split once: every proxied call goes to `origin`, under `basePath`. */
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

/**
 * What may never appear in a proxied path, even encoded: dots and slashes that the provider
 * (or a proxy in front of it) could decode into a traversal, backslashes that some servers
 * read as slashes, `#` (a fragment never belongs in a request target), and `//`, which a
 * careless join or a URL parser turns into a new authority.
 */
const FORBIDDEN_IN_PATH = /%2e|%2f|%5c|\\|#|\/\//i;
/** `@`, or its encoding, in the first segment reads as userinfo once anything concatenates strings. */
const FORBIDDEN_IN_FIRST_SEGMENT = /@|%40/i;

function refuse(detail: string): never {
  throw new AppError('invalid_request', `The proxied path is not allowed: ${detail}`);
}

/**
 * Builds the request target (path and query, relative to the provider's origin) for the part
 * of the caller's URL after `/proxy/:provider`, and proves it stays inside `apiBaseUrl`
 * (SECURITY.md §10, OWASP API7:2023): refuse what could be decoded into something else,
 * join, let the WHATWG parser normalise, then check the origin and the path prefix of the
 * result. What is checked is exactly what is sent.
 *
 * @param rest the raw, undecoded remainder: `''`, or `/forms?limit=10`
 * @returns the path and query to send to `base.origin`
 * @throws AppError `invalid_request` (400) for anything that could leave the base
 */
export function resolveTargetPath(base: ApiBase, rest: string): string {
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q);
  if (path !== '' && path[0] !== '/') refuse('it must start with /');
  if (FORBIDDEN_IN_PATH.test(path)) refuse('encoded dots or slashes, backslashes, fragments and // are refused');
  const segments = path.split('/');
  if (segments.some((s) => s === '.' || s === '..')) refuse('dot segments are refused');
  if (FORBIDDEN_IN_FIRST_SEGMENT.test(segments[1] ?? '')) refuse('@ is refused in the first segment');

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

function isUnder(pathname: string, basePath: string): boolean {
  return basePath === '' ? pathname.startsWith('/') : pathname === basePath || pathname.startsWith(`${basePath}/`);
}
