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

/**
 * A small closed-loop load generator on undici (autocannon is not installed): each connection
 * sends its next request as soon as the previous answer is read. It runs in its own process so
 * its CPU is not counted against the server measured.
 */
async function run(job: LoadRequest): Promise<LoadResult> {
  const pool = new Pool(job.origin, { connections: job.connections, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  const failures: Record<string, number> = {};
  const fail = (status: number) => {
    errors++;
    failures[status] = (failures[status] ?? 0) + 1;
  };
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
      const started = performance.now();
      try {
        const headers = job.connectionIds
          ? { ...job.headers, 'connection-id': `c${Math.floor(Math.random() * job.connectionIds)}` }
          : job.headers;
        const { statusCode, body } = await pool.request({ method: 'GET', path: job.path, headers });
        await body.arrayBuffer();
        if (statusCode !== 200) fail(statusCode);
      } catch {
        fail(0);
      }
      latencies.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: job.connections }, loop));
  const elapsed = performance.now() - begin;
  await pool.close();
  const sorted = Float64Array.from(latencies).sort();
  return {
    type: 'result',
    requests: latencies.length,
    errors,
    rps: latencies.length / (elapsed / 1000),
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    failures,
  };
}

process.on('message', (message: LoadRequest | { type: 'stop' }) => {
  if (message.type === 'run') {
    run(message).then(
      (result) => process.send!(result),
      (err: Error) => process.send!({ type: 'error', message: err.message }),
    );
  } else if (message.type === 'stop') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
