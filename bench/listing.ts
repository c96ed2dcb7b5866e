import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { systemClock } from '../src/clock';
import { parseConfig } from '../src/config';
import { openStore, type ConnectionStatus, type Store } from '../src/store';
import { deleteUnder } from '../test/helpers/redis';

/**
 * The listing benchmark (issue 11, performance targets): on Redis, seeds N connections (default
 * 100,000, BENCH_LIST_CONNECTIONS), half of them reauth_required (so the page of 50 is full in both stores), then times the first page of
 * 50 with a `status` filter against the same page out of 100 connections (target: at most 2x), and
 * reads every page of 50 once while sampling RSS (target: under 200 MB). Timed at the store
 * (Store.queryConnections, what GET /connections calls), median of BENCH_LIST_REPEATS runs. A
 * script, never a test assertion.
 *
 *   npx tsx bench/listing.ts
 *   BENCH_LIST_CONNECTIONS=5000 REDIS_URL=redis://127.0.0.1:6379 npx tsx bench/listing.ts
 */
const N = Number(process.env.BENCH_LIST_CONNECTIONS ?? 100_000);
const BASELINE = 100;
const PAGE = 50;
const REPEATS = Number(process.env.BENCH_LIST_REPEATS ?? 50);
/** Writes in flight at once while seeding (ioredis pipelines them on the one connection). */
const SEED_CONCURRENCY = 500;
const REDIS_URL = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function open(prefix: string): Store {
  const { config } = parseConfig({
    NODE_ENV: 'test',
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
  });
  return openStore(config, systemClock).store;
}

async function seed(store: Store, n: number): Promise<number> {
  // A fresh store: the first backfill pass has nothing to do and marks the index ready.
  while (!(await store.backfillConnectionIndex(1000)).passDone);
  const started = performance.now();
  const now = Date.now();
  for (let i = 0; i < n; i += SEED_CONCURRENCY) {
    const writes: Array<Promise<unknown>> = [];
    for (let j = i; j < Math.min(n, i + SEED_CONCURRENCY); j++) {
      const status: ConnectionStatus = j % 2 === 0 ? 'reauth_required' : 'active';
      writes.push(
        store.saveConnection({
          provider: j % 3 === 0 ? 'webinargeek' : 'videoask',
          connectionId: `user-${String(j).padStart(7, '0')}`,
          authMode: 'oauth2',
          status,
          scopes: ['openid'],
          expiresAt: now + 3600_000,
          createdAt: now,
          updatedAt: now,
          lastRefreshedAt: null,
          account: { id: String(j), label: `User ${j}@example.com` },
          credentials: { accessToken: `at-${j}`, refreshToken: `rt-${j}` },
        }),
      );
    }
    await Promise.all(writes);
  }
  return performance.now() - started;
}

async function medianPageMs(store: Store, status: ConnectionStatus): Promise<{ ms: number; got: number }> {
  const times: number[] = [];
  let got = 0;
  for (let r = 0; r < REPEATS; r++) {
    const t = performance.now();
    got = (await store.queryConnections({ status, limit: PAGE })).connections.length;
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, got };
}

async function main(): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const small = { prefix: `lkbench:listing:${run}:small:`, store: undefined as Store | undefined };
  const large = { prefix: `lkbench:listing:${run}:large:`, store: undefined as Store | undefined };
  const raw = new Redis(REDIS_URL);
  let peakRss = process.memoryUsage().rss;
  const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
  try {
    small.store = open(small.prefix);
    large.store = open(large.prefix);
    if (!(await small.store.ready(5000)) || !(await large.store.ready(5000))) throw new Error('Redis is not ready');
    await seed(small.store, BASELINE);
    const seedMs = await seed(large.store, N);
    sample();
    process.stdout.write(`seeded ${N} connections in ${(seedMs / 1000).toFixed(1)} s\n`);

    for (const status of ['active', 'reauth_required'] as const) {
      // Warm both (script load, connection) before timing.
      await medianPageMs(small.store, status);
      await medianPageMs(large.store, status);
      const base = await medianPageMs(small.store, status);
      const big = await medianPageMs(large.store, status);
      process.stdout.write(
        `first page of ${PAGE}, status=${status}: ${base.ms.toFixed(2)} ms out of ${BASELINE} (${base.got} rows), ` +
          `${big.ms.toFixed(2)} ms out of ${N} (${big.got} rows): ratio ${(big.ms / base.ms).toFixed(2)}x (target <= 2x)\n`,
      );
    }

    const started = performance.now();
    let pages = 0;
    let rows = 0;
    let after: [string, string] | undefined;
    for (;;) {
      const page = await large.store.queryConnections({ limit: PAGE, after });
      pages++;
      rows += page.connections.length;
      if (pages % 50 === 0) sample();
      const last = page.connections.at(-1);
      if (!page.more || !last) break;
      after = [last.provider, last.connectionId];
    }
    sample();
    const walkMs = performance.now() - started;
    process.stdout.write(
      `read every page once: ${pages} pages, ${rows} rows in ${(walkMs / 1000).toFixed(1)} s ` +
        `(${(walkMs / pages).toFixed(2)} ms a page); peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MB (target < 200 MB)\n`,
    );
    if (rows !== N) throw new Error(`read ${rows} rows, seeded ${N}`);
  } finally {
    await deleteUnder(raw, small.prefix);
    await deleteUnder(raw, large.prefix);
    raw.disconnect();
    await small.store?.close();
    await large.store?.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`listing bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
