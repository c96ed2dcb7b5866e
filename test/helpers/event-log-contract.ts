import { FakeClock } from '../../src/clock';
import type { EventInput, EventLogLimits, LoggedEvent, Store } from '../../src/store';

export interface EventLogContractStore {
  store: Store;
  /** Closes the store and removes what the test wrote. */
  cleanup: () => Promise<void>;
}

/**
 * The contract of {@link Store.eventLog}, run on memory, Redis and Redis Cluster: appended once,
 * newest first, cursors without gaps or repeats while events arrive, caps that never drop an
 * undelivered event, and the webhook consumer group (read, claim, ack, dead, retry, backlog).
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
  });
}
