import axios, { type AxiosInstance } from 'axios';
import express, { type Express } from 'express';
import { createCredentialSource, createWebhookSink, type CredentialSource } from './client';
import { systemClock, type Clock } from './clock';
import type { Config } from './config';
import type { FlowDeps } from './connect/authorization-flow';
import { AppError } from './errors';
import { noopEvents, type EventSink } from './events';
import { requireApiKey } from './http/api-auth';
import { connectRoutes } from './http/connect-routes';
import { errorMiddleware } from './http/errors';
import { opsRoutes } from './http/ops-routes';
import { rateLimit, securityHeaders } from './http/protection';
import { mountAhead, proxyRoutes } from './http/proxy-routes';
import { requestLogging, requestMetrics } from './http/request-logging';
import { serviceRoutes } from './http/service-routes';
import { sessionMiddleware } from './http/session';
import { tokenRoutes } from './http/token-routes';
import { createLogger, type Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import type { ProviderRegistry } from './providers/registry';
import type { Store } from './store';

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
}

/** Paths of the service API, all behind CONNECTOR_API_KEYS. */
export const SERVICE_PATHS = ['/connect-sessions', '/connections', '/proxy'];
/** Paths of the browser routes, the only ones with a session. */
const BROWSER_PATHS = ['/auth', '/callback'];

/** Builds the Express app from its dependencies; no listen(), no globals. */
export function createApp(deps: AppDeps): Express {
  const { config, store, providers } = deps;
  const logger = deps.logger ?? createLogger(config.logLevel);
  const metrics = deps.metrics ?? createMetrics();
  const clock = deps.clock ?? systemClock;
  const http = deps.http ?? axios.create();
  const events =
    deps.events ??
    (config.webhookUrl && config.webhookSecret
      ? createWebhookSink({ url: config.webhookUrl, secret: config.webhookSecret, http, clock, logger })
      : noopEvents);
  const credentials =
    deps.credentials ?? createCredentialSource({ config, store, clock, http, events, logger, metrics });
  const basePath = new URL(config.publicUrl).pathname.replace(/\/$/, '');

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');

  app.use(requestLogging(logger));
  app.use(requestMetrics(metrics));
  app.use(opsRoutes(store, metrics));

  const apiKey = requireApiKey(config.connectorApiKeys);
  const serviceLimit = rateLimit({ config, store, clock }, 'service');
  // /proxy is the hot path: served ahead of Express, behind the same key check and limit.
  const proxy = proxyRoutes({ config, providers, credentials, metrics, logger, clock, guards: [apiKey, serviceLimit] });
  mountAhead(app, proxy.handle);
  const flow: FlowDeps = { config, store, providers, clock, http, events, credentials: proxy.credentials };
  app.use(SERVICE_PATHS, apiKey, serviceLimit);
  app.use(tokenRoutes({ providers, credentials: proxy.credentials }));
  app.use(serviceRoutes({ ...flow, credentials: proxy.credentials }));

  const session = sessionMiddleware(config, store);
  app.use(['/', ...BROWSER_PATHS], securityHeaders(config));
  app.use(BROWSER_PATHS, rateLimit({ config, store, clock }, 'browser'), session);
  app.get('/', session);
  app.use(connectRoutes(flow));

  app.use((req, _res, next) => next(new AppError('not_found', `No route for ${req.method} ${req.path.slice(0, 200)}`)));
  app.use(
    errorMiddleware(basePath, (error, req) => {
      if (error.status >= 500)
        logger.error({ err: error.cause ?? error, code: error.code, path: req.path }, error.message);
      else logger.info({ code: error.code, path: req.path, status: error.status }, error.message);
    }),
  );
  return app;
}
