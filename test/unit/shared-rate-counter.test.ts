import { FakeClock } from '../../src/clock';
import { AppError } from '../../src/errors';
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

  describe('while the store is down', () => {
    /** A shared store that stops answering, as Redis does in an outage, while `down` is set. */
    function flakyStore(clock: FakeClock) {
      const shared = sharedStore(clock);
      const state = { down: false, attempts: 0 };
      const store: Pick<Store, 'hit'> = {
        hit: (key, windowMs, by) => {
          state.attempts++;
          if (state.down)
            return Promise.reject(new AppError('store_unavailable', 'The credential store is unavailable'));
          return shared.store.hit(key, windowMs, by);
        },
      };
      return { store, state, calls: shared.calls };
    }

    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    it('fails with store_unavailable unless told to count locally', async () => {
      const clock = new FakeClock();
      const { store, state } = flakyStore(clock);
      state.down = true;
      const counter = new SharedRateCounter(store, { windowMs: 60_000, limit: 4, clock });
      await expect(counter.hit('k')).rejects.toMatchObject({ code: 'store_unavailable' });
      expect(counter.localHits).toBe(0);
    });

    it('counts hits locally against the same limit, then adds them to the shared count once the store answers', async () => {
      const clock = new FakeClock();
      const { store, state, calls } = flakyStore(clock);
      const counter = new SharedRateCounter(store, {
        windowMs: 60_000,
        limit: 4,
        clock,
        flushMs: 100,
        localWhenStoreDown: true,
      });
      state.down = true;
      const counts = [];
      for (let i = 0; i < 5; i++) counts.push((await counter.hit('k')).count);
      // The caller refuses the fifth: the limit holds on this instance's own count.
      expect(counts).toEqual([1, 2, 3, 4, 5]);
      expect(counter.localHits).toBe(5);
      expect(calls).toEqual([]);

      state.down = false;
      await jest.advanceTimersByTimeAsync(100);
      expect(calls).toEqual([5]);
      // Back on the shared count: near the limit, every hit waits for the store again.
      expect((await counter.hit('k')).count).toBe(6);
      expect(calls).toEqual([5, 1]);
      expect(counter.localHits).toBe(5);
    });

    it('goes on from what it knew of the window when the store went down in the middle of it', async () => {
      const clock = new FakeClock();
      const { store, state, calls } = flakyStore(clock);
      const counter = new SharedRateCounter(store, {
        windowMs: 60_000,
        limit: 1000,
        clock,
        flushMs: 100,
        localWhenStoreDown: true,
      });
      expect((await counter.hit('k')).count).toBe(1);
      expect((await counter.hit('k')).count).toBe(2);
      state.down = true;
      await jest.advanceTimersByTimeAsync(100); // the batched hit fails to reach the store
      expect((await counter.hit('k')).count).toBe(3);
      expect((await counter.hit('k')).count).toBe(4);
      state.down = false;
      await jest.advanceTimersByTimeAsync(100);
      expect(calls).toEqual([1, 3]);
      expect((await store.hit('k', 60_000, 0)).count).toBe(4);
    });

    it('asks the store once per flush interval while it is down, not on every hit', async () => {
      const clock = new FakeClock();
      const { store, state } = flakyStore(clock);
      const counter = new SharedRateCounter(store, {
        windowMs: 60_000,
        limit: 4,
        clock,
        flushMs: 100,
        localWhenStoreDown: true,
      });
      state.down = true;
      for (let i = 0; i < 50; i++) await counter.hit('k');
      expect(state.attempts).toBe(1);
      await jest.advanceTimersByTimeAsync(100);
      expect(state.attempts).toBe(2);
      await jest.advanceTimersByTimeAsync(100);
      expect(state.attempts).toBe(3);
      counter.close();
      await jest.advanceTimersByTimeAsync(1000);
      expect(state.attempts).toBe(3);
    });

    it('starts a new local window when the old one ends', async () => {
      const clock = new FakeClock();
      const { store, state } = flakyStore(clock);
      const counter = new SharedRateCounter(store, { windowMs: 60_000, limit: 2, clock, localWhenStoreDown: true });
      state.down = true;
      await counter.hit('k');
      await counter.hit('k');
      expect((await counter.hit('k')).count).toBe(3);
      clock.advance(60_000);
      const fresh = await counter.hit('k');
      expect(fresh).toEqual({ count: 1, resetMs: 60_000 });
      counter.close();
    });

    it('still fails on an error that is not the store being unavailable', async () => {
      const clock = new FakeClock();
      const counter = new SharedRateCounter(
        { hit: () => Promise.reject(new Error('WRONGTYPE')) },
        { windowMs: 60_000, limit: 4, clock, localWhenStoreDown: true },
      );
      await expect(counter.hit('k')).rejects.toThrow('WRONGTYPE');
      expect(counter.localHits).toBe(0);
    });
  });
});
