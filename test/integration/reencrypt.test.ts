import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { FakeClock } from '../../src/clock';
import { refreshLockName } from '../../src/client/refresh-lock';
import { CredentialCipher, type ConnectionInput, type Store } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient, waitForReady } from '../../src/store/redis-client';
import { main } from '../../src/tools/reencrypt';
import { reencryptConnections } from '../../src/tools/reencrypt-connections';
import { encryptionKeyEnv, testEncryptionKey } from '../helpers/keys';
import { deleteUnder, keysUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { connectionInput } from '../helpers/seed';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');

describe('re-encrypting every connection with the first key', () => {
  const oldKey = testEncryptionKey('old');
  const newKey = testEncryptionKey('new');
  const clock = new FakeClock(Date.now());
  const raw = rawRedis();
  let prefix: string;
  const clients: Array<ReturnType<typeof createRedisClient>> = [];

  async function storeWith(keys: (typeof oldKey)[]): Promise<KvStore> {
    const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
    clients.push(client);
    await waitForReady(client, 5000);
    return new KvStore({ backend: new RedisBackend(client), cipher: new CredentialCipher(keys), clock, prefix });
  }

  const oauth = (connectionId: string, over: Partial<ConnectionInput> = {}): ConnectionInput =>
    connectionInput(
      {
        provider: 'videoask',
        connectionId,
        scopes: ['openid'],
        account: { id: 'u1', label: 'someone@example.com' },
        credentials: {
          accessToken: `canary-at-${connectionId}`,
          refreshToken: `canary-rt-${connectionId}`,
          tokenType: 'Bearer',
        },
        ...over,
      },
      clock.now(),
    );

  /** The key id of every sealed value under the prefix: the secrets of each connection and each access token. */
  async function sealedKeyIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const key of (await keysUnder(raw, prefix)).sort()) {
      if (key.endsWith(':at')) ids.push(CredentialCipher.keyIdOf((await raw.get(key))!)!);
      else if (key.includes(':conn:')) {
        const meta = JSON.parse((await raw.hget(key, 'd'))!) as { secrets: string };
        ids.push(CredentialCipher.keyIdOf(meta.secrets)!);
      }
    }
    return ids;
  }

  beforeEach(async () => {
    prefix = uniquePrefix('reencrypt');
    const before = await storeWith([oldKey]);
    await before.saveConnection(oauth('c1'));
    await before.saveConnection(oauth('c2', { expiresAt: null }));
    await before.saveConnection({
      ...oauth('c3'),
      provider: 'webinargeek',
      authMode: 'api_key',
      expiresAt: null,
      credentials: { apiKey: 'canary-api-key-c3' },
    });
  });

  afterEach(async () => {
    await deleteUnder(raw, prefix);
    await Promise.all(clients.splice(0).map((c) => c.quit()));
  });
  afterAll(() => raw.disconnect());

  it('seals every value with the new first key, keeps the credentials, and prints counts but no secret', async () => {
    expect(await sealedKeyIds()).toEqual(['old', 'old', 'old', 'old', 'old']);
    const out = new PassThrough();
    let printed = '';
    out.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    const code = await main(
      {
        NODE_ENV: 'test',
        REDIS_URL: TEST_REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        TOKEN_ENCRYPTION_KEYS: [newKey, oldKey].map(encryptionKeyEnv).join(','),
      },
      out,
    );
    expect(code).toBe(0);
    expect(await sealedKeyIds()).toEqual(['new', 'new', 'new', 'new', 'new']);

    const onlyNew = await storeWith([newKey]);
    expect((await onlyNew.getConnection('videoask', 'c1'))?.credentials).toEqual(oauth('c1').credentials);
    expect((await onlyNew.getConnection('videoask', 'c2'))?.credentials).toEqual(oauth('c2').credentials);
    expect((await onlyNew.getConnection('webinargeek', 'c3'))?.credentials.apiKey).toBe('canary-api-key-c3');
    expect((await onlyNew.getConnection('videoask', 'c1'))?.updatedAt).toBe(oauth('c1').updatedAt);

    expect(printed).toContain('with key "new"');
    expect(printed).toContain('connections: 3, re-encrypted: 3, gone meanwhile: 0, failed: 0, unreadable: 0');
    expect(printed).not.toMatch(/canary|base64|[A-Za-z0-9+/]{43}=/);
    expect(printed).not.toContain(newKey.key.toString('base64'));
  });

  it('retries a connection whose version moved between its read and its write', async () => {
    const store = await storeWith([newKey, oldKey]);
    const writer = await storeWith([oldKey]);
    let raced = false;
    const racing: Store = Object.create(store, {
      updateConnection: {
        value: async (input: ConnectionInput, version: number) => {
          if (!raced && input.connectionId === 'c1') {
            raced = true;
            // A new authorization lands in between: it wins, and the rewrite starts over.
            await writer.saveConnection(
              oauth('c1', { credentials: { accessToken: 'canary-at-new', refreshToken: 'canary-rt-new' } }),
            );
          }
          return store.updateConnection(input, version);
        },
      },
    });
    const report = await reencryptConnections(racing, { pauseMs: 1 });
    expect(raced).toBe(true);
    expect(report).toEqual({ total: 3, reencrypted: 3, gone: 0, failed: 0, unreadable: 0, unreadableKeys: [] });
    expect(await sealedKeyIds()).toEqual(['new', 'new', 'new', 'new', 'new']);
    expect((await store.getConnection('videoask', 'c1'))?.credentials.refreshToken).toBe('canary-rt-new');
  });

  it('leaves a connection alone while its refresh lock is held, reports it, and gets it on the next run', async () => {
    const store = await storeWith([newKey, oldKey]);
    const lock = refreshLockName('videoask', 'c2');
    const token = await store.acquireLock(lock, 10_000);
    const versionBefore = (await store.getConnection('videoask', 'c2'))!.version;

    const busy = await reencryptConnections(store, { attempts: 3, pauseMs: 1 });
    expect(busy).toEqual({ total: 3, reencrypted: 2, gone: 0, failed: 1, unreadable: 0, unreadableKeys: [] });
    expect((await store.getConnection('videoask', 'c2'))!.version).toBe(versionBefore);
    expect(await store.isLocked(lock)).toBe(true);

    await store.releaseLock(lock, token!);
    expect(await reencryptConnections(store, { attempts: 3, pauseMs: 1 })).toEqual({
      total: 3,
      reencrypted: 3,
      gone: 0,
      failed: 0,
      unreadable: 0,
      unreadableKeys: [],
    });
    expect(await sealedKeyIds()).toEqual(['new', 'new', 'new', 'new', 'new']);
  });

  it('runs as a command and exits 1, naming the missing key id, when a value was sealed with a key no longer configured', async () => {
    const env = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      TOKEN_ENCRYPTION_KEYS: encryptionKeyEnv(newKey),
    };
    const failed = await run(process.execPath, ['--import', 'tsx', 'src/tools/reencrypt.ts'], { cwd: ROOT, env }).then(
      () => null,
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stdout).toContain('unknown key "old"');
    expect(failed?.stdout).toContain('connections: 3, re-encrypted: 0, gone meanwhile: 0, failed: 0, unreadable: 3');
    expect(`${failed?.stdout}${failed?.stderr}`).not.toContain('canary');
    expect(await sealedKeyIds()).toEqual(['old', 'old', 'old', 'old', 'old']);

    const ok = await run(process.execPath, ['--import', 'tsx', 'src/tools/reencrypt.ts'], {
      cwd: ROOT,
      env: { ...env, TOKEN_ENCRYPTION_KEYS: [newKey, oldKey].map(encryptionKeyEnv).join(',') },
    });
    expect(ok.stdout).toContain('re-encrypted: 3');
    expect(await sealedKeyIds()).toEqual(['new', 'new', 'new', 'new', 'new']);
  });
  it('re-encrypts the connections it can open, counts the others as unreadable by key id, and leaves them as they are', async () => {
    const lost = testEncryptionKey('lost');
    const writer = await storeWith([lost]);
    await writer.saveConnection(oauth('c4'));
    const store = await storeWith([newKey, oldKey]);
    const report = await reencryptConnections(store, { pauseMs: 1 });
    expect(report).toEqual({
      total: 4,
      reencrypted: 3,
      gone: 0,
      failed: 0,
      unreadable: 1,
      unreadableKeys: [{ keyId: 'lost', reason: 'unknown_key' }],
    });
    expect(await sealedKeyIds()).toEqual(['new', 'new', 'new', 'new', 'lost', 'lost', 'new']);
    expect((await (await storeWith([lost])).getConnection('videoask', 'c4'))?.credentials).toEqual(
      oauth('c4').credentials,
    );
  });

  it('keeps every plaintext field of a connection it rewrites (status, scopes, account, times, config, metadata)', async () => {
    const writer = await storeWith([oldKey]);
    await writer.saveConnection(
      oauth('c5', {
        status: 'reauth_required',
        scopes: ['a', 'b'],
        lastRefreshedAt: clock.now() - 5000,
        config: { subdomain: 'acme' },
        metadata: { organizationId: 'org-1', seats: 3, trial: true },
      }),
    );
    const before = await writer.getConnectionInfo('videoask', 'c5');
    await reencryptConnections(await storeWith([newKey, oldKey]), { pauseMs: 1 });
    const after = await (await storeWith([newKey])).getConnectionInfo('videoask', 'c5');
    expect(after).toEqual({ ...before, version: before!.version + 1 });
    expect(after).toMatchObject({
      config: { subdomain: 'acme' },
      metadata: { organizationId: 'org-1', seats: 3, trial: true },
    });
  });
});
