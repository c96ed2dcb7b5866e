import { AppError } from '../errors';

export interface ReturnToPolicy {
  publicUrl: string;
  publicOrigin: string;
  allowedReturnOrigins: readonly string[];
}

/**
 * Resolves `return_to` to an absolute URL, or refuses it. A path is taken on PUBLIC_URL; an
 * absolute URL must be on an allowed origin, compared as a parsed origin, never as a string
 * prefix (RFC 9700 §4.11: `https://app.example.com.evil.com`, `//evil.com`, `/\evil.com` and
 * `javascript:` are all refused).
 */
export function resolveReturnTo(raw: string | undefined, policy: ReturnToPolicy): string {
  if (raw === undefined || raw === '') return `${policy.publicUrl}/`;
  const refuse = () => new AppError('invalid_request', 'return_to is not on an allowed origin');
  // Backslashes and control characters are read as slashes or dropped by browsers' URL parsers.
  if (raw.length > 2048 || /[\\\u0000-\u001f\u007f]/.test(raw)) throw refuse();
  let url: URL;
  if (raw.startsWith('/')) {
    if (raw.startsWith('//')) throw refuse();
    // A path is on PUBLIC_URL, under its base path when it has one (https://host/latchkey).
    const base = new URL(policy.publicUrl).pathname.replace(/\/$/, '');
    url = new URL(`${base}${raw}`, policy.publicOrigin);
    if (url.origin !== policy.publicOrigin) throw refuse();
    return url.toString();
  }
  try {
    url = new URL(raw);
  } catch {
    throw refuse();
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refuse();
  if (url.username || url.password) throw refuse();
  if (!policy.allowedReturnOrigins.includes(url.origin)) throw refuse();
  return url.toString();
}

/** An origin allowed to receive the popup's postMessage, or undefined. Exact origins only, never `*`. */
export function allowedOrigin(raw: string | undefined, policy: ReturnToPolicy): string | undefined {
  if (!raw) return undefined;
  try {
    const origin = new URL(raw).origin;
    return origin === raw.replace(/\/$/, '') && policy.allowedReturnOrigins.includes(origin) ? origin : undefined;
  } catch {
    return undefined;
  }
}

/** Adds the flow's result to `return_to` (RFC 6749 §4.1.2: keep its own query). */
export function withResult(returnTo: string, result: Record<string, string>): string {
  const url = new URL(returnTo);
  for (const [k, v] of Object.entries(result)) url.searchParams.set(k, v);
  return url.toString();
}
