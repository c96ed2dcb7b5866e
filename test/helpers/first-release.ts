import type { KvBackend } from '../../src/store/backend';
import { createKeys } from '../../src/store/keys';

/**
 * Writes a connection as the first release did: its record and the legacy set of connections,
 * nothing of the indexes that came after (listing, keep-alive). `fields` are the plaintext fields;
 * the sealed part is a placeholder that only a decrypting read would open (and fail on).
 */
export async function writeFirstReleaseConnection(
  backend: KvBackend,
  prefix: string,
  fields: { provider: string; connectionId: string } & Record<string, unknown>,
): Promise<void> {
  const { provider, connectionId } = fields;
  const keys = createKeys(prefix);
  const data = {
    authMode: 'oauth2',
    status: 'active',
    scopes: [],
    expiresAt: null,
    createdAt: 1,
    updatedAt: 1,
    lastRefreshedAt: null,
    account: null,
    secrets: 'sealed-by-the-first-release',
    ...fields,
  };
  await backend.writeConnection({
    mainKey: keys.connection(provider, connectionId),
    accessKey: keys.accessToken(provider, connectionId),
    expectedVersion: null,
    minVersion: 1,
    data: JSON.stringify(data),
    mainTtlMs: null,
    access: null,
    accessTtlMs: null,
    notice: { channel: keys.connectionChanges(), message: `${provider}:${connectionId}` },
  });
  await backend.addMember(keys.connectionIndex(), `${provider}:${connectionId}`);
}
