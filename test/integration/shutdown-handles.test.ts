import { startLatchkey } from '../../src/server';
import { createLogger } from '../../src/logger';
import { videoaskSandboxSource } from '../../src/sandbox/provider-entry';
import { createSandbox } from '../../src/sandbox/sandbox';
import { encryptionKeyEnv, testEncryptionKey } from '../helpers/keys';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { seedOAuthConnection } from '../helpers/seed';

const API_KEY = 'handles-api-key-0123456789abcdef';

/** Node's count of live handles and requests by kind (sockets, servers, timers). */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** Kinds that have more live resources now than in `before`. */
function grown(before: Map<string, number>): Record<string, number> {
  const more: Record<string, number> = {};
  for (const [kind, n] of resources()) if (n > (before.get(kind) ?? 0)) more[kind] = n - (before.get(kind) ?? 0);
  return more;
}

/**
 * Issue 13 part 3: whoever opens a resource closes it. A Latchkey that proxied calls (undici
 * pools with keep-alive sockets), counted rate limits (flush timers), cached credentials and
 * listened on Redis pub/sub leaves no handle behind once `close()` resolves.
 */
describe.each([
  ['the memory store', false],
  ['Redis', true],
])('shutdown on %s', (_name, onRedis) => {
  it('closes the upstream pools, timers, the pub/sub feed and the store: no handle outlives close()', async () => {
    const sandbox = createSandbox();
    const upstream = await sandbox.listen();
    const prefix = uniquePrefix('handles');
    const before = resources();
    const latchkey = await startLatchkey({
      env: {
        NODE_ENV: 'test',
        PORT: '0',
        TOKEN_ENCRYPTION_KEYS: encryptionKeyEnv(testEncryptionKey()),
        SESSION_SECRET: 'handles-session-secret-0123456789',
        CONNECTOR_API_KEYS: API_KEY,
        VIDEOASK_CLIENT_ID: 'sandbox-client',
        VIDEOASK_CLIENT_SECRET: 'sandbox-secret',
        SERVICE_RATE_LIMIT_PER_MINUTE: '100000',
        ...(onRedis ? { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix } : {}),
      },
      providerSources: [videoaskSandboxSource(upstream.url)],
      logger: createLogger('silent'),
    });
    try {
      await seedOAuthConnection(latchkey.store, sandbox, { connectionId: 'handles' });
      // A few proxied calls: a pooled keep-alive socket, batched rate counts, a cached credential.
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${latchkey.url}/proxy/videoask/me`, {
          headers: { authorization: `Bearer ${API_KEY}`, 'connection-id': 'handles' },
        });
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
      expect(Object.keys(grown(before)).length).toBeGreaterThan(0);
    } finally {
      await latchkey.close();
    }
    // Sockets closed by close() finish their TCP close a few ticks later (on both ends, the
    // sandbox's being in this process too); a socket left open (a pool's keep-alive socket stays
    // 30 s, a subscriber for ever) would still be here after this bound.
    for (let i = 0; i < 200 && Object.keys(grown(before)).length; i++) await new Promise((r) => setTimeout(r, 10));
    expect(grown(before)).toEqual({});
    await upstream.close();
    if (onRedis) {
      const raw = rawRedis();
      await deleteUnder(raw, prefix);
      raw.disconnect();
    }
  });
});
