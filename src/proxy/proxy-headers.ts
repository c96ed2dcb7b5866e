import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { AuthHeader } from '../client/types';

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
const NEVER_FORWARDED = new Set([
  'authorization',
  'cookie',
  'host',
  'connection-id',
  'forwarded',
  'via',
  'x-real-ip',
  'content-length',
  'expect',
]);

function isDroppedRequestHeader(name: string): boolean {
  return (
    NEVER_FORWARDED.has(name) ||
    HOP_BY_HOP.has(name) ||
    name.startsWith('x-forwarded-') ||
    name.startsWith('proxy-') ||
    name.startsWith('latchkey-')
  );
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
): Record<string, string | string[]> {
  const listed = connectionListed(incoming.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || isDroppedRequestHeader(name) || listed?.has(name)) continue;
    out[name] = value;
  }
  for (const name in apiHeaders) out[name.toLowerCase()] = apiHeaders[name]!;
  out[credential.name.toLowerCase()] = credential.value;
  if (contentLength !== null) out['content-length'] = String(contentLength);
  return out;
}

/**
 * The provider's response headers less the hop-by-hop ones (and those its `Connection`
 * lists), and less any `Latchkey-*`: a provider answer must never pass for Latchkey's own error.
 */
export function filterResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = connectionListed(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || listed?.has(name) || name.startsWith('latchkey-')) continue;
    out[name] = value;
  }
  return out;
}
