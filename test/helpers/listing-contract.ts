import type { FakeClock } from '../../src/clock';
import type { ConnectionInput, ConnectionQuery, ConnectionStatus, Store } from '../../src/store';
import type { KvBackend } from '../../src/store/backend';
import { createKeys } from '../../src/store/keys';

export interface ListingContractStore {
  store: Store;
  peer: () => Promise<Store>;
  backend: KvBackend;
  prefix: string;
  clock: FakeClock;
}

/**
 * The listing index (issue 11 part 4, 6), part of the store contract: every store passes it on
 * memory, Redis and Redis Cluster. `get` gives the store of the running case.
 */
export function listingContract(get: () => ListingContractStore): void {
  describe('listing index', () => {
    let store: Store;
    let backend: KvBackend;
    let prefix: string;
    let clock: FakeClock;
    let peer: () => Promise<Store>;

    beforeEach(() => {
      ({ store, backend, prefix, clock, peer } = get());
    });

    const input = (provider: string, connectionId: string, over: Partial<ConnectionInput> = {}): ConnectionInput => ({
      provider,
      connectionId,
      authMode: 'oauth2',
      status: 'active',
      scopes: [],
      expiresAt: clock.now() + 3600_000,
      createdAt: clock.now(),
      updatedAt: clock.now(),
      lastRefreshedAt: null,
      account: null,
      credentials: { accessToken: 'at', refreshToken: 'rt' },
      ...over,
    });
    const ids = async (query: Partial<ConnectionQuery>, s: Store = store) =>
      (await s.queryConnections({ limit: 1000, ...query })).connections.map((c) => `${c.provider}/${c.connectionId}`);
    const counts = async (s: Store = store) =>
      Object.fromEntries((await s.connectionCounts()).map((c) => [`${c.provider}/${c.status}`, c.count]));
    /** Writes a connection as the first release (or an instance of it) does: no listing index. */
    const writeAsFirstRelease = async (provider: string, connectionId: string, status: ConnectionStatus) => {
      const keys = createKeys(prefix);
      const mainKey = keys.connection(provider, connectionId);
      const stored = await backend.readConnectionData(mainKey);
      const template = stored ? (JSON.parse(stored.data) as Record<string, unknown>) : null;
      const data = {
        ...(template ?? {
          provider,
          connectionId,
          authMode: 'api_key',
          scopes: [],
          expiresAt: null,
          createdAt: clock.now(),
          updatedAt: clock.now(),
          lastRefreshedAt: null,
          account: { label: `Label ${connectionId}` },
          secrets: 'not-opened-by-listing',
        }),
        status,
      };
      await backend.writeConnection({
        mainKey,
        accessKey: keys.accessToken(provider, connectionId),
        expectedVersion: stored ? stored.version : null,
        minVersion: 1,
        data: JSON.stringify(data),
        mainTtlMs: null,
        access: null,
        accessTtlMs: null,
        notice: { channel: keys.connectionChanges(), message: `${provider}:${connectionId}` },
      });
      await backend.addMember(keys.connectionIndex(), `${provider}:${connectionId}`);
    };
    const backfillAll = async (s: Store = store, batch = 1000) => {
      for (let steps = 0; steps < 10_000; steps++) if ((await s.backfillConnectionIndex(batch)).passDone) return;
      throw new Error('the backfill pass never ended');
    };

    describe('on a store whose index is built', () => {
      beforeEach(async () => {
        await backfillAll();
        await store.saveConnection(input('videoask', 'user-2', { status: 'reauth_required' }));
        await store.saveConnection(input('videoask', 'User-1', { account: { id: '1', label: 'Ada@Example.com' } }));
        await store.saveConnection(input('videoask-eu', 'a', { account: { label: 'user-eu' } }));
        await store.saveConnection(input('livestorm', 'user-3', { status: 'reauth_required' }));
        await store.saveConnection(input('videoask', 'team:1'));
      });

      it('orders by (provider, connection id), a provider that prefixes another first', async () => {
        expect(await ids({})).toEqual([
          'livestorm/user-3',
          'videoask/User-1',
          'videoask/team:1',
          'videoask/user-2',
          'videoask-eu/a',
        ]);
      });

      it('filters by provider, status, both, and the providers a key is limited to', async () => {
        expect(await ids({ provider: 'videoask' })).toEqual(['videoask/User-1', 'videoask/team:1', 'videoask/user-2']);
        expect(await ids({ status: 'reauth_required' })).toEqual(['livestorm/user-3', 'videoask/user-2']);
        expect(await ids({ provider: 'videoask', status: 'active' })).toEqual(['videoask/User-1', 'videoask/team:1']);
        expect(await ids({ providers: ['videoask-eu', 'livestorm'] })).toEqual(['livestorm/user-3', 'videoask-eu/a']);
        expect(await ids({ providers: ['videoask-eu', 'livestorm'], status: 'active' })).toEqual(['videoask-eu/a']);
        expect(await ids({ providers: [] })).toEqual([]);
      });

      it('finds q as a case-insensitive prefix of the connection id or of the account label', async () => {
        expect(await ids({ q: 'USER' })).toEqual([
          'livestorm/user-3',
          'videoask/User-1',
          'videoask/user-2',
          'videoask-eu/a',
        ]);
        expect(await ids({ q: 'ada@ex' })).toEqual(['videoask/User-1']);
        expect(await ids({ q: 'user', provider: 'videoask', status: 'reauth_required' })).toEqual(['videoask/user-2']);
        expect(await ids({ q: 'user', providers: ['livestorm', 'videoask-eu'] })).toEqual([
          'livestorm/user-3',
          'videoask-eu/a',
        ]);
        expect(await ids({ q: 'nobody' })).toEqual([]);
        const paged = await store.queryConnections({ q: 'user', limit: 2, after: ['videoask', 'User-1'] });
        expect(paged.connections.map((c) => c.connectionId)).toEqual(['user-2', 'a']);
        expect(paged.more).toBe(false);
      });

      it('pages without gaps or repeats while connections are added between pages', async () => {
        const seen: string[] = [];
        let after: [string, string] | undefined;
        let added = 0;
        for (;;) {
          const page = await store.queryConnections({ limit: 2, after });
          expect(page.connections.length).toBeLessThanOrEqual(2);
          seen.push(...page.connections.map((c) => `${c.provider}/${c.connectionId}`));
          if (!page.more) break;
          const last = page.connections.at(-1)!;
          after = [last.provider, last.connectionId];
          // One before the cursor (never handed out in this walk), one after (handed out).
          await store.saveConnection(input('aaa', `early-${added}`));
          await store.saveConnection(input('zzz', `late-${added++}`));
        }
        const late = Array.from({ length: added }, (_, i) => `zzz/late-${i}`);
        expect(seen).toEqual([
          'livestorm/user-3',
          'videoask/User-1',
          'videoask/team:1',
          'videoask/user-2',
          'videoask-eu/a',
          ...late,
        ]);
        expect(new Set(seen).size).toBe(seen.length);
      });

      it('pages a status filter and a limited key across providers in order', async () => {
        const first = await store.queryConnections({ status: 'reauth_required', limit: 1 });
        expect([first.connections.map((c) => c.connectionId), first.more]).toEqual([['user-3'], true]);
        const second = await store.queryConnections({
          status: 'reauth_required',
          limit: 1,
          after: ['livestorm', 'user-3'],
        });
        expect([second.connections.map((c) => c.connectionId), second.more]).toEqual([['user-2'], false]);
        const merged = await store.queryConnections({ providers: ['videoask', 'livestorm'], limit: 2 });
        expect([merged.connections.map((c) => c.connectionId), merged.more]).toEqual([['user-3', 'User-1'], true]);
      });

      it('keeps counts by provider and status through creates, a status change, a rewrite and a delete', async () => {
        expect(await counts()).toEqual({
          'livestorm/reauth_required': 1,
          'videoask/active': 2,
          'videoask/reauth_required': 1,
          'videoask-eu/active': 1,
        });
        const user1 = (await store.getConnection('videoask', 'User-1'))!;
        const { version, ...rest } = user1;
        await store.updateConnection({ ...rest, status: 'reauth_required' }, version);
        await store.saveConnection(input('videoask', 'user-2', { status: 'reauth_required' }));
        await store.deleteConnection('livestorm', 'user-3');
        await store.deleteConnection('livestorm', 'user-3');
        expect(await counts(await peer())).toEqual({
          'videoask/active': 1,
          'videoask/reauth_required': 2,
          'videoask-eu/active': 1,
        });
        expect(await ids({ status: 'active' })).toEqual(['videoask/team:1', 'videoask-eu/a']);
        expect(await ids({ q: 'ada', status: 'reauth_required' })).toEqual(['videoask/User-1']);
      });

      it('hands out no connection an instance of the first release changed or deleted, and repairs the index', async () => {
        await writeAsFirstRelease('videoask', 'team:1', 'reauth_required');
        const keys = createKeys(prefix);
        await backend.deleteConnection(keys.connection('videoask', 'user-2'), keys.accessToken('videoask', 'user-2'), {
          channel: keys.connectionChanges(),
          message: 'videoask:user-2',
        });
        expect(await ids({ provider: 'videoask', status: 'active' })).toEqual(['videoask/User-1']);
        expect(await ids({ provider: 'videoask' })).toEqual(['videoask/User-1', 'videoask/team:1']);
        expect(await ids({ status: 'reauth_required' })).toEqual(['livestorm/user-3', 'videoask/team:1']);
        expect(await counts()).toMatchObject({ 'videoask/active': 1, 'videoask/reauth_required': 1 });
      });
    });

    describe('backfill of a store written without the index', () => {
      beforeEach(async () => {
        for (let i = 0; i < 7; i++)
          await writeAsFirstRelease('webinargeek', `old-${i}`, i < 2 ? 'reauth_required' : 'active');
        await writeAsFirstRelease('interact', 'old-x', 'active');
      });

      it('answers from every connection before the backfill, then from the index it built', async () => {
        expect(await ids({ status: 'reauth_required' })).toEqual(['webinargeek/old-0', 'webinargeek/old-1']);
        expect(await ids({ q: 'LABEL OLD-X' })).toEqual(['interact/old-x']);
        const early = await store.queryConnections({
          provider: 'webinargeek',
          limit: 3,
          after: ['webinargeek', 'old-1'],
        });
        expect([early.connections.map((c) => c.connectionId), early.more]).toEqual([['old-2', 'old-3', 'old-4'], true]);
        expect(await counts()).toEqual({});
        await backfillAll(store, 3);
        expect(await counts()).toEqual({
          'interact/active': 1,
          'webinargeek/active': 5,
          'webinargeek/reauth_required': 2,
        });
        expect(await ids({ status: 'reauth_required' })).toEqual(['webinargeek/old-0', 'webinargeek/old-1']);
        expect(await ids({ q: 'label old-x' })).toEqual(['interact/old-x']);
        expect(await ids({ provider: 'webinargeek' }, await peer())).toHaveLength(7);
      });

      it('is bounded, resumes on another instance where the last step stopped, and a re-run changes nothing', async () => {
        // Enough that Redis keeps the set as a hash table, whose SSCAN honours its COUNT.
        const more = Array.from({ length: 292 }, (_, i) => `more-${String(i).padStart(3, '0')}`);
        for (let i = 0; i < more.length; i += 50) {
          await Promise.all(more.slice(i, i + 50).map((id) => writeAsFirstRelease('interact', id, 'active')));
        }
        const first = await store.backfillConnectionIndex(20);
        expect(first.passDone).toBe(false);
        expect(first.indexed).toBeGreaterThan(0);
        expect(first.indexed).toBeLessThan(100);
        const other = await peer();
        let steps = 1;
        while (!(await other.backfillConnectionIndex(20)).passDone) steps++;
        expect(steps).toBeGreaterThan(2);
        expect(await counts()).toEqual({
          'interact/active': 293,
          'webinargeek/active': 5,
          'webinargeek/reauth_required': 2,
        });
        expect(await ids({ provider: 'interact' })).toHaveLength(293);
        // An instance of the first release keeps writing during a rolling upgrade: the next pass catches up.
        await writeAsFirstRelease('webinargeek', 'old-0', 'active');
        await writeAsFirstRelease('webinargeek', 'old-9', 'active');
        await backfillAll(other, 2);
        await backfillAll(store, 1000);
        expect(await counts()).toEqual({
          'interact/active': 293,
          'webinargeek/active': 7,
          'webinargeek/reauth_required': 1,
        });
        expect(await ids({ provider: 'webinargeek', status: 'reauth_required' })).toEqual(['webinargeek/old-1']);
      });
    });
  });
}
