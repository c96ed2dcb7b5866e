import { FakeClock } from '../../src/clock';
import { CredentialCipher, type Store } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { MemoryBackend } from '../../src/store/memory-backend';
import { startOutboxRecovery } from '../../src/store/outbox-recovery';
import { testEncryptionKey } from '../helpers/keys';
import { connectionInput } from '../helpers/seed';

/** The recovery loop of event outboxes (store/outbox-recovery.ts) on the memory store. */
describe('event outbox recovery', () => {
  let clock: FakeClock;
  let store: Store;

  beforeEach(() => {
    clock = new FakeClock(Date.UTC(2026, 0, 1));
    store = new KvStore({
      backend: new MemoryBackend(clock),
      cipher: new CredentialCipher([testEncryptionKey()]),
      clock,
      prefix: 'lk:',
    });
  });
  afterEach(async () => store.close());

  /** `n` writes whose move to the log failed: their events wait in the outboxes. */
  const strand = async (n: number) => {
    const append = jest.spyOn(store.eventLog, 'appendRecorded');
    for (let i = 0; i < n; i++) {
      append.mockRejectedValueOnce(new Error('died'));
      const input = connectionInput({ provider: 'videoask', connectionId: `c${i}`, credentials: {} }, clock.now());
      await store.saveConnection(input, { type: 'connection.created' });
    }
    append.mockRestore();
  };
  const logged = async () => (await store.eventLog.list({ limit: 1000 })).events.length;

  it('moves the events of marks older than its age, not younger ones', async () => {
    await strand(3);
    const recovery = startOutboxRecovery(store, { intervalMs: 3600_000 });
    await recovery.runNow();
    expect(await logged()).toBe(0);
    clock.advance(60_001);
    await recovery.runNow();
    await recovery.close();
    expect(await logged()).toBe(3);
  });

  it('leaves the work to the instance holding its lock', async () => {
    await strand(2);
    const held = await store.acquireLock('event-outbox-recovery', 60_000);
    const recover = jest.spyOn(store, 'recoverEventOutboxes');
    const recovery = startOutboxRecovery(store, { olderThanMs: 0, intervalMs: 3600_000 });
    await recovery.runNow();
    expect(recover).not.toHaveBeenCalled();
    expect(await logged()).toBe(0);
    await store.releaseLock('event-outbox-recovery', held!);
    await recovery.runNow();
    await recovery.close();
    expect(await logged()).toBe(2);
    expect(await store.isLocked('event-outbox-recovery')).toBe(false);
  });

  it('works in bounded steps: a pass moves at most batch × maxSteps, the next one the rest', async () => {
    await strand(7);
    const recover = jest.spyOn(store, 'recoverEventOutboxes');
    const found: number[] = [];
    const recovery = startOutboxRecovery(store, {
      olderThanMs: 0,
      batch: 2,
      maxSteps: 2,
      intervalMs: 3600_000,
      onRecovered: ({ relayed }) => found.push(relayed),
    });
    await recovery.runNow();
    await recovery.runNow();
    await recovery.close();
    expect(recover.mock.calls.every(([, limit]) => limit === 2)).toBe(true);
    expect(found).toEqual([4, 3]);
    expect(await logged()).toBe(7);
  });
});
