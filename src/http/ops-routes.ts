import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Router } from 'express';
import { AppError } from '../errors';
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

const BEARER = /^Bearer[ ]+(\S+)\s*$/i;
const sha256 = (value: string) => hash('sha256', value, 'buffer') as unknown as Buffer;

/**
 * `Authorization: Bearer <token>` against one expected token, or AppError `unauthorized` (401).
 * Both sides are hashed first and compared in constant time, so neither the token's length nor a
 * prefix of it shows in the timing.
 */
function bearerCheck(token: string): (headers: IncomingHttpHeaders) => void {
  const expected = sha256(token);
  return (headers) => {
    const match = typeof headers.authorization === 'string' ? BEARER.exec(headers.authorization) : null;
    if (match && timingSafeEqual(sha256(match[1]!), expected)) return;
    throw new AppError('unauthorized', 'The metrics need a token: Authorization: Bearer <METRICS_TOKEN>');
  };
}
