import 'dotenv/config';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type LatchkeyApp } from './app';
import { systemClock, type Clock } from './clock';
import { ConfigError, parseConfig, type Config } from './config';
import { AppError } from './errors';
import { createLogger, type Logger } from './logger';
import {
  buildProviderRegistry,
  ProviderConfigError,
  readProvidersFile,
  type ProviderSource,
} from './providers/registry';
import { openStore, type Store } from './store';
import { waitForReady } from './store/redis-client';
import { writeError } from './wire/error-response';

export interface StartOptions {
  env?: Record<string, string | undefined>;
  /** Provider entries applied after PROVIDERS_FILE (the demo points VideoAsk at the sandbox this way). */
  providerSources?: ProviderSource[];
  clock?: Clock;
  logger?: Logger;
}

export interface RunningLatchkey {
  url: string;
  port: number;
  config: Config;
  server: Server;
  logger: Logger;
  /**
   * Graceful stop: no new connections, in-flight requests finish (bounded by
   * SHUTDOWN_TIMEOUT_MS, then their connections are closed), then the store closes. Idempotent.
   */
  close(): Promise<void>;
}

/** Parses the configuration, opens the store, and listens. Throws ConfigError / ProviderConfigError. */
export async function startLatchkey(options: StartOptions = {}): Promise<RunningLatchkey> {
  const env = options.env ?? process.env;
  const { config, warnings } = parseConfig(env);
  const logger = options.logger ?? createLogger(config.logLevel);
  const sources: ProviderSource[] = [];
  if (config.providersFile) sources.push(readProvidersFile(config.providersFile));
  sources.push(...(options.providerSources ?? []));
  const providers = buildProviderRegistry(env, sources);
  for (const w of warnings) logger.warn(w);

  const clock = options.clock ?? systemClock;
  const { store, redis } = openStore(config, clock);
  if (redis && !(await waitForReady(redis, 5000))) {
    logger.error('Redis is not answering yet; service routes answer 503 store_unavailable until it does');
  }
  const app = createApp({ config, store, providers, clock, logger });
  const drain = new Drain();
  const server = createServer((req, res) => drain.handle(req, res, app.handler));
  server.listen(config.port);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, store: store.kind, providers: providers.listEnabled().map((p) => p.id) }, 'Latchkey listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= shutDown({ server, drain, app, store, logger, timeoutMs: config.shutdownTimeoutMs }));
  return { url: `http://127.0.0.1:${port}`, port, config, server, logger, close };
}

/**
 * Keeps count of the requests in flight, and once draining has begun, makes every response the
 * last one on its connection (`Connection: close`, RFC 9112 §9.6) so keep-alive clients move to
 * another instance, and answers `/readyz` with 503 so load balancers stop sending traffic here.
 */
class Drain {
  private readonly inFlight = new Set<ServerResponse>();
  private draining = false;
  private onIdle?: () => void;

  get size(): number {
    return this.inFlight.size;
  }

  handle(req: IncomingMessage, res: ServerResponse, app: (req: IncomingMessage, res: ServerResponse) => void): void {
    this.inFlight.add(res);
    res.once('close', () => this.finished(res));
    if (this.draining) {
      res.setHeader('Connection', 'close');
      if ((req.url ?? '').split('?')[0] === '/readyz') return answerDraining(res);
    }
    app(req, res);
  }

  /** Starts draining; resolves once no request is in flight. */
  begin(): Promise<void> {
    this.draining = true;
    for (const res of this.inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    if (!this.inFlight.size) return Promise.resolve();
    return new Promise((resolve) => (this.onIdle = resolve));
  }

  private finished(res: ServerResponse): void {
    this.inFlight.delete(res);
    if (this.draining && !this.inFlight.size) this.onIdle?.();
  }
}

function answerDraining(res: ServerResponse): void {
  writeError(res, new AppError('store_unavailable', 'Latchkey is shutting down'));
}

/**
 * The SIGTERM sequence of the contract: stop accepting, let in-flight requests finish within
 * `timeoutMs`, close the connections still open after that, then what the app opened (upstream
 * pools, timers, the webhook sender) within what is left of the bound, then the store (Redis).
 */
async function shutDown(deps: {
  server: Server;
  drain: Drain;
  app: LatchkeyApp;
  store: Store;
  logger: Logger;
  timeoutMs: number;
}): Promise<void> {
  const { server, drain, app, store, logger, timeoutMs } = deps;
  const deadline = performance.now() + timeoutMs;
  logger.info(
    { inFlight: drain.size, timeoutMs },
    'Shutdown: no longer accepting connections; draining requests in flight',
  );
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const outcome = await Promise.race([drain.begin().then(() => 'drained' as const), bound]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    logger.warn(
      { inFlight: drain.size, timeoutMs },
      'Shutdown: drain bound reached; closing the connections still open',
    );
    server.closeAllConnections();
  } else {
    logger.info('Shutdown: every request in flight has finished');
    // Keep-alive connections that went idle when their last response ended.
    server.closeIdleConnections();
  }
  await closed;
  const appClosed = await withinBound(app.close(), deadline - performance.now());
  if (!appClosed)
    logger.warn('Shutdown: upstream pools did not close within the drain bound; closing the store anyway');
  await store.close();
  logger.info('Shutdown: store closed');
}

/** Resolves true when `work` settles within `ms`, false otherwise (the work goes on, unawaited). */
async function withinBound(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, ms))));
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      bound,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Prints every configuration problem and exits non-zero. */
function exitWithProblems(err: ConfigError | ProviderConfigError): never {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}

/** The process entry point: starts Latchkey and shuts it down gracefully on SIGTERM or SIGINT, exiting 0. */
export async function main(options: StartOptions = {}): Promise<RunningLatchkey> {
  let running: RunningLatchkey;
  try {
    running = await startLatchkey(options);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ProviderConfigError) exitWithProblems(err);
    throw err;
  }
  const stop = (signal: string) => {
    running.logger.info({ signal }, `${signal} received: shutting down`);
    running.close().then(
      () => {
        running.logger.info('Shutdown complete; exiting');
        process.exit(0);
      },
      (err: unknown) => {
        running.logger.error({ err }, 'Shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return running;
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`Latchkey failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
