import { FakeClock } from '../../src/clock';
import { SharedRateCounter } from '../../src/http/shared-rate-counter';
import { CredentialCipher, type Store } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { MemoryBackend } from '../../src/store/memory-backend';
import { testEncryptionKey } from '../helpers/keys';

/** One shared store (as Redis would be) that counts the calls made to it. */
function sharedStore(clock: FakeClock): { store: Pick<Store, 'hit'>; calls: number[] } {
  const kv = new KvStore({
    backend: new MemoryBackend(clock),
    cipher: new CredentialCipher([testEncryptionKey()]),
    clock,
    prefix: 't:',
  });
  const calls: number[] = [];
  return {
    calls,
    store: {
      hit: (key, windowMs, by = 1) => {
        calls.push(by);
        return kv.hit(key, windowMs, by);
      },
    },
  };
}

const flushed = () => new Promise((resolve) => setImmediate(resolve));

describe('the shared rate counter', () => {
  it('asks the store on the first hit of a window, then batches hits far below the limit', async () => {
    const clock = new FakeClock();
    const { store, calls } = sharedStore(clock);
    const counter = new SharedRateCounter(store, { windowMs: 60_000, limit: 1000, clock, maxPending: 10 });
    expect((await counter.hit('k')).count).toBe(1);
    for (let i = 2; i <= 11; i++) expect((await counter.hit('k')).count).toBe(i);
    await flushed();
    expect(calls).toEqual([1, 10]);
    expect((await store.hit('k', 60_000, 0)).count).toBe(11);
  });

  it('adds a partial batch to the shared count within flushMs', async () => {
    jest.useFakeTimers();
    try {
      const clock = new FakeClock();
      const { store, calls } = sharedStore(clock);
      const counter = new SharedRateCounter(store, { windowMs: 60_000, limit: 1000, clock, flushMs: 100 });
      await counter.hit('k');
      await counter.hit('k');
      await counter.hit('k');
      expect(calls).toEqual([1]);
      jest.advanceTimersByTime(100);
      expect(calls).toEqual([1, 2]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('waits for the store on every hit past half the limit, so two instances refuse exactly at the limit', async () => {
    const clock = new FakeClock();
    const { store } = sharedStore(clock);
    const a = new SharedRateCounter(store, { windowMs: 60_000, limit: 4, clock });
    const b = new SharedRateCounter(store, { windowMs: 60_000, limit: 4, clock });
    const counts = [];
    for (const c of [a, b, a, b, a, b]) counts.push((await c.hit('k')).count);
    expect(counts).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('starts a new window when the old one ends', async () => {
    const clock = new FakeClock();
    const { store } = sharedStore(clock);
    const counter = new SharedRateCounter(store, { windowMs: 60_000, limit: 2, clock });
    await counter.hit('k');
    await counter.hit('k');
    expect((await counter.hit('k')).count).toBe(3);
    clock.advance(60_001);
    const fresh = await counter.hit('k');
    expect(fresh.count).toBe(1);
    expect(fresh.resetMs).toBe(60_000);
  });

  it('keeps keys apart', async () => {
    const clock = new FakeClock();
    const { store } = sharedStore(clock);
    const counter = new SharedRateCounter(store, { windowMs: 60_000, limit: 2, clock });
    await counter.hit('a');
    await counter.hit('a');
    expect((await counter.hit('b')).count).toBe(1);
  });
});
