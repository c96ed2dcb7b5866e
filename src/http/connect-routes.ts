import { Router, type Request, type Response } from 'express';
import type { SessionData } from 'express-session';
import {
  completeAuthorization,
  resolveConnectTarget,
  saveApiKeyConnection,
  startAuthorization,
  type FlowDeps,
} from '../connect/authorization-flow';
import { allowedOrigin, withResult } from '../connect/return-to';
import { writeError } from '../wire/error-response';
import { AppError, isAppError } from '../errors';
import { randomToken } from '../oauth/random';
import { createAssetReader } from '../public/assets';
import {
  renderApiKeyForm,
  renderConnectPage,
  renderPopupResult,
  type ConnectionRow,
  type PopupMessage,
  type PopupResultModel,
} from '../public/pages';
import type { Connection, FlowState, Store } from '../store';
import { formBody } from './body-parsing';
import { regenerateSession, saveSession } from './session';

const API_KEY_FORM_TTL_MS = 15 * 60 * 1000;
/** The API-key form is a CSRF token, a key and a few connection settings: anything bigger is not this form. */
const API_KEY_FORM_MAX_BYTES = '16kb';
const API_KEY_FORM_MAX_FIELDS = 10;
/** The Connect page shows a flow's result once, and only while it is news. */
const RESULT_NOTICE_MAX_AGE_MS = 10 * 60 * 1000;
const STATIC_MAX_AGE = 'public, max-age=300';

type FlowStatus = PopupMessage['status'];
type OwnConnection = NonNullable<SessionData['connections']>[number];

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

function codeOf(err: unknown): string {
  return isAppError(err) ? err.code : 'internal_error';
}

/**
 * The connections this browser made, still as it made them: one replaced since from another
 * browser (another account behind the same connection id) is not shown, so the page never
 * shows another person's account.
 */
async function loadOwnConnections(store: Store, own: OwnConnection[]): Promise<ConnectionRow[]> {
  const found = await Promise.all(own.map((entry) => store.getConnection(entry.provider, entry.connectionId)));
  const rows: ConnectionRow[] = [];
  own.forEach((entry, i) => {
    const connection = found[i];
    if (!connection) return;
    if (entry.accountId !== undefined && connection.account?.id !== entry.accountId) return;
    rows.push({ connection, connectedAt: entry.connectedAt ?? connection.updatedAt });
  });
  return rows.sort((a, b) => b.connectedAt - a.connectedAt);
}

