import axios, { type AxiosInstance } from 'axios';
import express, { type Express } from 'express';
import { systemClock, type Clock } from './clock';
import type { Config } from './config';
import type { FlowDeps } from './connect/authorization-flow';
import { AppError } from './errors';
import { noopEvents, type EventSink } from './events';
import { requireApiKey } from './http/api-auth';
import { connectRoutes } from './http/connect-routes';
import { errorMiddleware } from './http/errors';
import { opsRoutes } from './http/ops-routes';
import { serviceRoutes } from './http/service-routes';
import { sessionMiddleware } from './http/session';
import { createLogger, type Logger } from './logger';
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
}

/** Paths of the service API, all behind CONNECTOR_API_KEYS. */
export const SERVICE_PATHS = ['/connect-sessions', '/connections', '/proxy'];
/** Paths of the browser routes, the only ones with a session. */
const BROWSER_PATHS = ['/auth', '/callback'];

/** Builds the Express app from its dependencies; no listen(), no globals. */
export function createApp(deps: AppDeps): Express {
  const { config, store } = deps;
  const logger = deps.logger ?? createLogger(config.logLevel);
  const flow: FlowDeps = {
    config,
    store,
    providers: deps.providers,
    clock: deps.clock ?? systemClock,
    http: deps.http ?? axios.create(),
    events: deps.events ?? noopEvents,
  };
  const basePath = new URL(config.publicUrl).pathname.replace(/\/$/, '');

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');

  app.use(opsRoutes(store));

  app.use(SERVICE_PATHS, requireApiKey(config.connectorApiKeys));
  app.use(serviceRoutes(flow));

  const session = sessionMiddleware(config, store);
  app.use(BROWSER_PATHS, session);
  app.get('/', session);
  app.use(connectRoutes(flow));

  app.use((req, _res, next) => next(new AppError('not_found', `No route for ${req.method} ${req.path.slice(0, 200)}`)));
  app.use(
    errorMiddleware(basePath, (error, req) => {
      if (error.status >= 500) logger.error({ err: error.cause ?? error, code: error.code, path: req.path }, error.message);
      else logger.info({ code: error.code, path: req.path, status: error.status }, error.message);
    }),
  );
  return app;
}
