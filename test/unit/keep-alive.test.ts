import axios from 'axios';
import { createCredentialSource } from '../../src/client';
import {
  keepAliveBackfillPlan,
  registerKeepAliveGauge,
  startKeepAlive,
  type KeepAliveSweep,
} from '../../src/client/keep-alive';
import type { KeepAliveRefresher } from '../../src/client/types';
import { FakeClock } from '../../src/clock';
import { parseConfig } from '../../src/config';
import { noopEvents } from '../../src/events';
import { createLogger } from '../../src/logger';
import { createMetrics, type Metrics } from '../../src/metrics';
import { buildProviderRegistry, type ProviderRegistry } from '../../src/providers/registry';
import { videoaskSandboxSource } from '../../src/sandbox/provider-entry';
import { createSandbox, type Sandbox } from '../../src/sandbox/sandbox';
import { CredentialCipher } from '../../src/store';
import { startIndexBackfill } from '../../src/store/index-backfill';
import { KvStore } from '../../src/store/kv-store';
import { MemoryBackend } from '../../src/store/memory-backend';
import { writeFirstReleaseConnection } from '../helpers/first-release';
import { testEncryptionKey } from '../helpers/keys';
import { waitUntil } from '../helpers/latchkey-process';
import { seedOAuthConnection } from '../helpers/seed';

const HOUR = 3600_000;
const ENV = { NODE_ENV: 'test', VIDEOASK_CLIENT_ID: 'sandbox-client', VIDEOASK_CLIENT_SECRET: 'sandbox-secret' };

