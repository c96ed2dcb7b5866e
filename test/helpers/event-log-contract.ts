import { FakeClock } from '../../src/clock';
import type { ConnectionInput, EventInput, EventLogLimits, LoggedEvent, Store } from '../../src/store';
import { connectionInput } from './seed';

export interface EventLogContractStore {
  store: Store;
  /** Closes the store and removes what the test wrote. */
  cleanup: () => Promise<void>;
}

/**
 * The contract of {@link Store.eventLog}, run on memory, Redis and Redis Cluster: appended once,
 * newest first, cursors without gaps or repeats while events arrive, caps that never drop an
 * undelivered event, and the webhook consumer group (read, claim, ack, dead, retry, backlog);
 * events recorded with the change they report (the outbox), also when the move to the log fails.
 */
export function eventLogContract(
  name: string,
  make: (clock: FakeClock, limits: EventLogLimits) => Promise<EventLogContractStore>,
): void {
  describe(`${name} event log contract`, () => {
    let clock: FakeClock;
    let store: Store;
    let cleanup: () => Promise<void>;
    const limits: EventLogLimits = { perConnection: 5, total: 20 };

    beforeEach(async () => {
      clock = new FakeClock(Date.now());
      ({ store, cleanup } = await make(clock, limits));
    });
    afterEach(async () => cleanup());

    const event = (over: Partial<EventInput> = {}): EventInput => ({
      type: 'connection.refreshed',
      provider: 'videoask',
      connectionId: 'user-1',
      at: clock.now(),
      detail: {},
      ...over,
    });
    const appendMany = async (n: number, over: Partial<EventInput> = {}): Promise<LoggedEvent[]> => {
      const out: LoggedEvent[] = [];
      for (let i = 0; i < n; i++) out.push(await store.eventLog.append(event({ detail: { n: i }, ...over })));
      return out;
    };

    it('keeps what was appended and reads it back newest first, detail included', async () => {
      const first = await store.eventLog.append(event({ type: 'connection.created', detail: { code: 'x', count: 2 } }));
      const second = await store.eventLog.append(event({ type: 'connection.deleted', connectionId: 'user-2' }));
      expect(first.id).toMatch(/^evt_/);
      expect(first.id).not.toBe(second.id);
      const page = await store.eventLog.list({ limit: 10 });
      expect(page).toEqual({ events: [second, first], nextCursor: null });
      expect(page.events[1]).toEqual({
        id: first.id,
        type: 'connection.created',
        provider: 'videoask',
        connectionId: 'user-1',
        at: clock.now(),
        detail: { code: 'x', count: 2 },
      });
    });

    it('filters by connection, provider, type and the providers a reader may see', async () => {
      const a = await store.eventLog.append(event({ connectionId: 'a', type: 'connection.created' }));
      const b = await store.eventLog.append(event({ connectionId: 'b' }));
      const c = await store.eventLog.append(event({ provider: 'livestorm', connectionId: 'a' }));
      const ids = (events: LoggedEvent[]) => events.map((e) => e.id);
      expect(ids((await store.eventLog.list({ limit: 10, provider: 'videoask', connectionId: 'a' })).events)).toEqual([
        a.id,
      ]);
      expect(ids((await store.eventLog.list({ limit: 10, connectionId: 'a' })).events)).toEqual([c.id, a.id]);
      expect(ids((await store.eventLog.list({ limit: 10, provider: 'videoask' })).events)).toEqual([b.id, a.id]);
      expect(ids((await store.eventLog.list({ limit: 10, type: 'connection.refreshed' })).events)).toEqual([
        c.id,
        b.id,
      ]);
      expect(ids((await store.eventLog.list({ limit: 10, visibleProviders: ['livestorm'] })).events)).toEqual([c.id]);
    });

    it('pages newest first without gaps or repeats while new events arrive', async () => {
      const before = await appendMany(10);
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.eventLog.list({ limit: 4, cursor });
        seen.push(...page.events.map((e) => e.id));
        cursor = page.nextCursor ?? undefined;
        pages += 1;
        await appendMany(2); // arrive between pages: newer, so never in a later page
      } while (cursor);
      expect(seen).toEqual(before.map((e) => e.id).reverse());
      expect(pages).toBe(3);
    });

    it('pages one connection the same way', async () => {
      const mine = await appendMany(3, { connectionId: 'paged' });
      const first = await store.eventLog.list({ limit: 2, provider: 'videoask', connectionId: 'paged' });
      await appendMany(2, { connectionId: 'paged' });
      const second = await store.eventLog.list({
        limit: 2,
        provider: 'videoask',
        connectionId: 'paged',
        cursor: first.nextCursor!,
      });
      expect([...first.events, ...second.events].map((e) => e.id)).toEqual(mine.map((e) => e.id).reverse());
      expect(second.nextCursor).toBeNull();
    });

    it('caps each connection and the total when nothing waits for delivery', async () => {
      const mine = await appendMany(8, { connectionId: 'busy' });
      const own = await store.eventLog.list({ limit: 100, provider: 'videoask', connectionId: 'busy' });
      expect(own.events.map((e) => e.id)).toEqual(
        mine
          .slice(3)
          .map((e) => e.id)
          .reverse(),
      );
      await appendMany(20, { connectionId: 'other' });
      expect((await store.eventLog.list({ limit: 100 })).events).toHaveLength(20);
    });

    it('never trims past an event the webhook group has not acknowledged', async () => {
      const consumer = await store.eventLog.consumer('one');
      try {
        const appended = await appendMany(30);
        expect((await store.eventLog.list({ limit: 100 })).events).toHaveLength(30);
        expect(await store.eventLog.backlog()).toBe(30);
        const read = await consumer.read(100, 10);
        expect(read.map((d) => d.event.id)).toEqual(appended.map((e) => e.id));
        expect(await store.eventLog.backlog()).toBe(30);
        for (const d of read.slice(0, 25)) await consumer.ack(d.entryId);
        expect(await store.eventLog.backlog()).toBe(5);
        await store.eventLog.append(event());
        // The oldest unacknowledged one (the 26th) and everything after it stay.
        expect((await store.eventLog.list({ limit: 100 })).events.length).toBeGreaterThanOrEqual(6);
        for (const d of read.slice(25)) await consumer.ack(d.entryId);
        await store.eventLog.append(event());
        const left = await store.eventLog.list({ limit: 100 });
        expect(left.events.length).toBeLessThanOrEqual(21);
        expect(left.events.length).toBeGreaterThanOrEqual(20);
      } finally {
        await consumer.close();
      }
    });

    it("drops from a connection's own log only what the webhook group still delivers from the whole log", async () => {
      const consumer = await store.eventLog.consumer('one');
      try {
        const appended = await appendMany(limits.perConnection + 3, { connectionId: 'chatty' });
        const own = await store.eventLog.list({ limit: 100, provider: 'videoask', connectionId: 'chatty' });
        expect(own.events).toHaveLength(limits.perConnection);
        // The per-connection cap is a reading index: every event is still delivered.
        expect((await consumer.read(100, 10)).map((d) => d.event.id)).toEqual(appended.map((e) => e.id));
      } finally {
        await consumer.close();
      }
    });

    it('hands each new entry to one consumer, and a stale pending one to another', async () => {
      const a = await store.eventLog.consumer('a');
      const b = await store.eventLog.consumer('b');
      try {
        const [e1, e2] = await appendMany(2);
        const taken = await a.read(10, 10);
        expect(taken.map((d) => d.event.id)).toEqual([e1!.id, e2!.id]);
        expect(await b.read(10, 10)).toEqual([]);
        // Fresh entries are not stale; once idle (0 here) they go to whoever claims them.
        expect(await b.claimStale(60_000, 10)).toEqual([]);
        await a.ack(taken[0]!.entryId);
        const claimed = await b.claimStale(0, 10);
        expect(claimed.map((d) => d.event.id)).toEqual([e2!.id]);
        expect(claimed[0]!.since).toBe(e2!.at);
        await b.ack(claimed[0]!.entryId);
        expect(await store.eventLog.backlog()).toBe(0);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('claims the oldest stale entry first on every pass, even after a pass that found none idle', async () => {
      // A dead instance's entry first, then 30 the survivor holds for retries.
      const dead = await store.eventLog.consumer('dead');
      const survivor = await store.eventLog.consumer('survivor');
      try {
        const [orphan] = await appendMany(1, { connectionId: 'orphan' });
        await appendMany(15, { connectionId: 'held-a' });
        await appendMany(15, { connectionId: 'held-b' });
        expect((await dead.read(1, 10)).map((d) => d.event.id)).toEqual([orphan!.id]);
        expect(await survivor.read(30, 10)).toHaveLength(30);
        // A pass before the orphan is idle enough finds nothing; it must not move past the orphan.
        expect(await survivor.claimStale(60_000, 1)).toEqual([]);
        const claimed = await survivor.claimStale(0, 1);
        expect(claimed.map((d) => d.event.id)).toEqual([orphan!.id]);
      } finally {
        await dead.close();
        await survivor.close();
      }
    });

    it('wakes a blocked read when an event is appended, and close() ends a blocked read', async () => {
      const consumer = await store.eventLog.consumer('waiting');
      const reading = consumer.read(10, 10_000);
      const appended = await store.eventLog.append(event());
      expect((await reading).map((d) => d.event.id)).toEqual([appended.id]);
      const blocked = consumer.read(10, 10_000);
      await consumer.close();
      expect(await blocked).toEqual([]);
    });

    it('buries a delivery as dead, lists it, and retries it with the same event id', async () => {
      const consumer = await store.eventLog.consumer('one');
      try {
        const appended = await store.eventLog.append(event({ type: 'connection.reauth_required' }));
        const [delivery] = await consumer.read(10, 10);
        await consumer.bury(delivery!, 7, 'status 500');
        expect(await store.eventLog.backlog()).toBe(0);
        expect(await store.eventLog.deadDeliveries(10)).toEqual([
          { event: appended, attempts: 7, lastError: 'status 500', deadAt: expect.any(Number) },
        ]);
        clock.advance(60_000);
        expect(await store.eventLog.retryDead(appended.id)).toBe(true);
        expect(await store.eventLog.retryDead(appended.id)).toBe(false);
        expect(await store.eventLog.deadDeliveries(10)).toEqual([]);
        const [again] = await consumer.read(10, 10);
        expect(again!.event).toEqual(appended);
        expect(again!.since).toBeGreaterThan(appended.at);
        // A redelivery is not a new event: the log still lists it once.
        expect((await store.eventLog.list({ limit: 10 })).events.map((e) => e.id)).toEqual([appended.id]);
      } finally {
        await consumer.close();
      }
    });

    describe('events recorded with their change', () => {
      const connection = (over: Partial<ConnectionInput> = {}): ConnectionInput =>
        connectionInput(
          {
            provider: 'videoask',
            connectionId: 'user-1',
            credentials: { accessToken: 'at-1', refreshToken: 'rt-1' },
            ...over,
          },
          clock.now(),
        );
      const logged = async (connectionId = 'user-1') => ({
        all: (await store.eventLog.list({ limit: 100 })).events,
        own: (await store.eventLog.list({ limit: 100, provider: 'videoask', connectionId })).events,
      });
      /** The next move to the log fails before appending (`after`: once it has appended), as a crash there would. */
      const failNextAppend = (after = false) => {
        const real = store.eventLog.appendRecorded.bind(store.eventLog);
        const failed: LoggedEvent[] = [];
        jest.spyOn(store.eventLog, 'appendRecorded').mockImplementationOnce(async (event) => {
          failed.push(event);
          if (after) await real(event);
          throw new Error('the process died here');
        });
        return failed;
      };

      it('records each write, update and delete with its event, once, in the log and the connection log', async () => {
        const saved = await store.saveConnection(connection(), { type: 'connection.created' });
        await store.updateConnection(connection({ status: 'reauth_required' }), saved.version, {
          type: 'connection.reauth_required',
          detail: { code: 'invalid_grant' },
        });
        expect(await store.deleteConnection('videoask', 'user-1', { type: 'connection.deleted' })).toBe(true);
        const { all, own } = await logged();
        expect(all.map((e) => [e.type, e.provider, e.connectionId, e.detail])).toEqual([
          ['connection.deleted', 'videoask', 'user-1', {}],
          ['connection.reauth_required', 'videoask', 'user-1', { code: 'invalid_grant' }],
          ['connection.created', 'videoask', 'user-1', {}],
        ]);
        expect(own).toEqual(all);
        expect(all.every((e) => e.at === clock.now() && /^evt_/.test(e.id))).toBe(true);
        expect(await store.eventLog.stalePending(0, 10)).toEqual([]);
      });

      it('records nothing for a write that lost its version check or a delete that found nothing', async () => {
        const saved = await store.saveConnection(connection());
        expect(
          await store.updateConnection(connection(), saved.version + 1, { type: 'connection.metadata_updated' }),
        ).toBeNull();
        expect(await store.deleteConnection('videoask', 'nobody', { type: 'connection.deleted' })).toBe(false);
        expect((await logged()).all).toEqual([]);
        // Their marks went with them: recovery finds nothing to do.
        expect(await store.eventLog.stalePending(0, 10)).toEqual([]);
        expect(await store.recoverEventOutboxes(0, 10)).toEqual({ relayed: 0, cleared: 0, more: false });
      });

      it('keeps the change and its event when the move to the log fails; recovery moves it once, with its id', async () => {
        const failed = failNextAppend();
        const saved = await store.saveConnection(connection(), { type: 'connection.created' });
        expect(saved.version).toBeGreaterThan(0);
        expect(await store.getConnectionInfo('videoask', 'user-1')).not.toBeNull();
        expect((await logged()).all).toEqual([]);
        // A young mark may be a writer still relaying: left alone.
        expect(await store.recoverEventOutboxes(60_000, 10)).toEqual({ relayed: 0, cleared: 0, more: false });
        expect(await store.recoverEventOutboxes(0, 10)).toEqual({ relayed: 1, cleared: 0, more: false });
        expect(await store.recoverEventOutboxes(0, 10)).toEqual({ relayed: 0, cleared: 0, more: false });
        const { all, own } = await logged();
        expect(all).toEqual([failed[0]]);
        expect(own).toEqual([failed[0]]);
      });

      it('finishes a move that stopped after its append without a second entry', async () => {
        const failed = failNextAppend(true);
        await store.saveConnection(connection());
        await store.deleteConnection('videoask', 'user-1', {
          type: 'connection.deleted',
          detail: { revocation: 'ok' },
        });
        expect(await store.recoverEventOutboxes(0, 10)).toEqual({ relayed: 1, cleared: 0, more: false });
        const { all, own } = await logged();
        expect(all).toEqual([failed[0]]);
        expect(own).toEqual([failed[0]]);
        expect(failed[0]!.detail).toEqual({ revocation: 'ok' });
      });

      it('delivers an event moved by recovery after the log reached its cap, and trims it only once acknowledged', async () => {
        const consumer = await store.eventLog.consumer('one');
        try {
          const drain = async () => {
            const read = await consumer.read(100, 10);
            for (const d of read) await consumer.ack(d.entryId);
            return read;
          };
          const failed = failNextAppend();
          await store.saveConnection(connection({ connectionId: 'late' }), { type: 'connection.created' });
          await appendMany(25);
          expect(await drain()).toHaveLength(25);
          await store.recoverEventOutboxes(0, 10);
          await appendMany(limits.total);
          // Over the cap, and every other event acknowledged: the late one, still unread, stays.
          const all = (await store.eventLog.list({ limit: 100 })).events;
          expect(all.map((e) => e.id)).toContain(failed[0]!.id);
          const read = await drain();
          expect(read.filter((d) => d.event.id === failed[0]!.id)).toHaveLength(1);
          await appendMany(limits.total);
          expect((await store.eventLog.list({ limit: 100 })).events.map((e) => e.id)).not.toContain(failed[0]!.id);
        } finally {
          await consumer.close();
        }
      });
    });
  });
}
