import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

/**
 * One load run: `connections` loops sending GET `path` for `durationMs`. Without `ratePerSecond`
 * each loop sends its next request as soon as the previous answer is read (closed loop: the
 * server's capacity); with it, the loops together send at that rate, evenly spread (latency at a
 * given load, free of the queueing that saturation adds).
 */
export interface LoadRequest {
  type: 'run';
  origin: string;
  path: string;
  headers: Record<string, string>;
  connections: number;
  durationMs: number;
  ratePerSecond?: number;
  /** Send `Connection-Id: c<n>` with n drawn at random below this (many connections); unset: none. */
  connectionIds?: number;
  /**
   * Adds this run's latencies to the tally of that name, kept across runs, and answers with the
   * whole tally: one measurement made of several slices interleaved with other targets'.
   */
  tally?: string;
}

/** One target of an interleaved run. */
export interface Target {
  origin: string;
  path: string;
  headers: Record<string, string>;
  connectionIds?: number;
}

/**
 * Latency at concurrency 1 of several targets at once: one request at a time, in blocks of
 * `blockSize` back-to-back requests to each target in turn (each target on a keep-alive
 * connection of its own), for `durationMs`. A cycle through the targets takes some tens of
 * milliseconds, so the host's drift (its speed changes by tens of per cent from one second to the
 * next) hits every target alike and a difference of medians is the targets' own. Within a block
 * the processes are as busy as in a single-target run; the first request of a block, which finds
 * them idle since the previous cycle and pays their wake-up, is not counted.
 */
export interface InterleavedRequest {
  type: 'interleave';
  targets: Target[];
  durationMs: number;
  /** Back-to-back requests to a target before the next target's turn (20 by default). */
  blockSize?: number;
}

export interface InterleavedResult {
  type: 'interleaved';
  /** One per target, in the order given. */
  results: LoadResult[];
}

export interface LoadResult {
  type: 'result';
  requests: number;
  errors: number;
  /** Completed requests per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers that were not 200, by status (0: no answer). */
  failures: Record<string, number>;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))]!;
}

/** Latencies and failures of one target, summed up as a LoadResult. */
class Tally {
  private readonly latencies: number[] = [];
  private readonly failures: Record<string, number> = {};

  fail(status: number): void {
    this.failures[status] = (this.failures[status] ?? 0) + 1;
  }

  add(ms: number): void {
    this.latencies.push(ms);
  }

  result(elapsedMs: number): LoadResult {
    const sorted = Float64Array.from(this.latencies).sort();
    return {
      type: 'result',
      requests: sorted.length,
      errors: Object.values(this.failures).reduce((n, k) => n + k, 0),
      rps: sorted.length / (elapsedMs / 1000),
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      failures: this.failures,
    };
  }
}

/** One GET of `target` on `pool`, its failure and (when `timed`) its latency into `tally`. */
async function send(pool: Pool, target: Target, tally: Tally, timed = true): Promise<void> {
  const started = performance.now();
  try {
    const headers = target.connectionIds
      ? { ...target.headers, 'connection-id': `c${Math.floor(Math.random() * target.connectionIds)}` }
      : target.headers;
    const { statusCode, body } = await pool.request({ method: 'GET', path: target.path, headers });
    await body.arrayBuffer();
    if (statusCode !== 200) tally.fail(statusCode);
  } catch {
    tally.fail(0);
  }
  if (timed) tally.add(performance.now() - started);
}

async function interleave(job: InterleavedRequest): Promise<InterleavedResult> {
  const pools = job.targets.map((t) => new Pool(t.origin, { connections: 1, pipelining: 1 }));
  const tallies = job.targets.map(() => new Tally());
  const begin = performance.now();
  const deadline = begin + job.durationMs;
  const blockSize = job.blockSize ?? 20;
  while (performance.now() < deadline) {
    for (let i = 0; i < pools.length; i++) {
      await send(pools[i]!, job.targets[i]!, tallies[i]!, false);
      for (let n = 1; n < blockSize; n++) await send(pools[i]!, job.targets[i]!, tallies[i]!);
    }
  }
  const elapsed = performance.now() - begin;
  await Promise.all(pools.map((p) => p.close()));
  return { type: 'interleaved', results: tallies.map((t) => t.result(elapsed)) };
}

/** Named tallies of sliced measurements, and how long their slices have run in all. */
const namedTallies = new Map<string, { tally: Tally; elapsedMs: number }>();
/**
 * Pools kept from one run to the next, per origin and size, with their sockets kept alive in
 * between: slices of one measurement do not each open their connections anew.
 */
const keptPools = new Map<string, Pool>();
function poolFor(origin: string, connections: number): Pool {
  const key = `${origin} ${connections}`;
  let pool = keptPools.get(key);
  if (!pool) {
    pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 });
    keptPools.set(key, pool);
  }
  return pool;
}

/**
 * A small closed-loop load generator on undici (autocannon is not installed): each connection
 * sends its next request as soon as the previous answer is read. It runs in its own process so
 * its CPU is not counted against the server measured.
 */
async function run(job: LoadRequest): Promise<LoadResult> {
  const pool = poolFor(job.origin, job.connections);
  const named = job.tally === undefined ? undefined : namedTallies.get(job.tally);
  const tally = named?.tally ?? new Tally();
  const begin = performance.now();
  const deadline = begin + job.durationMs;
  // Paced loops: each sends every `interval` ms, the loops offset so the sends interleave evenly.
  const interval = job.ratePerSecond ? (1000 * job.connections) / job.ratePerSecond : 0;
  const loop = async (_: unknown, index: number) => {
    let next = begin + (interval * index) / job.connections;
    while (performance.now() < deadline) {
      if (interval) {
        const wait = next - performance.now();
        next += interval;
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        if (performance.now() >= deadline) break;
      }
      await send(pool, job, tally);
    }
  };
  await Promise.all(Array.from({ length: job.connections }, loop));
  const elapsed = performance.now() - begin;
  if (job.tally === undefined) return tally.result(elapsed);
  const total = { tally, elapsedMs: (named?.elapsedMs ?? 0) + elapsed };
  namedTallies.set(job.tally, total);
  return tally.result(total.elapsedMs);
}

process.on('message', (message: LoadRequest | InterleavedRequest | { type: 'stop' }) => {
  if (message.type === 'run' || message.type === 'interleave') {
    (message.type === 'run' ? run(message) : interleave(message)).then(
      (result) => process.send!(result),
      (err: Error) => process.send!({ type: 'error', message: err.message }),
    );
  } else if (message.type === 'stop') {
    void Promise.all([...keptPools.values()].map((p) => p.close())).finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
