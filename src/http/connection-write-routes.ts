import { Router } from 'express';
import type { FlowDeps } from '../connect/authorization-flow';
import { importConnection, updateMetadata } from '../connect/connection-writes';
import { jsonBody } from './body-parsing';
import { requireAccess } from './api-auth';
import { parseConnectionParams } from './service-routes';
import { toConnectionView } from './views';
import { MetadataPatchSchema, parseRequest } from '../wire/api-schemas';

/**
 * The routes that write a stored connection from the service API (CONTRACT "Connections"):
 * `PATCH` merges metadata, `PUT` imports credentials. `full` keys only; every write is version-checked.
 */
export function connectionWriteRoutes(deps: FlowDeps): Router {
  const router = Router();
  const json = jsonBody({ limit: '64kb' });

  router.patch('/connections/:provider/:connectionId', json, requireAccess('full'), async (req, res) => {
    const { provider, connectionId } = parseConnectionParams(req.params);
    // { "metadata": { "<key>": value or null } }; the merged result's bounds are the write's to check.
    const { metadata } = parseRequest(MetadataPatchSchema, req.body ?? {}, 'body');
    const connection = await updateMetadata(deps, deps.providers.require(provider), connectionId, metadata);
    res.json(toConnectionView(connection));
  });

  /** Imports credentials obtained elsewhere: 201 new, 200 replaced; a refused credential stores nothing. */
  router.put('/connections/:provider/:connectionId', json, requireAccess('full'), async (req, res) => {
    const { provider, connectionId } = parseConnectionParams(req.params);
    const { connection, replaced } = await importConnection(
      deps,
      deps.providers.requireEnabled(provider),
      connectionId,
      req.body,
    );
    res.status(replaced ? 200 : 201).json(toConnectionView(connection));
  });

  return router;
}
