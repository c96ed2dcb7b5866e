import type { IncomingHttpHeaders } from 'node:http';
import { Router } from 'express';
import { AppError, isAppError } from '../errors';
import { connectorApiKeyEntries, createApiKeyAuthenticator } from '../guards/api-keys';
import type { Metrics } from '../metrics';
import type { Store } from '../store';

/**
 * The ops routes (CONTRACT "Operations"), without an API key: `/healthz` answers while the
 * process runs; `/readyz` only while the store answers (503 `store_unavailable` within the
 * store's command timeout otherwise, so a load balancer takes the instance out); `/metrics` for
 * Prometheus (behind `METRICS_TOKEN` when it is set); `/openapi.json`, the description of the
 * service API.
 */
export function opsRoutes(
  store: Store,
  metrics: Metrics,
  openapiDocument: object,
  options: { metricsToken?: string } = {},
): Router {
  const router = Router();
  const openapi = JSON.stringify(openapiDocument);
  router.get('/healthz', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    try {
      await store.ping();
    } catch (err) {
      throw new AppError('store_unavailable', 'The credential store is unavailable', { cause: err });
    }
    res.json({ status: 'ready', store: store.kind });
  });
  const checkMetricsToken = options.metricsToken ? bearerCheck(options.metricsToken) : () => {};
  router.get('/metrics', async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    checkMetricsToken(req.headers);
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  router.get('/openapi.json', (_req, res) => {
    res.type('json').send(openapi);
  });
  return router;
}

/**
 * `Authorization: Bearer <token>` against the one METRICS_TOKEN, or AppError `unauthorized` (401):
 * the service API's own check (both sides hashed, compared in constant time), with its own message.
 */
function bearerCheck(token: string): (headers: IncomingHttpHeaders) => void {
  const authenticate = createApiKeyAuthenticator(connectorApiKeyEntries([token]));
  return (headers) => {
    try {
      authenticate(headers);
    } catch (err) {
      if (!isAppError(err) || err.code !== 'unauthorized') throw err;
      throw new AppError('unauthorized', 'The metrics need a token: Authorization: Bearer <METRICS_TOKEN>');
    }
  };
}
