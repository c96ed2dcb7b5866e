/**
 * Key names. Every key sits under REDIS_KEY_PREFIX; a connection's keys share the hash tag
 * `{provider:connectionId}` so that its multi-key scripts stay in one Redis Cluster slot.
 */
export function createKeys(prefix: string) {
  const tag = (provider: string, connectionId: string) => `{${provider}:${connectionId}}`;
  return {
    connection: (p: string, c: string) => `${prefix}conn:${tag(p, c)}`,
    accessToken: (p: string, c: string) => `${prefix}conn:${tag(p, c)}:at`,
    lock: (name: string) => `${prefix}lock:{${name}}`,
    connectionIndex: () => `${prefix}connections`,
    flowState: (state: string) => `${prefix}flow:{${state}}`,
    connectSession: (tokenHash: string) => `${prefix}cs:{${tokenHash}}`,
    browserSession: (sid: string) => `${prefix}sess:{${sid}}`,
    rate: (key: string) => `${prefix}rl:{${key}}`,
    /** Pub/sub channel (not a key) on which every connection write is announced. */
    connectionChanges: () => `${prefix}connection-changes`,
  };
}

export type Keys = ReturnType<typeof createKeys>;
