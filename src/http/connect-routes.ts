import { Router, type Request, type Response } from 'express';
import type { SessionData } from 'express-session';
import {
  completeAuthorization,
  saveApiKeyConnection,
  startAuthorization,
  type FlowDeps,
  type FlowReturn,
} from '../connect/authorization-flow';
import { checkApiKey } from '../connect/api-key-check';
import { isConnectLinkError, releaseConnectLink } from '../connect/connect-sessions';
import { resolveConnectTarget, type ConnectTarget } from '../connect/connect-target';
import { allowedOrigin, withResult } from '../connect/return-to';
import { requestIdOfAnswer } from '../wire/access-log';
import { writeError } from '../wire/error-response';
import { reportError } from '../wire/error-report';
import { AppError, toAppError } from '../errors';
import { randomToken } from '../oauth/random';
import { checkConnectionConfig } from '../providers/provider-templates';
import type { Provider } from '../providers/registry';
import { createAssetReader } from '../public/assets';
import { renderConfigForm, renderContinueToProvider } from '../public/config-form';
import {
  renderApiKeyForm,
  renderConnectPage,
  renderErrorPage,
  renderPopupResult,
  type ConnectionRow,
  type PopupMessage,
} from '../public/pages';
import type { Connection, Store } from '../store';
import { formBody } from './body-parsing';
import { regenerateSession, saveSession } from './session';

const API_KEY_FORM_TTL_MS = 15 * 60 * 1000;
/** The API-key form is a CSRF token, a key and a few connection settings: anything bigger is not this form. */
const API_KEY_FORM_MAX_BYTES = '16kb';
const API_KEY_FORM_MAX_FIELDS = 10;
/** The config form: a CSRF token and at most 20 connectionConfig values. */
const CONFIG_FORM_MAX_FIELDS = 24;
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

/** A popup's opener, told about a failure: its exact origin (checked when the flow began) and the flow. */
interface Opener {
  origin: string;
  provider: string;
  connectionId: string;
}

/**
 * The connections this browser made, still as it made them: one replaced since from another
 * browser (another account behind the same connection id) is not shown, so the page never
 * shows another person's account.
 */
