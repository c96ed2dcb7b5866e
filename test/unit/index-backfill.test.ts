import { FakeClock } from '../../src/clock';
import { CredentialCipher } from '../../src/store';
import { startIndexBackfill } from '../../src/store/index-backfill';
import { KvStore } from '../../src/store/kv-store';
import { MemoryBackend } from '../../src/store/memory-backend';
import { writeFirstReleaseConnection } from '../helpers/first-release';
import { testEncryptionKey } from '../helpers/keys';

/** The start-up backfill of the listing index (issue 11 part 6) on a store the first release wrote. */
describe('listing index backfill at start', () => {
  const clock = new FakeClock(Date.now());
  let backend: MemoryBackend;
  const open = () =>
    new KvStore({ backend, cipher: new CredentialCipher([testEncryptionKey()]), clock, prefix: 'lk:' });
  const counts = async (store: KvStore) =>
    Object.fromEntries((await store.connectionCounts()).map((c) => [`${c.provider}/${c.status}`, c.count]));

  beforeEach(async () => {
    backend = new MemoryBackend(clock);
    for (let i = 0; i < 25; i++) {
      const status = i % 5 === 0 ? 'reauth_required' : 'active';
      await writeFirstReleaseConnection(backend, 'lk:', {
        provider: 'webinargeek',
        connectionId: `old-${String(i).padStart(2, '0')}`,
        authMode: 'api_key',
        status,
      });
    }
  });

  it('indexes every connection in bounded steps, marks the index ready, releases its lock, and a re-run changes nothing', async () => {
    const store = open();
    const steps = jest.spyOn(store, 'backfillConnectionIndex');
    const backfill = startIndexBackfill(store, { batch: 4 });
    await backfill.firstPass;
    expect(steps.mock.calls.length).toBeGreaterThanOrEqual(7);
    expect(steps.mock.calls.every(([batch]) => batch === 4)).toBe(true);
    expect(await counts(store)).toEqual({ 'webinargeek/active': 20, 'webinargeek/reauth_required': 5 });
    expect(await store.isLocked('connection-index-backfill')).toBe(false);
    await backfill.close();
    const again = startIndexBackfill(open(), { batch: 100 });
    await again.firstPass;
    await again.close();
    expect(await counts(store)).toEqual({ 'webinargeek/active': 20, 'webinargeek/reauth_required': 5 });
    const page = await store.queryConnections({ status: 'reauth_required', limit: 2 });
    expect([page.connections.map((c) => c.connectionId), page.more]).toEqual([['old-00', 'old-05'], true]);
  });

  it('leaves the work to the instance holding the lock, and closes at once', async () => {
    const store = open();
    const holder = await store.acquireLock('connection-index-backfill', 60_000);
    expect(holder).not.toBeNull();
    const steps = jest.spyOn(store, 'backfillConnectionIndex');
    const backfill = startIndexBackfill(store, { batch: 4 });
    await backfill.close();
    await backfill.firstPass;
    expect(steps).not.toHaveBeenCalled();
    expect(await counts(store)).toEqual({});
    // Listing still answers, from every connection, before any pass.
    expect((await store.queryConnections({ status: 'reauth_required', limit: 10 })).connections).toHaveLength(5);
  });

  it('resumes a pass another instance left half done', async () => {
    const first = open();
    expect((await first.backfillConnectionIndex(10)).passDone).toBe(false);
    const second = open();
    const steps = jest.spyOn(second, 'backfillConnectionIndex');
    const backfill = startIndexBackfill(second, { batch: 10 });
    await backfill.firstPass;
    await backfill.close();
    expect(steps).toHaveBeenCalledTimes(2);
    expect(await counts(second)).toEqual({ 'webinargeek/active': 20, 'webinargeek/reauth_required': 5 });
  });
});
