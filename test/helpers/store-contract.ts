import { FakeClock } from '../../src/clock';
import type { EncryptionKey } from '../../src/config';
import {
  SPENT_LINK_MEMORY_MS,
  UnreadableCredentialError,
  type ConnectionChangeListener,
  type ConnectionInput,
  type FlowState,
  type Store,
} from '../../src/store';
import type { KvBackend } from '../../src/store/backend';
import { CredentialCipher } from '../../src/store/encryption';
import { createKeys } from '../../src/store/keys';
import { testEncryptionKey } from './keys';
import { keepAliveContract } from './keep-alive-contract';
import { listingContract } from './listing-contract';

export interface ContractStore {
  store: Store;
  /** Closes the store and every peer, and removes what the test wrote. */
  cleanup: () => Promise<void>;
  /**
   * Another instance on the same data (memory: the same backend; Redis: its own client, same
   * prefix), with the same encryption keys as `store` unless `keys` are given.
   */
  peer: (keys?: EncryptionKey[]) => Promise<Store>;
  /** Cuts `store`'s feed connection as a network failure would (Redis only: memory has none). */
  killFeed?: () => Promise<void>;
  /** The medium under `store`, to write records as the first release wrote them. */
  backend: KvBackend;
  /** REDIS_KEY_PREFIX of `store`. */
  prefix: string;
  /** Every key under the prefix, with its value as text (a hash's fields and a set's members included). */
  dump: () => Promise<Array<[key: string, value: string]>>;
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
    let peer: ContractStore['peer'];
    let killFeed: ContractStore['killFeed'];
    let backend: KvBackend;
    let prefix: string;
    let dump: ContractStore['dump'];

