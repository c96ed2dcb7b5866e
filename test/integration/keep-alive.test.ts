import axios from 'axios';
import { createApp, type LatchkeyApp } from '../../src/app';
import { createCredentialSource } from '../../src/client';
import { FakeClock } from '../../src/clock';
import { parseConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createMetrics, type Metrics } from '../../src/metrics';
import { buildProviderRegistry } from '../../src/providers/registry';
import { videoaskSandboxSource } from '../../src/sandbox/provider-entry';
import { createSandbox, type Sandbox } from '../../src/sandbox/sandbox';
import { openStore, type Store } from '../../src/store';
import { encryptionKeyEnv, testEncryptionKey } from '../helpers/keys';
import { waitUntil } from '../helpers/latchkey-process';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { seedOAuthConnection } from '../helpers/seed';
import { startWebhookReceiver } from '../helpers/webhook-receiver';

const HOUR = 3600_000;
const KEY = encryptionKeyEnv(testEncryptionKey());
const WEBHOOK_SECRET = 'keep-alive-webhook-secret-0123456789';

/** One Latchkey instance: its own store (Redis client) on the shared prefix, app and metrics. */
interface Instance {
  store: Store;
  app: LatchkeyApp;
  metrics: Metrics;
  close(): Promise<void>;
}

async function openInstance(options: {
  sandboxUrl: string;
  prefix: string;
  clock: FakeClock;
  env?: Record<string, string>;
  store?: 'redis' | 'memory';
}): Promise<Instance> {
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    TOKEN_ENCRYPTION_KEYS: KEY,
    SESSION_SECRET: 'keep-alive-session-secret-0123456789',
    VIDEOASK_CLIENT_ID: 'sandbox-client',
    VIDEOASK_CLIENT_SECRET: 'sandbox-secret',
    REDIS_KEY_PREFIX: options.prefix,
    REFRESH_COOLDOWN_MS: '0',
    LOG_LEVEL: 'silent',
    ...((options.store ?? 'redis') === 'redis' ? { REDIS_URL: TEST_REDIS_URL } : {}),
    ...options.env,
  };
  const { config } = parseConfig(env);
  // Kept alive after one (fake) hour without a refresh.
  const providers = buildProviderRegistry(env, [videoaskSandboxSource(options.sandboxUrl, { keepAliveHours: 1 })]);
  const { store } = openStore(config, options.clock);
  if (!(await store.ready(5000))) throw new Error('the store did not become ready');
  const metrics = createMetrics();
  const app = createApp({
    config,
    store,
    providers,
    clock: options.clock,
    logger: createLogger('silent'),
    metrics,
    keepAlive: { intervalMs: 20 },
  });
  return {
    store,
    app,
    metrics,
    close: async () => {
      await app.close();
      await store.close();
    },
  };
}

async function counter(metrics: Metrics, name: 'keepAliveSweeps' | 'keepAliveRefreshes', result?: string) {
  const { values } = await metrics[name].get();
  return values.filter((v) => result === undefined || v.labels.result === result).reduce((n, v) => n + v.value, 0);
}

/** Resolves once every instance has looked at the index `n` more times than when called. */
async function moreSweeps(instances: Instance[], n: number): Promise<void> {
  const before = await Promise.all(instances.map((i) => counter(i.metrics, 'keepAliveSweeps')));
  await waitUntil(async () => {
    const now = await Promise.all(instances.map((i) => counter(i.metrics, 'keepAliveSweeps')));
    return now.every((count, i) => count >= before[i]! + n);
  });
}

