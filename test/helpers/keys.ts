import { randomBytes } from 'node:crypto';
import type { EncryptionKey } from '../../src/config';

export function testEncryptionKey(id = 'k1'): EncryptionKey {
  return { id, key: randomBytes(32) };
}

export function encryptionKeyEnv(key: EncryptionKey): string {
  return `${key.id}:${key.key.toString('base64')}`;
}
