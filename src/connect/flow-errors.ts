import type { ErrorCode } from '../errors';

/**
 * The `error` values of an authorization error response: the only provider codes Latchkey passes
 * on to a host application.
 *
 * @see RFC 6749 §4.1.2.1
 */
export const AUTHORIZATION_ERROR_CODES = [
  'invalid_request',
  'unauthorized_client',
  'access_denied',
  'unsupported_response_type',
  'invalid_scope',
  'server_error',
  'temporarily_unavailable',
] as const;

export type AuthorizationErrorCode = (typeof AUTHORIZATION_ERROR_CODES)[number];

/** What a failed flow tells the host application in `error=`: a code from a closed list, never provider text. */
export type FlowErrorCode = AuthorizationErrorCode | ErrorCode;

const KNOWN: ReadonlySet<string> = new Set(AUTHORIZATION_ERROR_CODES);

/**
 * Maps the `error` a provider sent to the callback onto RFC 6749 §4.1.2.1's closed list. Anything
 * else (OpenID Connect's `login_required`, a provider's own code, a typo, markup) is reported as
 * `server_error`: the value is never reflected, and `error_description` is never read at all.
 *
 * @see RFC 6749 §4.1.2.1
 */
export function authorizationErrorCode(raw: string): AuthorizationErrorCode {
  return KNOWN.has(raw) ? (raw as AuthorizationErrorCode) : 'server_error';
}
