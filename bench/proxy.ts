import { Child, type Usage } from './lib/child-process';
import { BENCH_API_KEY } from './lib/constants';
import type { LoadRequest, LoadResult } from './lib/load-generator';

/**
 * The proxy benchmark (issue 4): Latchkey's /proxy against what a team would hand-roll
 * (Express + http-proxy-middleware adding a static header) and against the practical floor
 * (a bare node:http server forwarding with undici), all in front of the same local upstream
 * answering ~2 KB of JSON. Every party runs in a process of its own on 127.0.0.1; the figures
 * are ratios measured in one run, printed against the targets. Never a test assertion.
 *
 * Each contender is measured three ways:
 * - saturated: 50 connections in closed loops — throughput (and, for information, its p99,
 *   which at saturation is mostly queueing: 50 requests in flight / throughput);
 * - paced: 50 connections sending RATE requests a second together, a load every contender
 *   sustains — CPU per request and p99, free of queueing and of saturation's batching;
 * - one connection — p50 latency, against calling the upstream directly.
 *
 *   npx tsx bench/proxy.ts            (or: npm run bench -- proxy)
 *   BENCH_SECONDS=5 BENCH_RATE=1000 BENCH_ONLY=latchkey BENCH_LOG_LEVEL=info BENCH_CPU_PROF=/tmp/prof npx tsx bench/proxy.ts
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const SHORT_SECONDS = Math.max(2, Math.round(SECONDS * 0.6));
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const CONCURRENCY = 50;
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 1);
const PATH = '/proxy/videoask/forms';
/** The many-connections scenario: this many seeded connections, called at random. */
const MANY = Number(process.env.BENCH_MANY_CONNECTIONS ?? 10_000);

type Contender = 'latchkey' | 'baseline' | 'floor';

interface Measured {
  saturated: LoadResult;
  paced: LoadResult;
  single: LoadResult;
  cpuMicrosPerRequest: number;
  /** At saturation, for information: it rewards whoever batches most, so the paced figure is the one compared. */
  cpuMicrosPerRequestSaturated: number;
  maxRssBytes: number;
  errors: number;
}

const children: Child[] = [];
function start(file: string, args: string[] = [], env: Record<string, string> = {}): Child {
  const child = Child.start(file, args, env);
  children.push(child);
  return child;
}

function load(gen: Child, job: Omit<LoadRequest, 'type'>): Promise<LoadResult> {
  return gen.ask<LoadResult>({ type: 'run', ...job }, 'result', job.durationMs + 30_000);
}

interface Scenario {
  /** Connections seeded, and called at random (`Connection-Id: c<n>`); unset: one connection. */
  connections?: number;
}

