import { Router } from 'express';
import { AppError } from '../errors';
import type { Store } from '../store';

/** /healthz answers while the process runs; /readyz only while the store answers. */
export function opsRoutes(store: Store): Router {
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
  return router;
}
