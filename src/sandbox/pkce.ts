import { createHash } from 'node:crypto';

/** RFC 7636 §4.1 / §4.2: `code_verifier` and `code_challenge` use the unreserved characters, 43–128 long. */
const PKCE_VALUE = /^[A-Za-z0-9\-._~]{43,128}$/;

/** Computes the S256 code challenge of a verifier: BASE64URL(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2). */
export function s256Challenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** True when `value` is syntactically a valid code verifier or challenge (RFC 7636 §4.1, §4.2). */
export function isWellFormedPkceValue(value: string): boolean {
  return PKCE_VALUE.test(value);
}

/** Server-side verification of a token request's verifier against the stored S256 challenge (RFC 7636 §4.6). */
export function verifierMatchesChallenge(verifier: string, challenge: string): boolean {
  return isWellFormedPkceValue(verifier) && s256Challenge(verifier) === challenge;
}
