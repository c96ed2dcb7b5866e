import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EncryptionKey } from '../config';

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

  open(sealed: string, aad: string): string {
    const [version, id, iv, tag, ct] = sealed.split('.');
    if (version !== 'v1' || !id || !iv || !tag || ct === undefined) throw new Error('not a sealed value');
    const key = this.byId.get(id);
    if (!key) throw new Error(`value sealed with unknown key "${id}"`);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  }

  /** The key id a sealed value names. */
  static keyIdOf(sealed: string): string | undefined {
    return sealed.split('.')[1];
  }
}
