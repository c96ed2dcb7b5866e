import express, { Router } from 'express';
import type { FlowDeps } from '../connect/authorization-flow';
import { CONNECTION_ID_PATTERN } from '../connect/authorization-flow';
import { createConnectSession } from '../connect/connect-sessions';
import { AppError } from '../errors';
import { toConnectionView } from './views';

export function parseConnectionParams(params: Record<string, string | string[] | undefined>): { provider: string; connectionId: string } {
  const provider = String(params.provider ?? '');
  const connectionId = String(params.connectionId ?? '');
  if (!CONNECTION_ID_PATTERN.test(connectionId)) throw new AppError('invalid_request', 'connection id must match ^[A-Za-z0-9._:@-]{1,128}$');
  return { provider, connectionId };
}

/** Connect sessions and reading connections; mounted behind the API-key check. */
export function serviceRoutes(deps: FlowDeps): Router {
  const router = Router();
  const json = express.json({ limit: '64kb' });

  router.post('/connect-sessions', json, async (req, res) => {
    res.status(201).json(await createConnectSession(deps, req.body));
  });

  router.get('/connections', async (req, res) => {
    const provider = typeof req.query.provider === 'string' && req.query.provider ? req.query.provider : undefined;
    if (provider) deps.providers.require(provider);
    const connections = await deps.store.listConnections(provider);
    res.json({ connections: connections.map(toConnectionView) });
  });

  router.get('/connections/:provider/:connectionId', async (req, res) => {
    const { provider, connectionId } = parseConnectionParams(req.params);
    deps.providers.require(provider);
    const connection = await deps.store.getConnection(provider, connectionId);
    if (!connection) throw new AppError('connection_not_found', `No ${provider} connection "${connectionId}"`);
    res.json(toConnectionView(connection));
  });

  return router;
}
