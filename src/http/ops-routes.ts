import { Router } from 'express';
import { AppError } from '../errors';
import type { Metrics } from '../metrics';
import type { Store } from '../store';

/** /healthz answers while the process runs; /readyz only while the store answers; /metrics for Prometheus. */
export function opsRoutes(store: Store, metrics: Metrics): Router {
  const router = Router();
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
  return router;
}
