import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../src/clock';
import { AppError } from '../../src/errors';
import { authorize, canUseProvider } from '../../src/guards/access';
import { ApiKeysError, createApiKeyAuthenticator, createApiKeyHolder } from '../../src/guards/api-keys';
import { createFailedAttempts } from '../../src/guards/failed-attempts';
import type { RateWindow } from '../../src/store';

// `hash` counted (and still computed), to see which checks hash the presented key.
jest.mock('node:crypto', () => {
  const actual = jest.requireActual<typeof import('node:crypto')>('node:crypto');
  return { ...actual, hash: jest.fn(actual.hash) };
});

const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'latchkey-api-keys-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keysFile(entries: unknown): string {
  const path = join(dir, `keys-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(entries));
  return path;
}

describe('the API key holder', () => {
  it('names CONNECTOR_API_KEYS by their hash and gives them full access', () => {
    const holder = createApiKeyHolder({ connectorApiKeys: ['connector-key-0123456789'] });
    const authenticate = createApiKeyAuthenticator(holder);
    expect(authenticate(bearer('connector-key-0123456789'))).toEqual({
      name: `key-${sha256('connector-key-0123456789').slice(0, 8)}`,
      access: 'full',
      providers: null,
    });
  });

  it('swaps the keys on reload, and keeps them when the new file does not validate', () => {
    const path = keysFile([{ name: 'a', sha256: sha256('key-a-0123456789'), access: 'read' }]);
    const holder = createApiKeyHolder({ connectorApiKeys: ['connector-key-0123456789'], apiKeysFile: path });
    const authenticate = createApiKeyAuthenticator(holder);
    expect(authenticate(bearer('key-a-0123456789')).name).toBe('a');

    writeFileSync(
      path,
      JSON.stringify([{ name: 'b', sha256: sha256('key-b-0123456789'), access: 'proxy', providers: ['videoask'] }]),
    );
    expect(holder.reload()).toEqual({
      ok: true,
      names: [`key-${sha256('connector-key-0123456789').slice(0, 8)}`, 'b'],
    });
    expect(authenticate(bearer('key-b-0123456789'))).toEqual({ name: 'b', access: 'proxy', providers: ['videoask'] });
    expect(() => authenticate(bearer('key-a-0123456789'))).toThrow(AppError);
    expect(authenticate(bearer('connector-key-0123456789')).access).toBe('full');

    writeFileSync(path, '[{"name": "c"');
    const failed = holder.reload();
    expect(failed).toEqual({ ok: false, problems: [expect.stringMatching(/^API_KEYS_FILE .*: is not valid JSON/)] });
    expect(authenticate(bearer('key-b-0123456789')).name).toBe('b');
  });

  it('refuses to start on a file that does not validate', () => {
    const path = keysFile([{ name: 'a', sha256: 'short', access: 'read' }]);
    expect(() => createApiKeyHolder({ connectorApiKeys: [], apiKeysFile: path })).toThrow(ApiKeysError);
  });

  it('refuses a key limited to a provider it does not know', () => {
    const path = keysFile([{ name: 'a', sha256: sha256('key-a-0123456789'), access: 'read', providers: ['nope'] }]);
    expect(() =>
      createApiKeyHolder({ connectorApiKeys: [], apiKeysFile: path, knownProvider: (id) => id === 'videoask' }),
    ).toThrow(/entry 1 \("a"\): field "providers" \(item 1\): "nope" is not a known provider/);
  });
});

describe('the key check on a keep-alive connection', () => {
  const connector = 'connector-key-0123456789';
  it('hashes a header once per connection, and again for each other connection', () => {
    const authenticate = createApiKeyAuthenticator(createApiKeyHolder({ connectorApiKeys: [connector] }));
    const hashes = jest.mocked(crypto.hash);
    hashes.mockClear();
    const [socketA, socketB] = [{}, {}];
    const first = authenticate(bearer(connector), socketA);
    expect(authenticate(bearer(connector), socketA)).toBe(first);
    expect(authenticate(bearer(connector), socketA)).toBe(first);
    expect(hashes).toHaveBeenCalledTimes(1);
    expect(authenticate(bearer(connector), socketB)).toEqual(first);
    expect(hashes).toHaveBeenCalledTimes(2);
    // Without a connection nothing is remembered.
    authenticate(bearer(connector));
    authenticate(bearer(connector));
    expect(hashes).toHaveBeenCalledTimes(4);
  });

  it('checks any other header on that connection in full: a wrong key, a near miss, another valid key', () => {
    const path = keysFile([{ name: 'b', sha256: sha256('key-b-0123456789'), access: 'read' }]);
    const authenticate = createApiKeyAuthenticator(
      createApiKeyHolder({ connectorApiKeys: [connector], apiKeysFile: path }),
    );
    const socket = {};
    expect(authenticate(bearer(connector), socket).access).toBe('full');
    for (const wrong of ['connector-key-0123456780', 'connector-key-012345678', 'connector-key-01234567890', '']) {
      expect(() => authenticate(bearer(wrong), socket)).toThrow(AppError);
    }
    expect(() => authenticate({ authorization: `Basic ${connector}` }, socket)).toThrow(AppError);
    expect(() => authenticate({}, socket)).toThrow(AppError);
    expect(authenticate(bearer('key-b-0123456789'), socket)).toEqual({ name: 'b', access: 'read', providers: null });
    expect(authenticate(bearer(connector), socket).access).toBe('full');
  });

  it('forgets what a connection remembered once the keys are reloaded', () => {
    const path = keysFile([{ name: 'a', sha256: sha256('key-a-0123456789'), access: 'proxy' }]);
    const holder = createApiKeyHolder({ connectorApiKeys: [], apiKeysFile: path });
    const authenticate = createApiKeyAuthenticator(holder);
    const socket = {};
    expect(authenticate(bearer('key-a-0123456789'), socket).name).toBe('a');
    writeFileSync(path, JSON.stringify([{ name: 'b', sha256: sha256('key-b-0123456789'), access: 'proxy' }]));
    expect(holder.reload()).toMatchObject({ ok: true });
    // The same connection, the same bytes: the revoked key is refused on its very next request.
    expect(() => authenticate(bearer('key-a-0123456789'), socket)).toThrow(AppError);
    // A reload to a key that hashes the same keeps it working, under its new name and access.
    writeFileSync(path, JSON.stringify([{ name: 'a2', sha256: sha256('key-a-0123456789'), access: 'read' }]));
    expect(holder.reload()).toMatchObject({ ok: true });
    expect(authenticate(bearer('key-a-0123456789'), socket)).toEqual({ name: 'a2', access: 'read', providers: null });
  });
});

describe('authorize', () => {
  const reader = { name: 'r', access: 'read' as const, providers: ['videoask'] };

  it('says what access the key has and what the route needs', () => {
    expect(() => authorize(reader, { access: 'proxy' })).toThrow(
      new AppError('forbidden', 'API key "r" has read access; this route needs proxy access'),
    );
    expect(() => authorize(reader, { access: 'read', provider: 'livestorm' })).toThrow(
      'API key "r" is limited to videoask; it may not use provider "livestorm"',
    );
    expect(() => authorize(reader, { access: 'read', provider: null })).toThrow('it may not use this provider');
    expect(() => authorize(reader, { access: 'read', provider: 'videoask' })).not.toThrow();
    expect(() => authorize({ ...reader, providers: null }, { access: 'read', provider: null })).not.toThrow();
  });

  it('filters lists by provider', () => {
    expect(canUseProvider(reader, 'videoask')).toBe(true);
    expect(canUseProvider(reader, 'livestorm')).toBe(false);
    expect(canUseProvider({ ...reader, providers: null }, 'livestorm')).toBe(true);
  });
});

describe('failed attempts', () => {
  /** A store whose hit() counts per key in fixed windows, like the real ones, and can fail. */
  function fakeStore(clock: FakeClock) {
    const windows = new Map<string, { count: number; resetAt: number }>();
    const store = {
      down: false,
      hits: 0,
      async hit(key: string, windowMs: number): Promise<RateWindow> {
        store.hits++;
        if (store.down) throw new Error('connection refused');
        let w = windows.get(key);
        if (!w || w.resetAt <= clock.now()) windows.set(key, (w = { count: 0, resetAt: clock.now() + windowMs }));
        w.count++;
        return { count: w.count, resetMs: w.resetAt - clock.now() };
      },
    };
    return store;
  }

  it('blocks an address over the limit until its window ends', async () => {
    const clock = new FakeClock();
    const store = fakeStore(clock);
    const failures = createFailedAttempts({ store, clock, limit: 2 });
    expect(await failures.record('a')).toBe(0);
    expect(await failures.record('a')).toBe(0);
    expect(failures.blockedFor('a')).toBe(0);
    expect(await failures.record('a')).toBe(60);
    expect(store.hits).toBe(3);
    clock.advance(45_000);
    expect(failures.blockedFor('a')).toBe(15);
    expect(failures.blockedFor('b')).toBe(0);
    clock.advance(15_000);
    expect(failures.blockedFor('a')).toBe(0);
    expect(await failures.record('a')).toBe(0);
  });

  it('still counts, in memory, while the store does not answer', async () => {
    const clock = new FakeClock();
    const store = fakeStore(clock);
    store.down = true;
    const failures = createFailedAttempts({ store, clock, limit: 1 });
    expect(await failures.record('a')).toBe(0);
    expect(await failures.record('a')).toBeGreaterThan(0);
  });

  it('remembers a bounded number of addresses', async () => {
    const clock = new FakeClock();
    const failures = createFailedAttempts({ store: fakeStore(clock), clock, limit: 1, maxAddresses: 2 });
    for (const address of ['a', 'b', 'c']) {
      await failures.record(address);
      await failures.record(address);
    }
    expect(failures.blockedFor('a')).toBe(0);
    expect(failures.blockedFor('b')).toBeGreaterThan(0);
    expect(failures.blockedFor('c')).toBeGreaterThan(0);
  });

  it('is off at 0', async () => {
    const clock = new FakeClock();
    const store = fakeStore(clock);
    const failures = createFailedAttempts({ store, clock, limit: 0 });
    for (let i = 0; i < 5; i++) expect(await failures.record('a')).toBe(0);
    expect(store.hits).toBe(0);
  });
});