async function measure(gen: Child, name: Contender, upstreamUrl: string, scenario: Scenario = {}): Promise<Measured> {
  const env: Record<string, string> = scenario.connections ? { BENCH_CONNECTIONS: String(scenario.connections) } : {};
  const server = start('proxy-server.ts', [name, upstreamUrl], env);
  const { port } = await server.next<{ port: number }>('listening', 180_000);
  const job = {
    origin: `http://127.0.0.1:${port}`,
    path: PATH,
    headers: { authorization: `Bearer ${BENCH_API_KEY}`, accept: 'application/json' },
    connectionIds: scenario.connections,
  };
  // One request through the rest of the app first, as every running instance has had (Express's
  // lazy set-up done), so the proxy is measured in that steady state.
  await (await fetch(`${job.origin}/healthz`)).arrayBuffer();
  // Warm-up: JIT, keep-alive sockets, caches.
  // With many connections, long enough that nearly every one is cached (steady state): the
  // misses of a cold start are not what the scenario measures.
  await load(gen, { ...job, connections: CONCURRENCY, durationMs: (scenario.connections ? 6 : WARMUP_SECONDS) * 1000 });
  const start0: Usage = await server.usage();
  const saturated = await load(gen, { ...job, connections: CONCURRENCY, durationMs: SECONDS * 1000 });
  const before: Usage = await server.usage();
  const paced = await load(gen, {
    ...job,
    connections: CONCURRENCY,
    durationMs: SHORT_SECONDS * 1000,
    ratePerSecond: RATE,
  });
  const after: Usage = await server.usage();
  const single = await load(gen, { ...job, connections: 1, durationMs: SHORT_SECONDS * 1000 });
  const final = await server.usage();
  if (process.env.BENCH_CPU_PROF) {
    const total = saturated.requests + paced.requests + single.requests;
    process.stdout.write(
      `${name}: ${total} requests measured (plus the warm-up) in profile of pid ${server.process.pid}\n`,
    );
  }
  await server.stop();
  return {
    saturated,
    paced,
    single,
    cpuMicrosPerRequest: (after.cpuMicros - before.cpuMicros) / paced.requests,
    cpuMicrosPerRequestSaturated: (before.cpuMicros - start0.cpuMicros) / saturated.requests,
    maxRssBytes: final.maxRssBytes,
    errors: saturated.errors + paced.errors + single.errors,
  };
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const mb = (bytes: number) => `${fmt(bytes / 2 ** 20, 0)} MB`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const upstream = start('upstream.ts');
  const { port: upstreamPort, bytes } = await upstream.next<{ port: number; bytes: number }>('listening');
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const gen = start('load-generator.ts');
  await gen.next('ready');

  process.stdout.write(
    `upstream answers ${bytes} bytes of JSON; saturated ${SECONDS} s at ${CONCURRENCY} connections, ` +
      `paced ${SHORT_SECONDS} s at ${RATE} req/s over ${CONCURRENCY}, ${SHORT_SECONDS} s at 1\n\n`,
  );
  await load(gen, { origin: upstreamUrl, path: '/forms', headers: {}, connections: CONCURRENCY, durationMs: 1000 });
  const direct = await load(gen, {
    origin: upstreamUrl,
    path: '/forms',
    headers: {},
    connections: 1,
    durationMs: SHORT_SECONDS * 1000,
  });

  const only = process.env.BENCH_ONLY?.split(',');
  const results: Partial<Record<Contender | 'latchkey-10k', Measured>> = {};
  const rows = [
    [
      '',
      'req/s',
      `p99@${CONCURRENCY} sat.`,
      'CPU/req sat.',
      `CPU/req @${RATE}/s`,
      `p99 @${RATE}/s`,
      'p50@1',
      'errors',
      'peak RSS',
    ],
  ];
  const row = (name: string, r: Measured) =>
    rows.push([
      name,
      fmt(r.saturated.rps, 0),
      `${fmt(r.saturated.p99Ms)} ms`,
      `${fmt(r.cpuMicrosPerRequestSaturated, 1)} µs`,
      `${fmt(r.cpuMicrosPerRequest, 1)} µs`,
      `${fmt(r.paced.p99Ms)} ms`,
      `${fmt(r.single.p50Ms, 3)} ms`,
      String(r.errors),
      mb(r.maxRssBytes),
    ]);
  for (const name of ['floor', 'baseline', 'latchkey'] as const) {
    if (only && !only.includes(name)) continue;
    row(name, (results[name] = await measure(gen, name, upstreamUrl)));
  }
  if (!only || only.includes('latchkey-10k')) {
    row(
      `latchkey, ${MANY} connections`,
      (results['latchkey-10k'] = await measure(gen, 'latchkey', upstreamUrl, { connections: MANY })),
    );
  }
  rows.push(['direct', '', '', '', '', '', '', `${fmt(direct.p50Ms, 3)} ms`, String(direct.errors), '']);
  process.stdout.write(`${table(rows)}\n\n`);

  const { latchkey: lk, baseline, floor } = results;
  const many = results['latchkey-10k'];
  if (!lk || !baseline || !floor) return;
  const added = lk.single.p50Ms - direct.p50Ms;
  const floorAdded = floor.single.p50Ms - direct.p50Ms;
  const ratio = (a: number, b: number) => a / b;
  const checks: string[][] = [
    ['Latchkey (issue 13 targets)', 'measured', 'target', ''],
    [
      'throughput vs Express + http-proxy-middleware, saturated',
      `${fmt(ratio(lk.saturated.rps, baseline.saturated.rps))}×`,
      '≥ 3×',
      ok(lk.saturated.rps >= 3 * baseline.saturated.rps),
    ],
    [
      'CPU per request vs node:http + undici, saturated',
      `${fmt(ratio(lk.cpuMicrosPerRequestSaturated, floor.cpuMicrosPerRequestSaturated))}×`,
      '≤ 1.3×',
      ok(lk.cpuMicrosPerRequestSaturated <= 1.3 * floor.cpuMicrosPerRequestSaturated),
    ],
    [
      `CPU per request vs node:http + undici, ${RATE} req/s (information)`,
      `${fmt(ratio(lk.cpuMicrosPerRequest, floor.cpuMicrosPerRequest))}×`,
      '',
      '',
    ],
    [
      'p50 added latency at concurrency 1, vs what the floor adds',
      `${fmt(added, 3)} / ${fmt(floorAdded, 3)} ms = ${fmt(ratio(added, floorAdded))}×`,
      '≤ 1.3×',
      ok(added <= 1.3 * floorAdded),
    ],
    [
      `p99 at ${CONCURRENCY} connections, saturated, vs the floor`,
      `${fmt(lk.saturated.p99Ms)} / ${fmt(floor.saturated.p99Ms)} ms = ${fmt(ratio(lk.saturated.p99Ms, floor.saturated.p99Ms))}×`,
      '≤ 1.5×',
      ok(lk.saturated.p99Ms <= 1.5 * floor.saturated.p99Ms),
    ],
    [
      `p99 at ${CONCURRENCY} connections, ${RATE} req/s, vs the floor (information)`,
      `${fmt(lk.paced.p99Ms)} / ${fmt(floor.paced.p99Ms)} ms`,
      '',
      '',
    ],
    [
      'peak RSS vs the floor',
      `${mb(lk.maxRssBytes)} / ${mb(floor.maxRssBytes)} = ${fmt(ratio(lk.maxRssBytes, floor.maxRssBytes))}×`,
      '≤ 1.4×',
      ok(lk.maxRssBytes <= 1.4 * floor.maxRssBytes),
    ],
    ['errors', String(lk.errors), '0', ok(lk.errors === 0)],
  ];
  if (many) {
    checks.push(
      [
        `${MANY} connections at random: CPU per request vs the floor, saturated`,
        `${fmt(ratio(many.cpuMicrosPerRequestSaturated, floor.cpuMicrosPerRequestSaturated))}×`,
        '≤ 1.5×',
        ok(many.cpuMicrosPerRequestSaturated <= 1.5 * floor.cpuMicrosPerRequestSaturated),
      ],
      [`${MANY} connections: errors`, String(many.errors), '0', ok(many.errors === 0)],
    );
  }
  process.stdout.write(`${table(checks)}\n`);
}

function ok(met: boolean): string {
  return met ? 'met' : 'MISSED';
}

main()
  .catch((err: Error) => {
    process.stderr.write(`bench/proxy failed: ${err.message}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await Promise.all(children.map((c) => c.stop()));
  });
