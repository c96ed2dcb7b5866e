import { AppError } from '../errors';
import type { Scope } from '../guards/access';
import type { ConnectionInfo, ConnectionQuery, Store } from '../store';
import { CONNECTION_ID_PATTERN, PROVIDER_ID_PATTERN, type ListConnectionsQuery } from '../wire/api-schemas';

/** One page of `GET /connections`, and where the next one starts (null: this is the last). */
export interface ConnectionPage {
  connections: ConnectionInfo[];
  nextCursor: string | null;
}

/** Without `limit`, every match is read in pages of this many (the most a caller may ask for). */
const WHOLE_LIST_PAGE = 1000;

type Filter = Pick<ListConnectionsQuery, 'provider' | 'status' | 'q'>;

/** What a cursor is bound to: a cursor handed out for one filter is refused with another. */
const filterOf = (f: Filter) => [f.provider ?? '', f.status ?? '', f.q?.toLowerCase() ?? ''];

/**
 * The cursor names the last `(provider, connection_id)` handed out, so it stays valid while
 * connections are added or removed, and the filter it was handed out with.
 */
function encodeCursor(last: ConnectionInfo, filter: Filter): string {
  return Buffer.from(JSON.stringify({ p: last.provider, c: last.connectionId, f: filterOf(filter) })).toString(
    'base64url',
  );
}

/** @throws AppError `invalid_request` (400) naming `cursor` */
function decodeCursor(cursor: string, filter: Filter): [string, string] {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    // Refused below.
  }
  const { p, c, f } = (typeof key === 'object' && key !== null ? key : {}) as Record<string, unknown>;
  if (
    typeof p !== 'string' ||
    typeof c !== 'string' ||
    !PROVIDER_ID_PATTERN.test(p) ||
    !CONNECTION_ID_PATTERN.test(c) ||
    !Array.isArray(f)
  ) {
    throw new AppError('invalid_request', 'cursor: not a cursor this Latchkey handed out');
  }
  if (JSON.stringify(f) !== JSON.stringify(filterOf(filter))) {
    throw new AppError(
      'invalid_request',
      'cursor: handed out for another provider, status or q; start again without it',
    );
  }
  return [p, c];
}

/**
 * `GET /connections` (CONTRACT "Additions": listing): with `limit`, one page from the store's
 * listing index after `cursor`, in `(provider, connection_id)` order, and the cursor of the next
 * page (null on the last); without `limit`, every match (read page by page), as in the first
 * release. A key limited to providers queries only theirs: the restriction is part of the store
 * query, never applied to a page after the fact.
 *
 * @throws AppError `invalid_request` (400) for a cursor it did not hand out, or one handed out
 *   for another filter
 */
export async function listConnectionPage(
  store: Store,
  scope: Scope,
  query: ListConnectionsQuery,
): Promise<ConnectionPage> {
  const base: Omit<ConnectionQuery, 'limit' | 'after'> = {
    provider: query.provider,
    status: query.status,
    q: query.q,
    // A provider asked for was checked against the key by the route.
    providers: query.provider === undefined && scope.providers !== null ? scope.providers : undefined,
  };
  let after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, query);
  if (query.limit !== undefined) {
    const page = await store.queryConnections({ ...base, after, limit: query.limit });
    const last = page.connections.at(-1);
    return { connections: page.connections, nextCursor: page.more && last ? encodeCursor(last, query) : null };
  }
  const connections: ConnectionInfo[] = [];
  for (;;) {
    const page = await store.queryConnections({ ...base, after, limit: WHOLE_LIST_PAGE });
    connections.push(...page.connections);
    const last = page.connections.at(-1);
    if (!page.more || !last) return { connections, nextCursor: null };
    after = [last.provider, last.connectionId];
  }
}
