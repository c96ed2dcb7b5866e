import { startHarness, type Harness } from '../helpers/harness';
import { OwnRedis, waitFor } from '../helpers/own-redis';
import { apiAuth, listen, rawRequest, seedVideoAsk, type Listening } from '../helpers/proxy-harness';

/**
 * DEGRADED_MODE (issue 13 part 5, on by default): while Redis is down, proxied calls for a
 * connection whose cached credential is still unexpired keep working; anything that needs the
 * store answers 503 store_unavailable; all recovers by itself when Redis is back.
 */
describe('degraded mode during a Redis outage', () => {
  let redis: OwnRedis;
  let h: Harness;
  let latchkey: Listening;

  beforeAll(async () => {
    redis = await OwnRedis.start();
    // The service rate limit stays on: during the outage it is counted on this instance.
    h = await startHarness({ env: { REDIS_URL: redis.url, SERVICE_RATE_LIMIT_PER_MINUTE: '100000' } });
    latchkey = await listen(h.app);
  });

  afterAll(async () => {
    await latchkey?.close();
    await h?.close();
    await redis?.destroy();
  });

  const proxy = (id: string) =>
    rawRequest(latchkey.port, { path: '/proxy/videoask/me', headers: { ...apiAuth, 'connection-id': id } });

  it('keeps serving cached connections, refuses the rest with 503, and recovers', async () => {
    await seedVideoAsk(h, 'warm');
    await seedVideoAsk(h, 'cold');
    expect((await proxy('warm')).status).toBe(200);

    // Traffic on the cached connection runs through the whole outage.
    const statuses: number[] = [];
    let running = true;
    const traffic = (async () => {
      while (running) statuses.push((await proxy('warm')).status);
    })();
    await waitFor(() => statuses.length >= 5, 10_000, 'traffic before the outage');

    await redis.stop();
    const duringOutage = statuses.length;
    await waitFor(() => statuses.length >= duringOutage + 20, 15_000, 'twenty calls during the outage');

    const cold = await proxy('cold');
    expect([cold.status, cold.headers['latchkey-error']]).toEqual([503, 'store_unavailable']);
    const list = await rawRequest(latchkey.port, { path: '/connections', headers: apiAuth });
    expect([list.status, list.headers['latchkey-error']]).toEqual([503, 'store_unavailable']);
    const metrics = await rawRequest(latchkey.port, { path: '/metrics' });
    expect(metrics.body).toMatch(/latchkey_proxy_degraded_answers_total\{provider="videoask"\} [1-9]/);

    await redis.start();
    await waitFor(async () => (await proxy('cold')).status === 200, 15_000, 'the uncached connection to recover');
    running = false;
    await traffic;
    // Not one call to the cached connection failed, before, during or after the outage.
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect((await rawRequest(latchkey.port, { path: '/connections', headers: apiAuth })).status).toBe(200);
  });
});

describe('with DEGRADED_MODE=false', () => {
  let redis: OwnRedis;
  let h: Harness;
  let latchkey: Listening;

  beforeAll(async () => {
    redis = await OwnRedis.start();
    h = await startHarness({ env: { REDIS_URL: redis.url, DEGRADED_MODE: 'false' } });
    latchkey = await listen(h.app);
  });

  afterAll(async () => {
    await latchkey?.close();
    await h?.close();
    await redis?.destroy();
  });

  it('answers 503 for a cached connection too while the store is down', async () => {
    await seedVideoAsk(h, 'warm');
    const call = () =>
      rawRequest(latchkey.port, { path: '/proxy/videoask/me', headers: { ...apiAuth, 'connection-id': 'warm' } });
    expect((await call()).status).toBe(200);
    await redis.stop();
    await waitFor(async () => (await call()).status === 503, 15_000, 'the cached connection to be refused');
    const refused = await call();
    expect(refused.headers['latchkey-error']).toBe('store_unavailable');
    await redis.start();
    await waitFor(async () => (await call()).status === 200, 15_000, 'recovery');
  });
});
