import { startHarness, type Harness } from '../helpers/harness';
import { OwnRedis, waitFor } from '../helpers/own-redis';
import { apiAuth, listen, rawRequest, seedVideoAsk, type Listening, type RawResponse } from '../helpers/proxy-harness';

/** `work`, or a failure naming `what` once `ms` have passed: a bound on a wait, not a measurement. */
async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, bound]);
  } finally {
    clearTimeout(timer);
  }
}

interface Answer {
  at: number;
  ms: number;
  route: string;
  status: number;
  code?: string;
}

/**
 * SECURITY.md §17: with Redis down, every route that needs it answers 503 store_unavailable
 * within about a second (no offline queue, command timeouts), nothing hangs, service resumes by
 * itself when Redis is back, and no stored connection is lost across the restart. "About a
 * second" is a figure for the benchmark; here a call that waits for Redis to come back fails.
 */
describe('Redis outage', () => {
  let redis: OwnRedis;
  let h: Harness;
  let latchkey: Listening;

  beforeAll(async () => {
    redis = await OwnRedis.start();
    // The rate limit stays on (the proxy needs the store for it too) but never trips here.
    // DEGRADED_MODE=false: every route, the proxy included, must need the store here; the proxy's
    // degraded answers are tested in proxy-degraded-mode.test.ts.
    h = await startHarness({ env: { REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: '1000000', DEGRADED_MODE: 'false' } });
    latchkey = await listen(h.app);
  });

  /** Ends the callers' loops whatever happened, so a failed test does not leave them running. */
  const stopTraffic: Array<() => void> = [];

  afterAll(async () => {
    stopTraffic.forEach((stop) => stop());
    await latchkey?.close();
    await h?.close();
    await redis?.destroy();
  });

  const routes: Array<[string, { method?: string; path: string; headers: Record<string, string>; body?: string }]> = [
    ['proxy', { path: '/proxy/videoask/me', headers: apiAuth }],
    ['list', { path: '/connections', headers: apiAuth }],
    ['get', { path: '/connections/videoask/default', headers: apiAuth }],
    [
      'connect-session',
      {
        method: 'POST',
        path: '/connect-sessions',
        headers: { ...apiAuth, 'content-type': 'application/json' },
        body: '{"provider":"videoask","connection_id":"later"}',
      },
    ],
    ['readyz', { path: '/readyz', headers: {} }],
  ];

  async function call(route: string, request: (typeof routes)[number][1]): Promise<Answer> {
    const at = Date.now();
    const res: RawResponse = await rawRequest(latchkey.port, request);
    return {
      at,
      ms: Date.now() - at,
      route,
      status: res.status,
      code: res.headers['latchkey-error'] as string | undefined,
    };
  }

  it('answers 503 store_unavailable while Redis is down without waiting for it, recovers by itself, and loses nothing', async () => {
    const seeded = await seedVideoAsk(h, 'default');
    expect((await call('proxy', routes[0]![1])).status).toBe(200);

    // Traffic on every route, four callers in closed loops; `stop` resolves once each has its last answer.
    const answers: Answer[] = [];
    const failures: unknown[] = [];
    const traffic = () => {
      let running = true;
      stopTraffic.push(() => (running = false));
      const callers = [0, 1, 2, 3].map(async (i) => {
        for (let n = i; running; n++) {
          const [route, request] = routes[n % routes.length]!;
          try {
            answers.push(await call(route, request));
          } catch (err) {
            failures.push(err);
          }
        }
      });
      return {
        stop: async () => {
          running = false;
          await Promise.all(callers);
        },
      };
    };

    let load = traffic();
    await waitFor(() => answers.filter((a) => a.status === 200).length >= 10, 5000, 'traffic before the outage');
    const downAt = Date.now();
    await redis.stop();
    // Down: wait for every route to have answered 503 at least once (the proxy's credential cache
    // may carry it for up to a second) and for /healthz, which needs no store, to still answer.
    await waitFor(
      () => routes.every(([route]) => answers.some((a) => a.route === route && a.at > downAt && a.status === 503)),
      10_000,
      'every route to answer 503',
    );
    expect((await rawRequest(latchkey.port, { path: '/healthz' })).status).toBe(200);
    const deleteWhileDown = await call('delete', {
      method: 'DELETE',
      path: '/connections/videoask/default',
      headers: apiAuth,
    });
    expect(deleteWhileDown).toMatchObject({ status: 503, code: 'store_unavailable' });

    // Stopped while Redis is still down: every call in flight is answered without Redis coming
    // back. A call queued for the reconnect would hold this up until the bound (far above the
    // one-second command timeout) fails the test.
    await within(load.stop(), 10_000, 'answering the calls in flight while Redis is down');
    const duringOutage = answers.filter((a) => a.at > downAt);
    const errors = duringOutage.filter((a) => a.status >= 400);
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect([e.route, e.status, e.code]).toEqual([e.route, 503, 'store_unavailable']);
    expect(Math.max(...duringOutage.map((a) => a.ms))).toBeLessThan(10_000);

    const upAt = Date.now();
    await redis.start();
    load = traffic();
    await waitFor(
      () => routes.every(([route]) => answers.some((a) => a.route === route && a.at > upAt && a.status < 300)),
      15_000,
      'every route to recover',
    );
    await load.stop();

    // Every request got an HTTP answer: nothing hung, no connection was dropped.
    expect(failures).toEqual([]);

    // Nothing lost: the connection written before the restart is still there and still works.
    const after = await rawRequest(latchkey.port, { path: '/connections/videoask/default', headers: apiAuth });
    expect(after.status).toBe(200);
    expect(JSON.parse(after.body)).toMatchObject({ provider: 'videoask', connection_id: 'default', status: 'active' });
    const stored = await h.store.getConnection('videoask', 'default');
    expect(stored?.credentials.refreshToken).toBe(seeded.refreshToken);
    expect((await call('proxy', routes[0]![1])).status).toBe(200);
  });
});
