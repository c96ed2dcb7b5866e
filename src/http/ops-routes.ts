import { Router } from 'express';
import { AppError } from '../errors';
import type { Metrics } from '../metrics';
import type { Store } from '../store';

/**
 * The ops routes (CONTRACT "Operations"), without an API key: `/healthz` answers while the
 * process runs; `/readyz` only while the store answers (503 `store_unavailable` within the
 * store's command timeout otherwise, so a load balancer takes the instance out); `/metrics` for
 * Prometheus; `/openapi.json`, the description of the service API.
 */
export function opsRoutes(store: Store, metrics: Metrics, openapiDocument: object): Router {
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
  router.get('/metrics', async (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  router.get('/openapi.json', (_req, res) => {
    res.type('json').send(openapi);
  });
  return router;
}
