import type { RequestListener } from 'node:http';
import axios, { type AxiosInstance } from 'axios';
import express, { type Express } from 'express';
import proxyaddr from 'proxy-addr';
import { createCredentialSource, type CredentialSource } from './client';
import { systemClock, type Clock } from './clock';
import type { Config } from './config';
import type { FlowDeps } from './connect/authorization-flow';
import { AppError } from './errors';
import type { EventSink } from './events';
import { createEventRecorder } from './client/event-recorder';
import { createAdminConsole } from './admin/admin-routes';
import { registerBacklogGauge, startWebhookDelivery } from './client/webhook-delivery';
import { eventRoutes } from './http/event-routes';
import { createApiKeyAuthenticator, createApiKeyGuard, createApiKeyHolder, type ApiKeyHolder } from './guards/api-keys';
import { createFailedAttempts } from './guards/failed-attempts';
import { browserRateKey, createRateLimiter, serviceRateKey } from './guards/rate-limit';
import { requireApiKey, serviceAccessFloor } from './http/api-auth';
import { connectRoutes } from './http/connect-routes';
import { connectionWriteRoutes } from './http/connection-write-routes';
import { errorMiddleware } from './http/errors';
import { buildOpenApiDocument } from './http/openapi';
import { opsRoutes } from './http/ops-routes';
import { providerRoutes } from './http/provider-routes';
import { rateLimitMiddleware, securityHeaders } from './http/protection';
import { requestLogging } from './http/request-logging';
import { serviceRoutes } from './http/service-routes';
import { sessionMiddleware } from './http/session';
import { tokenRoutes } from './http/token-routes';
import { createLogger, type Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { registerConnectionGauge } from './connection-gauge';
import { startIndexBackfill } from './store/index-backfill';
import {
  type KeepAliveOptions,
  keepAliveBackfillPlan,
  keepAliveRefresherOf,
  registerKeepAliveGauge,
  startKeepAlive,
} from './client/keep-alive';
import { startOutboxRecovery } from './store/outbox-recovery';
import { CredentialCache } from './client/credential-cache';
import { createProxyHandler, isProxyTarget } from './proxy/proxy-handler';
import { UpstreamAgents, type UpstreamConnect } from './proxy/upstream-agents';
import type { ProviderRegistry } from './providers/registry';
import type { Store } from './store';
import { createAccessLog } from './wire/access-log';

export interface AppDeps {
  config: Config;
  store: Store;
  providers: ProviderRegistry;
  clock?: Clock;
  /** HTTP client for token endpoints and account look-ups. */
  http?: AxiosInstance;
  events?: EventSink;
  logger?: Logger;
  metrics?: Metrics;
  /** Where every caller gets a working credential; built from the other deps when absent. */
  credentials?: CredentialSource;
  /** The service API keys in force; loaded from CONNECTOR_API_KEYS and API_KEYS_FILE when absent. */
  apiKeys?: ApiKeyHolder;
  /** The keep-alive sweep's pace (tests quicken it); KEEPALIVE=false switches it off. */
  keepAlive?: KeepAliveOptions;
  /** Where a SIGHUP reads ADMIN_API_KEYS again (server.ts: `.env`, else the environment); absent: it keeps the start value. */
  readAdminApiKeys?: () => string | undefined;
  /**
   * How the proxy's sockets reach providers (a resolver, trusted CAs); the system's when absent.
   * For tests and embedders only: no variable sets it. `http` is the same seam for the calls made with axios.
   */
  upstreamConnect?: UpstreamConnect;
}

/** What {@link createApp} built: the request listener, and the way to close what it opened. */
export interface LatchkeyApp {
  /** `/proxy/` to the raw proxy handler, everything else to Express. */
  handler: RequestListener;
  /** The Express side alone (the listener's other half). */
  express: Express;
  /**
   * Closes, in order, what the app opened: the upstream pools (in-flight calls finish, idle
   * sockets close), the rate counters' timers, the webhook sender. Not the store: its opener
   * closes it. Idempotent.
   */
  close(): Promise<void>;
  /**
   * What a SIGHUP does: reads API_KEYS_FILE and ADMIN_API_KEYS again and swaps the keys in force.
   * A value that does not validate changes nothing; its problems are logged. Never throws.
   */
  reload(): void;
  /**
   * Resolves when this instance's first pass of the start-up backfills (listing index and
   * keep-alive due times) is over, or it stopped. For tests and benchmarks that measure the
   * steady state; nothing waits on it to serve.
   */
  readonly startupBackfill: Promise<void>;
}

/** Paths of the service API on the Express side, all behind the API key (the proxy checks its own). */
const SERVICE_PATHS = ['/connect-sessions', '/connections', '/providers', '/events'];
/** Paths of the browser routes, the only ones with a session. */
const BROWSER_PATHS = ['/auth', '/callback'];

/**
 * Routes `/proxy/` to the raw proxy handler and everything else to Express: one explicit seam,
 * no patched framework.
 */
export function createRequestListener(expressApp: Express, proxy: RequestListener): RequestListener {
  return (req, res) => (isProxyTarget(req.url) ? proxy(req, res) : expressApp(req, res));
}

/** Builds the app from its dependencies; no listen(), no globals. */
export function createApp(deps: AppDeps): LatchkeyApp {
  const { config, store, providers } = deps;
  const logger = deps.logger ?? createLogger(config.logLevel);
  const metrics = deps.metrics ?? createMetrics();
  registerConnectionGauge(metrics.registry, store);
  // Builds the listing index of a store written before it, one instance at a time (issue 11 part 6).
  const backfill = startIndexBackfill(store, {
    onError: (err) => logger.warn({ err }, 'listing index backfill: a step failed; it will be retried'),
    onPass: (indexed) => logger.debug({ indexed }, 'listing index backfill: pass done'),
    // And the keep-alive due times of connections that have none, overdue ones jittered (issue 11 part 6).
    keepAlive: keepAliveBackfillPlan({ providers, clock: deps.clock ?? systemClock }),
    onKeepAlivePass: (scheduled) => logger.debug({ scheduled }, 'keep-alive backfill: pass done'),
  });
  // Events a crashed writer left in connection outboxes reach the log (at start, then every 30 s).
  const outboxRecovery = startOutboxRecovery(store, {
    onError: (err) => logger.warn({ err }, 'event outbox recovery: a step failed; it will be retried'),
    onRecovered: (found) =>
      logger.warn(found, 'event outbox recovery: events left by an interrupted write moved to the log'),
  });
  const clock = deps.clock ?? systemClock;
  const http = deps.http ?? axios.create();
  // Every event goes to the store's log (GET /events), whoever else hears it.
  const recorder = createEventRecorder({ store, clock, logger });
  const events = deps.events ?? recorder;
  // Every instance with a WEBHOOK_URL delivers from the log (one consumer of its group each).
  const webhooks =
    config.webhookUrl && config.webhookSecret && !deps.events
      ? startWebhookDelivery({
          store,
          url: config.webhookUrl,
          secrets: config.webhookSecret
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
          maxAgeMs: config.webhookMaxAgeHours * 3600_000,
          http,
          clock,
          logger,
          onResult: (result) => metrics.webhookDeliveries.inc({ result }),
        })
      : undefined;
  registerBacklogGauge(metrics.registry, store);
  const source = deps.credentials ?? createCredentialSource({ config, store, clock, http, events, logger, metrics });
  // Connections nobody calls are refreshed before their provider expires an idle grant (KEEPALIVE).
  const refresher = keepAliveRefresherOf(source);
  const keepAlive =
    config.keepAlive && refresher
      ? startKeepAlive({ store, providers, refresher, clock, logger, metrics }, deps.keepAlive)
      : undefined;
  registerKeepAliveGauge(metrics.registry, { store, providers, clock });
  // Decrypted credentials, kept until their refresh margin and dropped on every instance when the
  // connection changes; in degraded mode an unexpired one is served while the store is down.
  const cache = new CredentialCache(source, {
    store,
    clock,
    degradedMode: config.degradedMode,
    onDegraded: (provider) => metrics.degradedAnswers.inc({ provider }),
  });
  // Every route other than the proxy uses this one: its refreshes and deletes also drop the cache's entry.
  const credentials = cache.notifying();
  const basePath = new URL(config.publicUrl).pathname.replace(/\/$/, '');

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');
  // Express's own compiled TRUST_PROXY, so both sides log the same client address.
  const trust = app.get('trust proxy fn') as Parameters<typeof proxyaddr>[1];
  const clientAddress = (req: Parameters<typeof proxyaddr>[0]) => proxyaddr(req, trust);
  const apiKeys =
    deps.apiKeys ??
    createApiKeyHolder({
      connectorApiKeys: config.connectorApiKeys,
      apiKeysFile: config.apiKeysFile,
      knownProvider: (id) => providers.get(id) !== undefined,
    });
  // One guard for both sides: the key, and failed attempts counted per client address.
  const authenticate = createApiKeyGuard({
    authenticate: createApiKeyAuthenticator(apiKeys),
    failures: createFailedAttempts({ store, clock, limit: config.apiKeyFailuresPerMinute }),
    clientAddress,
  });
  const accessLog = createAccessLog({
    logger,
    metrics,
    clientAddress,
    apiKeyOf: (req) => authenticate.identityOf(req)?.name,
  });
  const serviceLimiter = createRateLimiter({
    store,
    clock,
    limit: config.serviceRateLimitPerMinute,
    batched: true,
    localWhenStoreDown: config.degradedMode,
  });
  const browserLimiter = createRateLimiter({ store, clock, limit: config.rateLimitPerMinute, batched: false });
  const agents = new UpstreamAgents({
    connections: config.proxyMaxSocketsPerOrigin,
    connectTimeoutMs: Math.min(config.upstreamTimeoutMs, 10_000),
    connect: deps.upstreamConnect,
  });

  const proxy = createProxyHandler({
    authenticate,
    limiter: serviceLimiter,
    accessLog,
    providers,
    credentials: cache,
    agents,
    metrics,
    logger,
    bodyLimitBytes: config.proxyBodyLimitBytes,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    callerStallMs: config.proxyCallerStallMs,
    maxConcurrencyPerKey: config.proxyMaxConcurrencyPerKey,
  });

  app.use(requestLogging(accessLog));
  app.use(
    opsRoutes(store, metrics, buildOpenApiDocument({ publicUrl: config.publicUrl }), {
      metricsToken: config.metricsToken,
    }),
  );

  const flow: FlowDeps = { config, store, providers, clock, http, events, credentials, logger };
  app.use(
    SERVICE_PATHS,
    requireApiKey(authenticate),
    rateLimitMiddleware(serviceLimiter, (_req, res) => serviceRateKey(res.locals.apiKey!.name)),
    serviceAccessFloor(),
  );
  app.use(tokenRoutes({ providers, credentials }));
  app.use(serviceRoutes({ ...flow, credentials }));
  app.use(eventRoutes({ store, providers }));
  app.use(connectionWriteRoutes(flow));
  app.use(providerRoutes({ providers }));

  const session = sessionMiddleware(config, store);
  // Every route from here on is a browser's: pages, /connect.js, /assets/*, and the 404 answer.
  app.use(securityHeaders(config));
  app.use(
    BROWSER_PATHS,
    rateLimitMiddleware(browserLimiter, (req) => browserRateKey(req.ip)),
    session,
  );
  app.get('/', session);
  app.use(connectRoutes(flow));
  // The operator console (CONTRACT "Operator console"): its own session, CSRF tokens and key check.
  const admin = createAdminConsole({
    ...flow,
    credentials,
    logger,
    webhooks,
    clientAddress,
    readAdminApiKeys: deps.readAdminApiKeys,
  });
  app.use(
    '/admin',
    rateLimitMiddleware(browserLimiter, (req) => browserRateKey(req.ip)),
    admin.router,
  );

  app.use((req, _res, next) => next(new AppError('not_found', `No route for ${req.method} ${req.path.slice(0, 200)}`)));
  app.use(errorMiddleware(basePath, logger));

  const reload = () => {
    const outcome = apiKeys.reload();
    if (outcome.ok) logger.info({ apiKeys: outcome.names }, 'API keys reloaded');
    else logger.error({ problems: outcome.problems }, 'API keys not reloaded: the keys in force stay');
    admin.reload();
  };

  let closing: Promise<void> | undefined;
  return {
    handler: createRequestListener(app, proxy),
    express: app,
    close: () =>
      (closing ??= (async () => {
        // First: no refresh starts from now on; those in flight finish, their events are flushed below.
        await keepAlive?.close();
        await agents.close();
        cache.close();
        serviceLimiter.close();
        browserLimiter.close();
        await recorder.flush();
        await webhooks?.close();
        await backfill.close();
        await outboxRecovery.close();
      })()),
    reload,
    startupBackfill: backfill.firstPass,
  };
}