async function loadOwnConnections(store: Store, own: OwnConnection[]): Promise<ConnectionRow[]> {
  // The plaintext fields only: a connection no configured key opens is still shown, not a 409 page.
  const found = await Promise.all(own.map((entry) => store.getConnectionInfo(entry.provider, entry.connectionId)));
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

  /** Reports a failure that these routes answer themselves rather than through the error middleware. */
  function report(req: Request, error: AppError, provider?: string): void {
    if (deps.logger)
      reportError(deps.logger, error, {
        reqId: req.res && requestIdOfAnswer(req.res),
        method: req.method,
        path: req.path,
        provider,
      });
  }

  /**
   * Answers a flow route's failure with the error page, through the one writer, when the page
   * needs more than the error middleware knows: which case of its code this is (a used or an
   * expired link), and the popup's opener, to which popup-result.js posts the error.
   */
  function sendFlowError(req: Request, res: Response, error: AppError, opener?: Opener): void {
    report(req, error, opener?.provider);
    const popup = opener && {
      message: {
        type: 'latchkey:result' as const,
        provider: opener.provider,
        connectionId: opener.connectionId,
        status: 'error' as const,
        code: error.code,
      },
      targetOrigin: opener.origin,
      basePath,
    };
    const reason = isConnectLinkError(error) ? error.problem : undefined;
    writeError(res, error, { html: renderErrorPage(error.code, error.message, basePath, { popup, reason }) });
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
      const error = toAppError(err);
      const opener = openerOrigin && {
        origin: openerOrigin,
        provider: String(req.params.provider).slice(0, 64),
        connectionId: typeof req.query.connection_id === 'string' ? req.query.connection_id.slice(0, 128) : '',
      };
      if (!opener && !isConnectLinkError(error)) throw err;
      sendFlowError(req, res, error, opener || undefined);
    }
  });

  /**
   * Starts a flow for what this request may connect: the API-key form, or the provider's
   * authorization page. A connect link is taken only once every other check has passed; when
   * writing the flow fails, the link is given back, so that the person can simply try again.
   */
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
    let answer: { html: string } | { location: string };
    try {
      answer = await beginFlow(req, target, mode, openerOrigin);
    } catch (err) {
      // Best effort: a store that has just failed may refuse this too, and the link then lapses.
      if (target.link) await releaseConnectLink(deps, target.link).catch(() => undefined);
      throw err;
    }
    if ('html' in answer) res.type('html').send(answer.html);
    else res.redirect(302, answer.location);
  }

  /** Writes what the rest of the flow needs (the session, the flow state) and says how to answer. */
  async function beginFlow(
    req: Request,
    target: ConnectTarget,
    mode: 'redirect' | 'popup',
    openerOrigin?: string,
  ): Promise<{ html: string } | { location: string }> {
    req.session.started = true;
    // A required connectionConfig value the link did not give: asked for on a form first.
    const config = checkConnectionConfig(target.provider, target.config ?? {}, { partial: true });
    if ('missing' in config && config.missing.length > 0) {
      const csrf = randomToken(32);
      req.session.configFlow = {
        provider: target.provider.id,
        connectionId: target.connectionId,
        returnTo: target.returnTo,
        csrf,
        mode,
        openerOrigin,
        expiresAt: deps.clock.now() + API_KEY_FORM_TTL_MS,
        config: target.config ?? {},
      };
      await saveSession(req);
      return { html: configForm(target.provider, csrf, config.missing) };
    }
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
        config: target.config,
      };
      await saveSession(req);
      const html = renderApiKeyForm({
        provider: target.provider,
        action: `${basePath}/auth/${target.provider.id}`,
        csrf,
        basePath,
      });
      return { html };
    }
    await saveSession(req);
    const location = await startAuthorization(deps, target, { sessionId: req.sessionID, mode, openerOrigin });
    return { location };
  }

  router.post(
    '/auth/:provider',
    formBody({ limit: API_KEY_FORM_MAX_BYTES, parameterLimit: API_KEY_FORM_MAX_FIELDS }),
    async (req, res) => {
      noStore(res);
      const provider = deps.providers.requireEnabled(String(req.params.provider));
      const flow = req.session.apiKeyFlow;
      const body = (req.body ?? {}) as Record<string, unknown>;
      const sameForm = isSameForm(flow, provider.id, body);
      if (!flow || !sameForm || flow.expiresAt <= deps.clock.now()) {
        const error = new AppError(
          'invalid_state',
          'This form has expired or was not opened in this browser. Please start again.',
        );
        // Only this browser's own form (its CSRF token matched) may tell the opener it began with.
        if (!sameForm || flow.mode !== 'popup' || !flow.openerOrigin) throw error;
        sendFlowError(req, res, error, {
          origin: flow.openerOrigin,
          provider: provider.id,
          connectionId: flow.connectionId,
        });
        return;
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
      const formAgain = (error: AppError, message: string) =>
        writeError(res, error, {
          html: renderApiKeyForm({
            provider,
            action: `${basePath}/auth/${provider.id}`,
            csrf: flow.csrf,
            basePath,
            error: message,
          }),
        });
      if (problem) {
        formAgain(new AppError('invalid_request', problem), problem);
        return;
      }
      // Tried once, before anything is stored: a wrong key, or a check that could not be made, is the form again.
      const checked =
        provider.authMode === 'api_key'
          ? await checkApiKey(provider, apiKey, { http: deps.http, config: flow.config })
          : ({ outcome: 'unchecked' } as const);
      if (checked.outcome === 'refused' || checked.outcome === 'failed') {
        report(req, checked.error, provider.id);
        const refused = checked.outcome === 'refused';
        formAgain(
          checked.error,
          refused
            ? `${provider.displayName} did not accept this API key. Check that you copied all of it, or create a new one, and try again.`
            : `Latchkey could not check the key with ${provider.displayName}, so it was not saved. Please try again in a moment.`,
        );
        return;
      }
      delete req.session.apiKeyFlow;
      const back: FlowReturn = { ...flow, provider: provider.id };
      let connection: Connection;
      try {
        connection = await saveApiKeyConnection(
          deps,
          { provider, connectionId: flow.connectionId, returnTo: flow.returnTo },
          apiKey,
          flow.config,
        );
      } catch (err) {
        const error = toAppError(err);
        report(req, error, provider.id);
        await finish(req, res, back, { status: 'error', code: error.code });
        return;
      }
      await finish(req, res, back, { status: 'connected' }, connection);
    },
  );

  function configForm(
    provider: Provider,
    csrf: string,
    names: string[],
    given: Record<string, string> = {},
    errors: Record<string, string> = {},
  ): string {
    return renderConfigForm({
      provider,
      action: `${basePath}/auth/${provider.id}/config`,
      csrf,
      basePath,
      fields: names.map((name) => ({
        name,
        label: provider.connectionConfig[name]!.label,
        pattern: provider.connectionConfig[name]!.pattern,
        value: given[name],
        error: errors[name],
      })),
    });
  }

  /** The config form's answer: checked like a connect session's `connection_config`, then the flow goes on. */
  router.post(
    '/auth/:provider/config',
    formBody({ limit: API_KEY_FORM_MAX_BYTES, parameterLimit: CONFIG_FORM_MAX_FIELDS }),
    async (req, res) => {
      noStore(res);
      const provider = deps.providers.requireEnabled(String(req.params.provider));
      const flow = req.session.configFlow;
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (!flow || !isSameForm(flow, provider.id, body) || flow.expiresAt <= deps.clock.now()) {
        throw new AppError(
          'invalid_state',
          'This form has expired or was not opened in this browser. Please start again.',
        );
      }
      const asked = Object.keys(provider.connectionConfig).filter((name) => flow.config[name] === undefined);
      const given: Record<string, string> = {};
      for (const name of asked) {
        const value = body[name];
        if (typeof value === 'string' && value.trim() !== '') given[name] = value.trim();
      }
      const checked = checkConnectionConfig(provider, { ...flow.config, ...given });
      if ('problems' in checked) {
        const errors = Object.fromEntries(checked.problems.map((p) => [p.name, p.message]));
        const missing = asked.filter((name) => provider.connectionConfig[name]!.required || given[name] !== undefined);
        const html = configForm(provider, flow.csrf, missing, given, errors);
        writeError(res, new AppError('invalid_request', checked.problems[0]!.message), { html });
        return;
      }
      delete req.session.configFlow;
      const target: ConnectTarget = {
        provider,
        connectionId: flow.connectionId,
        returnTo: flow.returnTo,
        config: checked.config,
      };
      const answer = await beginFlow(req, target, flow.mode, flow.openerOrigin);
      // Not a redirect to the provider: the CSP's form-action would stop it (renderContinueToProvider).
      const html =
        'html' in answer ? answer.html : renderContinueToProvider({ provider, location: answer.location, basePath });
      res.type('html').send(html);
    },
  );

  router.get('/callback', async (req, res) => {
    noStore(res);
    // No flow of this browser (a missing, forged, expired or replayed state): it throws, the 400 page.
    const result = await completeAuthorization(deps, rawQuery(req), req.sessionID);
    const { flow } = result;
    switch (result.kind) {
      case 'refused':
        if (flow.mode !== 'popup' || !flow.openerOrigin) throw result.error;
        sendFlowError(req, res, result.error, {
          origin: flow.openerOrigin,
          provider: flow.provider,
          connectionId: flow.connectionId,
        });
        return;
      case 'error':
        report(req, result.cause, flow.provider);
        await finish(req, res, flow, { status: 'error', code: result.code });
        return;
      case 'denied':
        await finish(req, res, flow, { status: 'denied' });
        return;
      case 'connected':
        await finish(req, res, flow, { status: 'connected' }, result.connection);
        return;
    }
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

  /**
   * Records the result in the session, then 303s to a clean URL (the code and state leave the
   * address bar): `return_to` with `status=…&provider=…&connection_id=…[&error=…]`, or, for a
   * popup, `/callback/done`, which posts the same result to the opener and closes.
   */
  async function finish(
    req: Request,
    res: Response,
    flow: FlowReturn,
    outcome: { status: FlowStatus; code?: string },
    connection?: Connection,
  ): Promise<void> {
    const { status, code } = outcome;
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

/**
 * True when a posted form is the one this browser's session opened for `providerId`: the
 * session's flow is for that provider and the form's CSRF token is the session's.
 */
function isSameForm(
  flow: { provider: string; csrf: string } | undefined,
  providerId: string,
  body: Record<string, unknown>,
): flow is { provider: string; csrf: string } {
  return flow !== undefined && flow.provider === providerId && typeof body.csrf === 'string' && body.csrf === flow.csrf;
}
