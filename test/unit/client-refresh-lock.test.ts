import { acquireRefreshLock } from '../../src/client/refresh-lock';
import { createLogger } from '../../src/logger';
import { CredentialCipher, type Store } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { MemoryBackend } from '../../src/store/memory-backend';
import { testEncryptionKey } from '../helpers/keys';

describe('refresh lock', () => {
  const logger = createLogger('silent');
  let store: Store;

  beforeEach(() => {
    jest.useFakeTimers({ now: Date.UTC(2026, 0, 1) });
    // The memory backend expires keys against this clock, which jest's fake timers drive.
    const clock = { now: () => Date.now() };
    store = new KvStore({
      backend: new MemoryBackend(clock),
      cipher: new CredentialCipher([testEncryptionKey()]),
      clock,
      prefix: 'lk:',
    });
  });
  afterEach(() => jest.useRealTimers());

  it('stays held past its TTL while the holder works, and lapses once released', async () => {
    const hold = await acquireRefreshLock(store, 'refresh:videoask:c1', 300, logger);
    expect(hold).not.toBeNull();
    await jest.advanceTimersByTimeAsync(3000);
    expect(await store.isLocked('refresh:videoask:c1')).toBe(true);
    expect(await store.acquireLock('refresh:videoask:c1', 300)).toBeNull();
    expect(hold!.lost()).toBe(false);

    await hold!.release();
    expect(await store.isLocked('refresh:videoask:c1')).toBe(false);
  });

  it('is not granted to a second holder', async () => {
    const first = await acquireRefreshLock(store, 'refresh:videoask:c1', 300, logger);
    expect(await acquireRefreshLock(store, 'refresh:videoask:c1', 300, logger)).toBeNull();
    await first!.release();
  });

  it('reports the lock lost when an extension finds someone else holding it, and never releases theirs', async () => {
    const hold = await acquireRefreshLock(store, 'refresh:videoask:c1', 300, logger);
    // Simulate a lapse: the lock expires (no extension reached Redis) and another instance takes it.
    const stalled: Store = Object.assign(Object.create(store) as Store, { extendLock: async () => false });
    const stalledHold = await acquireRefreshLock(stalled, 'refresh:videoask:c2', 300, logger);
    await jest.advanceTimersByTimeAsync(400);
    expect(stalledHold!.lost()).toBe(true);
    const other = await store.acquireLock('refresh:videoask:c2', 60_000);
    expect(other).not.toBeNull();
    await stalledHold!.release();
    expect(await store.isLocked('refresh:videoask:c2')).toBe(true);
    await hold!.release();
  });
});
