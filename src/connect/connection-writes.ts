import { AppError } from '../errors';
import type { Provider } from '../providers/registry';
import { checkMetadata, mergeMetadata, type Connection, type ConnectionInput, type MetadataValue } from '../store';
import type { FlowDeps } from './authorization-flow';

/** How many times a write that lost its version check is read and tried again. */
const WRITE_ATTEMPTS = 5;

/**
 * Rewrites a stored connection with `change` applied, version-checked: the connection is read,
 * changed and written only if nobody wrote since the read; a lost check reads and tries again.
 * So a PATCH can never put back a refresh token that a refresh rotated meanwhile. The write is
 * announced on the store's feed, which drops every instance's cached credential.
 *
 * @throws AppError `connection_not_found` (404), `credential_unreadable` (409),
 *   `store_unavailable` (503 — also when every attempt lost to a concurrent writer)
 */
export async function rewriteConnection(
  deps: Pick<FlowDeps, 'store'>,
  provider: Provider,
  connectionId: string,
  change: (current: Connection) => Partial<ConnectionInput>,
): Promise<Connection> {
  for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    const current = await deps.store.getConnection(provider.id, connectionId);
    if (!current) throw new AppError('connection_not_found', `No ${provider.id} connection "${connectionId}"`);
    const { version, ...rest } = current;
    const written = await deps.store.updateConnection({ ...rest, ...change(current) }, version);
    if (written) return written;
  }
  throw new AppError('store_unavailable', 'The connection kept changing while it was being written; try again');
}

/**
 * `PATCH /connections/:provider/:connectionId` (CONTRACT "Connections"): merges `patch` into the
 * connection's metadata (a null value removes its key), version-checked, and emits
 * `connection.metadata_updated`. The merged metadata must stay within {@link checkMetadata}'s bounds.
 *
 * @throws AppError `invalid_request` (400) naming the key at fault, and those of {@link rewriteConnection}
 */
export async function updateMetadata(
  deps: Pick<FlowDeps, 'store' | 'clock' | 'events' | 'credentials'>,
  provider: Provider,
  connectionId: string,
  patch: Readonly<Record<string, MetadataValue | null>>,
): Promise<Connection> {
  const given = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== null));
  const problem = checkMetadata(given);
  if (problem) throw new AppError('invalid_request', problem);
  const connection = await rewriteConnection(deps, provider, connectionId, (current) => {
    const metadata = mergeMetadata(current.metadata, patch);
    const merged = checkMetadata(metadata);
    if (merged) throw new AppError('invalid_request', merged);
    return { metadata, updatedAt: deps.clock.now() };
  });
  deps.credentials.invalidate(provider.id, connectionId);
  deps.events.emit('connection.metadata_updated', provider.id, connectionId);
  return connection;
}
