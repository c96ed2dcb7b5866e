import { Router } from 'express';
import { AppError } from '../errors';
import type { ProviderRegistry } from '../providers/registry';
import { ENTRY_ID, type EventPage, type LoggedEvent, type Store } from '../store';
import type { z } from 'zod';
import {
  ListConnectionEventsQuerySchema,
  ListEventsQuerySchema,
  parseRequest,
  type EventListSchema,
  type EventSchema,
} from '../wire/api-schemas';
import { requireAccess } from './api-auth';
import { singleValuedQuery } from './body-parsing';
import { parseConnectionParams } from './service-routes';

export interface EventRouteDeps {
  store: Store;
  providers: ProviderRegistry;
}

type EventWire = z.infer<typeof EventSchema>;
type EventListWire = z.infer<typeof EventListSchema>;

const DEFAULT_LIMIT = 50;

/** The contract's `Event`, snake_case, times in ISO-8601. */
export function toEventView(event: LoggedEvent): EventWire {
  return {
    id: event.id,
    type: event.type,
    provider: event.provider,
    connection_id: event.connectionId,
    at: new Date(event.at).toISOString(),
    detail: event.detail,
  };
}

function toPage(page: EventPage): EventListWire {
  return { events: page.events.map(toEventView), next_cursor: page.nextCursor };
}

/** An empty value is no value; a cursor that is not one of ours is a 400, not an empty page. */
export function queryOf(query: Record<string, unknown>): Record<string, unknown> {
  const given = Object.fromEntries(Object.entries(query).filter(([, v]) => v !== ''));
  if (typeof given.cursor === 'string' && !ENTRY_ID.test(given.cursor)) {
    throw new AppError('invalid_request', 'cursor: not a cursor of this list');
  }
  return given;
}

/**
 * `GET /events` and `GET /connections/:provider/:connectionId/events` (CONTRACT "Additions":
 * events): newest first, `read` access; a key limited to providers sees only their events.
 */
export function eventRoutes(deps: EventRouteDeps): Router {
  const router = Router();
  router.use('/events', singleValuedQuery);

  const feedAccess = requireAccess('read', (req) =>
    typeof req.query.provider === 'string' && req.query.provider ? req.query.provider : undefined,
  );

  router.get('/events', feedAccess, async (req, res) => {
    const query = parseRequest(ListEventsQuerySchema, queryOf(req.query), 'query');
    if (query.provider) deps.providers.requireKnown(query.provider);
    const page = await deps.store.eventLog.list({
      provider: query.provider,
      connectionId: query.connection_id,
      type: query.type,
      limit: query.limit ?? DEFAULT_LIMIT,
      cursor: query.cursor,
      visibleProviders: res.locals.apiKey!.providers,
    });
    res.setHeader('Cache-Control', 'no-store');
    res.json(toPage(page));
  });

  router.get('/connections/:provider/:connectionId/events', requireAccess('read'), async (req, res) => {
    const { provider, connectionId } = parseConnectionParams(req.params);
    deps.providers.requireKnown(provider);
    const query = parseRequest(ListConnectionEventsQuerySchema, queryOf(req.query), 'query');
    const page = await deps.store.eventLog.list({
      provider,
      connectionId,
      limit: query.limit ?? DEFAULT_LIMIT,
      cursor: query.cursor,
    });
    res.setHeader('Cache-Control', 'no-store');
    res.json(toPage(page));
  });

  return router;
}
