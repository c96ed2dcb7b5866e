import { resolveConnectionTarget } from '../client/connection-target';
import type { AuthHeader } from '../client/types';
import { AppError } from '../errors';
import { resolveApiUrl } from '../providers/api-target';
import { checkConnectionConfig } from '../providers/provider-templates';
import type { Provider } from '../providers/registry';
import {
  checkMetadata,
  mergeMetadata,
  type Connection,
  type ConnectionInput,
  type ConnectionMetadata,
  type MetadataValue,
  type RecordedEvent,
} from '../store';
import { checkApiKey } from './api-key-check';
import { createdEvent, type FlowDeps } from './authorization-flow';
import { runPostConnect } from './post-connect';

/** How many times a write that lost its version check is read and tried again. */
const WRITE_ATTEMPTS = 5;

/**
 * Rewrites a stored connection with `change` applied, version-checked: the connection is read,
 * changed and written only if nobody wrote since the read; a lost check reads and tries again.
 * So a PATCH can never put back a refresh token that a refresh rotated meanwhile. The write is
 * announced on the store's feed, which drops every instance's cached credential, and records
 * `event` (when given) atomically with it: a lost check records none.
 *
 * @throws AppError `connection_not_found` (404), `credential_unreadable` (409),
 *   `store_unavailable` (503 — also when every attempt lost to a concurrent writer)
 */
export async function rewriteConnection(
  deps: Pick<FlowDeps, 'store'>,
  provider: Provider,
  connectionId: string,
  change: (current: Connection) => Partial<ConnectionInput>,
  event?: RecordedEvent,
): Promise<Connection> {
  for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    const current = await deps.store.getConnection(provider.id, connectionId);
    if (!current) throw new AppError('connection_not_found', `No ${provider.id} connection "${connectionId}"`);
    const { version, ...rest } = current;
    const written = await deps.store.updateConnection({ ...rest, ...change(current) }, version, event);
    if (written) return written;
  }
  throw new AppError('store_unavailable', 'The connection kept changing while it was being written; try again');
}

/**
 * `PATCH /connections/:provider/:connectionId` (CONTRACT "Connections"): merges `patch` into the
 * connection's metadata (a null value removes its key), version-checked, with
 * `connection.metadata_updated` recorded by the write (then emitted). The merged metadata must
 * stay within {@link checkMetadata}'s bounds.
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
  const connection = await rewriteConnection(
    deps,
    provider,
    connectionId,
    (current) => {
      const metadata = mergeMetadata(current.metadata, patch);
      const merged = checkMetadata(metadata);
      if (merged) throw new AppError('invalid_request', merged);
      return { metadata, updatedAt: deps.clock.now() };
    },
    { type: 'connection.metadata_updated' },
  );
  deps.credentials.invalidate(provider.id, connectionId);
  deps.events.emit('connection.metadata_updated', provider.id, connectionId);
  return connection;
}

/** `PUT /connections/:provider/:connectionId`'s body (CONTRACT "Connections"), as sent. */
export interface ImportRequest {
  access_token?: string;
  refresh_token?: string;
  expires_at?: string;
  scopes?: string[];
  api_key?: string;
  config?: Record<string, string>;
  metadata?: ConnectionMetadata;
}

const IMPORT_FIELDS = new Set([
  'access_token',
  'refresh_token',
  'expires_at',
  'scopes',
  'api_key',
  'config',
  'metadata',
]);
/** One line of Latin-1 without spaces: what can travel in an HTTP header (RFC 9110 §5.5). */
const HEADER_SAFE = /^[\u0021-\u007e\u00a0-\u00ff]{1,4096}$/;

/**
 * Imports credentials obtained elsewhere (CONTRACT `PUT /connections/…`): validated like a
 * connect — the config against `connectionConfig`, the metadata against its bounds, an API key
 * with `apiKey.check`, an access token (when one is given) against the provider's
 * `accountInfo`; a refresh token is never spent to check it — then the post-connect calls run
 * with the credential, and the connection is written version-checked (a concurrent write, a
 * refresh included, makes it read again), announced on the feed, with `connection.created`
 * recorded by the write that lands.
 * A refused credential is 400 `invalid_request` and nothing is stored.
 *
 * @returns the connection, and whether it replaced a stored one
 */
