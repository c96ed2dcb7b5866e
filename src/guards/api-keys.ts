import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { AppError, isAppError } from '../errors';
import type { Access } from './access';
import { readApiKeysFile } from './api-keys-file';
import type { FailedAttempts } from './failed-attempts';

/** What a request authenticated with an API key may do (CONTRACT "API keys with a scope"). */
export interface ApiKeyIdentity {
  /** Named in logs and rate limits, never the secret: `key-<first 8 hex of its SHA-256>` for CONNECTOR_API_KEYS. */
  name: string;
  access: Access;
  /** Providers the key is limited to; null: every provider. */
  providers: readonly string[] | null;
}

/** A known key: its SHA-256 and what it may do. */
export interface ApiKeyEntry extends ApiKeyIdentity {
  sha256: Buffer;
}

/**
 * Checks `Authorization: Bearer <key>` and answers who the caller is, or throws AppError
 * `unauthorized`. A plain function of the headers, so the Express routes and the raw proxy call
 * the same check; it cannot be handed an Express middleware by mistake. `connection` (the
 * request's socket) lets a keep-alive connection that presents the same header again skip the
 * hashing (see {@link createApiKeyAuthenticator}).
 */
export type Authenticate = (headers: IncomingHttpHeaders, connection?: object) => ApiKeyIdentity;

/** Where the authenticator reads the keys from at each request: a fixed list, or a {@link ApiKeyHolder}. */
export type ApiKeySource = readonly ApiKeyEntry[] | { current(): readonly ApiKeyEntry[] };

const sha256 = (value: string): Buffer => hash('sha256', value, 'buffer') as unknown as Buffer;

/** The entries of CONNECTOR_API_KEYS: every one `full`, named by its hash. */
export function connectorApiKeyEntries(keys: readonly string[]): ApiKeyEntry[] {
  return keys.map((key) => {
    const digest = sha256(key);
    return { name: `key-${digest.toString('hex').slice(0, 8)}`, access: 'full', providers: null, sha256: digest };
  });
}

const BEARER = /^Bearer[ ]+(\S+)\s*$/i;
const UNAUTHORIZED = 'A valid API key is required: Authorization: Bearer <key>';

/** The header a connection last authenticated with, under the keys then in force. */
interface Remembered {
  header: Buffer;
  entries: readonly ApiKeyEntry[];
  identity: ApiKeyIdentity;
}

/**
 * `Authorization: Bearer <key>`, compared in constant time: both sides are hashed first so
 * neither the length nor a prefix of a key shows in the timing, and every entry is compared.
 * With a holder, each request reads the keys in force (a reload swaps them between requests).
 *
 * A keep-alive connection sends the same header call after call, and hashing it each time was a
 * measurable share of a proxied call. So each connection remembers the last header that
 * authenticated on it: the next request on that connection that presents the very same bytes,
 * under the same keys in force, is answered without hashing. That comparison is constant-time
 * too (`timingSafeEqual`, and a compare of the same cost when the lengths differ), because one
 * connection may carry several callers' requests (a reverse proxy pooling its upstream
 * connections). Anything else, and any request after a reload, takes the hashed path.
 */
export function createApiKeyAuthenticator(source: ApiKeySource): Authenticate {
  const current = Array.isArray(source)
    ? () => source as readonly ApiKeyEntry[]
    : () => (source as { current(): readonly ApiKeyEntry[] }).current();
  const remembered = new WeakMap<object, Remembered>();
  return (headers, connection) => {
    const header = headers.authorization;
    if (typeof header !== 'string') throw new AppError('unauthorized', UNAUTHORIZED);
    const entries = current();
    const last = connection && remembered.get(connection);
    if (last && last.entries === entries && sameBytes(Buffer.from(header, 'latin1'), last.header)) {
      return last.identity;
    }
    const match = BEARER.exec(header);
    if (match) {
      const presented = sha256(match[1]!);
      let found: ApiKeyEntry | undefined;
      for (const entry of entries) if (timingSafeEqual(entry.sha256, presented)) found = entry;
      if (found) {
        const identity = Object.freeze({ name: found.name, access: found.access, providers: found.providers });
        if (connection) remembered.set(connection, { header: Buffer.from(header, 'latin1'), entries, identity });
        return identity;
      }
    }
    throw new AppError('unauthorized', UNAUTHORIZED);
  };
}

