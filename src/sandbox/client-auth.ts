import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

import type { SandboxOptions } from './sandbox';

/** Client credentials as presented by one authentication method. */
export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

/** Outcome of authenticating the client on the token or revocation endpoint. */
export type ClientAuthResult =
  | { ok: true; clientId: string; method: 'basic' | 'body' }
  | { ok: false; error: 'invalid_client' | 'invalid_request'; description: string; basicAttempted: boolean };

/** Credentials a client may put in the request body (`client_secret_post`, RFC 6749 §2.3.1). */
export interface BodyCredentials {
  client_id?: string;
  client_secret?: string;
}

/**
 * Decodes the `application/x-www-form-urlencoded` encoding used inside HTTP Basic client credentials
 * (RFC 6749 §2.3.1 and Appendix B): `+` is a space, `%XX` is a byte. Returns null when malformed.
 */
export function formUrlDecode(value: string): string | null {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/** Encodes a value the way RFC 6749 Appendix B requires before it goes into HTTP Basic credentials. */
export function formUrlEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

/**
 * Parses an `Authorization: Basic …` header into client credentials per RFC 6749 §2.3.1:
 * base64-decode, split on the first `:`, then form-urlencoded-decode each half.
 * Returns undefined when there is no Basic header and null when it is malformed.
 */
export function parseBasicCredentials(header: string | undefined): ClientCredentials | null | undefined {
  const match = /^Basic\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match?.[1]) return header !== undefined && /^Basic\b/i.test(header) ? null : undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const clientId = formUrlDecode(decoded.slice(0, colon));
  const clientSecret = formUrlDecode(decoded.slice(colon + 1));
  if (clientId === null || clientSecret === null) return null;
  return { clientId, clientSecret };
}

/** Compares two secrets without leaking their common prefix length through timing. */
function secretsEqual(a: string, b: string): boolean {
  const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

function credentialsMatch(credentials: ClientCredentials, options: SandboxOptions): boolean {
  return credentials.clientId === options.clientId && secretsEqual(credentials.clientSecret, options.clientSecret);
}

function refuse(description: string, basicAttempted: boolean): ClientAuthResult {
  return { ok: false, error: 'invalid_client', description, basicAttempted };
}

/**
 * Authenticates the confidential client (RFC 6749 §2.3.1, §3.2.1) with HTTP Basic and/or `client_secret_post`,
 * as allowed by `options.clientAuth`. Using both methods in one request is refused (RFC 6749 §2.3).
 */
export function authenticateClient(
  headers: IncomingHttpHeaders,
  body: BodyCredentials,
  options: SandboxOptions,
): ClientAuthResult {
  const basic = parseBasicCredentials(headers.authorization);
  const basicAttempted = basic !== undefined;
  const bodyAttempted = body.client_secret !== undefined;

  if (basicAttempted && bodyAttempted) {
    return {
      ok: false,
      error: 'invalid_request',
      description: 'The client used more than one authentication method.',
      basicAttempted,
    };
  }
  if (basic === null) return refuse('Malformed Basic credentials.', true);
  if (basic) {
    if (options.clientAuth === 'body') return refuse('HTTP Basic client authentication is not allowed.', true);
    if (body.client_id !== undefined && body.client_id !== basic.clientId) {
      return refuse('client_id does not match the authenticated client.', true);
    }
    return credentialsMatch(basic, options)
      ? { ok: true, clientId: basic.clientId, method: 'basic' }
      : refuse('Client authentication failed.', true);
  }
  if (options.clientAuth === 'basic') return refuse('HTTP Basic client authentication is required.', false);
  if (body.client_id === undefined || body.client_secret === undefined) {
    return refuse('Client authentication is required.', false);
  }
  const credentials = { clientId: body.client_id, clientSecret: body.client_secret };
  return credentialsMatch(credentials, options)
    ? { ok: true, clientId: credentials.clientId, method: 'body' }
    : refuse('Client authentication failed.', false);
}
