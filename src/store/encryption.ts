import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EncryptionKey } from '../config';

/**
 * Why a sealed value did not open: no configured key has the id it names (`unknown_key`: that key
 * was removed, or a development key drawn afresh), or the key of that id does not open it
 * (`wrong_key`: the key was changed under the same id, or the value was tampered with or copied
 * under another key name). Names the key id, never key material or the value.
 */
export class SealedValueError extends Error {
  constructor(
    readonly keyId: string,
    readonly reason: 'unknown_key' | 'wrong_key' | 'malformed',
  ) {
    super(
      reason === 'unknown_key'
        ? `value sealed with unknown key "${keyId}"`
        : reason === 'wrong_key'
          ? `value sealed with key "${keyId}" does not open with the configured key of that id`
          : 'not a sealed value',
    );
    this.name = 'SealedValueError';
  }
}

/**
 * AES-256-GCM for credentials at rest. Each value carries the id of the key that sealed it, so
 * several keys can be accepted while the first encrypts (rotation). The associated data binds a
 * ciphertext to the record it belongs to: a value copied under another key name won't open.
 */
export class CredentialCipher {
  private readonly byId: Map<string, Buffer>;

  constructor(private readonly keys: readonly EncryptionKey[]) {
    if (!keys.length) throw new Error('at least one encryption key is needed');
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  /** Id of the key new values are sealed with. */
  get currentKeyId(): string {
    return this.keys[0]!.id;
  }

  /** True when a key of this id is configured (whether it opens a given value is another matter). */
  hasKey(id: string): boolean {
    return this.byId.has(id);
  }

  seal(plaintext: string, aad: string): string {
    const { id, key } = this.keys[0]!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      'v1',
      id,
      iv.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
      ct.toString('base64url'),
    ].join('.');
  }

  /** @throws SealedValueError naming the key id when the value does not open */
  open(sealed: string, aad: string): string {
    const [version, id, iv, tag, ct] = sealed.split('.');
    if (version !== 'v1' || !id || !iv || !tag || ct === undefined) throw new SealedValueError(id ?? '', 'malformed');
    const key = this.byId.get(id);
    if (!key) throw new SealedValueError(id, 'unknown_key');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(aad));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      // Node's own message ("Unsupported state or unable to authenticate data") says nothing useful.
      throw new SealedValueError(id, 'wrong_key');
    }
  }

  /** The key id a sealed value names. */
  static keyIdOf(sealed: string): string | undefined {
    return sealed.split('.')[1];
  }
}
