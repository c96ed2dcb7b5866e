import { Child } from './lib/child-process';
import { BENCH_API_KEY } from './lib/constants';
import type { InterleavedResult, LoadRequest, LoadResult, Target } from './lib/load-generator';

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
 * - one connection — p50 latency, against calling the upstream directly: the upstream and every
 *   contender are called one request at a time in turn, so the host's drift hits all alike.
 *
 * The host is shared and its speed drifts by tens of per cent from one second to the next, so
 * every contender is started and warmed up first and stays up, idle while the others run, and
 * the contenders take turns: each measurement of a round is cut into SLICES slices, the
 * contenders' slices alternating (measureSliced), and the latency at concurrency 1 alternates
 * blocks of 20 calls (measureSingles). A ratio is taken round by round and the median of the
 * rounds is the one printed against the target, beside the range of the rounds.
 *
 *   npx tsx bench/proxy.ts            (or: npm run bench -- proxy)
 *   BENCH_VERBOSE=1 (every round's figures) BENCH_ROUNDS=5 BENCH_SLICES=6 BENCH_SECONDS=3 BENCH_RATE=1000 BENCH_ONLY=floor,latchkey BENCH_LOG_LEVEL=info BENCH_CPU_PROF=/tmp/prof npx tsx bench/proxy.ts
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const SHORT_SECONDS = Math.max(1, Math.round(SECONDS * 0.6));
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const CONCURRENCY = 50;
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
/** Rounds: in each, every contender is measured under each load; the median of the rounds is printed. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** Slices of each measurement in a round, the contenders' slices alternating (see measureSliced). */
const SLICES = Number(process.env.BENCH_SLICES ?? 6);
/** After each slice, how long its contender's CPU time is still counted (work the load left to finish). */
const SLICE_TAIL_MS = 50;
const PATH = '/proxy/videoask/forms';
/** The many-connections scenario: this many seeded connections, called at random. */
const MANY = Number(process.env.BENCH_MANY_CONNECTIONS ?? 10_000);

type Contender = 'latchkey' | 'baseline' | 'floor' | 'latchkey-10k';

/** One round of one contender. */
interface Round {
  saturated: LoadResult;
  paced: LoadResult;
  single: LoadResult;
  /** Calling the upstream directly at concurrency 1, interleaved with `single`: what it adds to. */
  direct: LoadResult;
  cpuMicrosPerRequest: number;
  /** At saturation: the figure the target is set on. */
  cpuMicrosPerRequestSaturated: number;
}

interface Running {
  name: Contender;
  server: Child;
  job: Omit<LoadRequest, 'type' | 'connections' | 'durationMs'>;
  rounds: Round[];
  maxRssBytes: number;
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

/** Starts a contender and brings it to its steady state; it then idles until its turn in each round. */
async function open(gen: Child, name: Contender, upstreamUrl: string): Promise<Running> {
  const many = name === 'latchkey-10k';
  const env: Record<string, string> = many ? { BENCH_CONNECTIONS: String(MANY) } : {};
  const server = start('proxy-server.ts', [name === 'latchkey-10k' ? 'latchkey' : name, upstreamUrl], env);
  const { port } = await server.next<{ port: number }>('listening', 180_000);
  const job = {
    origin: `http://127.0.0.1:${port}`,
    path: PATH,
    headers: { authorization: `Bearer ${BENCH_API_KEY}`, accept: 'application/json' },
    connectionIds: many ? MANY : undefined,
  };
  // One request through the rest of the app first, as every running instance has had (Express's
  // lazy set-up done), so the proxy is measured in that steady state.
  await (await fetch(`${job.origin}/healthz`)).arrayBuffer();
  // Warm-up: JIT, keep-alive sockets, caches. With many connections, long enough that nearly
  // every one is cached (steady state): the misses of a cold start are not what it measures.
  await load(gen, { ...job, connections: CONCURRENCY, durationMs: (many ? 6 : WARMUP_SECONDS) * 1000 });
  return { name, server, job, rounds: [], maxRssBytes: 0 };
}

/**
 * Waits (up to 5 s) until every contender is idle: one measured just before can still be busy
 * for a moment after its load ends (closing sockets, collecting garbage), on the same two cores
 * as the next one measured.
 */
async function settle(running: Running[]): Promise<void> {
  const WINDOW_MS = 250;
  for (let waited = 0; waited < 5000; waited += WINDOW_MS) {
    const before = await Promise.all(running.map((c) => c.server.usage()));
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const after = await Promise.all(running.map((c) => c.server.usage()));
    const busyMicros = after.reduce((n, u, i) => n + u.cpuMicros - before[i]!.cpuMicros, 0);
    if (busyMicros < WINDOW_MS * 1000 * 0.02) return;
  }
}

/** CPU time (µs) a contender spent over a measurement, and the load generator's figures of it. */
interface Measured {
  result: LoadResult;
  cpuMicros: number;
}

/**
 * One round's measurement of every contender under one load, in slices: SLICES turns, in each
 * of which every contender gets `durationMs / SLICES` of the load in turn. The host's speed
 * drifts over seconds; a ratio of two contenders whose slices alternate a fraction of a second
 * apart is then free of most of it (a whole-round measurement of each, one after the other, was
 * not: ratios of rounds ranged over 2×). Latencies add up over the slices (a named tally in the
 * load generator), CPU time is read before each slice and SLICE_TAIL_MS after it.
 */
async function measureSliced(
  gen: Child,
  running: Running[],
  round: number,
  spec: { kind: 'saturated' | 'paced'; durationMs: number; ratePerSecond?: number },
): Promise<Measured[]> {
  await settle(running);
  const measured = running.map(() => ({ result: undefined as LoadResult | undefined, cpuMicros: 0 }));
  for (let slice = 0; slice < SLICES; slice++) {
    // The order turns with each slice, so that no contender always follows the same one (whatever
    // a contender leaves running as its slice ends, its next neighbour should not always meet it).
    for (let turn = 0; turn < running.length; turn++) {
      const i = (slice + turn) % running.length;
      const c = running[i]!;
      const before = await c.server.usage();
      measured[i]!.result = await gen.ask<LoadResult>(
        {
          type: 'run',
          ...c.job,
          connections: CONCURRENCY,
          durationMs: spec.durationMs / SLICES,
          ratePerSecond: spec.ratePerSecond,
          tally: `${round} ${c.name} ${spec.kind}`,
        },
        'result',
        spec.durationMs + 30_000,
      );
      // What the slice's load leaves to finish (a concurrent GC phase, sockets' last writes) is its cost too.
      await new Promise((r) => setTimeout(r, SLICE_TAIL_MS));
      const after = await c.server.usage();
      measured[i]!.cpuMicros += after.cpuMicros - before.cpuMicros;
      c.maxRssBytes = after.maxRssBytes;
    }
  }
  return measured.map((m) => ({ result: m.result!, cpuMicros: m.cpuMicros }));
}

/**
 * One round's latency at concurrency 1: the upstream directly and every contender, one request
 * at a time to each in turn (load-generator's interleaved run), so what each adds over the direct
 * call is measured in the same milliseconds as the others'.
 */
async function measureSingles(
  gen: Child,
  running: Running[],
  upstreamUrl: string,
): Promise<{ direct: LoadResult; singles: LoadResult[] }> {
  const direct: Target = { origin: upstreamUrl, path: '/forms', headers: {} };
  const answer = await gen.ask<InterleavedResult>(
    { type: 'interleave', targets: [direct, ...running.map((c) => c.job)], durationMs: SECONDS * 1000 },
    'interleaved',
    SECONDS * 1000 + 30_000,
  );
  const [directResult, ...singles] = answer.results;
  return { direct: directResult!, singles };
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const mb = (bytes: number) => `${fmt(bytes / 2 ** 20, 0)} MB`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The median over a contender's rounds of one figure. */
const med = (c: Running, figure: (r: Round) => number) => median(c.rounds.map(figure));

/**
 * A ratio taken round by round (each round's two figures measured within seconds of each other),
 * as the median of the rounds and their range.
 */
function ratioOf(a: Running, b: Running, figure: (r: Round) => number): { median: number; text: string } {
  const ratios = a.rounds.map((r, i) => figure(r) / figure(b.rounds[i]!));
  const m = median(ratios);
  const range = ratios.length > 1 ? ` (rounds ${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))})` : '';
  return { median: m, text: `${fmt(m)}×${range}` };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

function printRound(c: Running): void {
  const r = c.rounds.at(-1)!;
  process.stdout.write(
    `round ${c.rounds.length} ${c.name}: ${fmt(r.saturated.rps, 0)} req/s, ` +
      `CPU/req ${fmt(r.cpuMicrosPerRequestSaturated, 1)} µs sat. / ${fmt(r.cpuMicrosPerRequest, 1)} µs paced, ` +
      `p50@1 ${fmt(r.single.p50Ms, 3)} ms over direct ${fmt(r.direct.p50Ms, 3)} ms\n`,
  );
}

const errorsOf = (c: Running) =>
  c.rounds.reduce((n, r) => n + r.saturated.errors + r.paced.errors + r.single.errors, 0);
const addedP50 = (r: Round) => r.single.p50Ms - r.direct.p50Ms;

async function main(): Promise<void> {
  const upstream = start('upstream.ts');
  const { port: upstreamPort, bytes } = await upstream.next<{ port: number; bytes: number }>('listening');
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const gen = start('load-generator.ts');
  await gen.next('ready');

  process.stdout.write(
    `upstream answers ${bytes} bytes of JSON; ${ROUNDS} rounds, each contender: saturated ${SECONDS} s at ` +
      `${CONCURRENCY} connections, paced ${SHORT_SECONDS} s at ${RATE} req/s over ${CONCURRENCY} (both in ${SLICES} ` +
      `slices alternating with the other contenders'), ${SECONDS} s at 1 interleaved; medians over the rounds\n\n`,
  );
  await load(gen, { origin: upstreamUrl, path: '/forms', headers: {}, connections: CONCURRENCY, durationMs: 1000 });

  const only = process.env.BENCH_ONLY?.split(',');
  const names = (['floor', 'baseline', 'latchkey', 'latchkey-10k'] as const).filter((n) => !only || only.includes(n));
  const running: Running[] = [];
  // Every contender stays up for the whole run (idle while the others are measured).
  for (const name of names) running.push(await open(gen, name, upstreamUrl));
  for (let round = 0; round < ROUNDS; round++) {
    const saturated = await measureSliced(gen, running, round, { kind: 'saturated', durationMs: SECONDS * 1000 });
    const paced = await measureSliced(gen, running, round, {
      kind: 'paced',
      durationMs: SHORT_SECONDS * 1000,
      ratePerSecond: RATE,
    });
    await settle(running);
    const { direct, singles } = await measureSingles(gen, running, upstreamUrl);
    running.forEach((c, i) => {
      c.rounds.push({
        saturated: saturated[i]!.result,
        paced: paced[i]!.result,
        single: singles[i]!,
        direct,
        cpuMicrosPerRequestSaturated: saturated[i]!.cpuMicros / saturated[i]!.result.requests,
        cpuMicrosPerRequest: paced[i]!.cpuMicros / paced[i]!.result.requests,
      });
      if (process.env.BENCH_VERBOSE) printRound(c);
    });
  }
  if (process.env.BENCH_CPU_PROF) {
    for (const c of running) {
      const total = c.rounds.reduce((n, r) => n + r.saturated.requests + r.paced.requests + r.single.requests, 0);
      process.stdout.write(
        `${c.name}: ${total} requests measured (plus the warm-up) in profile of pid ${c.server.process.pid}\n`,
      );
    }
  }

  const rows = [
    [
      '(medians)',
      'req/s',
      `p99@${CONCURRENCY} sat.`,
      'CPU/req sat.',
      `CPU/req @${RATE}/s`,
      `p99 @${RATE}/s`,
      'p50@1',
      'direct p50',
      'errors',
      'peak RSS',
    ],
  ];
  for (const c of running) {
    rows.push([
      c.name === 'latchkey-10k' ? `latchkey, ${MANY} connections` : c.name,
      fmt(
        med(c, (r) => r.saturated.rps),
        0,
      ),
      `${fmt(med(c, (r) => r.saturated.p99Ms))} ms`,
      `${fmt(
        med(c, (r) => r.cpuMicrosPerRequestSaturated),
        1,
      )} µs`,
      `${fmt(
        med(c, (r) => r.cpuMicrosPerRequest),
        1,
      )} µs`,
      `${fmt(med(c, (r) => r.paced.p99Ms))} ms`,
      `${fmt(
        med(c, (r) => r.single.p50Ms),
        3,
      )} ms`,
      `${fmt(
        med(c, (r) => r.direct.p50Ms),
        3,
      )} ms`,
      String(errorsOf(c)),
      mb(c.maxRssBytes),
    ]);
  }
  process.stdout.write(`${table(rows)}\n\n`);

  const by = (name: Contender) => running.find((c) => c.name === name);
  const [lk, baseline, floor, many] = [by('latchkey'), by('baseline'), by('floor'), by('latchkey-10k')];
  if (!lk || !baseline || !floor) return;
  const throughput = ratioOf(lk, baseline, (r) => r.saturated.rps);
  const cpu = ratioOf(lk, floor, (r) => r.cpuMicrosPerRequestSaturated);
  const cpuPaced = ratioOf(lk, floor, (r) => r.cpuMicrosPerRequest);
  const p50 = ratioOf(lk, floor, addedP50);
  const p99 = ratioOf(lk, floor, (r) => r.saturated.p99Ms);
  const rss = lk.maxRssBytes / floor.maxRssBytes;
  const checks: string[][] = [
    ['Latchkey (issue 13 targets)', 'measured', 'target', ''],
    ['throughput vs Express + http-proxy-middleware, saturated', throughput.text, '≥ 3×', ok(throughput.median >= 3)],
    ['CPU per request vs node:http + undici, saturated', cpu.text, '≤ 1.3×', ok(cpu.median <= 1.3)],
    [`CPU per request vs node:http + undici, ${RATE} req/s (information)`, cpuPaced.text, '', ''],
    [
      'p50 added latency at concurrency 1, vs what the floor adds',
      `${fmt(med(lk, addedP50), 3)} / ${fmt(med(floor, addedP50), 3)} ms; ${p50.text}`,
      '≤ 1.3×',
      ok(p50.median <= 1.3),
    ],
    [
      `p99 at ${CONCURRENCY} connections, saturated, vs the floor`,
      `${fmt(med(lk, (r) => r.saturated.p99Ms))} / ${fmt(med(floor, (r) => r.saturated.p99Ms))} ms; ${p99.text}`,
      '≤ 1.5×',
      ok(p99.median <= 1.5),
    ],
    [
      'peak RSS vs the floor',
      `${mb(lk.maxRssBytes)} / ${mb(floor.maxRssBytes)} = ${fmt(rss)}×`,
      '≤ 1.4×',
      ok(rss <= 1.4),
    ],
    ['errors', String(errorsOf(lk)), '0', ok(errorsOf(lk) === 0)],
  ];
  if (many) {
    const manyCpu = ratioOf(many, floor, (r) => r.cpuMicrosPerRequestSaturated);
    checks.push(
      [
        `${MANY} connections at random: CPU per request vs the floor, saturated`,
        manyCpu.text,
        '≤ 1.5×',
        ok(manyCpu.median <= 1.5),
      ],
      [`${MANY} connections: errors`, String(errorsOf(many)), '0', ok(errorsOf(many) === 0)],
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
