import { DEFAULT_SEEDED_SCOPE, type Sandbox } from '../../src/sandbox/sandbox';
import type { Connection, ConnectionInput, Store } from '../../src/store';

/** A stored connection's fields with test defaults: active, created now, no account. */
export function connectionInput(
  fields: Pick<ConnectionInput, 'provider' | 'connectionId' | 'credentials'> & Partial<ConnectionInput>,
  now = Date.now(),
): ConnectionInput {
  return {
    authMode: 'oauth2',
    status: 'active',
    scopes: [],
    expiresAt: now + 3600_000,
    createdAt: now,
    updatedAt: now,
    lastRefreshedAt: null,
    account: null,
    ...fields,
  };
}

/** Stores an api_key connection (no expiry, no TTL). */
export function seedApiKeyConnection(
  store: Store,
  provider: string,
  connectionId: string,
  apiKey: string,
): Promise<Connection> {
  return store.saveConnection(
    connectionInput({ provider, connectionId, authMode: 'api_key', expiresAt: null, credentials: { apiKey } }),
  );
}

export interface SeededConnection {
  connection: Connection;
  accessToken: string;
  refreshToken: string;
}

/**
 * Stores an oauth2 connection holding a token family the sandbox really issued, as if the user
 * had just connected (the browser flow itself is tested elsewhere). `expiresAt` in the past makes
 * the access token already expired for Latchkey.
 */
export async function seedOAuthConnection(
  store: Store,
  sandbox: Sandbox,
  options: Partial<Omit<ConnectionInput, 'credentials'>> = {},
): Promise<SeededConnection> {
  const tokens = sandbox.issueTokensDirectly();
  const connection = await store.saveConnection(
    connectionInput({
      provider: 'videoask',
      connectionId: 'default',
      scopes: DEFAULT_SEEDED_SCOPE.split(' '),
      ...options,
      credentials: { accessToken: tokens.access_token, refreshToken: tokens.refresh_token, tokenType: 'Bearer' },
    }),
  );
  return { connection, accessToken: tokens.access_token, refreshToken: tokens.refresh_token };
}
