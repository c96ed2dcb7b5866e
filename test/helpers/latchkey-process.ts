import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { EncryptionKey } from '../../src/config';
import { videoaskSandboxSource } from '../../src/sandbox/provider-entry';
import type { Sandbox } from '../../src/sandbox/sandbox';
import type { Store } from '../../src/store';
import { encryptionKeyEnv } from './keys';
import { TEST_REDIS_URL } from './redis';
import { seedOAuthConnection, type SeededConnection } from './seed';

export type { SeededConnection };

/** Not a jest helper only: bench/ uses it too, so no jest globals here. */

export const PROCESS_API_KEY = 'process-api-key-0123456789abcdef';
const ROOT = resolve(__dirname, '../..');

export interface LatchkeyProcessOptions {
  sandboxUrl: string;
  /** REDIS_KEY_PREFIX, shared with the test's own store so both see the same connections. */
  prefix: string;
  /** The test store's keys, so both decrypt the same credentials. */
  encryptionKeys: EncryptionKey[];
  /** More environment (TOKEN_REQUEST_TIMEOUT_MS, REFRESH_LOCK_TTL_MS, …). */
  env?: Record<string, string>;
  /** Extra fields of the videoask override in the PROVIDERS_FILE. */
  videoask?: Record<string, unknown>;
  startTimeoutMs?: number;
}

export interface LatchkeyProcess {
  url: string;
  pid: number;
  /** Resolves when the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends the signal and waits for the process to end. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the process wrote, for failure messages and leak checks. */
  output(): string;
  /** GET/POST on the service API with the API key. */
  call(method: string, path: string): Promise<Response>;
}

/** A free loopback port (PORT=0 would leave the child's port unknown to us). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts a real Latchkey process (`node --import tsx src/server.ts`) on a free loopback port,
 * against the given sandbox and the test Redis, and waits for /healthz.
 */
export async function startLatchkeyProcess(options: LatchkeyProcessOptions): Promise<LatchkeyProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-proc-'));
  const providersFile = join(dir, 'providers.json');
  writeFileSync(providersFile, JSON.stringify(videoaskSandboxSource(options.sandboxUrl, options.videoask).entries));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'test',
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: options.prefix,
    SESSION_SECRET: 'process-session-secret-0123456789',
    TOKEN_ENCRYPTION_KEYS: options.encryptionKeys.map(encryptionKeyEnv).join(','),
    CONNECTOR_API_KEYS: PROCESS_API_KEY,
    VIDEOASK_CLIENT_ID: 'sandbox-client',
    VIDEOASK_CLIENT_SECRET: 'sandbox-secret',
    PROVIDERS_FILE: providersFile,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
    ...options.env,
  };
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.once('exit', (code, signal) => {
      rmSync(dir, { recursive: true, force: true });
      resolveExit({ code, signal });
    });
  });
  let ended = false;
  void exited.then(() => (ended = true));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
  for (;;) {
    if (ended) throw new Error(`Latchkey process exited before it was healthy:\n${output}`);
    const healthy = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
      (res) => res.ok,
      () => false,
    );
    if (healthy) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`Latchkey process not healthy in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    url,
    pid: child.pid!,
    exited,
    async kill(signal = 'SIGTERM') {
      if (!ended) child.kill(signal);
      return exited;
    },
    output: () => output,
    call: (method, path) =>
      fetch(`${url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${PROCESS_API_KEY}` },
        signal: AbortSignal.timeout(30_000),
      }),
  };
}

/**
 * Seeds a videoask connection without the browser step: tokens from the sandbox's token family,
 * stored with the given expiry (in the past: the access token is already expired for Latchkey).
 */
export function seedConnection(
  store: Store,
  sandbox: Sandbox,
  options: { connectionId: string; expiresAt: number | null; now: number; lastRefreshedAt?: number | null },
): Promise<SeededConnection> {
  const { connectionId, expiresAt, now, lastRefreshedAt = null } = options;
  return seedOAuthConnection(store, sandbox, {
    connectionId,
    expiresAt,
    createdAt: now,
    updatedAt: now,
    lastRefreshedAt,
  });
}

/** The refresh tokens the sandbox received, in order (from its request log). */
export function refreshTokensSent(sandbox: Sandbox): string[] {
  return sandbox.stats.requests
    .filter((r) => r.method === 'POST' && r.path === '/oauth/token')
    .map((r) => (r.body as { grant_type?: string; refresh_token?: string } | undefined) ?? {})
    .filter((body) => body.grant_type === 'refresh_token')
    .map((body) => body.refresh_token ?? '');
}

/** Polls `check` every `everyMs` until it returns true; throws after `timeoutMs`. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
