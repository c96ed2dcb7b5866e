import { Writable } from 'node:stream';
import { systemClock } from '../../src/clock';
import { createLogger } from '../../src/logger';
import { startLatchkey, type RunningLatchkey } from '../../src/server';
import { CredentialCipher } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient, waitForReady } from '../../src/store/redis-client';
import { connectVideoAsk, startHarness, type Harness } from '../helpers/harness';
import { encryptionKeyEnv, testEncryptionKey } from '../helpers/keys';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { connectionInput, seedApiKeyConnection } from '../helpers/seed';

/**
 * SECURITY.md 26: one record that no configured key opens stays one bad record. Written with k1,
 * then Latchkey is started again with only k2 on the same Redis.
 */

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

const k1 = testEncryptionKey('k1');
const k2 = testEncryptionKey('k2');
const keyMaterial = [k1, k2].flatMap((k) => [k.key.toString('base64'), k.key.toString('base64url')]);

function expectNoKeyMaterial(text: string): void {
  for (const material of keyMaterial) expect(text).not.toContain(material);
}

describe('a connection sealed with a key that is no longer configured', () => {
  const prefix = uniquePrefix('unreadable');
  let before: Harness;
  let after: Harness;
  let running: RunningLatchkey | undefined;

  beforeAll(async () => {
    before = await startHarness({
      env: { TOKEN_ENCRYPTION_KEYS: encryptionKeyEnv(k1), REDIS_KEY_PREFIX: prefix },
      sandbox: { apiKeys: ['wg-key-1'] },
    });
    expect((await connectVideoAsk(before.browser(), '?connection_id=old')).status).toBe(303);
    await seedApiKeyConnection(before.store, 'webinargeek', 'old-key', 'wg-key-1');
    // The restart: a new app on the same Redis and prefix, with only k2.
    after = await startHarness({ env: { TOKEN_ENCRYPTION_KEYS: encryptionKeyEnv(k2), REDIS_KEY_PREFIX: prefix } });
    expect((await connectVideoAsk(after.browser(), '?connection_id=new')).status).toBe(303);
  });
  afterAll(async () => {
    await running?.close();
    await after?.close();
    await before?.close();
  });

  it('is still listed, with the connections that are fine', async () => {
    const res = await after.api().get('/connections');
    expect(res.status).toBe(200);
    expect(
      res.body.connections.map((c: { provider: string; connection_id: string }) => `${c.provider}/${c.connection_id}`),
    ).toEqual(['videoask/new', 'videoask/old', 'webinargeek/old-key']);
    const old = res.body.connections[1];
    expect(old).toMatchObject({ provider: 'videoask', connection_id: 'old', status: 'active' });
    expect((await after.api().get('/connections?provider=webinargeek')).body.connections).toHaveLength(1);
  });

  it('is answered by GET from its plaintext fields', async () => {
    const res = await after.api().get('/connections/videoask/old');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ provider: 'videoask', connection_id: 'old', status: 'active' });
    expect(Object.keys(res.body)).not.toContain('access_token');
  });

  it.each([
    ['the token route', (h: Harness) => h.api().get('/connections/videoask/old/token')],
    ['a forced refresh', (h: Harness) => h.api().post('/connections/videoask/old/refresh')],
    ['the proxy', (h: Harness) => h.api().get('/proxy/videoask/echo').set('Connection-Id', 'old')],
    ['the token route of an api_key connection', (h: Harness) => h.api().get('/connections/webinargeek/old-key/token')],
    [
      'the proxy to an api_key connection',
      (h: Harness) => h.api().get('/proxy/webinargeek/webinars').set('Connection-Id', 'old-key'),
    ],
  ])('makes %s answer 409 credential_unreadable naming k1, and nothing reaches the provider', async (_name, call) => {
    const sent = after.sandbox.stats.requests.length;
    const res = await call(after);
    expect(res.status).toBe(409);
    expect(res.headers['latchkey-error']).toBe('credential_unreadable');
    expect(res.body.error.code).toBe('credential_unreadable');
    expect(res.body.error.message).toContain('"k1"');
    expect(res.body.error.message).not.toMatch(/unable to authenticate|Unsupported state/);
    expectNoKeyMaterial(res.text);
    expect(after.sandbox.stats.requests.length).toBe(sent);
  });

  it('leaves every other connection working', async () => {
    const token = await after.api().get('/connections/videoask/new/token');
    expect(token.status).toBe(200);
    expect(token.body.access_token).toEqual(expect.any(String));
    const proxied = await after.api().get('/proxy/videoask/echo').set('Connection-Id', 'new');
    expect(proxied.status).toBe(200);
  });

  it('is named at start-up, with the number of connections and how far the check went', async () => {
    const { logger, lines } = capture();
    running = await startLatchkey({
      env: {
        NODE_ENV: 'test',
        PORT: '0',
        REDIS_URL: TEST_REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        TOKEN_ENCRYPTION_KEYS: encryptionKeyEnv(k2),
        RATE_LIMIT_PER_MINUTE: '0',
      },
      logger,
    });
    const warning = lines.find((l) => String(l.msg).includes('cannot be decrypted'));
    expect(warning).toMatchObject({
      level: 40,
      checked: 3,
      complete: true,
      unreadable: [{ keyId: 'k1', reason: 'unknown_key', connections: 2 }],
    });
    expect(warning!.msg).toContain('2 stored connections cannot be decrypted: 2 sealed with key "k1"');
    expect(warning!.msg).toContain('all 3 stored connections checked');
    expectNoKeyMaterial(JSON.stringify(lines));
    await running.close();
    running = undefined;
  });

  it('is removed by DELETE, which says no revocation was possible', async () => {
    const res = await after.api().delete('/connections/videoask/old');
    expect(res.status).toBe(204);
    expect(res.headers['latchkey-revocation']).toBe('not_possible');
    expect((await after.api().get('/connections/videoask/old')).status).toBe(404);
    const key = await after.api().delete('/connections/webinargeek/old-key');
    expect(key.status).toBe(204);
    expect(key.headers['latchkey-revocation']).toBe('not_supported');
    const list = await after.api().get('/connections');
    expect(list.body.connections.map((c: { connection_id: string }) => c.connection_id)).toEqual(['new']);
  });
});

