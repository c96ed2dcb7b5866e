import { Router } from 'express';
import type { FlowDeps } from '../connect/authorization-flow';
import { updateMetadata } from '../connect/connection-writes';
import { AppError } from '../errors';
import { jsonBody } from './body-parsing';
import { requireAccess } from './api-auth';
import { parseConnectionParams } from './service-routes';
import { toConnectionView } from './views';

/**
 * The routes that write a stored connection from the service API (CONTRACT "Connections"):
 * `PATCH` merges metadata. `full` keys only; every write is version-checked.
 */
export function connectionWriteRoutes(deps: FlowDeps): Router {
  const router = Router();
  const json = jsonBody({ limit: '64kb' });

  router.patch('/connections/:provider/:connectionId', json, requireAccess('full'), async (req, res) => {
    const { provider, connectionId } = parseConnectionParams(req.params);
    const body = req.body as unknown;
    const metadata = (body as { metadata?: unknown } | null)?.metadata;
    if (
      typeof body !== 'object' ||
      body === null ||
      Array.isArray(body) ||
      Object.keys(body).some((k) => k !== 'metadata') ||
      typeof metadata !== 'object' ||
      metadata === null ||
      Array.isArray(metadata)
    ) {
      throw new AppError('invalid_request', 'The body must be { "metadata": { "<key>": value or null } }');
    }
    const connection = await updateMetadata(
      deps,
      deps.providers.require(provider),
      connectionId,
      metadata as Record<string, string | number | boolean | null>,
    );
    res.json(toConnectionView(connection));
  });

  return router;
}
