import type { IncomingMessage } from 'node:http';
import { Router, type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import type { Clock } from '../clock';
import type { RetryingDelivery } from '../client/webhook-delivery';
import { createConnectSession } from '../connect/connect-sessions';
import { AppError, toAppError } from '../errors';
import { createFailedAttempts } from '../guards/failed-attempts';
import { formBody, singleValuedQuery } from '../http/body-parsing';
import { listConnectionPage } from '../http/connection-page';
import { queryOf } from '../http/event-routes';
import { securityHeaders } from '../http/protection';
import { deleteConnection, parseConnectionParams, type ServiceRouteDeps } from '../http/service-routes';
import type { Logger } from '../logger';
import type { Store } from '../store';
import { reportError } from '../wire/error-report';
import { writeError } from '../wire/error-response';
import { ListConnectionsQuerySchema, ListEventsQuerySchema, parseRequest } from '../wire/api-schemas';
import { createAdminKeyHolder, type AdminKeyHolder } from './admin-keys';
import {
  connectionPath,
  renderAdminError,
  renderConsoleOff,
  renderSignIn,
  type AdminFrame,
  type AdminSection,
  type Notice,
} from './admin-layout';
import { createAdminSessions, sameToken, type AdminSession } from './admin-session';
import { renderConnectionDetail, renderConnectionList, renderConnectLink } from './connection-pages';
import { renderDeliveries, renderEventFeed, renderProviders } from './ops-pages';

/**
 * The operator console at `/admin` (CONTRACT "Operator console", issue 11 part 5): sign-in with a
 * key of ADMIN_API_KEYS, its own session and CSRF tokens, and pages over the store's listing
 * index, counts and event log. Its actions go through the same functions as the service API
 * (forceRefresh, deleteConnection, createConnectSession, retryDead), so they behave the same, and
 * each is logged with the signed-in key's name. No page is ever built from a decrypted
 * credential: only the connections' plaintext fields are read.
 */

/** Failed sign-ins allowed per client address per minute; then 429 until the minute ends. */
export const ADMIN_SIGN_IN_FAILURES_PER_MINUTE = 10;
const PAGE_SIZE = 50;
/** The console sees every provider's connections. */
const CONSOLE_SCOPE = { name: 'operator-console', access: 'full', providers: null } as const;
const TIMELINE_SIZE = 20;
const DEAD_SHOWN = 200;
const EVENT_ID = /^evt_[A-Za-z0-9_-]{1,64}$/;
/** The console's forms: a CSRF token, a key or a confirmation. */
const form = formBody({ limit: '8kb', parameterLimit: 5 });

export interface AdminConsoleDeps extends ServiceRouteDeps {
  logger: Logger;
  /** This instance's webhook sender, when WEBHOOK_URL is set (its failing deliveries are shown). */
  webhooks?: { retrying(): RetryingDelivery[] };
  /** The client's address, TRUST_PROXY honoured (the access log's own function). */
  clientAddress: (req: IncomingMessage) => string | undefined;
  /** Where a SIGHUP reads ADMIN_API_KEYS again; default: the value at start. */
  readAdminApiKeys?: () => string | undefined;
}

export interface AdminConsole {
  /** Mounted at `/admin`. */
  router: Router;
  /** What a SIGHUP does: reads ADMIN_API_KEYS again (a value that does not validate changes nothing). */
  reload(): void;
}

/** What each `?done=` after an action says (a fixed list: the query never puts text on the page). */
const DONE: Record<string, Notice> = {
  refreshed: { kind: 'ok', text: 'Refreshed: the provider issued a new access token.' },
  disconnected: {
    kind: 'ok',
    text: 'Disconnected: the connection was revoked at the provider (where it can be) and deleted.',
  },
  retried: { kind: 'ok', text: 'The delivery is back in the queue; it is sent again with the same webhook-id.' },
  signed_out: { kind: 'ok', text: 'You are signed out.' },
};

const doneNotice = (req: Request): Notice | undefined => {
  const done = req.query.done;
  return typeof done === 'string' && Object.prototype.hasOwnProperty.call(DONE, done) ? DONE[done] : undefined;
};

/** The failed-attempt counts of the console, apart from the service API's (another key in the store). */
function consoleCounts(store: Store): Pick<Store, 'hit'> {
  return { hit: (key, windowMs, by) => store.hit(`admin-${key}`, windowMs, by) };
}

export function createAdminConsole(deps: AdminConsoleDeps): AdminConsole {
  const { config, store, providers, logger } = deps;
  const clock: Clock = deps.clock;
  const keys: AdminKeyHolder = createAdminKeyHolder(config.adminApiKeys);
  const sessions = createAdminSessions({
    store,
    clock,
    publicUrl: config.publicUrl,
    keyInForce: (name) => keys.has(name),
  });
  const failures = createFailedAttempts({
    store: consoleCounts(store),
    clock,
    limit: ADMIN_SIGN_IN_FAILURES_PER_MINUTE,
  });
  const basePath = new URL(config.publicUrl).pathname.replace(/\/$/, '');
  const router = Router();

  const sessionOf = (res: Response): AdminSession | undefined => res.locals.adminSession as AdminSession | undefined;
  const frameOf = (res: Response, section?: AdminSection): AdminFrame => {
    const session = sessionOf(res);
    return {
      basePath,
      now: clock.now(),
      section,
      session: session && { keyName: session.keyName, csrf: session.csrf },
    };
  };
  const sendPage = (res: Response, html: string) => res.type('html').send(html);
  const redirect = (res: Response, path: string) => res.redirect(303, `${basePath}/admin${path}`);
  /** One log line per console action, naming the key (never the key itself). */
  const audit = (res: Response, action: string, fields: Record<string, unknown>) =>
    logger.info({ admin: sessionOf(res)?.keyName, action, ...fields }, `operator console: ${action}`);

  // The browser routes' headers (helmet: a CSP that allows no inline code, never framed).
  router.use(securityHeaders(config));
  router.use((req, res, next) => {
    // Pages of a signed-in operator: never cached, never sent on as a Referer.
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (keys.enabled()) return next();
    writeError(res, new AppError('not_found', 'The operator console is off: ADMIN_API_KEYS is not set'), {
      html: renderConsoleOff(frameOf(res)),
    });
  });
  router.use(singleValuedQuery);

  // --- Signing in and out ------------------------------------------------------------------

  router.get('/sign-in', async (req, res) => {
    if (await sessions.current(req)) return redirect(res, '');
    sendPage(res, renderSignIn(frameOf(res), { csrf: sessions.signInToken(req, res), notice: doneNotice(req) }));
  });

  router.post('/sign-in', form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const again = (error: AppError, message: string) =>
      writeError(res, error, {
        html: renderSignIn(frameOf(res), { csrf: sessions.signInToken(req, res), error: message }),
      });
    if (!sessions.isSignInForm(req, body.csrf)) {
      return again(
        new AppError('forbidden', 'The sign-in form was not opened in this browser'),
        'This form has expired or was not opened in this browser. Please try again.',
      );
    }
    const presented = typeof body.key === 'string' ? body.key.trim() : '';
    const name = presented ? keys.nameOf(presented) : undefined;
    if (!name) {
      const address = deps.clientAddress(req) ?? 'unknown';
      const blocked = failures.blockedFor(address) || (await failures.record(address));
      logger.warn(
        { action: 'sign_in', result: blocked ? 'rate_limited' : 'refused', address },
        'operator console: sign-in refused',
      );
      return blocked
        ? again(
            new AppError('rate_limited', 'Too many failed sign-ins from this address', { retryAfter: blocked }),
            `Too many failed sign-ins from this address. Try again in ${blocked} s.`,
          )
        : again(new AppError('unauthorized', 'Not a key of ADMIN_API_KEYS'), 'That is not a console key.');
    }
    const session = await sessions.start(res, name);
    res.locals.adminSession = session;
    audit(res, 'sign_in', {});
    redirect(res, '');
  });

  // --- Everything else needs a session -----------------------------------------------------

  router.use(async (req, res, next) => {
    const session = await sessions.current(req);
    if (session) {
      res.locals.adminSession = session;
      return next();
    }
    if (req.method === 'GET' || req.method === 'HEAD') return redirect(res, '/sign-in');
    throw new AppError('unauthorized', 'Sign in to the operator console first (or your session has ended).');
  });

  /** Every POST: the form's CSRF token must be this session's. */
  const checkCsrf: RequestHandler = (req, res, next) => {
    const posted = (req.body as Record<string, unknown> | undefined)?.csrf;
    next(
      sameToken(posted, sessionOf(res)!.csrf)
        ? undefined
        : new AppError(
            'forbidden',
            'This form is not from this console session (CSRF token missing or wrong). Reload the page and try again.',
          ),
    );
  };

  router.post('/sign-out', form, checkCsrf, async (_req, res) => {
    audit(res, 'sign_out', {});
    await sessions.end(res, sessionOf(res)!);
    redirect(res, '/sign-in?done=signed_out');
  });

  // --- Connections ---------------------------------------------------------------------------

  router.get('/', async (req, res) => {
    const given = Object.fromEntries(
      ['q', 'provider', 'status', 'cursor'].flatMap((k) => (req.query[k] ? [[k, req.query[k]]] : [])),
    );
    const query = parseRequest(ListConnectionsQuerySchema, { ...given, limit: PAGE_SIZE }, 'query');
    if (query.provider) providers.requireKnown(query.provider);
    const [page, counts] = await Promise.all([
      listConnectionPage(store, CONSOLE_SCOPE, query),
      store.connectionCounts(),
    ]);
    sendPage(
      res,
      renderConnectionList(frameOf(res, 'connections'), {
        filter: { q: query.q, provider: query.provider, status: query.status },
        connections: page.connections,
        nextCursor: page.nextCursor,
        paged: query.cursor !== undefined,
        counts,
        providers: providers.list(),
        notice: doneNotice(req),
      }),
    );
  });

  /** The connection page, with a notice; answered with `error`'s status when an action failed. */
  async function connectionPage(req: Request, res: Response, notice?: Notice, error?: AppError): Promise<void> {
    const { provider: providerId, connectionId } = parseConnectionParams(req.params);
    const provider = providers.requireKnown(providerId);
    const connection = await store.getConnectionInfo(provider.id, connectionId);
    if (!connection) throw new AppError('connection_not_found', `No ${provider.id} connection "${connectionId}"`);
    const events = await store.eventLog.list({ provider: provider.id, connectionId, limit: TIMELINE_SIZE });
    const html = renderConnectionDetail(frameOf(res, 'connections'), {
      connection,
      provider,
      events: events.events,
      olderEvents: events.nextCursor,
      notice,
    });
    if (error) writeError(res, error, { html });
    else sendPage(res, html);
  }

  router.get('/connections/:provider/:connectionId', (req, res) => connectionPage(req, res, doneNotice(req)));

  router.post('/connections/:provider/:connectionId/refresh', form, checkCsrf, async (req, res) => {
    const { provider, connectionId } = parseConnectionParams(req.params);
    try {
      await deps.credentials.forceRefresh(providers.require(provider), connectionId);
    } catch (err) {
      const error = toAppError(err);
      audit(res, 'refresh', { provider, connectionId, result: error.code });
      if (error.status >= 500 && error.code !== 'provider_error') throw error;
      return connectionPage(
        req,
        res,
        { kind: 'error', text: `Refresh failed (${error.code}): ${error.message}` },
        error,
      );
    }
    audit(res, 'refresh', { provider, connectionId, result: 'refreshed' });
    redirect(res, `${connectionPath(provider, connectionId)}?done=refreshed`);
  });

  router.post('/connections/:provider/:connectionId/disconnect', form, checkCsrf, async (req, res) => {
    const { provider, connectionId } = parseConnectionParams(req.params);
    if ((req.body as Record<string, unknown>).confirm !== 'yes') {
      const error = new AppError('invalid_request', 'Tick the box to confirm the disconnection.');
      return connectionPage(req, res, { kind: 'error', text: error.message }, error);
    }
    // Also for a provider switched off: its stored connections can still be deleted.
    const revocation = await deleteConnection(deps, providers.requireKnown(provider), connectionId);
    audit(res, 'disconnect', { provider, connectionId, revocation });
    redirect(res, '?done=disconnected');
  });

  router.post('/connections/:provider/:connectionId/connect-link', form, checkCsrf, async (req, res) => {
    const { provider: providerId, connectionId } = parseConnectionParams(req.params);
    const provider = providers.requireEnabled(providerId);
    const connection = await store.getConnectionInfo(provider.id, connectionId);
    if (!connection) throw new AppError('connection_not_found', `No ${provider.id} connection "${connectionId}"`);
    const config = connection.config;
    const link = await createConnectSession(deps, {
      provider: provider.id,
      connection_id: connectionId,
      ...(Object.keys(config).length ? { connection_config: config } : {}),
    });
    audit(res, 'connect_link', { provider: provider.id, connectionId, expiresAt: link.expires_at });
    sendPage(
      res,
      renderConnectLink(frameOf(res, 'connections'), {
        provider,
        connectionId,
        url: link.url,
        expiresAt: Date.parse(link.expires_at),
      }),
    );
  });

  // --- Events, deliveries, providers -------------------------------------------------------

  router.get('/events', async (req, res) => {
    const query = parseRequest(ListEventsQuerySchema, queryOf(req.query), 'query');
    if (query.provider) providers.requireKnown(query.provider);
    const page = await store.eventLog.list({
      provider: query.provider,
      connectionId: query.connection_id,
      type: query.type,
      limit: PAGE_SIZE,
      cursor: query.cursor,
    });
    sendPage(
      res,
      renderEventFeed(frameOf(res, 'events'), {
        filter: { provider: query.provider, connectionId: query.connection_id, type: query.type },
        events: page.events,
        nextCursor: page.nextCursor,
        paged: query.cursor !== undefined,
        providers: providers.list(),
      }),
    );
  });

  router.get('/deliveries', async (req, res) => {
    const [backlog, dead] = await Promise.all([store.eventLog.backlog(), store.eventLog.deadDeliveries(DEAD_SHOWN)]);
    sendPage(
      res,
      renderDeliveries(frameOf(res, 'deliveries'), {
        receiver: config.webhookUrl ? new URL(config.webhookUrl).origin : null,
        backlog,
        retrying: deps.webhooks?.retrying() ?? [],
        dead,
        notice: doneNotice(req),
      }),
    );
  });

  router.post('/deliveries/:eventId/retry', form, checkCsrf, async (req, res) => {
    const eventId = String(req.params.eventId);
    if (!EVENT_ID.test(eventId)) throw new AppError('invalid_request', 'eventId: not an event id');
    const retried = await store.eventLog.retryDead(eventId);
    audit(res, 'retry_delivery', { eventId, result: retried ? 'queued' : 'not_dead' });
    if (!retried)
      throw new AppError('not_found', `No dead delivery of event ${eventId} (it may have been retried already)`);
    redirect(res, '/deliveries?done=retried');
  });

  router.get('/providers', async (_req, res) => {
    sendPage(res, renderProviders(frameOf(res, 'providers'), providers.list(), await store.connectionCounts()));
  });

  router.use((req) => {
    throw new AppError('not_found', `No console page ${req.method} ${req.path.slice(0, 200)}`);
  });

  const errors: ErrorRequestHandler = (err, req, res, _next) => {
    const error = toAppError(err);
    reportError(logger, error, {
      method: req.method,
      path: req.originalUrl.split('?')[0],
      apiKey: sessionOf(res)?.keyName,
    });
    writeError(res, error, { html: renderAdminError(frameOf(res), error.code, error.message) });
  };
  router.use(errors);

  return {
    router,
    reload() {
      if (!deps.readAdminApiKeys) return;
      const outcome = keys.reload(deps.readAdminApiKeys());
      if (outcome.ok) logger.info({ adminKeys: outcome.names }, 'ADMIN_API_KEYS reloaded');
      else logger.error({ problems: outcome.problems }, 'ADMIN_API_KEYS not reloaded: the keys in force stay');
    },
  };
}
