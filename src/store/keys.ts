import { createHash } from 'node:crypto';

/**
 * Key names. Every key sits under REDIS_KEY_PREFIX; a connection's keys share the hash tag
 * `{provider:connectionId}` so that its multi-key scripts stay in one Redis Cluster slot.
 *
 * Flow states, connect sessions and browser sessions are named by the SHA-256 of their id, never
 * the id itself (SECURITY.md 20): a reader of the key names cannot present one. The ids are at
 * least 192 random bits (states and link tokens 256, express-session ids 192), so a plain hash is
 * enough: there is nothing to guess that a keyed hash would protect.
 */
export function createKeys(prefix: string) {
  const tag = (provider: string, connectionId: string) => `{${provider}:${connectionId}}`;
  return {
    connection: (p: string, c: string) => `${prefix}conn:${tag(p, c)}`,
    accessToken: (p: string, c: string) => `${prefix}conn:${tag(p, c)}:at`,
    /** Events written with a change of the connection and not yet moved to the log (event-outbox.ts). */
    outbox: (p: string, c: string) => `${prefix}conn:${tag(p, c)}:outbox`,
    lock: (name: string) => `${prefix}lock:{${name}}`,
    connectionIndex: () => `${prefix}connections`,
    flowState: (state: string) => `${prefix}fs:{${hashId(state)}}`,
    connectSession: (token: string) => `${prefix}cs:{${hashId(token)}}`,
    browserSession: (sid: string) => `${prefix}bs:{${hashId(sid)}}`,
    /** Where the first release kept a browser session, in the clear under its id: read once, then moved. */
    legacyBrowserSession: (sid: string) => `${prefix}sess:{${sid}}`,
    rate: (key: string) => `${prefix}rl:{${key}}`,
    /** Pub/sub channel (not a key) on which every connection write is announced. */
    connectionChanges: () => `${prefix}connection-changes`,
  };
}

export type Keys = ReturnType<typeof createKeys>;

/** SHA-256, base64url: the name under which an id's record is kept. */
export function hashId(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}