/** The keep-alive sweep and its backfill on the memory store, against the sandbox provider. */
describe('keep-alive sweep', () => {
  let sandbox: Sandbox;
  let sandboxServer: { url: string; close(): Promise<void> };
  let clock: FakeClock;
  let backend: MemoryBackend;
  let store: KvStore;
  let providers: ProviderRegistry;
  let metrics: Metrics;
  let refresher: KeepAliveRefresher;
  let sweep: KeepAliveSweep | undefined;

  beforeAll(async () => {
    sandbox = createSandbox({ clientId: 'sandbox-client', clientSecret: 'sandbox-secret' });
    sandboxServer = await sandbox.listen();
  });
  afterAll(async () => sandboxServer.close());
  beforeEach(() => {
    sandbox.reset();
    sandbox.options.tokenDelayMs = 0;
    clock = new FakeClock(Date.now());
    backend = new MemoryBackend(clock);
    store = new KvStore({ backend, cipher: new CredentialCipher([testEncryptionKey()]), clock, prefix: 'lk:' });
    // keepAliveHours 2: due two (fake) hours after the last refresh or connect.
    providers = buildProviderRegistry(ENV, [videoaskSandboxSource(sandboxServer.url, { keepAliveHours: 2 })]);
    metrics = createMetrics();
    refresher = createCredentialSource({
      config: parseConfig({ ...ENV, REFRESH_COOLDOWN_MS: '0' }).config,
      store,
      clock,
      http: axios.create(),
      events: noopEvents,
      logger: createLogger('silent'),
      metrics,
    });
  });
  afterEach(async () => {
    await sweep?.close();
    sweep = undefined;
  });

  /** A sweep that looks only when told to (sweepNow), or right after a slot frees while more are due. */
  const startSweep = (over: { concurrency?: number; retryMs?: number; refresher?: KeepAliveRefresher } = {}) =>
    (sweep = startKeepAlive(
      { store, providers, refresher: over.refresher ?? refresher, clock, logger: createLogger('silent'), metrics },
      { intervalMs: 24 * HOUR, ...over },
    ));
  const seed = (connectionId: string) =>
    seedOAuthConnection(store, sandbox, {
      connectionId,
      createdAt: clock.now(),
      updatedAt: clock.now(),
      expiresAt: clock.now() + HOUR,
    });
  const results = async () =>
    Object.fromEntries((await metrics.keepAliveRefreshes.get()).values.map((v) => [v.labels.result, v.value]));

  it('reports the connections due and not yet taken as latchkey_keepalive_due, read from the index', async () => {
    registerKeepAliveGauge(metrics.registry, { store, providers, clock });
    const due = async () => (await metrics.registry.getSingleMetric('latchkey_keepalive_due')!.get()).values[0]!.value;
    await seed('one');
    await seed('two');
    expect(await due()).toBe(0);
    clock.advance(2 * HOUR + 1);
    expect(await due()).toBe(2);
    expect(await startSweep().sweepNow()).toBe(2);
    expect(await due()).toBe(0);
  });

  it('tries a failed refresh again after the retry delay, not at the next look, and keeps the connection active', async () => {
    await seed('flaky');
    clock.advance(2 * HOUR + 1);
    sandbox.failNextTokenRequests(1, 503);
    const s = startSweep({ retryMs: 10 * 60_000 });
    expect(await s.sweepNow()).toBe(1);
    expect(await results()).toEqual({ failed: 1 });
    expect((await store.getConnection('videoask', 'flaky'))?.status).toBe('active');
    expect(await store.keepAlive.scheduledSince('videoask', 'flaky')).toBe(clock.now() - 2 * HOUR + 10 * 60_000);

    expect(await s.sweepNow()).toBe(0);
    clock.advance(10 * 60_000);
    expect(await s.sweepNow()).toBe(1);
    expect(await results()).toEqual({ failed: 1, refreshed: 1 });
    expect(sandbox.stats.refreshGrants).toBe(2);
    expect(await store.keepAlive.scheduledSince('videoask', 'flaky')).toBe(clock.now());
  });

  it('refreshes a backlog with at most `concurrency` refreshes in flight, each connection once', async () => {
    for (let i = 0; i < 10; i++) await seed(`many-${i}`);
    clock.advance(2 * HOUR + 1);
    let inFlight = 0;
    let most = 0;
    const counted: KeepAliveRefresher = {
      async keepAlive(provider, connectionId, idleSince) {
        most = Math.max(most, ++inFlight);
        try {
          return await refresher.keepAlive(provider, connectionId, idleSince);
        } finally {
          inFlight--;
        }
      },
    };
    // Refreshes that take a while: every slot stays busy for a time, with more due.
    sandbox.options.tokenDelayMs = 40;
    const s = startSweep({ concurrency: 3, refresher: counted });
    expect(await s.sweepNow()).toBe(3);
    // The rest follow as slots free, without waiting for the interval.
    await waitUntil(async () => (await results()).refreshed === 10);
    expect(most).toBe(3);
    expect(sandbox.stats.refreshGrants).toBe(10);
    // A look per freed slot, not a loop while every slot is busy.
    expect((await metrics.keepAliveSweeps.get()).values[0]!.value).toBeLessThanOrEqual(15);
    expect(await store.keepAlive.countDue('videoask', clock.now() - 2 * HOUR)).toBe(0);
  });

  it('takes out of the index a connection that turns out to have nothing to refresh, without calling the provider', async () => {
    await store.saveConnection({
      ...(await seed('no-refresh-token')).connection,
      credentials: { accessToken: 'at-only' },
    });
    // As the backfill schedules a connection of the first release (it cannot tell a refresh token).
    await store.keepAlive.schedule('videoask', 'no-refresh-token', clock.now());
    clock.advance(2 * HOUR + 1);
    expect(await startSweep().sweepNow()).toBe(1);
    expect(await results()).toEqual({ skipped: 1 });
    expect(await store.keepAlive.scheduledSince('videoask', 'no-refresh-token')).toBeNull();
    expect(sandbox.stats.tokenRequests).toBe(0);
  });

  it('takes out of the index a connection sealed with a key no longer configured, without calling the provider', async () => {
    const otherKey = testEncryptionKey('gone-key');
    const writer = new KvStore({ backend, cipher: new CredentialCipher([otherKey]), clock, prefix: 'lk:' });
    await seedOAuthConnection(writer, sandbox, {
      connectionId: 'sealed-elsewhere',
      createdAt: clock.now(),
      updatedAt: clock.now(),
      expiresAt: clock.now() + HOUR,
    });
    clock.advance(2 * HOUR + 1);
    expect(await startSweep().sweepNow()).toBe(1);
    expect(await results()).toEqual({ skipped: 1 });
    expect(await store.keepAlive.scheduledSince('videoask', 'sealed-elsewhere')).toBeNull();
    expect(sandbox.stats.tokenRequests).toBe(0);
  });
});