/** GET /, /connect.js, /assets/*, /auth/:provider, /callback and /callback/done. */
export function connectRoutes(deps: FlowDeps): Router {
  const router = Router();
  const basePath = new URL(deps.config.publicUrl).pathname.replace(/\/$/, '');
  const files = createAssetReader();

  /** Lets the error page that follows post this error to the popup's opener (see renderErrorPage). */
  function reportToOpener(res: Response, message: PopupMessage, targetOrigin: string): void {
    const popupResult: PopupResultModel = { message, targetOrigin, basePath };
    res.locals.popupResult = popupResult;
  }

  router.get('/', async (req, res) => {
    noStore(res);
    const result = req.session.lastResult;
    if (result) delete req.session.lastResult;
    const fresh = result && deps.clock.now() - result.at < RESULT_NOTICE_MAX_AGE_MS ? result : undefined;
    const connections = await loadOwnConnections(deps.store, req.session.connections ?? []);
    res.type('html').send(
      renderConnectPage({
        providers: deps.providers.listEnabled(),
        connections,
        result: fresh,
        basePath,
        now: deps.clock.now(),
        anonymousConnect: deps.config.allowAnonymousConnect,
      }),
    );
  });

  router.get('/connect.js', async (_req, res) => {
    const body = await files.connectScript(deps.config.allowedReturnOrigins);
    if (body === undefined)
      throw new AppError('not_found', 'connect.js is not installed (the public/ folder is missing)');
    res.setHeader('Cache-Control', STATIC_MAX_AGE);
    // Embedded by the host applications' pages, which are on other origins.
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    res.type('text/javascript; charset=utf-8').send(body);
  });

  router.get('/assets/:name', async (req, res) => {
    const file = await files.asset(String(req.params.name));
    if (!file) throw new AppError('not_found', 'No such asset');
    res.setHeader('Cache-Control', STATIC_MAX_AGE);
    res.type(file.type).send(file.body);
  });

  router.get('/auth/:provider', async (req, res) => {
    noStore(res);
    const popup = queryString(req, 'popup') === '1';
    const openerOrigin = popup ? allowedOrigin(queryString(req, 'origin'), deps.config) : undefined;
    // The opener is not allowed: nothing may be posted to it, not even this error.
    if (popup && !openerOrigin)
      throw new AppError('invalid_request', 'The page that opened this window is not on an allowed origin.');
    try {
      await startConnecting(req, res, popup ? 'popup' : 'redirect', openerOrigin);
    } catch (err) {
      if (openerOrigin) {
        const connectionId = typeof req.query.connection_id === 'string' ? req.query.connection_id.slice(0, 128) : '';
        const provider = String(req.params.provider).slice(0, 64);
        reportToOpener(
          res,
          { type: 'latchkey:result', provider, connectionId, status: 'error', code: codeOf(err) },
          openerOrigin,
        );
      }
      throw err;
    }
  });

  async function startConnecting(
    req: Request,
    res: Response,
    mode: 'redirect' | 'popup',
    openerOrigin?: string,
  ): Promise<void> {
    const target = await resolveConnectTarget(deps, String(req.params.provider), {
      token: queryString(req, 'token'),
      connection_id: queryString(req, 'connection_id'),
      return_to: queryString(req, 'return_to'),
    });
    req.session.started = true;
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
      res.type('html').send(
        renderApiKeyForm({
          provider: target.provider,
          action: `${basePath}/auth/${target.provider.id}`,
          csrf,
          basePath,
        }),
      );
      return;
    }
    await saveSession(req);
    const url = await startAuthorization(deps, target, { sessionId: req.sessionID, mode, openerOrigin });
    res.redirect(302, url);
  }

  router.post(
    '/auth/:provider',
    formBody({ limit: API_KEY_FORM_MAX_BYTES, parameterLimit: API_KEY_FORM_MAX_FIELDS }),
    async (req, res) => {
      noStore(res);
      const provider = deps.providers.requireEnabled(String(req.params.provider));
      const flow = req.session.apiKeyFlow;
      const body = (req.body ?? {}) as Record<string, unknown>;
      const sameForm =
        flow !== undefined && flow.provider === provider.id && typeof body.csrf === 'string' && body.csrf === flow.csrf;
      if (!flow || !sameForm || flow.expiresAt <= deps.clock.now()) {
        if (sameForm && flow.mode === 'popup' && flow.openerOrigin) {
          reportToOpener(
            res,
            {
              type: 'latchkey:result',
              provider: provider.id,
              connectionId: flow.connectionId,
              status: 'error',
              code: 'invalid_state',
            },
            flow.openerOrigin,
          );
        }
        throw new AppError(
          'invalid_state',
          'This form has expired or was not opened in this browser. Please start again.',
        );
      }
      const apiKey = typeof body.api_key === 'string' ? body.api_key.trim() : '';
      const problem = !apiKey
        ? 'Enter your API key.'
        : apiKey.length > 4096 || /[\s\u0000-\u001f\u007f]/.test(apiKey)
          ? 'That does not look like an API key: it should be one line without spaces.'
          : // It travels in an HTTP header, whose values are Latin-1 bytes (RFC 9110 §5.5).
            /[^\u0000-\u00ff]/.test(apiKey)
            ? 'That API key contains characters that cannot be sent to the provider (letters beyond Latin-1, emoji, typographic quotes): check that you pasted the right value.'
            : undefined;
      if (problem) {
        writeError(res, new AppError('invalid_request', problem), {
          html: renderApiKeyForm({
            provider,
            action: `${basePath}/auth/${provider.id}`,
            csrf: flow.csrf,
            basePath,
            error: problem,
          }),
        });
        return;
      }
      delete req.session.apiKeyFlow;
      const connection = await saveApiKeyConnection(
        deps,
        { provider, connectionId: flow.connectionId, returnTo: flow.returnTo },
        apiKey,
      );
      await finish(req, res, { ...flow, provider: provider.id }, 'connected', undefined, connection);
    },
  );

  router.get('/callback', async (req, res) => {
    noStore(res);
    let taken: FlowState | undefined;
    let outcome;
    try {
      outcome = await completeAuthorization(deps, rawQuery(req), req.sessionID, (flow) => (taken = flow));
    } catch (err) {
      const flow = taken;
      // Only a flow of this very browser, in a popup, to the origin recorded when it started.
      if (flow && flow.sessionId === req.sessionID && flow.mode === 'popup' && flow.openerOrigin) {
        reportToOpener(
          res,
          {
            type: 'latchkey:result',
            provider: flow.provider,
            connectionId: flow.connectionId,
            status: 'error',
            code: codeOf(err),
          },
          flow.openerOrigin,
        );
      }
      throw err;
    }
    const code = outcome.status === 'error' ? outcome.error : undefined;
    await finish(
      req,
      res,
      outcome.flow,
      outcome.status,
      code,
      outcome.status === 'connected' ? outcome.connection : undefined,
    );
  });

  router.get('/callback/done', (req, res) => {
    noStore(res);
    const result = req.session.popupResult;
    if (!result) throw new AppError('invalid_state', 'There is no finished connection to report in this browser.');
    delete req.session.popupResult;
    res.type('html').send(
      renderPopupResult({
        message: {
          type: 'latchkey:result',
          provider: result.provider,
          connectionId: result.connectionId,
          status: result.status,
          code: result.code,
        },
        targetOrigin: result.openerOrigin,
        providerName: deps.providers.get(result.provider)?.displayName,
        basePath,
      }),
    );
  });

  /** Records the result in the session, then 303s to a clean URL: the code and state leave the address bar. */
  async function finish(
    req: Request,
    res: Response,
    flow: {
      provider: string;
      connectionId: string;
      returnTo: string;
      mode: 'redirect' | 'popup';
      openerOrigin?: string;
    },
    status: FlowStatus,
    code?: string,
    connection?: Connection,
  ): Promise<void> {
    const now = deps.clock.now();
    const popup = flow.mode === 'popup' && flow.openerOrigin;
    // A popup's result goes to its opener; the Connect page's notice is for redirect flows.
    if (!popup)
      req.session.lastResult = { provider: flow.provider, connectionId: flow.connectionId, status, code, at: now };
    if (status === 'connected') {
      const others = (req.session.connections ?? []).filter(
        (c) => !(c.provider === flow.provider && c.connectionId === flow.connectionId),
      );
      const mine: OwnConnection = {
        provider: flow.provider,
        connectionId: flow.connectionId,
        accountId: connection?.account?.id,
        connectedAt: now,
      };
      req.session.connections = [...others, mine].slice(-50);
    }
    if (popup) {
      req.session.popupResult = {
        provider: flow.provider,
        connectionId: flow.connectionId,
        status,
        code,
        openerOrigin: flow.openerOrigin!,
      };
    }
    if (status === 'connected') await regenerateSession(req);
    await saveSession(req);
    if (popup) {
      res.redirect(303, `${basePath}/callback/done`);
      return;
    }
    const result: Record<string, string> = { status, provider: flow.provider, connection_id: flow.connectionId };
    if (code) result.error = code;
    res.redirect(303, withResult(flow.returnTo, result));
  }

  return router;
}