describe('the development key (TOKEN_ENCRYPTION_KEYS unset)', () => {
  const prefix = uniquePrefix('devkey');
  const raw = rawRedis();
  const started: RunningLatchkey[] = [];
  afterAll(async () => {
    for (const r of started) await r.close();
    await deleteUnder(raw, prefix);
    raw.disconnect();
  });

  const env = {
    NODE_ENV: 'development',
    PORT: '0',
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    RATE_LIMIT_PER_MINUTE: '0',
  };

  it('has a random id per start, so a restart reports the old key id instead of failing to decrypt', async () => {
    const first = await startLatchkey({ env, logger: createLogger('silent') });
    started.push(first);
    const firstKey = first.config.tokenEncryptionKeys[0]!;
    expect(firstKey.id).toMatch(/^dev-[0-9a-f]{8}$/);
    const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
    await waitForReady(client, 5000);
    const store = new KvStore({
      backend: new RedisBackend(client),
      cipher: new CredentialCipher([firstKey]),
      clock: systemClock,
      prefix,
    });
    await store.saveConnection(
      connectionInput({
        provider: 'videoask',
        connectionId: 'dev',
        credentials: { accessToken: 'a', refreshToken: 'r' },
      }),
    );
    await store.close();

    const { logger, lines } = capture();
    const second = await startLatchkey({ env, logger });
    started.push(second);
    const secondId = second.config.tokenEncryptionKeys[0]!.id;
    expect(secondId).toMatch(/^dev-[0-9a-f]{8}$/);
    expect(secondId).not.toBe(firstKey.id);
    const warning = lines.find((l) => String(l.msg).includes('cannot be decrypted'));
    expect(warning).toMatchObject({ unreadable: [{ keyId: firstKey.id, reason: 'unknown_key', connections: 1 }] });
  });
});
