import express, { Router, type Request, type Response } from 'express';
import { join } from 'node:path';
import {
  completeAuthorization,
  resolveConnectTarget,
  saveApiKeyConnection,
  startAuthorization,
  type FlowDeps,
} from '../connect/authorization-flow';
import { allowedOrigin, withResult } from '../connect/return-to';
import { AppError } from '../errors';
import { randomToken } from '../oauth/random';
import { renderApiKeyForm, renderConnectPage, renderPopupResult } from '../public/pages';
import type { Connection } from '../store';
import { regenerateSession, saveSession } from './session';

const API_KEY_FORM_TTL_MS = 15 * 60 * 1000;

/** Browser responses that carry flow material: never cached, never sent on as a Referer. */
function noStore(res: Response): void {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Referrer-Policy', 'no-referrer');
}

function queryString(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new AppError('invalid_request', `${name} must be given once`);
  return v;
}

function rawQuery(req: Request): string {
  const i = req.originalUrl.indexOf('?');
  return i < 0 ? '' : req.originalUrl.slice(i + 1);
}

/** GET /, /connect.js, /auth/:provider, /callback and /callback/done. */
export function connectRoutes(deps: FlowDeps): Router {
  const router = Router();
  const basePath = new URL(deps.config.publicUrl).pathname.replace(/\/$/, '');

  router.get('/', async (req, res) => {
    const mine = req.session.connections ?? [];
    const connections = (
      await Promise.all(mine.map((c) => deps.store.getConnection(c.provider, c.connectionId)))
    ).filter((c): c is Connection => c !== null);
    const result = req.session.lastResult;
    noStore(res);
    res.type('html').send(renderConnectPage({ providers: deps.providers.listEnabled(), connections, result, basePath }));
  });

  router.get('/connect.js', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.type('application/javascript').sendFile(join(__dirname, '..', '..', 'public', 'connect.js'));
  });

  router.get('/auth/:provider', async (req, res) => {
    noStore(res);
    const popup = queryString(req, 'popup') === '1';
    const openerOrigin = popup ? allowedOrigin(queryString(req, 'origin'), deps.config) : undefined;
    if (popup && !openerOrigin) throw new AppError('invalid_request', 'The page that opened this window is not on an allowed origin.');
    const target = await resolveConnectTarget(deps, String(req.params.provider), {
      token: queryString(req, 'token'),
      connection_id: queryString(req, 'connection_id'),
      return_to: queryString(req, 'return_to'),
    });
    req.session.started = true;
    const mode = popup ? 'popup' : 'redirect';
    if (target.provider.authMode === 'api_key') {
      const csrf = randomToken(32);
      req.session.apiKeyFlow = {
        provider: target.provider.id,
        connectionId: target.connectionId,
        returnTo: target.returnTo,
        csrf,
        mode,
        openerOrigin,
        expiresAt: deps.clock.now() + API_KEY_FORM_TTL_MS,
      };
      await saveSession(req);
      res.type('html').send(renderApiKeyForm({ provider: target.provider, action: `${basePath}/auth/${target.provider.id}`, csrf }));
      return;
    }
    await saveSession(req);
    const url = await startAuthorization(deps, target, { sessionId: req.sessionID, mode, openerOrigin });
    res.redirect(302, url);
  });

  router.post('/auth/:provider', express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 10 }), async (req, res) => {
    noStore(res);
    const provider = deps.providers.requireEnabled(String(req.params.provider));
    const flow = req.session.apiKeyFlow;
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!flow || flow.provider !== provider.id || flow.expiresAt <= deps.clock.now() || typeof body.csrf !== 'string' || body.csrf !== flow.csrf) {
      throw new AppError('invalid_state', 'This form has expired or was not opened in this browser. Please start again.');
    }
    const apiKey = typeof body.api_key === 'string' ? body.api_key.trim() : '';
    const problem = !apiKey
      ? 'Enter your API key.'
      : apiKey.length > 4096 || /[\s\u0000-\u001f\u007f]/.test(apiKey)
        ? 'That does not look like an API key: it should be one line without spaces.'
        : undefined;
    if (problem) {
      res.status(400).setHeader('Latchkey-Error', 'invalid_request');
      res.type('html').send(renderApiKeyForm({ provider, action: `${basePath}/auth/${provider.id}`, csrf: flow.csrf, error: problem }));
      return;
    }
    delete req.session.apiKeyFlow;
    await saveApiKeyConnection(deps, { provider, connectionId: flow.connectionId, returnTo: flow.returnTo }, apiKey);
    await finish(req, res, { provider: provider.id, connectionId: flow.connectionId, returnTo: flow.returnTo, mode: flow.mode, openerOrigin: flow.openerOrigin }, 'connected');
  });

  router.get('/callback', async (req, res) => {
    noStore(res);
    const outcome = await completeAuthorization(deps, rawQuery(req), req.sessionID);
    const code = outcome.status === 'error' ? outcome.error : undefined;
    await finish(req, res, outcome.flow, outcome.status, code);
  });

  router.get('/callback/done', (req, res) => {
    noStore(res);
    const result = req.session.popupResult;
    if (!result) throw new AppError('invalid_state', 'There is no finished connection to report in this browser.');
    delete req.session.popupResult;
    res.type('html').send(
      renderPopupResult({
        message: { type: 'latchkey:result', provider: result.provider, connectionId: result.connectionId, status: result.status, code: result.code },
        targetOrigin: result.openerOrigin,
        nonce: randomToken(16),
      }),
    );
  });

  /** Records the result in the session, then 303s to a clean URL: the code and state leave the address bar. */
  async function finish(
    req: Request,
    res: Response,
    flow: { provider: string; connectionId: string; returnTo: string; mode: 'redirect' | 'popup'; openerOrigin?: string },
    status: 'connected' | 'denied' | 'error',
    code?: string,
  ): Promise<void> {
    req.session.lastResult = { provider: flow.provider, connectionId: flow.connectionId, status, code, at: deps.clock.now() };
    if (status === 'connected') {
      const list = (req.session.connections ?? []).filter((c) => !(c.provider === flow.provider && c.connectionId === flow.connectionId));
      req.session.connections = [...list, { provider: flow.provider, connectionId: flow.connectionId }].slice(-50);
    }
    if (flow.mode === 'popup' && flow.openerOrigin) {
      req.session.popupResult = { provider: flow.provider, connectionId: flow.connectionId, status, code, openerOrigin: flow.openerOrigin };
    }
    if (status === 'connected') await regenerateSession(req);
    await saveSession(req);
    if (flow.mode === 'popup' && flow.openerOrigin) {
      res.redirect(303, `${basePath}/callback/done`);
      return;
    }
    const result: Record<string, string> = { status, provider: flow.provider, connection_id: flow.connectionId };
    if (code) result.error = code;
    res.redirect(303, withResult(flow.returnTo, result));
  }

  return router;
}
