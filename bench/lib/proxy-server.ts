import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { Pool } from 'undici';
import { createApp } from '../../src/app';
import { systemClock } from '../../src/clock';
import { parseConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { buildProviderRegistry } from '../../src/providers/registry';
import { openStore } from '../../src/store';
import { waitForReady } from '../../src/store/redis-client';
import { reportUsageOnRequest } from './child-process';
import { BENCH_API_KEY, BENCH_TOKEN } from './constants';

type Mode = 'latchkey' | 'baseline' | 'floor';
const mode = process.argv[2] as Mode;
const upstream = process.argv[3]!;

/**
 * Latchkey as deployed: the whole app seeded with one valid connection. With BENCH_REDIS_URL it
 * runs on Redis with the shared rate limit on (a Redis round trip per call, as in production, at
 * a limit no run reaches); without, on the memory store with the limit off.
 */
async function latchkey(): Promise<{
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}> {
  const redisUrl = process.env.BENCH_REDIS_URL;
  const prefix = `lkbench:${process.pid}:`;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    PUBLIC_URL: 'http://127.0.0.1',
    CONNECTOR_API_KEYS: BENCH_API_KEY,
    VIDEOASK_CLIENT_ID: 'bench-client',
    VIDEOASK_CLIENT_SECRET: 'bench-secret',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    ...(redisUrl
      ? {
          REDIS_URL: redisUrl,
          REDIS_KEY_PREFIX: prefix,
          SERVICE_RATE_LIMIT_PER_MINUTE: process.env.BENCH_SERVICE_RATE_LIMIT ?? '100000000',
        }
      : { SERVICE_RATE_LIMIT_PER_MINUTE: '0' }),
  };
  const { config } = parseConfig(env);
  const providers = buildProviderRegistry(env, [
    { source: 'bench', entries: [{ id: 'videoask', apiBaseUrl: upstream }] },
  ]);
  const { store, redis } = openStore(config, systemClock);
  if (redis) await waitForReady(redis, 5000);
  // BENCH_CONNECTIONS=n seeds `c0`…`c<n-1>` besides `default`, for the many-connections scenario.
  const ids = ['default', ...Array.from({ length: Number(process.env.BENCH_CONNECTIONS ?? 0) }, (_, i) => `c${i}`)];
  const now = Date.now();
  for (let i = 0; i < ids.length; i += 200) {
    await Promise.all(
      ids.slice(i, i + 200).map((connectionId) =>
        store.saveConnection({
          provider: 'videoask',
          connectionId,
          authMode: 'oauth2',
          status: 'active',
          scopes: ['openid'],
          expiresAt: now + 3600_000,
          createdAt: now,
          updatedAt: now,
          lastRefreshedAt: null,
          account: null,
          credentials: { accessToken: BENCH_TOKEN, refreshToken: 'bench-refresh-token', tokenType: 'Bearer' },
        }),
      ),
    );
  }
  const app = createApp({ config, store, providers, logger: createLogger(config.logLevel) });
  // The steady state is measured: the start-up pass over every connection is over first.
  await app.startupBackfill;
  return {
    handler: app.handler,
    async close() {
      await app.close();
      if (redis) {
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length) await redis.del(...keys);
      }
      await store.close();
    },
  };
}

/** What a team would hand-roll: Express and http-proxy-middleware adding a static header. */
function baseline(): (req: IncomingMessage, res: ServerResponse) => void {
  const app = express();
  app.use(
    '/proxy/videoask',
    createProxyMiddleware({
      target: upstream,
      changeOrigin: true,
      headers: { Authorization: `Bearer ${BENCH_TOKEN}` },
    }),
  );
  return app;
}

/**
 * The practical floor: node:http forwarding through an undici keep-alive pool with
 * `pool.stream()` (undici's fastest public API, written straight into the response), adding the
 * header and nothing else: no checks, no credential, no metrics.
 */
function floor(): (req: IncomingMessage, res: ServerResponse) => void {
  const pool = new Pool(upstream, { connections: 128 });
  return (req, res) => {
    pool.stream(
      {
        method: req.method as 'GET',
        path: req.url!.slice('/proxy/videoask'.length) || '/',
        headers: { accept: req.headers.accept ?? '*/*', authorization: `Bearer ${BENCH_TOKEN}` },
        body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
      },
      ({ statusCode, headers }) => {
        res.writeHead(statusCode, headers as Record<string, string>);
        return res;
      },
      (err) => {
        if (err && !res.headersSent) res.writeHead(502).end();
      },
    );
  };
}

async function main(): Promise<void> {
  const app =
    mode === 'latchkey'
      ? await latchkey()
      : { handler: mode === 'baseline' ? baseline() : floor(), close: async () => {} };
  const server: Server = createServer(app.handler);
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    process.send!({ type: 'listening', port: (server.address() as AddressInfo).port });
  });
  reportUsageOnRequest(async () => {
    server.close();
    await app.close();
  });
}

void main();
