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
import { reportUsageOnRequest } from './child-process';
import { BENCH_API_KEY, BENCH_TOKEN } from './constants';

type Mode = 'latchkey' | 'baseline' | 'floor';
const mode = process.argv[2] as Mode;
const upstream = process.argv[3]!;

/** Latchkey as deployed: the whole app, the memory store seeded with one valid connection. */
async function latchkey(): Promise<(req: IncomingMessage, res: ServerResponse) => void> {
  const env = {
    NODE_ENV: 'test',
    PUBLIC_URL: 'http://127.0.0.1',
    CONNECTOR_API_KEYS: BENCH_API_KEY,
    VIDEOASK_CLIENT_ID: 'bench-client',
    VIDEOASK_CLIENT_SECRET: 'bench-secret',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
  };
  const { config } = parseConfig(env);
  const providers = buildProviderRegistry(env, [
    { source: 'bench', entries: [{ id: 'videoask', apiBaseUrl: upstream }] },
  ]);
  const { store } = openStore(config, systemClock);
  const now = Date.now();
  await store.saveConnection({
    provider: 'videoask',
    connectionId: 'default',
    authMode: 'oauth2',
    status: 'active',
    scopes: ['openid'],
    expiresAt: now + 3600_000,
    createdAt: now,
    updatedAt: now,
    lastRefreshedAt: null,
    account: null,
    credentials: { accessToken: BENCH_TOKEN, refreshToken: 'bench-refresh-token', tokenType: 'Bearer' },
  });
  return createApp({ config, store, providers, logger: createLogger(config.logLevel) });
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
  const handler = mode === 'latchkey' ? await latchkey() : mode === 'baseline' ? baseline() : floor();
  const server: Server = createServer(handler);
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    process.send!({ type: 'listening', port: (server.address() as AddressInfo).port });
  });
  reportUsageOnRequest(() => server.close());
}

void main();