describe('idle keep-alive (issue 11 part 3)', () => {
  let sandbox: Sandbox;
  let sandboxServer: { url: string; close(): Promise<void> };
  let prefix: string;
  let clock: FakeClock;
  const opened: Instance[] = [];
  const open = async (options: { env?: Record<string, string>; store?: 'redis' | 'memory' } = {}) => {
    const instance = await openInstance({ sandboxUrl: sandboxServer.url, prefix, clock, ...options });
    opened.push(instance);
    return instance;
  };
  const seed = (store: Store, connectionId: string) =>
    seedOAuthConnection(store, sandbox, {
      connectionId,
      createdAt: clock.now(),
      updatedAt: clock.now(),
      expiresAt: clock.now() + 2 * HOUR,
    });

  beforeAll(async () => {
    sandbox = createSandbox({ clientId: 'sandbox-client', clientSecret: 'sandbox-secret' });
    sandboxServer = await sandbox.listen();
  });
  afterAll(async () => sandboxServer.close());
  beforeEach(() => {
    sandbox.reset();
    sandbox.options.tokenDelayMs = 0;
    prefix = uniquePrefix('keep-alive');
    clock = new FakeClock(Date.now());
  });
  afterEach(async () => {
    for (const instance of opened.splice(0)) await instance.close();
    const raw = rawRedis();
    await deleteUnder(raw, prefix);
    raw.disconnect();
  });

  it('refreshes an idle connection once across two instances, and leaves one that is not idle alone', async () => {
    const a = await open();
    const b = await open();
    await seed(a.store, 'idle');
    clock.advance(HOUR + 1000);
    await seed(b.store, 'recent');

    const looks = async () =>
      (await counter(a.metrics, 'keepAliveRefreshes')) + (await counter(b.metrics, 'keepAliveRefreshes'));
    await waitUntil(async () => (await looks()) > 0);
    // Both instances keep looking: nothing more is refreshed.
    await moreSweeps([a, b], 3);
    expect(sandbox.stats.refreshGrants).toBe(1);
    const idle = await b.store.getConnection('videoask', 'idle');
    expect(idle).toMatchObject({ status: 'active', lastRefreshedAt: clock.now() });
    expect((await b.store.getConnection('videoask', 'recent'))?.lastRefreshedAt).toBeNull();
    const refreshedBy = await Promise.all([a, b].map((i) => counter(i.metrics, 'keepAliveRefreshes', 'refreshed')));
    expect(refreshedBy.sort()).toEqual([0, 1]);
    // Due again one hour after this refresh, not before.
    expect(await a.store.keepAlive.scheduledSince('videoask', 'idle')).toBe(clock.now());
    await waitUntil(async () => {
      const { events } = await a.store.eventLog.list({ connectionId: 'idle', limit: 10 });
      return events.some((e) => e.type === 'connection.refreshed');
    });
    const { events } = await a.store.eventLog.list({ connectionId: 'idle', type: 'connection.refreshed', limit: 10 });
    expect(events).toHaveLength(1);
  });

  it('of two instances that take the same due connection at once, one refreshes it: the other finds it refreshed under the lock', async () => {
    const a = await open({ env: { KEEPALIVE: 'false' } });
    const b = await open({ env: { KEEPALIVE: 'false' } });
    await seed(a.store, 'raced');
    clock.advance(HOUR + 1000);
    sandbox.options.tokenDelayMs = 100;
    const sources = [a, b].map((i) =>
      createCredentialSource({
        config: parseConfig({ NODE_ENV: 'test' }).config,
        store: i.store,
        clock,
        http: axios.create(),
        events: { emit: () => {} },
        logger: createLogger('silent'),
        metrics: i.metrics,
        refresh: { lockPollMs: 5 },
      }),
    );
    const videoask = buildProviderRegistry(
      { VIDEOASK_CLIENT_ID: 'sandbox-client', VIDEOASK_CLIENT_SECRET: 'sandbox-secret' },
      [videoaskSandboxSource(sandboxServer.url, { keepAliveHours: 1 })],
    ).require('videoask');
    if (videoask.authMode !== 'oauth2') throw new Error('videoask is oauth2');
    const idleSince = clock.now() - HOUR;
    const outcomes = await Promise.all(sources.map((s) => s.keepAlive(videoask, 'raced', idleSince)));
    expect(outcomes.map((o) => o.result)).toEqual(['refreshed', 'refreshed']);
    expect(sandbox.stats.refreshGrants).toBe(1);
    // Looked at again later, under the same claim: nothing is due any more.
    expect((await sources[0]!.keepAlive(videoask, 'raced', idleSince)).result).toBe('skipped');
    expect(sandbox.stats.refreshGrants).toBe(1);
  });

  it('turns a grant revoked at the provider into reauth_required, with its event and webhook, before any call', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const a = await open({ env: { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET } });
      const seeded = await seed(a.store, 'revoked');
      // The user revoked Latchkey's access at the provider (RFC 7009).
      const revoke = await fetch(`${sandboxServer.url}/oauth/revoke`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token: seeded.refreshToken,
          client_id: 'sandbox-client',
          client_secret: 'sandbox-secret',
        }).toString(),
      });
      expect(revoke.status).toBe(200);
      clock.advance(HOUR + 1000);

      await waitUntil(async () => (await a.store.getConnection('videoask', 'revoked'))?.status === 'reauth_required');
      await waitUntil(() => receiver.received.some((r) => JSON.parse(r.raw).type === 'connection.reauth_required'));
      const hook = receiver.received.find((r) => JSON.parse(r.raw).type === 'connection.reauth_required')!;
      expect(JSON.parse(hook.raw)).toMatchObject({ provider: 'videoask', connection_id: 'revoked' });
      expect(hook.headers['webhook-id']).toEqual(expect.any(String));
      await waitUntil(async () => (await counter(a.metrics, 'keepAliveRefreshes')) > 0);
      expect(await counter(a.metrics, 'keepAliveRefreshes', 'reauth_required')).toBe(1);
      // No longer kept alive: nothing to refresh until the user reconnects.
      expect(await a.store.keepAlive.scheduledSince('videoask', 'revoked')).toBeNull();
      // One refresh attempt (refused), and no call of the API: nobody used the connection.
      expect(sandbox.stats.refreshGrants).toBe(1);
      expect(sandbox.stats.apiRequests).toBe(0);
    } finally {
      for (const instance of opened.splice(0)) await instance.close();
      await receiver.close();
    }
  });

  it('does nothing on an instance with KEEPALIVE=false, while another instance keeps the connection alive', async () => {
    const off = await open({ env: { KEEPALIVE: 'false' } });
    const claims = jest.spyOn(off.store.keepAlive, 'claimDue');
    await seed(off.store, 'idle');
    clock.advance(HOUR + 1000);
    // Long enough for many looks, had it been on: the other instance's.
    const on = await open();
    await waitUntil(async () => (await counter(on.metrics, 'keepAliveRefreshes')) > 0);
    await moreSweeps([on], 5);
    expect(await counter(off.metrics, 'keepAliveSweeps')).toBe(0);
    expect(claims).not.toHaveBeenCalled();
    expect(sandbox.stats.refreshGrants).toBe(1);
    expect(await counter(on.metrics, 'keepAliveRefreshes', 'refreshed')).toBe(1);
  });

  it('on close, lets the refresh in flight finish, then looks no more and leaves no timer or socket behind', async () => {
    const before = new Map<string, number>();
    for (const kind of process.getActiveResourcesInfo()) before.set(kind, (before.get(kind) ?? 0) + 1);
    const a = await openInstance({ sandboxUrl: sandboxServer.url, prefix, clock, store: 'memory' });
    await seed(a.store, 'slow');
    clock.advance(HOUR + 1000);
    sandbox.options.tokenDelayMs = 300;
    await waitUntil(() => sandbox.stats.tokenRequests > 0);
    await a.app.close();
    // The refresh in flight was not cut off: its new tokens are stored.
    expect((await a.store.getConnection('videoask', 'slow'))?.lastRefreshedAt).toBe(clock.now());
    await a.store.close();
    const sweeps = await counter(a.metrics, 'keepAliveSweeps');
    const grown = () => {
      const now = new Map<string, number>();
      for (const kind of process.getActiveResourcesInfo()) now.set(kind, (now.get(kind) ?? 0) + 1);
      return [...now].filter(([kind, n]) => n > (before.get(kind) ?? 0));
    };
    for (let i = 0; i < 200 && grown().length; i++) await new Promise((r) => setTimeout(r, 10));
    expect(grown()).toEqual([]);
    expect(await counter(a.metrics, 'keepAliveSweeps')).toBe(sweeps);
  });
});
