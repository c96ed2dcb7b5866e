import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { Pool } from 'undici';
import { systemClock } from '../src/clock';
import { parseConfig } from '../src/config';
import { createSandbox } from '../src/sandbox/sandbox';
import { openStore } from '../src/store';
import {
  PROCESS_API_KEY,
  refreshTokensSent,
  seedConnection,
  startLatchkeyProcess,
  type LatchkeyProcess,
} from '../test/helpers/latchkey-process';
import { deleteUnder } from '../test/helpers/redis';

/**
 * The refresh benchmark (issue 3): N concurrent `GET /connections/videoask/:id/token` on an
 * expired token, spread over two Latchkey processes sharing Redis, against the strict-rotation
 * sandbox. Reports the wall time until every call answered and how many token requests reached
 * the sandbox; the target is exactly 1 for every N. A script, never a test assertion.
 *
 *   npx tsx bench/refresh.ts
 *   BENCH_N=10,100,1000 BENCH_TOKEN_DELAYS=0,1500 REDIS_URL=redis://127.0.0.1:6379 npx tsx bench/refresh.ts
 */
const SIZES = (process.env.BENCH_N ?? '10,100,1000').split(',').map(Number);
/** Token endpoint delays; 1500 ms is above the lock TTL below, so only the lock heartbeat keeps one refresh. */
const TOKEN_DELAYS = (process.env.BENCH_TOKEN_DELAYS ?? '0,1500').split(',').map(Number);
const PROCESSES = 2;
const LOCK_TTL_MS = 800;
const DEADLINE_MS = 180_000;
const REDIS_URL = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Row {
  n: number;
  processes: number;
  tokenDelayMs: number;
  wallMs: number;
  tokenRequests: number;
  errors: number;
  reusedRefreshTokens: number;
}

async function main(): Promise<void> {
  const prefix = `lkbench:refresh:${randomBytes(4).toString('hex')}:`;
  const keyEnv = `bench:${randomBytes(32).toString('base64')}`;
  const { config } = parseConfig({
    NODE_ENV: 'test',
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    TOKEN_ENCRYPTION_KEYS: keyEnv,
  });
  const { store } = openStore(config, systemClock);
  const sandbox = createSandbox({ rotation: 'strict' });
  const listening = await sandbox.listen();
  const latchkeys: LatchkeyProcess[] = [];
  const pools: Pool[] = [];
  const timer = setTimeout(() => {
    process.stderr.write(`refresh bench: still running after ${DEADLINE_MS} ms, giving up\n`);
    for (const p of latchkeys) void p.kill('SIGKILL');
    process.exit(1);
  }, DEADLINE_MS);

  try {
    latchkeys.push(
      ...(await Promise.all(
        Array.from({ length: PROCESSES }, () =>
          startLatchkeyProcess({
            sandboxUrl: listening.url,
            prefix,
            encryptionKeys: config.tokenEncryptionKeys,
            env: { REFRESH_LOCK_TTL_MS: String(LOCK_TTL_MS), TOKEN_REQUEST_TIMEOUT_MS: '10000', LOG_LEVEL: 'error' },
          }),
        ),
      )),
    );
    pools.push(...latchkeys.map((p) => new Pool(p.url, { connections: 256 })));
    const rows: Row[] = [];
    for (const tokenDelayMs of TOKEN_DELAYS) {
      for (const n of SIZES) rows.push(await round(n, tokenDelayMs));
    }
    printTable(rows);
  } finally {
    clearTimeout(timer);
    await Promise.all(pools.map((pool) => pool.close()));
    await Promise.all(latchkeys.map((p) => p.kill('SIGTERM')));
    await listening.close();
    const raw = new Redis(REDIS_URL);
    await deleteUnder(raw, prefix);
    raw.disconnect();
    await store.close();
  }

  async function round(n: number, tokenDelayMs: number): Promise<Row> {
    sandbox.reset();
    sandbox.options.tokenDelayMs = tokenDelayMs;
    const connectionId = `bench-${n}-${tokenDelayMs}`;
    await seedConnection(store, sandbox, { connectionId, expiresAt: Date.now() - 1000, now: Date.now() });
    const path = `/connections/videoask/${connectionId}/token`;
    const started = performance.now();
    const statuses = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        pools[i % pools.length]!.request({
          method: 'GET',
          path,
          headers: { authorization: `Bearer ${PROCESS_API_KEY}` },
        })
          .then(async (res) => {
            await res.body.dump();
            return res.statusCode;
          })
          .catch(() => 0),
      ),
    );
    const wallMs = performance.now() - started;
    const sent = refreshTokensSent(sandbox);
    return {
      n,
      processes: PROCESSES,
      tokenDelayMs,
      wallMs,
      tokenRequests: sandbox.stats.tokenRequests,
      errors: statuses.filter((s) => s !== 200).length,
      reusedRefreshTokens: sent.length - new Set(sent).size,
    };
  }
}

function printTable(rows: Row[]): void {
  const header = ['N', 'processes', 'token delay ms', 'wall ms', 'token requests', 'errors', 'reused refresh tokens'];
  const lines = rows.map((r) =>
    [r.n, r.processes, r.tokenDelayMs, r.wallMs.toFixed(0), r.tokenRequests, r.errors, r.reusedRefreshTokens].map(
      String,
    ),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  process.stdout.write(
    `Refresh on an expired token (strict rotation, lock TTL ${LOCK_TTL_MS} ms); target: 1 token request, 0 errors\n`,
  );
  process.stdout.write(`${format(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const line of lines) process.stdout.write(`${format(line)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`refresh bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
