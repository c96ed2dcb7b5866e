import { AppError } from '../errors';
import type { ConnectionInfo } from '../store';
import type { ListConnectionsQuery } from '../wire/api-schemas';

/** One page of `GET /connections`, and where the next one starts (null: this is the last). */
export interface ConnectionPage {
  connections: ConnectionInfo[];
  nextCursor: string | null;
}

const byKey = (a: ConnectionInfo, b: ConnectionInfo) =>
  a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : a.connectionId < b.connectionId ? -1 : 1;

/** The cursor names the last connection handed out, so it stays valid while connections are added. */
function encodeCursor(c: ConnectionInfo): string {
  return Buffer.from(JSON.stringify([c.provider, c.connectionId])).toString('base64url');
}

function decodeCursor(cursor: string): [string, string] {
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === 2 && key.every((k) => typeof k === 'string'))
      return key as [string, string];
  } catch {
    // Falls through to the refusal.
  }
  throw new AppError('invalid_request', 'cursor: not a cursor this Latchkey handed out');
}

/**
 * Filters the connections a key may see by `status` and `q` (a case-insensitive prefix of the
 * connection id or of the account label) and, with `limit`, cuts the page after `cursor`, in
 * `(provider, connection_id)` order (CONTRACT "Additions": listing). Without `limit`, every match.
 * It reads the whole list it is given: a page costs as much as the list until the store keeps an
 * index to page from.
 *
 * @throws AppError `invalid_request` (400) for a cursor it did not hand out
 */
export function pageConnections(visible: ConnectionInfo[], query: ListConnectionsQuery): ConnectionPage {
  const q = query.q?.toLowerCase();
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const matches = visible
    .filter(
      (c) =>
        (query.status === undefined || c.status === query.status) &&
        (q === undefined ||
          c.connectionId.toLowerCase().startsWith(q) ||
          (c.account?.label?.toLowerCase().startsWith(q) ?? false)),
    )
    .sort(byKey)
    .filter(
      (c) => after === undefined || c.provider > after[0] || (c.provider === after[0] && c.connectionId > after[1]),
    );
  if (query.limit === undefined || matches.length <= query.limit) return { connections: matches, nextCursor: null };
  const page = matches.slice(0, query.limit);
  return { connections: page, nextCursor: encodeCursor(page.at(-1)!) };
}
