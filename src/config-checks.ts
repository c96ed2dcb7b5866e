import { isIP } from 'node:net';
import proxyaddr from 'proxy-addr';

/**
 * The checks of the start-up report that look at one value or at a few together, each worded
 * for an operator: the variable's name, what is expected in plain words, and what was found
 * (never the value of a secret). `parseConfig` collects them all before it answers.
 */

/** Values an operator copies from an example and forgets to replace. */
const PLACEHOLDER =
  /…|\.\.\.|change[-_ ]?me|replace[-_ ]?me|<[^<>]*>|(?:^|[^A-Za-z0-9])(?:todo|tbd|fixme|xxx+)(?:[^A-Za-z0-9]|$)/i;

/** True for a value such as `…`, `change-me`, `xxx`, `<your-secret>` or `TODO`. */
export function looksLikePlaceholder(value: string): boolean {
  return PLACEHOLDER.test(value.trim());
}

/** What a variable's value is shown as in a problem: quoted and cut short (a non-secret's only). */
export function shown(value: string): string {
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '?');
  return JSON.stringify(clean.length > 80 ? `${clean.slice(0, 77)}...` : clean);
}

/** The scheme of a URL, for a message (`ftp:`), bounded so that no pasted secret shows through. */
export function schemeOf(url: URL): string {
  return /^[a-z][a-z0-9+.-]{0,15}:$/.test(url.protocol) ? url.protocol : 'another scheme';
}

/** Loopback names and addresses: the only hosts an `http://` PUBLIC_URL may have in production. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/** `scheme://authority` at the start of a URL, to see what follows it. */
const ORIGIN_PREFIX = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

/**
 * One item of ALLOWED_RETURN_ORIGINS: an http(s) origin, a trailing `/` tolerated, nothing else
 * after the port (a path, query or fragment would suggest a check that does not happen: return
 * URLs are compared by origin only).
 *
 * @returns the origin, or a problem (without the variable's name)
 */
export function parseReturnOrigin(raw: string): { origin: string } | { problem: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: `must be an origin such as https://app.example.com, got ${shown(raw)}` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { problem: `must be http:// or https://, got ${schemeOf(url)}` };
  }
  const rest = raw.replace(ORIGIN_PREFIX, '');
  if (url.username || url.password || (rest !== '' && rest !== '/') || raw === rest) {
    return {
      problem: `must be an origin only (scheme, host and port), without a path, query or fragment, got ${shown(raw)}`,
    };
  }
  return { origin: url.origin };
}

/** The most proxies a request plausibly passes before Latchkey. */
export const MAX_TRUST_PROXY_HOPS = 10;
const TRUST_PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * TRUST_PROXY: `false`, a hop count up to {@link MAX_TRUST_PROXY_HOPS}, or a comma list of
 * `loopback`, `linklocal`, `uniquelocal`, addresses and subnets. `true` is refused: it trusts
 * every hop and lets clients choose their address (and so their rate limit).
 */
export function parseTrustProxy(raw: string | undefined, problems: string[]): false | number | string {
  if (raw === undefined || raw === 'false' || raw === '0') return false;
  if (raw === 'true') {
    problems.push('TRUST_PROXY: "true" trusts every hop and lets clients forge their IP; give a hop count or a list');
    return false;
  }
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    if (hops > MAX_TRUST_PROXY_HOPS) {
      problems.push(
        `TRUST_PROXY must be the number of proxies in front of Latchkey (at most ${MAX_TRUST_PROXY_HOPS}) or a list of their addresses, got ${hops}`,
      );
      return false;
    }
    return hops;
  }
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  let ok = items.length > 0;
  items.forEach((item, i) => {
    if (!isTrustItem(item)) {
      ok = false;
      problems.push(
        `TRUST_PROXY (item ${i + 1}) must be a hop count, loopback, linklocal, uniquelocal, an IP address or a subnet such as 10.0.0.0/8, got ${shown(item)}`,
      );
    }
  });
  if (!ok) return false;
  try {
    proxyaddr.compile(items);
  } catch {
    problems.push(`TRUST_PROXY must be a hop count or a list of addresses and subnets, got ${shown(raw)}`);
    return false;
  }
  return raw;
}

function isTrustItem(item: string): boolean {
  if (TRUST_PROXY_NAMES.has(item)) return true;
  const slash = item.indexOf('/');
  const address = slash < 0 ? item : item.slice(0, slash);
  const family = isIP(address);
  if (!family) return false;
  if (slash < 0) return true;
  const range = item.slice(slash + 1);
  if (/^\d{1,3}$/.test(range)) return Number(range) <= (family === 4 ? 32 : 128);
  // A netmask (255.255.0.0) for an IPv4 subnet.
  return family === 4 && isIP(range) === 4;
}

/** A name or address to listen on: an IP address (IPv6 with or without brackets) or a DNS name. */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** HOST without IPv6 brackets, or undefined when it is not something a server can listen on. */
export function parseListenHost(raw: string): string | undefined {
  const host = /^\[.*\]$/.test(raw) ? raw.slice(1, -1) : raw;
  if (isIP(host)) return host;
  return HOST_NAME.test(host) ? host : undefined;
}
