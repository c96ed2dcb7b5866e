import { createHash } from 'node:crypto';
import { randomToken } from './random';

export interface PkcePair {
  verifier: string;
  challenge: string;
  method: 'S256';
}

/**
 * A fresh PKCE pair. S256 only: `plain` is never offered (RFC 7636 §4.2, RFC 9700 §2.1.1).
 * 32 random bytes give a 43-character verifier, the minimum length §4.1 allows, with 256 bits.
 */
export function createPkcePair(): PkcePair {
  const verifier = randomToken(32);
  return { verifier, challenge: s256(verifier), method: 'S256' };
}

export function s256(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}
