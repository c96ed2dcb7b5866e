import { randomBytes } from 'node:crypto';

/** A browser-session secret for SESSION_SECRET: 256 random bits. */
export function newSessionSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** A service API key for CONNECTOR_API_KEYS: 192 random bits; the `lk_` prefix lets secret scanners spot it. */
export function newApiKey(): string {
  return `lk_${randomBytes(24).toString('base64url')}`;
}

/**
 * One TOKEN_ENCRYPTION_KEYS entry, `keyId:base64(32 bytes)`. The id is dated and carries 24
 * random bits (`k20261201-3f9a1c`), so an operator sees when a key was made, and two keys made
 * the same day (or on two machines) never share an id. Ids in `taken` are never returned.
 */
export function newEncryptionKey(now: Date, taken: readonly string[] = []): { id: string; entry: string } {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  for (;;) {
    const id = `k${day}-${randomBytes(3).toString('hex')}`;
    if (!taken.includes(id)) return { id, entry: `${id}:${randomBytes(32).toString('base64')}` };
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