/** `a` equals `b`, in a time that depends on `b`'s length only. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  if (a.length === b.length) return timingSafeEqual(a, b);
  timingSafeEqual(b, b);
  return false;
}

/** A start-up (or first) load of the keys that failed; `problems` name the file, the entry and the field. */
export class ApiKeysError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid API keys:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ApiKeysError';
  }
}

export type ApiKeysReload = { ok: true; names: string[] } | { ok: false; problems: string[] };

/** The keys in force, swapped whole by {@link ApiKeyHolder.reload} (a SIGHUP). */
export interface ApiKeyHolder {
  current(): readonly ApiKeyEntry[];
  /**
   * Reads API_KEYS_FILE again. A file that does not validate changes nothing: the keys in force
   * stay, and the problems are returned for the log.
   */
  reload(): ApiKeysReload;
}

export interface ApiKeyHolderOptions {
  /** CONNECTOR_API_KEYS: fixed for the life of the process. */
  connectorApiKeys: readonly string[];
  /** API_KEYS_FILE, read now and at each reload. */
  apiKeysFile?: string;
  /** Tells whether a provider id is known (a key limited to an unknown provider is refused). */
  knownProvider?: (id: string) => boolean;
}

/**
 * Loads the keys of CONNECTOR_API_KEYS and API_KEYS_FILE.
 *
 * @throws ApiKeysError when the file does not validate
 */
export function createApiKeyHolder(options: ApiKeyHolderOptions): ApiKeyHolder {
  const connector = connectorApiKeyEntries(options.connectorApiKeys);
  const load = (): ApiKeysReload & { entries?: ApiKeyEntry[] } => {
    if (!options.apiKeysFile) return { ok: true, names: connector.map((e) => e.name), entries: connector };
    const file = readApiKeysFile(options.apiKeysFile, { knownProvider: options.knownProvider, taken: connector });
    if (file.problems.length) return { ok: false, problems: file.problems };
    const entries = [...connector, ...file.entries];
    return { ok: true, names: entries.map((e) => e.name), entries };
  };
  const first = load();
  if (!first.ok) throw new ApiKeysError(first.problems);
  let entries: readonly ApiKeyEntry[] = Object.freeze(first.entries!);
  return {
    current: () => entries,
    reload() {
      const next = load();
      if (!next.ok) return next;
      entries = Object.freeze(next.entries!);
      return { ok: true, names: next.names };
    },
  };
}

/**
 * The service API's key check on a request, a plain function both the Express side and the raw
 * proxy call: the key, and for a wrong or missing one a failure counted against the client's
 * address; an address over its limit gets 429 `rate_limited` instead of 401 until its window
 * ends (a right key is always served: see {@link FailedAttempts}). `identityOf(req)` gives the
 * identity afterwards, for the access log and the error reporter.
 */
export interface ApiKeyGuard {
  (req: IncomingMessage): Promise<ApiKeyIdentity>;
  identityOf(req: IncomingMessage): ApiKeyIdentity | undefined;
}

export interface ApiKeyGuardOptions {
  authenticate: Authenticate;
  failures: FailedAttempts;
  /** The client's address, TRUST_PROXY honoured (the access log's own function). */
  clientAddress: (req: IncomingMessage) => string | undefined;
}

export function createApiKeyGuard(options: ApiKeyGuardOptions): ApiKeyGuard {
  const { authenticate, failures, clientAddress } = options;
  const identities = new WeakMap<IncomingMessage, ApiKeyIdentity>();
  const tooMany = (retryAfter: number) =>
    new AppError(
      'rate_limited',
      `Too many failed API-key attempts from this address (at most ${failures.limit} a minute). Try again in ${retryAfter} s.`,
      { retryAfter },
    );
  const guard = async (req: IncomingMessage): Promise<ApiKeyIdentity> => {
    let identity: ApiKeyIdentity;
    try {
      identity = authenticate(req.headers, req.socket);
    } catch (err) {
      if (!isAppError(err) || err.code !== 'unauthorized') throw err;
      const address = clientAddress(req) ?? 'unknown';
      // Over the limit already: answered from memory, nothing more is counted in the store.
      const blocked = failures.blockedFor(address) || (await failures.record(address));
      throw blocked ? tooMany(blocked) : err;
    }
    identities.set(req, identity);
    return identity;
  };
  return Object.assign(guard, { identityOf: (req: IncomingMessage) => identities.get(req) });
}
