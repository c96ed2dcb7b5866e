import type { FakeClock } from '../../src/clock';
import type { ConnectionInfo, ConnectionInput, Store } from '../../src/store';
import type { KvBackend } from '../../src/store/backend';
import { writeFirstReleaseConnection } from './first-release';

export interface KeepAliveContractStore {
  store: Store;
  peer: () => Promise<Store>;
  backend: KvBackend;
  prefix: string;
  clock: FakeClock;
}

const HOUR = 3600_000;

/**
 * The keep-alive index of due times (issue 11 part 3, 6), part of the store contract: every store
 * passes it on memory, Redis and Redis Cluster. `get` gives the store of the running case.
 */
export function keepAliveContract(get: () => KeepAliveContractStore): void {
  describe('keep-alive index', () => {
    let store: Store;
    let backend: KvBackend;
    let prefix: string;
    let clock: FakeClock;
    let peer: () => Promise<Store>;

    beforeEach(() => {
      ({ store, backend, prefix, clock, peer } = get());
    });

    const input = (connectionId: string, over: Partial<ConnectionInput> = {}): ConnectionInput => ({
      provider: 'videoask',
      connectionId,
      authMode: 'oauth2',
      status: 'active',
      scopes: [],
      expiresAt: clock.now() + HOUR,
      createdAt: clock.now(),
      updatedAt: clock.now(),
      lastRefreshedAt: null,
      account: null,
      credentials: { accessToken: 'at', refreshToken: 'rt' },
      ...over,
    });
    const since = (connectionId: string, provider = 'videoask') =>
      store.keepAlive.scheduledSince(provider, connectionId);

    it('schedules an active oauth2 connection with a refresh token from its last refresh, or its connect', async () => {
      await store.saveConnection(input('fresh'));
      expect(await since('fresh')).toBe(clock.now());
      const refreshedAt = clock.now() - 2 * HOUR;
      await store.saveConnection(input('refreshed', { lastRefreshedAt: refreshedAt }));
      expect(await since('refreshed')).toBe(refreshedAt);
    });

    it('leaves out what cannot be refreshed: no refresh token, api_key, reauth_required; and drops it on such a write or a delete', async () => {
      await store.saveConnection(input('no-rt', { credentials: { accessToken: 'at' } }));
      await store.saveConnection(
        input('key', { provider: 'webinargeek', authMode: 'api_key', expiresAt: null, credentials: { apiKey: 'k' } }),
      );
      await store.saveConnection(input('broken', { status: 'reauth_required' }));
      expect([await since('no-rt'), await since('key', 'webinargeek'), await since('broken')]).toEqual([
        null,
        null,
        null,
      ]);

      const saved = await store.saveConnection(input('marked'));
      expect(await since('marked')).not.toBeNull();
      const { version, ...rest } = saved;
      await store.updateConnection({ ...rest, status: 'reauth_required' }, version);
      expect(await since('marked')).toBeNull();

      await store.saveConnection(input('deleted'));
      await store.deleteConnection('videoask', 'deleted');
      expect(await since('deleted')).toBeNull();
    });

    it('claims due connections oldest first, once: a claimed one is not due again until its claim lapses', async () => {
      const now = clock.now();
      for (const [id, idle] of [
        ['idle-3h', 3],
        ['idle-2h', 2],
        ['idle-30m', 0.5],
      ] as const) {
        await store.saveConnection(input(id, { lastRefreshedAt: now - idle * HOUR }));
      }
      expect(await store.keepAlive.countDue('videoask', now - HOUR)).toBe(2);
      expect(await store.keepAlive.claimDue('videoask', now - HOUR, now + 60_000, 1)).toEqual(['idle-3h']);
      expect(await store.keepAlive.claimDue('videoask', now - HOUR, now + 60_000, 10)).toEqual(['idle-2h']);
      expect(await store.keepAlive.claimDue('videoask', now - HOUR, now + 60_000, 10)).toEqual([]);
      expect(await store.keepAlive.countDue('videoask', now - HOUR)).toBe(0);
      expect(await since('idle-3h')).toBe(now + 60_000);
      // The claims lapse: due again for whoever looks then (with the one idle for 30 minutes, oldest first).
      expect(await store.keepAlive.claimDue('videoask', now + 60_000, now + 120_000, 10)).toEqual([
        'idle-30m',
        'idle-2h',
        'idle-3h',
      ]);
      // Another provider's set is its own.
      expect(await store.keepAlive.claimDue('livestorm', now, now + 60_000, 10)).toEqual([]);
    });

    it('of instances claiming at the same moment, each due connection goes to exactly one', async () => {
      const now = clock.now();
      const ids = Array.from({ length: 30 }, (_, i) => `c-${String(i).padStart(2, '0')}`);
      for (const id of ids) await store.saveConnection(input(id, { lastRefreshedAt: now - 2 * HOUR }));
      const peers = [store, await peer(), await peer()];
      const claims = await Promise.all(
        peers.flatMap((s) => [0, 1, 2, 3].map(() => s.keepAlive.claimDue('videoask', now - HOUR, now + 60_000, 4))),
      );
      const claimed = claims.flat();
      expect(claimed.sort()).toEqual(ids);
    });

    it('is written again by every write: a refresh moves the due time, a metadata change does not', async () => {
      const saved = await store.saveConnection(input('moved', { lastRefreshedAt: clock.now() - 5 * HOUR }));
      await store.keepAlive.claimDue('videoask', clock.now(), clock.now() + 60_000, 10);
      clock.advance(1000);
      const { version, ...rest } = saved;
      const refreshedAt = clock.now();
      const refreshed = await store.updateConnection(
        { ...rest, lastRefreshedAt: refreshedAt, updatedAt: refreshedAt },
        version,
      );
      expect(await since('moved')).toBe(refreshedAt);
      // A PATCH of metadata moves updatedAt, not the grant: the keep-alive is not postponed.
      clock.advance(1000);
      const { version: v2, ...patched } = refreshed!;
      await store.updateConnection({ ...patched, metadata: { note: 'x' }, updatedAt: clock.now() }, v2);
      expect(await since('moved')).toBe(refreshedAt);
      // Never refreshed: it counts from its creation, whatever updatedAt says.
      await store.saveConnection(input('never', { createdAt: clock.now() - 3 * HOUR, updatedAt: clock.now() }));
      expect(await since('never')).toBe(clock.now() - 3 * HOUR);
    });

    describe('backfill of connections written by the first release', () => {
      /** Writes a connection as the first release does: no keep-alive index (nor listing index). */
      const writeAsFirstRelease = (connectionId: string, fields: Partial<ConnectionInfo> = {}) =>
        writeFirstReleaseConnection(backend, prefix, {
          provider: 'videoask',
          connectionId,
          updatedAt: clock.now() - 48 * HOUR,
          ...fields,
        });
      /** A plan as the app's: overdue ones get a jittered time; this one's "jitter" is recorded. */
      const plan = (planned: string[]) => (info: ConnectionInfo) => {
        if (info.status !== 'active') return null;
        planned.push(info.connectionId);
        return 1000 + planned.length;
      };
      const runToEnd = async (s: Store, batch: number, planned: string[]) => {
        let steps = 0;
        for (;;) {
          steps++;
          const step = await s.keepAlive.backfillStep(batch, plan(planned));
          if (step.passDone) return steps;
        }
      };

      it('schedules each connection without a due time at the plan, in bounded steps, and a re-run changes nothing', async () => {
        for (let i = 0; i < 12; i++) await writeAsFirstRelease(`old-${String(i).padStart(2, '0')}`);
        await writeAsFirstRelease('old-broken', { status: 'reauth_required' });
        await store.saveConnection(input('new', { lastRefreshedAt: clock.now() }));

        const planned: string[] = [];
        const first = await store.keepAlive.backfillStep(5, plan(planned));
        expect(first.passDone).toBe(false);
        // About the batch, not all 13: SSCAN's COUNT is a hint (a hash bucket's members come together).
        expect(planned.length).toBeLessThanOrEqual(2 * 5);
        await runToEnd(store, 5, planned);
        // Every old one once, the new one too (its entry is kept: only one without one gets the plan's).
        expect(new Set(planned).size).toBe(planned.length);
        expect(planned).toContain('old-07');
        expect(await since('old-07')).toBeGreaterThan(1000);
        expect(await since('new')).toBe(clock.now());
        expect(await since('old-broken')).toBeNull();

        const before = await Promise.all(planned.map((id) => since(id)));
        await runToEnd(await peer(), 100, []);
        expect(await Promise.all(planned.map((id) => since(id)))).toEqual(before);
      });

      it('resumes a pass another instance left half done, from the cursor kept in the store', async () => {
        for (let i = 0; i < 10; i++) await writeAsFirstRelease(`half-${i}`);
        const first: string[] = [];
        expect((await store.keepAlive.backfillStep(4, plan(first))).passDone).toBe(false);
        const rest: string[] = [];
        await runToEnd(await peer(), 4, rest);
        expect([...first, ...rest].sort()).toEqual(Array.from({ length: 10 }, (_, i) => `half-${i}`).sort());
      });
    });
  });
}