    beforeEach(async () => {
      clock = new FakeClock(Date.now());
      ({ store, cleanup, peer, killFeed, backend, prefix, dump } = await make(clock));
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

    it('keeps config and metadata in the clear beside the sealed credentials, and a version-checked write replaces them', async () => {
      const saved = await store.saveConnection(
        connection({ config: { subdomain: 'acme' }, metadata: { organizationId: 'org-1', seats: 3, trial: false } }),
      );
      expect(saved).toMatchObject({
        config: { subdomain: 'acme' },
        metadata: { organizationId: 'org-1', seats: 3, trial: false },
      });
      expect(await store.getConnection('videoask', 'user-1')).toEqual(saved);
      expect(await store.getConnectionInfo('videoask', 'user-1')).toMatchObject({
        config: { subdomain: 'acme' },
        metadata: { organizationId: 'org-1', seats: 3, trial: false },
      });
      expect((await store.listConnections())[0]).toMatchObject({ metadata: { organizationId: 'org-1' } });
      // Plaintext: the values are readable in the stored record, the tokens are not.
      const stored = JSON.stringify(await dump());
      expect(stored).toContain('org-1');
      expect(stored).not.toContain('rt-1');
      const { version, ...input } = saved;
      const updated = await store.updateConnection({ ...input, metadata: { organizationId: 'org-2' } }, version);
      expect(updated?.metadata).toEqual({ organizationId: 'org-2' });
      expect(await store.updateConnection({ ...input, metadata: {} }, version)).toBeNull();
      expect((await store.getConnectionInfo('videoask', 'user-1'))?.metadata).toEqual({ organizationId: 'org-2' });
    });

    it('reads a connection written without config or metadata as having none', async () => {
      const saved = await store.saveConnection(connection());
      expect(saved).toMatchObject({ config: {}, metadata: {} });
      expect(await store.getConnectionInfo('videoask', 'user-1')).toMatchObject({ config: {}, metadata: {} });
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

    describe('flow states', () => {
      const flowOf = (over: Partial<FlowState> = {}): FlowState => ({
        state: 'state-canary-4b1e9d0c2a7f',
        provider: 'videoask',
        connectionId: 'default',
        sessionId: 'sid-canary-77d2c1',
        codeVerifier: 'verifier-canary-5e8a03',
        issuer: 'https://issuer.example',
        returnTo: 'https://app.example/back',
        mode: 'popup',
        openerOrigin: 'https://app.example',
        createdAt: clock.now(),
        expiresAt: clock.now() + 10 * 60_000,
        ...over,
      });
      const mine = { sessionId: 'sid-canary-77d2c1' };

      it('hands out a flow state once, to the session that started it, with everything it was saved with', async () => {
        const flow = flowOf();
        await store.saveFlowState(flow);
        expect(await store.takeFlowState(flow.state, mine)).toEqual({ kind: 'ok', flow });
        expect(await store.takeFlowState(flow.state, mine)).toEqual({ kind: 'unknown' });
        expect(await store.takeFlowState('never-saved', mine)).toEqual({ kind: 'unknown' });
      });

      it('lives at most 10 minutes, even when saved with a later expiry', async () => {
        await store.saveFlowState(flowOf({ state: 's-late', expiresAt: clock.now() + 60 * 60_000 }));
        await store.saveFlowState(flowOf({ state: 's-soon', expiresAt: clock.now() + 60_000 }));
        clock.advance(60_001);
        expect(await store.takeFlowState('s-soon', mine)).toEqual({ kind: 'unknown' });
        clock.advance(9 * 60_000);
        expect(await store.takeFlowState('s-late', mine)).toEqual({ kind: 'unknown' });
      });

      it('leaves a state untouched when another session tries it, however often, and its own session still takes it', async () => {
        const flow = flowOf();
        await store.saveFlowState(flow);
        const key = createKeys(prefix).flowState(flow.state);
        const before = await backend.get(key);
        for (const sessionId of ['stranger', '', `${mine.sessionId}x`, mine.sessionId.slice(0, -1)]) {
          expect(await store.takeFlowState(flow.state, { sessionId })).toEqual({ kind: 'other_session' });
          expect(await backend.get(key)).toBe(before);
        }
        expect(await store.takeFlowState(flow.state, mine)).toEqual({ kind: 'ok', flow });
      });

      it('of concurrent takes by its own session, on two instances, exactly one wins', async () => {
        const other = await peer();
        const flow = flowOf();
        await store.saveFlowState(flow);
        const takes = await Promise.all(
          Array.from({ length: 8 }, (_, i) => (i % 2 ? other : store).takeFlowState(flow.state, mine)),
        );
        expect(takes.filter((t) => t.kind === 'ok')).toHaveLength(1);
        expect(takes.filter((t) => t.kind === 'unknown')).toHaveLength(7);
      });

      it('seals the record and names it by a hash: neither the state, the session id nor the verifier is in the store', async () => {
        await store.saveFlowState(flowOf());
        const all = await dump();
        expect(all).toHaveLength(1);
        const text = JSON.stringify(all);
        for (const secret of ['state-canary', 'sid-canary', 'verifier-canary', 'app.example', 'issuer.example']) {
          expect(text).not.toContain(secret);
        }
        expect(all[0]![1]).toMatch(/^v1\.k1\./);
      });

      it('finishes on another instance (SECURITY.md 18), and not on one without the key that sealed it', async () => {
        const flow = flowOf();
        await store.saveFlowState(flow);
        await store.saveFlowState(flowOf({ state: 'other-state' }));
        expect(await (await peer()).takeFlowState(flow.state, mine)).toEqual({ kind: 'ok', flow });
        const rekeyed = await peer([testEncryptionKey('k2')]);
        expect(await rekeyed.takeFlowState('other-state', mine)).toEqual({ kind: 'unknown' });
      });

      it("lets a first release's flow state (in the clear, under the state) lapse: it is unknown", async () => {
        const flow = flowOf();
        await backend.set(`${prefix}flow:{${flow.state}}`, JSON.stringify(flow), 60_000);
        expect(await store.takeFlowState(flow.state, mine)).toEqual({ kind: 'unknown' });
      });
    });

    describe('connect sessions', () => {
      const sessionOf = () => ({
        provider: 'videoask',
        connectionId: 'c',
        returnTo: 'https://app.example/done',
        createdAt: clock.now(),
        expiresAt: clock.now() + 15 * 60_000,
      });

      it('hands out a connect session once, then says it was used', async () => {
        const session = sessionOf();
        await store.saveConnectSession('tok-1', session);
        expect(await store.takeConnectSession('tok-1')).toEqual({ kind: 'ok', session });
        expect(await store.takeConnectSession('tok-1')).toEqual({ kind: 'used' });
        expect(await store.takeConnectSession('tok-1', { provider: 'videoask' })).toEqual({ kind: 'used' });
        expect(await store.takeConnectSession('never-issued')).toEqual({ kind: 'unknown' });
      });

      it('says used for an hour after the use, even past the expiry, then forgets the link', async () => {
        await store.saveConnectSession('tok-used', sessionOf());
        clock.advance(10 * 60_000);
        expect((await store.takeConnectSession('tok-used')).kind).toBe('ok');
        if (expiresByClock) {
          clock.advance(SPENT_LINK_MEMORY_MS - 1000);
          expect(await store.takeConnectSession('tok-used')).toEqual({ kind: 'used' });
          clock.advance(1001);
          expect(await store.takeConnectSession('tok-used')).toEqual({ kind: 'unknown' });
        } else {
          const ttl = await backend.pttl(createKeys(prefix).connectSession('tok-used'));
          expect(ttl).toBeGreaterThan(SPENT_LINK_MEMORY_MS - 5000);
          expect(ttl).toBeLessThanOrEqual(SPENT_LINK_MEMORY_MS);
        }
      });

      it('says expired after its 15 minutes, for an hour, then forgets it', async () => {
        await store.saveConnectSession('tok-2', sessionOf());
        clock.advance(15 * 60_000 + 1);
        expect(await store.takeConnectSession('tok-2')).toEqual({ kind: 'expired' });
        expect(await store.takeConnectSession('tok-2')).toEqual({ kind: 'expired' });
        if (expiresByClock) {
          clock.advance(SPENT_LINK_MEMORY_MS);
          expect(await store.takeConnectSession('tok-2')).toEqual({ kind: 'unknown' });
        } else {
          const ttl = await backend.pttl(createKeys(prefix).connectSession('tok-2'));
          expect(ttl).toBeLessThanOrEqual(15 * 60_000 + SPENT_LINK_MEMORY_MS);
          expect(ttl).toBeGreaterThan(15 * 60_000 + SPENT_LINK_MEMORY_MS - 5000);
        }
      });

      it('leaves a link for another provider as it was, however often, and hands it to its own provider', async () => {
        const session = sessionOf();
        await store.saveConnectSession('tok-3', session);
        for (let i = 0; i < 3; i++) {
          expect(await store.takeConnectSession('tok-3', { provider: 'webinargeek' })).toEqual({
            kind: 'other_provider',
            provider: 'videoask',
          });
        }
        expect(await store.takeConnectSession('tok-3', { provider: 'videoask' })).toEqual({ kind: 'ok', session });
      });

      it('of concurrent takes, on two instances, exactly one gets the link; the others are told it was used', async () => {
        const other = await peer();
        await store.saveConnectSession('tok-4', sessionOf());
        const takes = await Promise.all(
          Array.from({ length: 8 }, (_, i) => (i % 2 ? other : store).takeConnectSession('tok-4')),
        );
        expect(takes.filter((t) => t.kind === 'ok')).toHaveLength(1);
        expect(takes.filter((t) => t.kind === 'used')).toHaveLength(7);
      });

      it('takes back a link that could not be used, and not one that was never taken', async () => {
        const session = sessionOf();
        await store.saveConnectSession('tok-5', session);
        expect((await store.takeConnectSession('tok-5')).kind).toBe('ok');
        await store.restoreConnectSession('tok-5', session);
        expect(await store.takeConnectSession('tok-5')).toEqual({ kind: 'ok', session });
        await store.restoreConnectSession('never-taken', session);
        expect(await store.takeConnectSession('never-taken')).toEqual({ kind: 'unknown' });
      });

      it("reads a first release's spent link (a record with an empty provider) as used", async () => {
        const key = createKeys(prefix).connectSession('tok-old');
        await backend.set(key, JSON.stringify({ ...sessionOf(), provider: '' }), 60_000);
        expect(await store.takeConnectSession('tok-old')).toEqual({ kind: 'used' });
        expect(await store.takeConnectSession('tok-old', { provider: 'videoask' })).toEqual({ kind: 'used' });
      });

      it('keeps neither the token nor anything but its hash in the key names', async () => {
        await store.saveConnectSession('tok-canary-90ab', sessionOf());
        await store.takeConnectSession('tok-canary-90ab');
        expect(JSON.stringify(await dump())).not.toContain('tok-canary');
      });
    });

    describe('browser sessions', () => {
      const data = JSON.stringify({ apiKeyFlow: { csrf: 'csrf-canary-3c9f' }, connections: [{ provider: 'x' }] });

      it('keeps browser sessions, and destroys them', async () => {
        await store.setBrowserSession('sid-1', data, 60_000);
        expect(await store.getBrowserSession('sid-1')).toBe(data);
        expect(await (await peer()).getBrowserSession('sid-1')).toBe(data);
        await store.destroyBrowserSession('sid-1');
        expect(await store.getBrowserSession('sid-1')).toBeNull();
        expect(await store.getBrowserSession('sid-never')).toBeNull();
      });

      it('seals the data and names it by a hash of the session id, with the TTL it was given', async () => {
        await store.setBrowserSession('sid-canary-e41f', data, 60_000);
        const all = await dump();
        expect(all).toHaveLength(1);
        expect(JSON.stringify(all)).not.toContain('sid-canary');
        expect(JSON.stringify(all)).not.toContain('csrf-canary');
        const ttl = await backend.pttl(all[0]![0]);
        expect(ttl).toBeGreaterThan(55_000);
        expect(ttl).toBeLessThanOrEqual(60_000);
      });

      it('reads a session no configured key opens as no session', async () => {
        await store.setBrowserSession('sid-2', data, 60_000);
        expect(await (await peer([testEncryptionKey('k2')])).getBrowserSession('sid-2')).toBeNull();
      });

      it("moves a first release's session (in the clear, under its id) once: sealed, under the hash, with the TTL it had left", async () => {
        const legacy = `${prefix}sess:{sid-old}`;
        await backend.set(legacy, data, 120_000);
        expect(await store.getBrowserSession('sid-old')).toBe(data);
        expect(await backend.get(legacy)).toBeNull();
        const all = await dump();
        expect(all).toHaveLength(1);
        expect(JSON.stringify(all)).not.toContain('csrf-canary');
        expect(await backend.pttl(all[0]![0])).toBeGreaterThan(115_000);
        expect(await store.getBrowserSession('sid-old')).toBe(data);
        await backend.set(legacy, data, 120_000);
        await store.destroyBrowserSession('sid-old');
        expect(await store.getBrowserSession('sid-old')).toBeNull();
      });
    });

    describe('a connection no configured key opens (SECURITY.md 26)', () => {
      const k1 = testEncryptionKey('k1-old');
      const k2 = testEncryptionKey('k2-new');

      async function writtenWithK1(): Promise<void> {
        const writer = await peer([k1]);
        await writer.saveConnection(connection());
        await writer.saveConnection(connection({ connectionId: 'user-2', expiresAt: null }));
        await writer.saveConnection(
          connection({ provider: 'webinargeek', authMode: 'api_key', expiresAt: null, credentials: { apiKey: 'k-1' } }),
        );
      }

      it('is credential_unreadable (409) naming the key id, for that connection only', async () => {
        await writtenWithK1();
        const reader = await peer([k2]);
        await reader.saveConnection(connection({ connectionId: 'fresh' }));
        const failure = await reader.getConnection('videoask', 'user-1').catch((err: unknown) => err);
        expect(failure).toBeInstanceOf(UnreadableCredentialError);
        expect(failure).toMatchObject({
          code: 'credential_unreadable',
          status: 409,
          keyId: 'k1-old',
          reason: 'unknown_key',
        });
        const message = (failure as Error).message;
        expect(message).toContain('"k1-old"');
        for (const key of [k1, k2]) {
          expect(message).not.toContain(key.key.toString('base64'));
          expect(message).not.toContain(key.key.toString('base64url'));
        }
        await expect(reader.getConnection('webinargeek', 'user-1')).rejects.toMatchObject({
          code: 'credential_unreadable',
          keyId: 'k1-old',
        });
        expect((await reader.getConnection('videoask', 'fresh'))?.credentials.accessToken).toBe('at-1');
      });

      it('tells a key changed under the same id from a missing one', async () => {
        await writtenWithK1();
        const changed = await peer([{ id: 'k1-old', key: testEncryptionKey().key }]);
        await expect(changed.getConnection('videoask', 'user-1')).rejects.toMatchObject({
          code: 'credential_unreadable',
          keyId: 'k1-old',
          reason: 'wrong_key',
        });
      });

      it('still lists, reads from its plaintext fields, and deletes', async () => {
        await writtenWithK1();
        const reader = await peer([k2]);
        const listed = await reader.listConnections();
        expect(listed.map((c) => `${c.provider}/${c.connectionId}/${c.status}`)).toEqual([
          'videoask/user-1/active',
          'videoask/user-2/active',
          'webinargeek/user-1/active',
        ]);
        expect(listed[0]).not.toHaveProperty('credentials');
        expect(await reader.listConnections('webinargeek')).toHaveLength(1);
        const info = await reader.getConnectionInfo('videoask', 'user-1');
        expect(info).toMatchObject({ provider: 'videoask', connectionId: 'user-1', scopes: ['openid'], account: null });
        expect(info).not.toHaveProperty('credentials');
        expect(await reader.getConnectionInfo('videoask', 'nobody')).toBeNull();
        expect(await reader.deleteConnection('videoask', 'user-1')).toBe(true);
        expect(await reader.getConnectionInfo('videoask', 'user-1')).toBeNull();
        expect((await reader.listConnections()).map((c) => c.connectionId)).toEqual(['user-2', 'user-1']);
      });

      it('is replaced by a new authorization, which the new key then opens', async () => {
        await writtenWithK1();
        const reader = await peer([k2]);
        await reader.saveConnection(connection({ credentials: { accessToken: 'at-new', refreshToken: 'rt-new' } }));
        expect((await reader.getConnection('videoask', 'user-1'))?.credentials.refreshToken).toBe('rt-new');
      });

      it('is found by the bounded audit, counted by key id, and the audit says when it stopped early', async () => {
        await writtenWithK1();
        const reader = await peer([k2]);
        await reader.saveConnection(connection({ connectionId: 'fresh' }));
        expect(await reader.auditSealingKeys({ maxConnections: 1000, maxMs: 10_000 })).toEqual({
          checked: 4,
          complete: true,
          unreadable: [{ keyId: 'k1-old', reason: 'unknown_key', connections: 3 }],
        });
        const bounded = await reader.auditSealingKeys({ maxConnections: 2, maxMs: 10_000 });
        expect(bounded.checked).toBe(2);
        expect(bounded.complete).toBe(false);
        const timed = await reader.auditSealingKeys({ maxConnections: 1000, maxMs: 0 });
        expect(timed).toEqual({ checked: 0, complete: false, unreadable: [] });
        expect(await (await peer([k2, k1])).auditSealingKeys({ maxConnections: 1000, maxMs: 10_000 })).toEqual({
          checked: 4,
          complete: true,
          unreadable: [],
        });
      });
    });

    describe('a connection written by the first release', () => {
      /** The main key exactly as the first release's store wrote it (a hash of v and d). */
      async function writeFirstRelease(): Promise<void> {
        const keys = createKeys(prefix);
        const mainKey = keys.connection('videoask', 'legacy');
        const accessKey = keys.accessToken('videoask', 'legacy');
        const cipher = new CredentialCipher([k1]);
        const meta = {
          provider: 'videoask',
          connectionId: 'legacy',
          authMode: 'oauth2',
          status: 'active',
          scopes: ['openid', 'offline_access'],
          expiresAt: clock.now() + 3600_000,
          createdAt: clock.now() - 86_400_000,
          updatedAt: clock.now() - 3600_000,
          lastRefreshedAt: null,
          account: { id: 'u-1', label: 'someone@example.com' },
          tokenType: 'Bearer',
          secrets: cipher.seal(JSON.stringify({ refreshToken: 'rt-legacy', idToken: 'id-legacy' }), mainKey),
        };
        await backend.writeConnection({
          mainKey,
          accessKey,
          expectedVersion: null,
          minVersion: 7,
          data: JSON.stringify(meta),
          mainTtlMs: null,
          access: cipher.seal('at-legacy', accessKey),
          accessTtlMs: 3600_000,
          notice: { channel: keys.connectionChanges(), message: 'videoask:legacy' },
        });
        await backend.addMember(keys.connectionIndex(), 'videoask:legacy');
      }
      const k1 = testEncryptionKey('k1');

      it('stays readable: credentials, plaintext fields, list, and a rewrite in the current layout', async () => {
        await writeFirstRelease();
        const reader = await peer([k1]);
        const read = await reader.getConnection('videoask', 'legacy');
        expect(read?.credentials).toEqual({
          accessToken: 'at-legacy',
          refreshToken: 'rt-legacy',
          idToken: 'id-legacy',
          tokenType: 'Bearer',
        });
        expect(read?.account).toEqual({ id: 'u-1', label: 'someone@example.com' });
        expect(read).toMatchObject({ config: {}, metadata: {} });
        expect(await reader.getConnectionInfo('videoask', 'legacy')).toMatchObject({
          config: {},
          metadata: {},
          scopes: ['openid', 'offline_access'],
          version: 7,
        });
        expect((await reader.listConnections()).map((c) => c.connectionId)).toEqual(['legacy']);
        const { version, ...input } = read!;
        const rewritten = await reader.updateConnection(input, version);
        expect(rewritten?.version).toBe(8);
        expect(await reader.getConnection('videoask', 'legacy')).toEqual(rewritten);
      });
    });

    listingContract(() => ({ store, peer: () => peer(), backend, prefix, clock }));
    keepAliveContract(() => ({ store, peer: () => peer(), backend, prefix, clock }));

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
