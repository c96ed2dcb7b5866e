import type { ConnectionInfo } from '../store';
import type { ConnectionWire } from '../wire/api-schemas';

/** The contract's `Connection` (wire/api-schemas.ts): snake_case on the wire, ISO-8601 times, never a token. */
export type ConnectionView = ConnectionWire;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** From the plaintext fields only: a connection whose credentials no key opens still has a view. */
export function toConnectionView(c: ConnectionInfo): ConnectionView {
  return {
    provider: c.provider,
    connection_id: c.connectionId,
    status: c.status,
    scopes: c.scopes,
    expires_at: iso(c.expiresAt),
    created_at: new Date(c.createdAt).toISOString(),
    updated_at: new Date(c.updatedAt).toISOString(),
    last_refreshed_at: iso(c.lastRefreshedAt),
    config: { ...c.config },
    metadata: { ...c.metadata },
    account: c.account ? { id: c.account.id ?? null, label: c.account.label ?? null } : null,
  };
}
