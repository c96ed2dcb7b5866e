import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Child } from './lib/child-process';
import { BENCH_API_KEY } from './lib/constants';
import type { LoadRequest, LoadResult } from './lib/load-generator';

/**
 * A Redis restart under load (issue 13, degraded mode): Latchkey on a redis-server of its own,
 * `CONNECTIONS` connections whose credentials are cached, called at random at `RATE` req/s for
 * `SECONDS`; a third of the way in, Redis is stopped, and restarted a third later. With
 * DEGRADED_MODE on (the default), no proxied call to a connection with a valid cached credential
 * may fail. Prints the failed calls; never a test assertion.
 *
 *   npx tsx bench/proxy-outage.ts      (or: npm run bench -- proxy-outage)
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const RATE = Number(process.env.BENCH_RATE ?? 500);
const CONNECTIONS = 100;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Persistent across its restart (append-only file), as a production Redis is: a restart loses nothing. */
async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--dir', dir],
    {
      stdio: 'ignore',
    },
  );
  // Ready once it accepts a connection.
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return redis;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('redis-server did not start');
}

function stopRedis(redis: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (redis.exitCode !== null) return resolve();
    redis.once('exit', () => resolve());
    redis.kill('SIGTERM');
  });
}

async function main(): Promise<void> {
  const children: Child[] = [];
  const redisPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-redis-'));
  let redis = await startRedis(redisPort, dir);
  try {
    const upstream = Child.start('upstream.ts');
    children.push(upstream);
    const { port: upstreamPort } = await upstream.next<{ port: number }>('listening');
    const server = Child.start('proxy-server.ts', ['latchkey', `http://127.0.0.1:${upstreamPort}`], {
      BENCH_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      BENCH_CONNECTIONS: String(CONNECTIONS),
    });
    children.push(server);
    const { port } = await server.next<{ port: number }>('listening', 120_000);
    const gen = Child.start('load-generator.ts');
    children.push(gen);
    await gen.next('ready');
    const job: Omit<LoadRequest, 'type'> = {
      origin: `http://127.0.0.1:${port}`,
      path: '/proxy/videoask/forms',
      headers: { authorization: `Bearer ${BENCH_API_KEY}` },
      connections: 20,
      connectionIds: CONNECTIONS,
      durationMs: 1500,
    };
    // Warm-up: every connection's credential gets into the cache.
    const warm = await gen.ask<LoadResult>({ type: 'run', ...job }, 'result', 60_000);
    const durationMs = SECONDS * 1000;
    const running = gen.ask<LoadResult>({ type: 'run', ...job, durationMs, ratePerSecond: RATE }, 'result', 60_000);
    await new Promise((r) => setTimeout(r, durationMs / 3));
    await stopRedis(redis);
    const stoppedAt = Date.now();
    await new Promise((r) => setTimeout(r, durationMs / 3));
    redis = await startRedis(redisPort, dir);
    const downMs = Date.now() - stoppedAt;
    const result = await running;
    process.stdout.write(
      `warm-up: ${warm.requests} calls, ${warm.errors} failed\n` +
        `${result.requests} calls at ${RATE} req/s over ${SECONDS} s to ${CONNECTIONS} cached connections; ` +
        `Redis down for ${downMs} ms in the middle\n` +
        `failed calls: ${result.errors} ${JSON.stringify(result.failures)} (target 0)  p99 ${result.p99Ms.toFixed(2)} ms  ${result.errors === 0 ? 'met' : 'MISSED'}\n`,
    );
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await stopRedis(redis);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench/proxy-outage failed: ${err.message}\n`);
  process.exitCode = 1;
});
