import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { AuthHeader } from '../client/types';
import { REQUEST_ID_HEADER } from '../wire/access-log';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so a proxy never
 * forwards them, in either direction. `proxy-*` and `keep-alive` are the legacy ones.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * What a caller sends that must never reach the provider (SECURITY.md §11): its own
 * credentials (the Latchkey API key in `Authorization`, cookies), where it came from, the
 * Latchkey-only `Connection-Id`, and `Host`/`Content-Length`/`Expect`, which the upstream
 * client sets for the request it actually sends.
 */
const CALLER_OWN = ['authorization', 'cookie', 'host', 'connection-id', 'forwarded', 'content-length', 'expect'];

/**
 * Headers that make a server, or the framework or proxy in front of the provider's code, route
 * to another path or method than the request line says (SECURITY.md §27): IIS and Symfony read
 * `X-Original-URL`/`X-Rewrite-URL`, many frameworks honour a method override, Envoy and nginx
 * setups trust their own "original path" headers, and Next.js skips its middleware (its auth,
 * often) for `X-Middleware-Subrequest` (CVE-2025-29927). The pinned target is only worth
 * something if nothing downstream replaces it.
 */
const TARGET_REWRITING = [
  'x-original-url',
  'x-original-uri',
  'x-original-path',
  'x-rewrite-url',
  'x-override-url',
  'x-http-destinationurl',
  'x-envoy-original-path',
  'x-original-host',
  'x-host',
  'x-http-host-override',
  'x-original-method',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-middleware-subrequest',
];

/**
 * Headers that claim the client's address (Akamai's and Cloudflare's, load balancers',
 * application servers'), and `Via`, which names the caller's own proxies. An upstream that
 * trusts one (rate limits, allowlists, audit logs) would be told an address the caller chose;
 * the provider sees Latchkey's address, as it should (SECURITY.md §27).
 */
const CLIENT_ADDRESS = [
  'via',
  'x-real-ip',
  'true-client-ip',
  'x-true-client-ip',
  'x-client-ip',
  'client-ip',
  'cf-connecting-ip',
  'cf-connecting-ipv6',
  'cf-pseudo-ipv4',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'x-proxyuser-ip',
  'x-original-forwarded-for',
  'x-forwarded',
  'wl-proxy-client-ip',
  'x-appengine-user-ip',
  'x-azure-clientip',
  'x-azure-socketip',
];

/** Every exact name dropped from a caller's request, in one Set so each header costs one lookup. */
const NEVER_FORWARDED = new Set([...HOP_BY_HOP, ...CALLER_OWN, ...TARGET_REWRITING, ...CLIENT_ADDRESS]);

/**
 * Families dropped by prefix: `X-Forwarded-*` (`-For`, `-Host`, `-Path`, `-Prefix` …),
 * `Proxy-*`, Envoy's `X-Envoy-*` (routing, retries, `-External-Address`), and every
 * `Latchkey-*` request header (`Latchkey-Retries` is for Latchkey alone, CONTRACT "Additions").
 */
function hasDroppedPrefix(name: string): boolean {
  switch (name.charCodeAt(0)) {
    case 0x78: // x
      return name.startsWith('x-forwarded-') || name.startsWith('x-envoy-');
    case 0x70: // p
      return name.startsWith('proxy-');
    case 0x6c: // l
      return name.startsWith('latchkey-');
    default:
      return false;
  }
}

/** Node hands request header names in lower case, so each test is case-insensitive. */
function isDroppedRequestHeader(name: string): boolean {
  return NEVER_FORWARDED.has(name) || hasDroppedPrefix(name);
}

/** The extra names a `Connection` header declares hop-by-hop (RFC 9110 §7.6.1), lower-cased. */
function connectionListed(value: string | string[] | undefined): Set<string> | null {
  // The usual values name no other header: no need to split them on every call.
  if (value === undefined || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return null;
  const names = (Array.isArray(value) ? value.join(',') : value).split(',');
  const listed = new Set<string>();
  for (const n of names) {
    const name = n.trim().toLowerCase();
    if (name) listed.add(name);
  }
  return listed.size ? listed : null;
}

/**
 * The headers of the upstream request: the caller's, less everything above, then the
 * provider's `apiHeaders`, then the stored credential last so nothing the caller sends can
 * replace it. Names are lower-cased so an override is case-insensitive.
 */
export function buildUpstreamHeaders(
  incoming: IncomingHttpHeaders,
  apiHeaders: Readonly<Record<string, string>>,
  credential: AuthHeader,
  contentLength: number | null,
  callerWins?: ReadonlySet<string>,
): Record<string, string | string[]> {
  const listed = connectionListed(incoming.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || isDroppedRequestHeader(name) || listed?.has(name)) continue;
    out[name] = value;
  }
  for (const name in apiHeaders) {
    const lower = name.toLowerCase();
    // A `{metadata.*}` header the caller sent itself (and that is forwarded): the caller's value wins.
    if (callerWins?.has(lower) && out[lower] !== undefined) continue;
    out[lower] = apiHeaders[name]!;
  }
  out[credential.name.toLowerCase()] = credential.value;
  if (contentLength !== null) out['content-length'] = String(contentLength);
  return out;
}

/**
 * The headers of the answer relayed to the caller: the provider's, less the hop-by-hop ones (and
 * those its `Connection` lists) and less any `Latchkey-*` (a provider answer must never pass for
 * Latchkey's own error), with Latchkey's `X-Request-Id` in place of any the provider sent, so the
 * id the caller sees is the one its log lines carry.
 */
export function filterResponseHeaders(headers: IncomingHttpHeaders, requestId: string): OutgoingHttpHeaders {
  const listed = connectionListed(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (
      value === undefined ||
      HOP_BY_HOP.has(name) ||
      listed?.has(name) ||
      name.startsWith('latchkey-') ||
      name === 'x-request-id'
    ) {
      continue;
    }
    out[name] = value;
  }
  out[REQUEST_ID_HEADER] = requestId;
  return out;
}
