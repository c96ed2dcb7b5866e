import { FakeClock } from '../../src/clock';
import type { ConnectionChangeListener, ConnectionInput, Store } from '../../src/store';

export interface ContractStore {
  store: Store;
  /** Closes the store and every peer, and removes what the test wrote. */
  cleanup: () => Promise<void>;
  /** Another instance on the same data (memory: the same backend; Redis: its own client, same prefix). */
  peer: () => Promise<Store>;
  /** Cuts `store`'s feed connection as a network failure would (Redis only: memory has none). */
  killFeed?: () => Promise<void>;
}

/** What a feed listener heard, in order, with a way to wait for the next thing. */
export class FeedRecorder implements ConnectionChangeListener {
  readonly events: string[] = [];
  private waiters: Array<() => void> = [];

  changed(provider: string, connectionId: string): void {
    this.push(`changed ${provider} ${connectionId}`);
  }
  unconfirmed(): void {
    this.push('unconfirmed');
  }
  confirmed(): void {
    this.push('confirmed');
  }
  count(event: string): number {
    return this.events.filter((e) => e === event).length;
  }

  /** Resolves once `check()` holds; fails after a generous bound, naming what it waited for. */
  until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for ${what}; heard ${JSON.stringify(this.events)}`));
      }, timeoutMs);
      const waiter = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve();
      };
      this.waiters.push(waiter);
    });
  }

  private push(event: string): void {
    this.events.push(event);
    for (const waiter of [...this.waiters]) waiter();
  }
}

/**
 * The one contract every Store implementation passes. `make` builds a store on the given fake
 * clock; `expiresByClock` says whether moving the clock expires keys (memory) or whether only
 * the TTLs set on the keys can be checked (Redis: PTTL). A store whose `make` gives `killFeed`
 * also passes the feed-loss case (memory has no feed connection to lose, so it is skipped there).
 */
export function storeContract(
  name: string,
  make: (clock: FakeClock) => Promise<ContractStore>,
  expiresByClock: boolean,
  feedCanBeKilled = false,
): void {
  const itWithFeedConnection = feedCanBeKilled ? it : it.skip;
  describe(`${name} store contract`, () => {
    let clock: FakeClock;
    let store: Store;
    let cleanup: () => Promise<void>;
    let peer: () => Promise<Store>;
    let killFeed: ContractStore['killFeed'];

    beforeEach(async () => {
      clock = new FakeClock(Date.now());
      ({ store, cleanup, peer, killFeed } = await make(clock));
    });
    afterEach(async () => cleanup());

    const connection = (over: Partial<ConnectionInput> = {}): ConnectionInput => ({
      provider: 'videoask',
      connectionId: 'user-1',
      authMode: 'oauth2',
      status: 'active',
      scopes: ['openid'],
      expiresAt: clock.now() + 3600_000,
      createdAt: clock.now(),
      updatedAt: clock.now(),
      lastRefreshedAt: null,
      account: null,
      credentials: { accessToken: 'at-1', refreshToken: 'rt-1', tokenType: 'Bearer' },
      ...over,
    });

    it('saves and reads back a connection with its credentials', async () => {
      const saved = await store.saveConnection(connection());
      const read = await store.getConnection('videoask', 'user-1');
      expect(read).toEqual(saved);
      expect(read?.credentials).toEqual({ accessToken: 'at-1', refreshToken: 'rt-1', tokenType: 'Bearer' });
      expect(await store.getConnection('videoask', 'nobody')).toBeNull();
    });

    it('lists connections, filtered by provider', async () => {
      await store.saveConnection(connection());
      await store.saveConnection(connection({ connectionId: 'user-2' }));
      await store.saveConnection(connection({ provider: 'livestorm', connectionId: 'user-1' }));
      expect((await store.listConnections()).map((c) => `${c.provider}/${c.connectionId}`)).toEqual([
        'livestorm/user-1',
        'videoask/user-1',
        'videoask/user-2',
      ]);
      expect((await store.listConnections('livestorm')).length).toBe(1);
    });

    it('writes conditionally on the version and refuses a stale writer', async () => {
      const first = await store.saveConnection(connection());
      const second = await store.updateConnection(
        connection({ credentials: { accessToken: 'at-2', refreshToken: 'rt-2' } }),
        first.version,
      );
      expect(second?.version).toBe(first.version + 1);
      const stale = await store.updateConnection(
        connection({ credentials: { accessToken: 'at-old', refreshToken: 'rt-old' } }),
        first.version,
      );
      expect(stale).toBeNull();
      expect((await store.getConnection('videoask', 'user-1'))?.credentials.refreshToken).toBe('rt-2');
      expect(await store.updateConnection(connection({ connectionId: 'absent' }), 1)).toBeNull();
    });

    it('gives a connection authorized anew a version no earlier holder can have', async () => {
      const first = await store.saveConnection(connection());
      await store.deleteConnection('videoask', 'user-1');
      clock.advance(1);
      const again = await store.saveConnection(connection());
      expect(again.version).toBeGreaterThan(first.version);
      expect(await store.updateConnection(connection(), first.version)).toBeNull();
    });

    it('deletes a connection', async () => {
      await store.saveConnection(connection());
      expect(await store.deleteConnection('videoask', 'user-1')).toBe(true);
      expect(await store.getConnection('videoask', 'user-1')).toBeNull();
      expect(await store.listConnections()).toEqual([]);
      expect(await store.deleteConnection('videoask', 'user-1')).toBe(false);
    });

    it('keeps the access token no longer than its expiry and the refresh token with no TTL', async () => {
      await store.saveConnection(connection({ expiresAt: clock.now() + 60_000 }));
      const ttl = await store.inspectTtl('videoask', 'user-1');
      expect(ttl.connection).toBe(-1);
      expect(ttl.accessToken).toBeGreaterThan(55_000);
      expect(ttl.accessToken).toBeLessThanOrEqual(60_000);
      if (expiresByClock) {
        clock.advance(60_001);
        const read = await store.getConnection('videoask', 'user-1');
        expect(read?.credentials.accessToken).toBeUndefined();
        expect(read?.credentials.refreshToken).toBe('rt-1');
      }
    });

    it('never returns an access token whose expiry has passed', async () => {
      await store.saveConnection(connection({ expiresAt: clock.now() + 60_000 }));
      clock.advance(61_000);
      const read = await store.getConnection('videoask', 'user-1');
      expect(read?.credentials.accessToken).toBeUndefined();
      expect(read?.credentials.refreshToken).toBe('rt-1');
    });

    it('does not store an access token that is already expired', async () => {
      await store.saveConnection(connection({ expiresAt: clock.now() - 1 }));
      expect((await store.inspectTtl('videoask', 'user-1')).accessToken).toBe(-2);
      expect((await store.getConnection('videoask', 'user-1'))?.credentials.refreshToken).toBe('rt-1');
    });

    it('lets a connection without a refresh token disappear with its access token', async () => {
      await store.saveConnection(
        connection({ expiresAt: clock.now() + 30_000, credentials: { accessToken: 'at-only' } }),
      );
      const ttl = await store.inspectTtl('videoask', 'user-1');
      expect(ttl.connection).toBeGreaterThan(25_000);
      expect(ttl.connection).toBeLessThanOrEqual(30_000);
      if (expiresByClock) {
        clock.advance(30_001);
        expect(await store.getConnection('videoask', 'user-1')).toBeNull();
        expect(await store.listConnections()).toEqual([]);
      }
    });

    it('keeps api_key connections and tokens without expiry with no TTL', async () => {
      await store.saveConnection(
        connection({ provider: 'webinargeek', authMode: 'api_key', expiresAt: null, credentials: { apiKey: 'key-1' } }),
      );
      await store.saveConnection(
        connection({ connectionId: 'no-exp', expiresAt: null, credentials: { accessToken: 'at-x' } }),
      );
      expect(await store.inspectTtl('webinargeek', 'user-1')).toEqual({ connection: -1, accessToken: -2 });
      expect(await store.inspectTtl('videoask', 'no-exp')).toEqual({ connection: -1, accessToken: -1 });
      if (expiresByClock) clock.advance(365 * 24 * 3600_000);
      expect((await store.getConnection('webinargeek', 'user-1'))?.credentials.apiKey).toBe('key-1');
      expect((await store.getConnection('videoask', 'no-exp'))?.credentials.accessToken).toBe('at-x');
    });

    it('hands out a flow state once, and only within its 10 minutes', async () => {
      const flow = {
        state: 's1',
        provider: 'videoask',
        connectionId: 'default',
        sessionId: 'sid',
        returnTo: '/',
        mode: 'redirect' as const,
        createdAt: clock.now(),
        expiresAt: clock.now() + 60 * 60_000,
      };
      await store.saveFlowState(flow);
      expect(await store.takeFlowState('s1')).toEqual(flow);
      expect(await store.takeFlowState('s1')).toBeNull();

      await store.saveFlowState({ ...flow, state: 's2' });
      clock.advance(10 * 60_000 + 1);
      expect(await store.takeFlowState('s2')).toBeNull();
    });

    it('hands out a connect session once, and not after it expires', async () => {
      const session = {
        provider: 'videoask',
        connectionId: 'c',
        createdAt: clock.now(),
        expiresAt: clock.now() + 15 * 60_000,
      };
      await store.saveConnectSession('tok-1', session);
      expect(await store.takeConnectSession('tok-1')).toEqual(session);
      expect(await store.takeConnectSession('tok-1')).toBeNull();
      await store.saveConnectSession('tok-2', session);
      clock.advance(15 * 60_000 + 1);
      expect(await store.takeConnectSession('tok-2')).toBeNull();
    });

    it('keeps browser sessions', async () => {
      await store.setBrowserSession('sid-1', '{"a":1}', 60_000);
      expect(await store.getBrowserSession('sid-1')).toBe('{"a":1}');
      await store.destroyBrowserSession('sid-1');
      expect(await store.getBrowserSession('sid-1')).toBeNull();
    });

    it('grants a lock to one holder and lets only that holder release it', async () => {
      const a = await store.acquireLock('videoask:user-1', 5000);
      expect(a).toEqual(expect.any(String));
      expect(await store.acquireLock('videoask:user-1', 5000)).toBeNull();
      expect(await store.isLocked('videoask:user-1')).toBe(true);
      expect(await store.releaseLock('videoask:user-1', 'not-the-holder')).toBe(false);
      expect(await store.isLocked('videoask:user-1')).toBe(true);
      expect(await store.releaseLock('videoask:user-1', a!)).toBe(true);
      expect(await store.isLocked('videoask:user-1')).toBe(false);
      expect(await store.acquireLock('videoask:user-1', 5000)).toEqual(expect.any(String));
    });

    it('extends a lock only for its holder, and not once it is gone', async () => {
      const holder = await store.acquireLock('videoask:user-2', 1000);
      expect(await store.extendLock('videoask:user-2', 'not-the-holder', 60_000)).toBe(false);
      expect(await store.extendLock('videoask:user-2', holder!, 60_000)).toBe(true);
      if (expiresByClock) {
        clock.advance(1001);
        expect(await store.isLocked('videoask:user-2')).toBe(true);
        clock.advance(60_000);
        expect(await store.isLocked('videoask:user-2')).toBe(false);
      }
      expect(await store.releaseLock('videoask:user-2', holder!)).toBe(expiresByClock ? false : true);
      expect(await store.extendLock('videoask:user-2', holder!, 60_000)).toBe(false);
    });

    it('counts hits in a shared window', async () => {
      expect((await store.hit('ip:1', 60_000)).count).toBe(1);
      const second = await store.hit('ip:1', 60_000);
      expect(second.count).toBe(2);
      expect(second.resetMs).toBeGreaterThan(0);
      expect(second.resetMs).toBeLessThanOrEqual(60_000);
      expect((await store.hit('ip:2', 60_000)).count).toBe(1);
      expect((await store.hit('ip:2', 60_000, 5)).count).toBe(6);
    });

    it('is ready once it answers', async () => {
      expect(await store.ready(5000)).toBe(true);
    });

    describe('connection feed', () => {
      /** A listener on `on`, resolved once its feed is live. */
      async function watching(on: Store): Promise<{ recorder: FeedRecorder; stop: () => void }> {
        const recorder = new FeedRecorder();
        const stop = on.watchConnections(recorder);
        await recorder.until('the feed to be live', () => recorder.count('confirmed') > 0);
        return { recorder, stop };
      }

      it('announces every write and delete on one instance to a listener on another, and no refused write', async () => {
        const other = await peer();
        const { recorder, stop } = await watching(other);
        try {
          const id = 'acct:42@example';
          const saved = await store.saveConnection(connection({ connectionId: id }));
          await store.updateConnection(connection({ connectionId: id }), saved.version);
          expect(await store.updateConnection(connection({ connectionId: id }), saved.version)).toBeNull();
          await store.deleteConnection('videoask', id);
          // The marker is announced after the others: on one node, once it is heard, nothing else is
          // in flight. In a cluster it may live on another node, whose messages reach the listener by
          // the cluster bus in their own time, so the three changes are awaited too.
          await store.saveConnection(connection({ connectionId: 'marker' }));
          await recorder.until(
            'the marker and the three changes',
            () => recorder.count('changed videoask marker') > 0 && recorder.count(`changed videoask ${id}`) >= 3,
          );
          // Order across nodes is not promised: the marker is compared apart.
          expect(recorder.events.filter((e) => e !== 'changed videoask marker')).toEqual([
            'confirmed',
            `changed videoask ${id}`,
            `changed videoask ${id}`,
            `changed videoask ${id}`,
          ]);
          expect(recorder.count('changed videoask marker')).toBe(1);
        } finally {
          stop();
        }
      });

      it('announces a write to listeners on the writing instance too, and to each listener once', async () => {
        const a = await watching(store);
        const b = await watching(store);
        try {
          await store.saveConnection(connection());
          await a.recorder.until('the write', () => a.recorder.count('changed videoask user-1') > 0);
          await b.recorder.until('the write', () => b.recorder.count('changed videoask user-1') > 0);
          expect(a.recorder.events).toEqual(['confirmed', 'changed videoask user-1']);
          expect(b.recorder.events).toEqual(['confirmed', 'changed videoask user-1']);
        } finally {
          a.stop();
          b.stop();
        }
      });

      it('stops announcing to a listener that unsubscribed', async () => {
        const gone = await watching(store);
        const staying = await watching(store);
        try {
          gone.stop();
          await store.saveConnection(connection());
          await staying.recorder.until('the write', () => staying.recorder.count('changed videoask user-1') > 0);
          expect(gone.recorder.events).toEqual(['confirmed']);
        } finally {
          staying.stop();
        }
      });

      itWithFeedConnection(
        'tells its listeners when the feed is lost, and confirms it again once it is back',
        async () => {
          const { recorder, stop } = await watching(store);
          try {
            await killFeed!();
            await recorder.until('the loss', () => recorder.count('unconfirmed') > 0);
            await recorder.until('the recovery', () => recorder.count('confirmed') > 1);
            expect(recorder.events).toEqual(['confirmed', 'unconfirmed', 'confirmed']);
            const writer = await peer();
            await writer.saveConnection(connection());
            await recorder.until('a write after the recovery', () => recorder.count('changed videoask user-1') > 0);
          } finally {
            stop();
          }
        },
      );
    });
  });
}