export async function importConnection(
  deps: FlowDeps,
  provider: Provider,
  connectionId: string,
  body: unknown,
): Promise<{ connection: Connection; replaced: boolean }> {
  const input = parseImport(provider, body);
  const configChecked = checkConnectionConfig(provider, input.config ?? {});
  if ('problems' in configChecked) {
    const [first] = configChecked.problems;
    throw new AppError('invalid_request', `config.${first!.name}: ${first!.message}`);
  }
  const config = configChecked.config;
  const metadataProblem = input.metadata === undefined ? undefined : checkMetadata(input.metadata);
  if (metadataProblem) throw new AppError('invalid_request', metadataProblem);

  const now = deps.clock.now();
  let credentials: Connection['credentials'];
  let header: AuthHeader | null;
  let expiresAt: number | null = null;
  if (provider.authMode === 'api_key') {
    const apiKey = input.api_key!;
    const checked = await checkApiKey(provider, apiKey, { http: deps.http, config });
    if (checked.outcome === 'refused') throw checked.error;
    if (checked.outcome === 'failed') throw checked.error;
    credentials = { apiKey };
    header = { name: provider.apiKey.header, value: provider.apiKey.format.replace('{key}', () => apiKey) };
  } else {
    if (input.expires_at !== undefined) {
      expiresAt = Date.parse(input.expires_at);
      if (!Number.isFinite(expiresAt)) throw new AppError('invalid_request', 'expires_at must be an ISO-8601 time');
    }
    const usable = input.access_token !== undefined && (expiresAt === null || expiresAt > now);
    // Without a usable access token, the first call refreshes: its expiry is now.
    if (!usable) expiresAt = now;
    credentials = {
      ...(usable ? { accessToken: input.access_token } : {}),
      ...(input.refresh_token ? { refreshToken: input.refresh_token } : {}),
      tokenType: 'Bearer',
    };
    if (!credentials.accessToken && !credentials.refreshToken) {
      throw new AppError('invalid_request', 'access_token has expired and no refresh_token was given');
    }
    header = usable ? { name: 'Authorization', value: `Bearer ${input.access_token}` } : null;
    if (header) await checkAccessToken(deps, provider, header, { config, metadata: input.metadata ?? {} });
  }

  const post = header
    ? await runPostConnect(
        { http: deps.http, logger: deps.logger },
        provider,
        header,
        { config, metadata: input.metadata ?? {} },
        connectionId,
      )
    : { captured: {}, missing: [] };
  const capturedNames = new Set(provider.postConnect.flatMap((call) => Object.keys(call.capture)));

  for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    const existing = await deps.store.getConnectionInfo(provider.id, connectionId);
    const kept = Object.fromEntries(
      Object.entries(existing?.metadata ?? {}).filter(([name]) => !(header && capturedNames.has(name))),
    );
    const metadata = { ...kept, ...input.metadata, ...post.captured };
    const problem = checkMetadata(metadata);
    if (problem) throw new AppError('invalid_request', problem);
    const record: ConnectionInput = {
      provider: provider.id,
      connectionId,
      authMode: provider.authMode,
      status: 'active',
      scopes: input.scopes ?? (provider.authMode === 'oauth2' ? provider.scopes : []),
      expiresAt,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      lastRefreshedAt: null,
      account: existing?.account ?? null,
      config,
      metadata,
      credentials,
    };
    const created = createdEvent(post.missing);
    const written = existing
      ? await deps.store.updateConnection(record, existing.version, created)
      : await deps.store.saveConnection(record, created);
    if (!written) continue;
    deps.credentials.invalidate(provider.id, connectionId);
    deps.events.emit(created.type, provider.id, connectionId, created.detail);
    return { connection: written, replaced: existing !== null };
  }
  throw new AppError('store_unavailable', 'The connection kept changing while it was being written; try again');
}

function parseImport(provider: Provider, body: unknown): ImportRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new AppError('invalid_request', 'The body must be a JSON object');
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((k) => !IMPORT_FIELDS.has(k));
  if (unknown) throw new AppError('invalid_request', `${unknown.slice(0, 64)}: is not a field of an import`);
  for (const name of ['access_token', 'refresh_token', 'api_key', 'expires_at'] as const) {
    const value = fields[name];
    if (value === undefined) continue;
    if (typeof value !== 'string' || !HEADER_SAFE.test(value))
      throw new AppError('invalid_request', `${name}: must be one line of Latin-1 text without spaces`);
  }
  if (
    fields.scopes !== undefined &&
    (!Array.isArray(fields.scopes) || fields.scopes.some((s) => typeof s !== 'string' || s.length > 256))
  )
    throw new AppError('invalid_request', 'scopes: must be an array of strings');
  for (const name of ['config', 'metadata'] as const) {
    const value = fields[name];
    if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value)))
      throw new AppError('invalid_request', `${name}: must be an object`);
  }
  const input = fields as ImportRequest;
  if (provider.authMode === 'api_key') {
    if (!input.api_key) throw new AppError('invalid_request', `api_key: ${provider.displayName} needs an API key`);
    if (input.access_token || input.refresh_token || input.expires_at)
      throw new AppError('invalid_request', `${provider.displayName} connects with an API key, not OAuth tokens`);
  } else {
    if (input.api_key) throw new AppError('invalid_request', `api_key: ${provider.displayName} connects with OAuth`);
    if (!input.access_token && !input.refresh_token)
      throw new AppError('invalid_request', 'access_token or refresh_token is required');
  }
  return input;
}

/**
 * Tries an imported access token once against the provider's `accountInfo` (pinned like the
 * proxy): a 401 or 403 refuses it; anything else (no accountInfo, a network failure, another
 * status) says nothing about it, and the token is kept.
 */
async function checkAccessToken(
  deps: FlowDeps,
  provider: Provider,
  header: AuthHeader,
  values: { config: Record<string, string>; metadata: ConnectionMetadata },
): Promise<void> {
  if (provider.authMode !== 'oauth2' || !provider.accountInfo) return;
  const target = resolveConnectionTarget(provider, values);
  if ('incomplete' in target) return;
  const headers: Record<string, string> = { accept: 'application/json' };
  for (const [name, value] of Object.entries(target.headers)) headers[name.toLowerCase()] = value;
  headers[header.name.toLowerCase()] = header.value;
  let status: number;
  try {
    const res = await deps.http.get(resolveApiUrl(target.base, provider.accountInfo.path), {
      headers,
      timeout: 3000,
      maxRedirects: 0,
      validateStatus: () => true,
    });
    status = res.status;
  } catch {
    return;
  }
  if (status === 401 || status === 403) {
    throw new AppError(
      'invalid_request',
      `${provider.displayName} did not accept this access token (it answered ${status})`,
      {
        provider: { status },
      },
    );
  }
}
