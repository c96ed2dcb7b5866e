import axios from 'axios';
import { createApiClient, type CredentialSource } from '../../src/client';
import type { OAuth2Provider, Provider } from '../../src/providers/registry';
import { credentialSourceFor, startHarness, type Harness } from '../helpers/harness';
import { refreshTokensSent, seedConnection, waitUntil } from '../helpers/latchkey-process';
import { startProviderGate, tokenRequests } from '../helpers/provider-gate';

/**
 * One refresh per expiry (SECURITY.md §13) on the real Redis and the strict-rotation sandbox,
 * where a second refresh with the same token would revoke the whole family.
 */
describe('concurrent calls on an expired token, in one process', () => {
  let h: Harness;
  let videoask: Provider;
  const http = axios.create();

  beforeAll(async () => {
    h = await startHarness({ sandbox: { rotation: 'strict' } });
    videoask = h.providers.require('videoask');
  });
  afterAll(async () => h.close());
  beforeEach(() => h.sandbox.reset());

  /** A coordinator of its own: several of them on one Redis behave like separate instances. */
  const instance = (refresh: { lockTtlMs?: number } = {}): CredentialSource => credentialSourceFor(h, refresh);

  /** The connection still refreshes: its stored refresh token is the newest of its family. */
  const expectNewestRefreshTokenStored = async (connectionId: string) => {
    const before = h.sandbox.stats.refreshGrants;
    const res = await h.api().post(`/connections/videoask/${connectionId}/refresh`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('active');
    expect(h.sandbox.stats.refreshGrants).toBe(before + 1);
  };

  it('makes exactly one token request for 200 calls, all of which succeed', async () => {
    const seeded = await seedConnection(h.store, h.sandbox, {
      connectionId: 'burst',
      expiresAt: Date.now() - 1000,
      now: Date.now(),
    });
    const client = createApiClient({ credentials: instance(), http }).forConnection(videoask, 'burst');

    const answers = await Promise.all(Array.from({ length: 200 }, () => client.get<{ user_id: string }>('/me')));

    expect(answers.every((a) => a.status === 200 && a.data.user_id === 'usr_sandbox_0001')).toBe(true);
    expect(h.sandbox.stats.tokenRequests).toBe(1);
    expect(refreshTokensSent(h.sandbox)).toEqual([seeded.refreshToken]);
    const stored = await h.store.getConnection('videoask', 'burst');
    expect(stored?.credentials.refreshToken).not.toBe(seeded.refreshToken);
    await expectNewestRefreshTokenStored('burst');
  });

  it('with the token endpoint slower than the lock TTL, never sends a rotated refresh token again and keeps the connection', async () => {
    const seeded = await seedConnection(h.store, h.sandbox, {
      connectionId: 'slow',
      expiresAt: Date.now() - 1000,
      now: Date.now(),
    });
    // The holder's heartbeats, counted as they succeed: each one pushes its lock a whole TTL ahead.
    const extendLock = h.store.extendLock.bind(h.store);
    let heartbeats = 0;
    const spy = jest.spyOn(h.store, 'extendLock').mockImplementation(async (name, token, ttlMs) => {
      const held = await extendLock(name, token, ttlMs);
      if (held && name === 'refresh:videoask:slow') heartbeats += 1;
      return held;
    });
    // The sandbox rotates the refresh token at once; its answer waits at the gate until the lock outlived its TTL.
    const gate = await startProviderGate(h.sandboxUrl);
    const hold = gate.hold({ match: tokenRequests, stage: 'response' });
    const gated = { ...(videoask as OAuth2Provider), tokenUrl: `${gate.url}/oauth/token` };
    try {
      const lockTtlMs = 1500; // a heartbeat every 500 ms: only a stall of a second loses the lock
      const instances = Array.from({ length: 4 }, () => instance({ lockTtlMs }));
      const clients = instances.map((credentials) =>
        createApiClient({ credentials, http }).forConnection(gated, 'slow'),
      );

      const calls = Promise.allSettled(Array.from({ length: 200 }, (_, i) => clients[i % clients.length]!.get('/me')));
      // Four heartbeats: the token request has lasted longer than the TTL, so only they kept the lock.
      // A second token request (the lock lapsed and another instance took it) ends the wait at once.
      await waitUntil(() => heartbeats >= 4 || hold.count >= 2, 15_000);
      await hold.release();
      const answers = await calls;

      expect(hold.count).toBe(1);
      expect(heartbeats).toBeGreaterThanOrEqual(4);
      expect(answers.filter((a) => a.status !== 'fulfilled' || a.value.status !== 200)).toEqual([]);
      expect(h.sandbox.stats.refreshGrants).toBe(1);
      expect(refreshTokensSent(h.sandbox)).toEqual([seeded.refreshToken]);
    } finally {
      spy.mockRestore();
      await gate.close();
    }
    await expectNewestRefreshTokenStored('slow');
    const sent = refreshTokensSent(h.sandbox);
    expect(new Set(sent).size).toBe(sent.length);
  });
});
