import 'dotenv/config';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './app';
import { systemClock, type Clock } from './clock';
import { ConfigError, parseConfig, type Config } from './config';
import { createLogger, type Logger } from './logger';
import { buildProviderRegistry, ProviderConfigError, readProvidersFile, type ProviderSource } from './providers/registry';
import { openStore } from './store';
import { waitForReady } from './store/redis-client';

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
  /** Graceful stop: no new connections, in-flight requests finish (bounded), the store closes. */
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
  const server = app.listen(config.port);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, store: store.kind, providers: providers.listEnabled().map((p) => p.id) }, 'Latchkey listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
      await done;
      clearTimeout(timer);
      await store.close();
    })());
  return { url: `http://127.0.0.1:${port}`, port, config, server, close };
}

/** Prints every configuration problem and exits non-zero. */
function exitWithProblems(err: ConfigError | ProviderConfigError): never {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}

export async function main(options: StartOptions = {}): Promise<RunningLatchkey> {
  let running: RunningLatchkey;
  try {
    running = await startLatchkey(options);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ProviderConfigError) exitWithProblems(err);
    throw err;
  }
  const stop = (signal: string) => {
    process.stderr.write(`${signal} received: draining\n`);
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
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
