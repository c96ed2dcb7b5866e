import 'dotenv/config';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { readVariableAgain } from './admin/admin-keys';
import { createApp, type LatchkeyApp } from './app';
import { systemClock, type Clock } from './clock';
import { ConfigError, parseConfig, type Config } from './config';
import { AppError } from './errors';
import { describeListenAddress } from './listen-address';
import { createLogger, type Logger } from './logger';
import {
  buildProviderRegistry,
  ProviderConfigError,
  readProvidersFile,
  type ProviderSource,
} from './providers/registry';
import { openStore, type Store } from './store';
import { routeRedisWarnings } from './store/redis-client';
import { warnOfUnreadableConnections } from './store/sealing-report';
import { rawErrorResponse, writeError } from './wire/error-response';

export interface StartOptions {
  env?: Record<string, string | undefined>;
  /** Provider entries applied after PROVIDERS_FILE (the demo points VideoAsk at the sandbox this way). */
  providerSources?: ProviderSource[];
  clock?: Clock;
  logger?: Logger;
  /** Tests shorten the server's bounds; deployments keep {@link SERVER_TIMEOUTS}. */
  serverTimeouts?: Partial<ServerTimeouts>;
}

export interface ServerTimeouts {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  socketIdleTimeoutMs: number;
  connectionsCheckingIntervalMs: number;
}

/**
 * The HTTP server's bounds, chosen rather than inherited from node:http (whose request timeout
 * is 5 minutes, checked every 30 s, and whose sockets may idle forever), so that a caller who
 * sends slowly, or sends and then goes quiet, holds a connection for a bounded time.
 */
export const SERVER_TIMEOUTS: ServerTimeouts = {
  /** All the request's headers within 10 s of its first byte (a slowloris sends them a byte at a time). */
  headersTimeoutMs: 10_000,
  /**
   * The whole request, body included, within 60 s: a 10 MB proxied upload (the default
   * PROXY_BODY_LIMIT_BYTES) needs about 1.4 Mbit/s; a body dribbled a byte a second is cut off.
   * Only receiving the request counts; the time Latchkey takes to answer does not.
   */
  requestTimeoutMs: 60_000,
  /**
   * An idle keep-alive connection is closed after 65 s, longer than the 60 s idle timeout of
   * common load balancers (AWS ALB, nginx's keepalive_timeout): the balancer closes first, and
   * never sends a request on a connection Latchkey is closing (which its client sees as a 502).
   */
  keepAliveTimeoutMs: 65_000,
  /** A socket with no byte in either direction for 2 minutes is destroyed (a caller that neither sends nor reads). */
  socketIdleTimeoutMs: 120_000,
  /** How often Node checks the two request bounds above (its default, 30 s, would let them run 30 s late). */
  connectionsCheckingIntervalMs: 1_000,
};

export interface RunningLatchkey {
  url: string;
  port: number;
  config: Config;
  server: Server;
  logger: Logger;
  /** The store it opened (closed by {@link RunningLatchkey.close}). */
  store: Store;
  /**
   * Graceful stop: no new connections, in-flight requests finish (bounded by
   * SHUTDOWN_TIMEOUT_MS, then their connections are closed), then the store closes. Idempotent.
   */
  close(): Promise<void>;
  /** What a SIGHUP does: reloads API_KEYS_FILE and ADMIN_API_KEYS (a value that does not validate changes nothing). */
  reload(): void;
}

