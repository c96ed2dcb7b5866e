import axios from 'axios';
import nock from 'nock';
import { createCredentialSource, type CredentialSource } from '../../src/client';
import { FakeClock } from '../../src/clock';
import { parseConfig } from '../../src/config';
import type { ConnectionEventType } from '../../src/events';
import { createLogger } from '../../src/logger';
import { createMetrics, type Metrics } from '../../src/metrics';
import { buildProviderRegistry, type OAuth2Provider } from '../../src/providers/registry';
import { videoaskSandboxSource } from '../../src/sandbox/provider-entry';
import { CredentialCipher, type Connection, type ConnectionInput, type Store } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { MemoryBackend } from '../../src/store/memory-backend';
import { testEncryptionKey } from '../helpers/keys';
import { useStrictNock } from '../helpers/strict-nock';

const PROVIDER_URL = 'https://provider.test';
const HOUR = 3600_000;

describe('credential source (refresh coordinator) on the memory store', () => {
  let clock: FakeClock;
  let store: Store;
  let provider: OAuth2Provider;
  let credentials: CredentialSource;
  let events: Array<{ type: ConnectionEventType; connectionId: string }>;
  let metrics: Metrics;

  useStrictNock();

  beforeEach(() => {
    clock = new FakeClock(Date.UTC(2026, 0, 1));
    store = new KvStore({
      backend: new MemoryBackend(clock),
      cipher: new CredentialCipher([testEncryptionKey()]),
      clock,
      prefix: 'lk:',
    });
    const env = {
      NODE_ENV: 'test',
      VIDEOASK_CLIENT_ID: 'client',
      VIDEOASK_CLIENT_SECRET: 'secret',
      TOKEN_REQUEST_TIMEOUT_MS: '2000',
    };
    provider = buildProviderRegistry(env, [videoaskSandboxSource(PROVIDER_URL)]).require('videoask') as OAuth2Provider;
    events = [];
    metrics = createMetrics();
    credentials = createCredentialSource({
      config: parseConfig(env).config,
      store,
      clock,
      http: axios.create(),
      events: { emit: (type, _p, connectionId) => events.push({ type, connectionId }) },
      logger: createLogger('silent'),
      metrics,
      refresh: { lockPollMs: 5, cooldownMs: 10_000, tokenRequestTimeoutMs: 300 },
    });
  });

  const seed = (over: Partial<ConnectionInput> = {}): Promise<Connection> =>
    store.saveConnection({
      provider: 'videoask',
      connectionId: 'c1',
      authMode: 'oauth2',
      status: 'active',
      scopes: ['openid'],
      expiresAt: clock.now() + HOUR,
      createdAt: clock.now(),
      updatedAt: clock.now(),
      lastRefreshedAt: null,
      account: null,
      credentials: { accessToken: 'at-1', refreshToken: 'rt-1', tokenType: 'Bearer' },
      ...over,
    });

  /** The token endpoint answering one refresh of `expected` with new tokens. */
  const tokenEndpoint = () => nock(PROVIDER_URL).post('/oauth/token');

  it('answers a token outside the refresh margin without a token request', async () => {
    await seed();
    const { header } = await credentials.getCredential(provider, 'c1');
    expect(header).toEqual({ name: 'Authorization', value: 'Bearer at-1' });
  });

  it('refreshes a token within the margin and stores the rotated refresh token', async () => {
    await seed({ expiresAt: clock.now() + 60_000, updatedAt: clock.now() - HOUR });
    tokenEndpoint().reply(200, { access_token: 'at-2', refresh_token: 'rt-2', token_type: 'bearer', expires_in: 3600 });
    const { header, connection } = await credentials.getCredential(provider, 'c1');
    expect(header.value).toBe('Bearer at-2');
    const stored = await store.getConnection('videoask', 'c1');
    expect(stored?.credentials).toMatchObject({ accessToken: 'at-2', refreshToken: 'rt-2' });
    expect(stored?.lastRefreshedAt).toBe(clock.now());
    expect(stored?.expiresAt).toBe(clock.now() + HOUR);
    expect(connection.version).toBe(stored?.version);
    expect(events).toEqual([{ type: 'connection.refreshed', connectionId: 'c1' }]);
  });

  it('keeps the old refresh token when the provider returns none', async () => {
    await seed({ expiresAt: clock.now() - 1 });
    tokenEndpoint().reply(200, { access_token: 'at-2', expires_in: 3600 });
    await credentials.getCredential(provider, 'c1');
    expect((await store.getConnection('videoask', 'c1'))?.credentials).toMatchObject({
      accessToken: 'at-2',
      refreshToken: 'rt-1',
    });
  });

  it('makes one token request for fifty concurrent callers on an expired token', async () => {
    await seed({ expiresAt: clock.now() - 1 });
    tokenEndpoint().delay(20).reply(200, { access_token: 'at-2', refresh_token: 'rt-2', expires_in: 3600 });
    const results = await Promise.all(Array.from({ length: 50 }, () => credentials.getCredential(provider, 'c1')));
    expect(new Set(results.map((r) => r.header.value))).toEqual(new Set(['Bearer at-2']));
    expect(await metrics.refreshes.get()).toMatchObject({
      values: [expect.objectContaining({ value: 1, labels: { provider: 'videoask', result: 'success' } })],
    });
  });

  it('lets a waiter take the token another instance stored while holding the lock, without refreshing', async () => {
    const seeded = await seed({ expiresAt: clock.now() - 1 });
    const lockName = 'refresh:videoask:c1';
    const peerLock = await store.acquireLock(lockName, 60_000);
    expect(peerLock).not.toBeNull();
    // The waiter's attempts at the lock, and a signal at its first refusal: from then on it is in its poll loop.
    const attempts: Array<string | null> = [];
    let markRefused!: () => void;
    const refused = new Promise<void>((resolve) => (markRefused = resolve));
    const acquireLock = store.acquireLock.bind(store);
    jest.spyOn(store, 'acquireLock').mockImplementation(async (name, ttlMs) => {
      const token = await acquireLock(name, ttlMs);
      if (name === lockName) {
        attempts.push(token);
        if (token === null) markRefused();
      }
      return token;
    });

    const waiting = credentials.getCredential(provider, 'c1');
    await refused;
    await store.updateConnection(
      {
        ...seeded,
        expiresAt: clock.now() + HOUR,
        credentials: { accessToken: 'at-peer', refreshToken: 'rt-peer', tokenType: 'Bearer' },
      },
      seeded.version,
    );
    expect((await waiting).header.value).toBe('Bearer at-peer');

    // It found the lock held, never took it, and answered from the store while the peer still held it.
    expect(attempts.length).toBeGreaterThan(0);
    expect(attempts.every((token) => token === null)).toBe(true);
    expect(await store.isLocked(lockName)).toBe(true);
    // The wait is what the coordinator measures once it leaves the loop after waiting.
    const waits = (await metrics.lockWaits.get()).values.find((v) => v.metricName?.endsWith('_count'));
    expect(waits).toMatchObject({ value: 1, labels: { provider: 'videoask' } });
    expect(await store.releaseLock(lockName, peerLock!)).toBe(true);
  });

  it('refuses the write of a holder whose credentials were replaced during its token request, and answers the newer ones', async () => {
    const seeded = await seed({ expiresAt: clock.now() - 1 });
    tokenEndpoint().reply(async () => {
      // Another writer (a holder after this one's lock lapsed, or a reconnect) lands first.
      await store.updateConnection(
        {
          ...seeded,
          expiresAt: clock.now() + HOUR,
          credentials: { accessToken: 'at-newer', refreshToken: 'rt-newer', tokenType: 'Bearer' },
        },
        seeded.version,
      );
      return [200, { access_token: 'at-stale', refresh_token: 'rt-stale', expires_in: 3600 }];
    });
    const { header } = await credentials.getCredential(provider, 'c1');
    expect(header.value).toBe('Bearer at-newer');
    expect((await store.getConnection('videoask', 'c1'))?.credentials.refreshToken).toBe('rt-newer');
  });

  describe('when the provider answers invalid_grant', () => {
    it('marks the connection reauth_required once, emits the event and fails fast after', async () => {
      await seed({ expiresAt: clock.now() - 1 });
      tokenEndpoint().reply(400, { error: 'invalid_grant', error_description: 'revoked' });
      await expect(credentials.getCredential(provider, 'c1')).rejects.toMatchObject({
        code: 'reauth_required',
        status: 409,
      });
      expect((await store.getConnection('videoask', 'c1'))?.status).toBe('reauth_required');
      expect(events).toEqual([{ type: 'connection.reauth_required', connectionId: 'c1' }]);
      // No interceptor left: a second token request would fail with a network error, not 409.
      await expect(credentials.getCredential(provider, 'c1')).rejects.toMatchObject({ code: 'reauth_required' });
      await expect(credentials.forceRefresh(provider, 'c1')).rejects.toMatchObject({ code: 'reauth_required' });
      expect(events).toHaveLength(1);
    });

    it('takes the refresh token a peer stored meanwhile instead of giving up the connection', async () => {
      const seeded = await seed({ expiresAt: clock.now() - 1 });
      tokenEndpoint().reply(async () => {
        await store.updateConnection(
          {
            ...seeded,
            expiresAt: clock.now() + HOUR,
            credentials: { accessToken: 'at-peer', refreshToken: 'rt-peer', tokenType: 'Bearer' },
          },
          seeded.version,
        );
        return [400, { error: 'invalid_grant' }];
      });
      const { header } = await credentials.getCredential(provider, 'c1');
      expect(header.value).toBe('Bearer at-peer');
      expect((await store.getConnection('videoask', 'c1'))?.status).toBe('active');
      expect(events).toEqual([]);
    });
  });

  describe('when the token endpoint is down', () => {
    it('keeps the credentials, stays active, answers 502 with Retry-After, cools down, then tries again', async () => {
      await seed({ expiresAt: clock.now() - 1 });
      tokenEndpoint().reply(503, 'unavailable');
      const failure = await credentials.getCredential(provider, 'c1').catch((e: unknown) => e);
      expect(failure).toMatchObject({ code: 'provider_error', status: 502, retryAfter: 10 });
      const stored = await store.getConnection('videoask', 'c1');
      expect(stored).toMatchObject({ status: 'active', credentials: { refreshToken: 'rt-1' } });
      expect(events).toEqual([{ type: 'connection.refresh_failed', connectionId: 'c1' }]);

      // During the cooldown: 502 at once, no token request (none is mocked).
      await expect(credentials.getCredential(provider, 'c1')).rejects.toMatchObject({ code: 'provider_error' });

      clock.advance(10_001);
      tokenEndpoint().reply(200, { access_token: 'at-2', refresh_token: 'rt-2', expires_in: 3600 });
      expect((await credentials.getCredential(provider, 'c1')).header.value).toBe('Bearer at-2');
    });

    it('answers 502 on a timeout without waiting past the token request timeout', async () => {
      await seed({ expiresAt: clock.now() - 1 });
      tokenEndpoint().delay(1000).reply(200, { access_token: 'late', expires_in: 3600 });
      await expect(credentials.getCredential(provider, 'c1')).rejects.toMatchObject({ code: 'provider_error' });
      expect((await store.getConnection('videoask', 'c1'))?.credentials.refreshToken).toBe('rt-1');
    });

    it('keeps serving a token that has not expired yet when only the proactive refresh fails', async () => {
      await seed({ expiresAt: clock.now() + 60_000, updatedAt: clock.now() - HOUR });
      tokenEndpoint().reply(500, { error: 'server_error' });
      expect((await credentials.getCredential(provider, 'c1')).header.value).toBe('Bearer at-1');
    });

    it('fails a forced refresh with 502 even while the token still works', async () => {
      await seed();
      tokenEndpoint().reply(502, '<html>Bad gateway</html>');
      await expect(credentials.forceRefresh(provider, 'c1')).rejects.toMatchObject({
        code: 'provider_error',
        retryAfter: 10,
      });
      expect((await store.getConnection('videoask', 'c1'))?.status).toBe('active');
    });
  });

  describe('after a provider 401', () => {
    it('refreshes once when the rejected token is the stored one', async () => {
      await seed();
      const rejected = await credentials.getCredential(provider, 'c1');
      tokenEndpoint().reply(200, { access_token: 'at-2', refresh_token: 'rt-2', expires_in: 3600 });
      const renewed = await credentials.refreshAfterUnauthorized(provider, 'c1', rejected);
      expect(renewed?.header.value).toBe('Bearer at-2');
    });

    it('uses the token a peer already stored instead of refreshing', async () => {
      const seeded = await seed();
      const rejected = await credentials.getCredential(provider, 'c1');
      await store.updateConnection(
        { ...seeded, credentials: { ...seeded.credentials, accessToken: 'at-peer' } },
        seeded.version,
      );
      expect((await credentials.refreshAfterUnauthorized(provider, 'c1', rejected))?.header.value).toBe(
        'Bearer at-peer',
      );
    });

    it('does not refresh again when the provider refuses a token it issued moments ago', async () => {
      await seed({ lastRefreshedAt: clock.now() - 1000 });
      const rejected = await credentials.getCredential(provider, 'c1');
      expect(await credentials.refreshAfterUnauthorized(provider, 'c1', rejected)).toBeNull();
    });

    it('refreshes a token without expires_in only then, never by time', async () => {
      await seed({ expiresAt: null });
      clock.advance(365 * 24 * HOUR);
      const rejected = await credentials.getCredential(provider, 'c1');
      expect(rejected.header.value).toBe('Bearer at-1');
      tokenEndpoint().reply(200, { access_token: 'at-2', refresh_token: 'rt-2' });
      expect((await credentials.refreshAfterUnauthorized(provider, 'c1', rejected))?.header.value).toBe('Bearer at-2');
      expect((await store.getConnection('videoask', 'c1'))?.expiresAt).toBeNull();
    });
  });

  it('refreshes tokens that live shorter than the margin at half their life, not on every call', async () => {
    await seed({ expiresAt: clock.now() + 60_000, lastRefreshedAt: clock.now() });
    clock.advance(29_000);
    expect((await credentials.getCredential(provider, 'c1')).header.value).toBe('Bearer at-1');
    clock.advance(2000);
    tokenEndpoint().reply(200, { access_token: 'at-2', expires_in: 60 });
    expect((await credentials.getCredential(provider, 'c1')).header.value).toBe('Bearer at-2');
    expect((await credentials.getCredential(provider, 'c1')).header.value).toBe('Bearer at-2');
  });

  it('answers connection_not_found for an unknown connection', async () => {
    await expect(credentials.getCredential(provider, 'nobody')).rejects.toMatchObject({
      code: 'connection_not_found',
      status: 404,
    });
  });
});
