import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { AppError } from '../errors';

/** What a request authenticated with an API key may do (CONTRACT "API keys with a scope"). */
export interface ApiKeyIdentity {
  /** Named in logs and rate limits, never the secret: `key-<first 8 hex of its SHA-256>` for CONNECTOR_API_KEYS. */
  name: string;
  access: 'read' | 'proxy' | 'full';
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
 * the same check; it cannot be handed an Express middleware by mistake.
 */
export type Authenticate = (headers: IncomingHttpHeaders) => ApiKeyIdentity;

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

/**
 * `Authorization: Bearer <key>`, compared in constant time: both sides are hashed first so
 * neither the length nor a prefix of a key shows in the timing, and every entry is compared.
 */
export function createApiKeyAuthenticator(entries: readonly ApiKeyEntry[]): Authenticate {
  return (headers) => {
    const header = headers.authorization;
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    if (match) {
      const presented = sha256(match[1]!);
      let found: ApiKeyEntry | undefined;
      for (const entry of entries) if (timingSafeEqual(entry.sha256, presented)) found = entry;
      if (found) return found;
    }
    throw new AppError('unauthorized', UNAUTHORIZED);
  };
}
