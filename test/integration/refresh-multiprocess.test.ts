import { startHarness, type Harness } from '../helpers/harness';
import { watchLock } from '../helpers/lock-watch';
import { startProviderGate, tokenRequests, type ProviderGate } from '../helpers/provider-gate';
import { rawRedis } from '../helpers/redis';
import {
  refreshTokensSent,
  seedConnection,
  startLatchkeyProcess,
  waitUntil,
  type LatchkeyProcess,
  type LatchkeyProcessOptions,
} from '../helpers/latchkey-process';

/**
 * Two real Latchkey processes sharing Redis, against the strict-rotation sandbox (a reused
 * refresh token revokes the family): SECURITY.md §13 and §16. The processes reach the sandbox
 * through a gate, so a test decides when the token endpoint answers instead of racing a delay.
 */
describe('refresh across Latchkey processes sharing Redis', () => {
  /** A heartbeat every 500 ms: a holder loses its lock only after a stall of a second. */
  const LOCK_TTL_MS = 1500;
  let h: Harness;
  let gate: ProviderGate;
  let processes: LatchkeyProcess[] = [];

  const spawnLatchkey = (extra: Partial<LatchkeyProcessOptions> = {}) =>
    startLatchkeyProcess({
      sandboxUrl: gate.url,
      prefix: h.prefix,
      encryptionKeys: h.config.tokenEncryptionKeys,
      env: { TOKEN_REQUEST_TIMEOUT_MS: '5000', REFRESH_LOCK_TTL_MS: String(LOCK_TTL_MS), LOG_LEVEL: 'error' },
      ...extra,
    }).then((p) => {
      processes.push(p);
      return p;
    });

  beforeAll(async () => {
    h = await startHarness({ sandbox: { rotation: 'strict' } });
    gate = await startProviderGate(h.sandboxUrl);
    await Promise.all([spawnLatchkey(), spawnLatchkey()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill('SIGKILL')));
    processes = [];
    await gate.close();
    await h.close();
  });
  beforeEach(() => h.sandbox.reset());

  const first = () => processes[0]!;
  const second = () => processes[1]!;
  const getToken = async (p: LatchkeyProcess, connectionId: string) => {
    const res = await p.call('GET', `/connections/videoask/${connectionId}/token`);
    return {
      status: res.status,
      body: (await res.json()) as { access_token?: string; error?: { code: string } },
      headers: res.headers,
    };
  };
  const sandboxAccepts = async (accessToken: string) =>
    (await fetch(`${h.sandboxUrl}/me`, { headers: { Authorization: `Bearer ${accessToken}` } })).status === 200;

  /** 200 concurrent GET …/token spread over both processes; every one must succeed with the same working token. */
  const burst = async (connectionId: string) => {
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => getToken(processes[i % 2]!, connectionId)));
    const failures = answers.filter((a) => a.status !== 200);
    expect(failures).toEqual([]);
    const tokens = new Set(answers.map((a) => a.body.access_token));
    expect(tokens.size).toBe(1);
    expect(await sandboxAccepts([...tokens][0]!)).toBe(true);
  };

  /** The stored refresh token is the newest of its family: one more refresh, from either process, succeeds. */
  const expectConnectionRefreshable = async (connectionId: string) => {
    const res = await second().call('POST', `/connections/videoask/${connectionId}/refresh`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('active');
  };

  it('makes exactly one token request for 200 calls over two processes, and Redis holds the newest refresh token', async () => {
    const seeded = await seedConnection(h.store, h.sandbox, {
      connectionId: 'two-proc',
      expiresAt: Date.now() - 1000,
      now: Date.now(),
    });
    await burst('two-proc');
    expect(h.sandbox.stats.tokenRequests).toBe(1);
    expect(refreshTokensSent(h.sandbox)).toEqual([seeded.refreshToken]);
    await expectConnectionRefreshable('two-proc');
    expect(h.sandbox.stats.refreshGrants).toBe(2);
  });

  it('with the token endpoint slower than the lock TTL, sends each refresh token once and the connection survives', async () => {
    const seeded = await seedConnection(h.store, h.sandbox, {
      connectionId: 'two-proc-slow',
      expiresAt: Date.now() - 1000,
      now: Date.now(),
    });
    const redis = rawRedis();
    const lock = watchLock(redis, `${h.prefix}lock:{refresh:videoask:two-proc-slow}`);
    const hold = gate.hold({ match: tokenRequests, stage: 'response' });
    try {
      const calls = burst('two-proc-slow');
      // Four heartbeats: the token request has outlived the lock's TTL, and only they kept the lock.
      // A second token request (the lock lapsed, the other process took it) ends the wait at once.
      await waitUntil(() => lock.heartbeats >= 4 || hold.count >= 2, 15_000);
      await hold.release();
      await calls;
      expect(hold.count).toBe(1);
      expect(lock.heartbeats).toBeGreaterThanOrEqual(4);
      expect(lock.holders).toBe(1);
    } finally {
      await hold.release();
      await lock.stop();
      redis.disconnect();
    }
    expect(refreshTokensSent(h.sandbox)).toEqual([seeded.refreshToken]);
    await expectConnectionRefreshable('two-proc-slow');
    const sent = refreshTokensSent(h.sandbox);
    expect(sent).toHaveLength(2);
    expect(new Set(sent).size).toBe(2);
  });

  it('when a process is killed after the provider answered but before the write, the next refresh shows reauth_required, without hanging', async () => {
    const seeded = await seedConnection(h.store, h.sandbox, {
      connectionId: 'crash-before-write',
      expiresAt: Date.now() - 1000,
      now: Date.now(),
    });
    const victim = await spawnLatchkey();
    // The sandbox rotates the refresh token at once; its answer waits at the gate until the victim is dead.
    const hold = gate.hold({ match: tokenRequests, stage: 'response' });
    try {
      const pending = getToken(victim, 'crash-before-write').catch(() => null);
      await hold.arrival(1);
      await victim.kill('SIGKILL');
      await pending;
    } finally {
      await hold.release();
    }
    expect(refreshTokensSent(h.sandbox)).toEqual([seeded.refreshToken]);
    expect((await h.store.getConnection('videoask', 'crash-before-write'))?.version).toBe(seeded.connection.version);

    // The peer waits out the dead holder's lock, refreshes with the rotated-away token: invalid_grant.
    const answer = await getToken(first(), 'crash-before-write');
    expect(answer.status).toBe(409);
    expect(answer.body.error?.code).toBe('reauth_required');
    expect(answer.headers.get('latchkey-error')).toBe('reauth_required');
    expect(refreshTokensSent(h.sandbox)).toEqual([seeded.refreshToken, seeded.refreshToken]);

    const view = await first().call('GET', '/connections/videoask/crash-before-write');
    expect(((await view.json()) as { status: string }).status).toBe('reauth_required');
    const again = await getToken(second(), 'crash-before-write');
    expect(again.status).toBe(409);
    expect(h.sandbox.stats.refreshGrants).toBe(2); // fast failure: no further token request
  });

  it('when a process is killed after the write, its peers use the new token without refreshing again', async () => {
    const seeded = await seedConnection(h.store, h.sandbox, {
      connectionId: 'crash-after-write',
      expiresAt: Date.now() - 1000,
      now: Date.now(),
    });
    const victim = await spawnLatchkey();
    const pending = getToken(victim, 'crash-after-write').catch(() => null);
    await waitUntil(
      async () =>
        ((await h.store.getConnection('videoask', 'crash-after-write'))?.version ?? 0) > seeded.connection.version,
      10_000,
      5,
    );
    await victim.kill('SIGKILL');
    await pending;
    const written = await h.store.getConnection('videoask', 'crash-after-write');

    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => getToken(processes[i % 2]!, 'crash-after-write')),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(new Set(answers.map((a) => a.body.access_token))).toEqual(new Set([written?.credentials.accessToken]));
    expect(h.sandbox.stats.refreshGrants).toBe(1);
  });
});
