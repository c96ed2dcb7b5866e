import { randomBytes } from 'node:crypto';
import { looksLikePlaceholder } from '../config-checks';

type Random = (size: number) => Buffer;

/**
 * Draws until the value passes the production check for copied placeholders: a random secret
 * can, rarely, read like one (`lk_tbd-…`), and the server would then refuse the file.
 */
function drawUnlessPlaceholder(draw: () => string): string {
  for (;;) {
    const value = draw();
    if (!looksLikePlaceholder(value)) return value;
  }
}

/** A browser-session secret for SESSION_SECRET: 256 random bits. */
export function newSessionSecret(random: Random = randomBytes): string {
  return drawUnlessPlaceholder(() => random(32).toString('base64url'));
}

/** A service API key for CONNECTOR_API_KEYS: 192 random bits; the `lk_` prefix lets secret scanners spot it. */
export function newApiKey(random: Random = randomBytes): string {
  return drawUnlessPlaceholder(() => `lk_${random(24).toString('base64url')}`);
}

/**
 * One TOKEN_ENCRYPTION_KEYS entry, `keyId:base64(32 bytes)`. The id is dated and carries 24
 * random bits (`k20261201-3f9a1c`), so an operator sees when a key was made, and two keys made
 * the same day (or on two machines) never share an id. Ids in `taken` are never returned.
 */
export function newEncryptionKey(
  now: Date,
  taken: readonly string[] = [],
  random: Random = randomBytes,
): { id: string; entry: string } {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  for (;;) {
    const id = `k${day}-${random(3).toString('hex')}`;
    const entry = `${id}:${random(32).toString('base64')}`;
    if (!taken.includes(id) && !looksLikePlaceholder(entry)) return { id, entry };
  }
}

/** The key ids of a TOKEN_ENCRYPTION_KEYS value (`id:key,id:key`), in order. */
export function encryptionKeyIds(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => item.slice(0, Math.max(0, item.indexOf(':'))));
}