describe('keep-alive backfill at start (issue 11 part 6)', () => {
  const clock = new FakeClock(Date.now());
  const providers = buildProviderRegistry(ENV, [videoaskSandboxSource('http://127.0.0.1:1', { keepAliveHours: 24 })]);
  let backend: MemoryBackend;
  const open = () =>
    new KvStore({ backend, cipher: new CredentialCipher([testEncryptionKey()]), clock, prefix: 'lk:' });

  /** Connections as the first release wrote them: no listing index, no keep-alive index. */
  const writeAsFirstRelease = (connectionId: string, idleHours: number) =>
    writeFirstReleaseConnection(backend, 'lk:', {
      provider: 'videoask',
      connectionId,
      createdAt: clock.now() - idleHours * HOUR,
      updatedAt: clock.now() - idleHours * HOUR,
    });

  beforeEach(async () => {
    backend = new MemoryBackend(clock);
    for (let i = 0; i < 20; i++) await writeAsFirstRelease(`old-${String(i).padStart(2, '0')}`, 100 + i);
    await writeAsFirstRelease('recent', 3);
  });

  it('spreads the overdue connections over the next hour, keeps the others at their own time, and a re-run changes nothing', async () => {
    const store = open();
    let draws = 0;
    const plan = keepAliveBackfillPlan({ providers, clock, spreadMs: HOUR, random: () => (draws++ % 20) / 20 });
    const steps = jest.spyOn(store.keepAlive, 'backfillStep');
    const backfill = startIndexBackfill(store, { batch: 4, keepAlive: plan });
    await backfill.firstPass;
    await backfill.close();
    expect(steps.mock.calls.length).toBeGreaterThanOrEqual(6);
    expect(steps.mock.calls.every(([batch]) => batch === 4)).toBe(true);

    const idleSince = clock.now() - 24 * HOUR;
    const times = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.keepAlive.scheduledSince('videoask', `old-${String(i).padStart(2, '0')}`),
      ),
    );
    // Due from now on, over the next hour, never all at once.
    for (const t of times) expect(t! - idleSince).toBeGreaterThanOrEqual(0);
    for (const t of times) expect(t! - idleSince).toBeLessThan(HOUR);
    expect(new Set(times).size).toBe(20);
    expect(await store.keepAlive.countDue('videoask', idleSince)).toBe(1);
    expect(await store.keepAlive.scheduledSince('videoask', 'recent')).toBe(clock.now() - 3 * HOUR);
    expect(await store.isLocked('connection-index-backfill')).toBe(false);

    const again = startIndexBackfill(open(), { batch: 100, keepAlive: keepAliveBackfillPlan({ providers, clock }) });
    await again.firstPass;
    await again.close();
    const after = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.keepAlive.scheduledSince('videoask', `old-${String(i).padStart(2, '0')}`),
      ),
    );
    expect(after).toEqual(times);
  });

  it('resumes the keep-alive part another instance left half done', async () => {
    const first = open();
    const plan = keepAliveBackfillPlan({ providers, clock });
    expect((await first.keepAlive.backfillStep(8, plan)).passDone).toBe(false);
    const second = open();
    const steps = jest.spyOn(second.keepAlive, 'backfillStep');
    const backfill = startIndexBackfill(second, { batch: 8, keepAlive: plan });
    await backfill.firstPass;
    await backfill.close();
    expect(steps).toHaveBeenCalledTimes(2);
    expect(await second.keepAlive.countDue('videoask', clock.now())).toBe(21);
  });
});