/** Parses the configuration, opens the store, and listens. Throws ConfigError / ProviderConfigError. */
export async function startLatchkey(options: StartOptions = {}): Promise<RunningLatchkey> {
  const env = options.env ?? process.env;
  const { config, warnings } = parseConfig(env);
  const logger = options.logger ?? createLogger(config.logLevel);
  // Before the store opens: ioredis warns on connect (a password Redis does not need).
  const stopRoutingRedisWarnings = routeRedisWarnings(logger);
  const sources: ProviderSource[] = [];
  if (config.providersFile) sources.push(readProvidersFile(config.providersFile));
  sources.push(...(options.providerSources ?? []));
  const providers = buildProviderRegistry(env, sources);
  for (const w of warnings) logger.warn(w);

  const clock = options.clock ?? systemClock;
  const { store } = openStore(config, clock);
  if (!(await store.ready(5000))) {
    logger.error('Redis is not answering yet; service routes answer 503 store_unavailable until it does');
  } else {
    // Bounded (connections and time): connections sealed with a key that is not configured.
    await warnOfUnreadableConnections(store, logger);
  }
  // A SIGHUP reads ADMIN_API_KEYS again: from .env (which dotenv/config read at start) when it sets it.
  const dotenvPath = options.env ? undefined : resolve(process.env.DOTENV_CONFIG_PATH ?? '.env');
  const readAdminApiKeys = () => readVariableAgain('ADMIN_API_KEYS', env, dotenvPath);
  const app = createApp({ config, store, providers, clock, logger, readAdminApiKeys });
  const drain = new Drain();
  const timeouts = { ...SERVER_TIMEOUTS, ...options.serverTimeouts };
  const server = createServer(
    {
      headersTimeout: timeouts.headersTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      connectionsCheckingInterval: timeouts.connectionsCheckingIntervalMs,
    },
    (req, res) => drain.handle(req, res, app.handler),
  );
  server.keepAliveTimeout = timeouts.keepAliveTimeoutMs;
  server.setTimeout(timeouts.socketIdleTimeoutMs);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
    answerClientError(err, socket, logger, timeouts),
  );
  // HOST (default 127.0.0.1): loopback unless configured otherwise, never guessed (SECURITY.md 25).
  server.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const where = describeListenAddress(config.host, port);
  logger.info(
    { ...where, publicUrl: config.publicUrl, store: store.kind, providers: providers.listEnabled().map((p) => p.id) },
    `Latchkey listening on ${where.host}:${port} (${where.reach}): ${where.url}`,
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= shutDown({ server, drain, app, store, logger, timeoutMs: config.shutdownTimeoutMs }).finally(
      stopRoutingRedisWarnings,
    ));
  return { url: where.url, port, config, server, logger, store, close, reload: app.reload };
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

/**
 * Node's own refusals — a request it cannot parse (400), headers over its 16 KB limit (431), a
 * request not received within {@link SERVER_TIMEOUTS} (408), oversized chunk extensions (413) —
 * answered in the contract's shape (JSON error body and `Latchkey-Error`) with Node's status,
 * then the connection is closed. Nothing is written when the socket is no longer writable or
 * an answer to this request has already begun; the socket is only destroyed. The log line
 * names Node's error code only: the error's `rawPacket` holds the request's bytes, headers
 * and all.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, logger: Logger, timeouts: ServerTimeouts): void {
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const seconds = (ms: number) => `${Math.ceil(ms / 1000)} s`;
  const [status, error] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, new AppError('invalid_request', 'The request headers are too large (16 KB in all at most)')]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [
            408,
            new AppError(
              'invalid_request',
              `The request was not received in time (its headers within ${seconds(timeouts.headersTimeoutMs)}, all of it within ${seconds(timeouts.requestTimeoutMs)})`,
            ),
          ]
        : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
          ? [413, new AppError('payload_too_large', 'The request has too many chunk extensions')]
          : [400, new AppError('invalid_request', 'The request is not valid HTTP/1.1')];
  if (logger.isLevelEnabled('info'))
    logger.info({ code: error.code, status, reason: err.code }, `Refused by the HTTP parser: ${error.message}`);
  socket.end(rawErrorResponse(status, error), () => socket.destroy());
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
  process.on('SIGHUP', () => {
    running.logger.info({ signal: 'SIGHUP' }, 'SIGHUP received: reloading API_KEYS_FILE and ADMIN_API_KEYS');
    running.reload();
  });
  return running;
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`Latchkey failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
