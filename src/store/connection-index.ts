import type { ConnectionInfo, ConnectionStatus } from './types';

/**
 * The listing index (CONTRACT "Additions": listing; issue 11 part 4): sorted sets of
 * `provider\0connection_id` (score 0, so ordered lexicographically, which is the
 * `(provider, connection_id)` order since neither id holds a byte below `-`), one for every
 * connection, one per provider, one per status and one per (provider, status); a prefix index of
 * lower-cased connection ids and account labels (`term\0provider\0connection_id`), global and per
 * provider; counts by provider and status; and, per connection, what it is indexed as (`entries`:
 * version, status, terms), so that every update is idempotent: it moves one count only when the
 * indexed status really changes, and an update older than the indexed version is ignored.
 *
 * Every key shares the hash tag `{idx}`, so the update is one script in one Redis Cluster slot.
 * Connections live in their own slots, so the update runs right after the connection's write, not
 * in the same step: a crash between the two leaves that connection unindexed until the next
 * backfill pass (run at every start), and a delete racing a write may leave an entry whose
 * connection is gone, which the next page that meets it removes.
 */
export function createIndexKeys(prefix: string) {
  const base = `${prefix}idx:{idx}:`;
  return {
    entries: `${base}entries`,
    counts: `${base}counts`,
    state: `${base}state`,
    all: `${base}all`,
    provider: (p: string) => `${base}p:${p}`,
    status: (s: ConnectionStatus) => `${base}s:${s}`,
    providerStatus: (p: string, s: ConnectionStatus) => `${base}ps:${p}:${s}`,
    terms: `${base}q`,
    providerTerms: (p: string) => `${base}q:${p}`,
  };
}

export type IndexKeys = ReturnType<typeof createIndexKeys>;

/** What one connection is indexed as. */
export interface IndexEntry {
  provider: string;
  connectionId: string;
  version: number;
  status: ConnectionStatus;
  /** Lower-cased connection id and account label, each once. */
  terms: string[];
}

export interface ConnectionCount {
  provider: string;
  status: ConnectionStatus;
  count: number;
}

/** The medium of the index: Redis sorted sets and hashes, or their in-memory twins. */
export interface IndexMedium {
  /** Indexes (or re-indexes) one connection, unless the index holds a later version of it. */
  put(keys: IndexKeys, entry: IndexEntry): Promise<void>;
  /** Unindexes one connection (nothing when it is not indexed). */
  remove(keys: IndexKeys, provider: string, connectionId: string): Promise<void>;
  /** Up to `count` members of a sorted set strictly after `after` (from the start when null). */
  range(key: string, after: string | null, count: number): Promise<string[]>;
  /** Up to `count` of the members that start with `prefix`, in order, from the `offset`-th. */
  rangePrefix(key: string, prefix: string, offset: number, count: number): Promise<string[]>;
  /** Every field of a hash. */
  hashAll(key: string): Promise<Record<string, string>>;
  hashGet(key: string, field: string): Promise<string | null>;
  hashSet(key: string, field: string, value: string): Promise<void>;
}

/** A page query: the filters, where the last page ended, and how many to give. */
export interface ConnectionQuery {
  provider?: string;
  /** The providers the caller may see (a key limited to providers); undefined: every one. */
  providers?: readonly string[];
  status?: ConnectionStatus;
  /** Case-insensitive prefix of the connection id or the account label. */
  q?: string;
  /** The last `(provider, connection_id)` of the previous page. */
  after?: readonly [string, string];
  limit: number;
}

export interface ConnectionPageResult {
  connections: ConnectionInfo[];
  /** True when more matches follow the last connection of this page. */
  more: boolean;
}

export const SEP = '\0';

export const memberOf = (provider: string, connectionId: string) => `${provider}${SEP}${connectionId}`;

export function splitIndexMember(member: string): [string, string] {
  const sep = member.indexOf(SEP);
  return [member.slice(0, sep), member.slice(sep + 1)];
}

/** What a connection is indexed as, from its plaintext fields. */
export function entryOf(info: ConnectionInfo): IndexEntry {
  const terms = new Set([info.connectionId.toLowerCase()]);
  if (info.account?.label) terms.add(info.account.label.toLowerCase());
  return {
    provider: info.provider,
    connectionId: info.connectionId,
    version: info.version,
    status: info.status,
    terms: [...terms],
  };
}

/** True when the connection matches the query's filters (the cursor aside). */
export function matchesQuery(info: ConnectionInfo, query: Omit<ConnectionQuery, 'limit' | 'after'>): boolean {
  if (query.provider !== undefined && info.provider !== query.provider) return false;
  if (query.providers !== undefined && !query.providers.includes(info.provider)) return false;
  if (query.status !== undefined && info.status !== query.status) return false;
  if (query.q === undefined) return true;
  const q = query.q.toLowerCase();
  return info.connectionId.toLowerCase().startsWith(q) || (info.account?.label?.toLowerCase().startsWith(q) ?? false);
}

/** Reads connections' plaintext fields (null: gone), in one round trip. */
export type InfoReader = (refs: Array<[string, string]>) => Promise<Array<ConnectionInfo | null>>;

/** How many prefix-index members a `q` query reads per round trip. */
const TERM_BATCH = 1000;

/**
 * One page of connections from the index. Without `q`, it reads the one sorted set that holds
 * exactly the filter's matches (per provider and status when both are asked), from just after the
 * cursor: a page costs the same with 100 or 100,000 connections. A key limited to several
 * providers reads each provider's set from the cursor and merges them. With `q`, it reads the
 * prefix index's matches (cost: the number of matches, not of connections), then pages them.
 *
 * Every connection read is checked against the filter: an index entry whose connection is gone is
 * removed, one whose connection changed since is re-indexed from it, and neither is handed out.
 */
export async function queryIndex(
  medium: IndexMedium,
  keys: IndexKeys,
  read: InfoReader,
  query: ConnectionQuery,
): Promise<ConnectionPageResult> {
  const after = query.after ? memberOf(query.after[0], query.after[1]) : null;
  const providers = query.provider !== undefined ? [query.provider] : query.providers;
  if (providers !== undefined && providers.length === 0) return { connections: [], more: false };
  const want = query.limit + 1;
  const found: ConnectionInfo[] = [];

  if (query.q !== undefined) {
    const members = await termMatches(medium, keys, query.q.toLowerCase(), providers, after);
    for (let i = 0; i < members.length && found.length < want; i += want) {
      found.push(...(await checked(medium, keys, read, members.slice(i, i + want), query)));
    }
    return page(found, query.limit);
  }

  const sources =
    providers === undefined
      ? [query.status ? keys.status(query.status) : keys.all]
      : providers.map((p) => (query.status ? keys.providerStatus(p, query.status) : keys.provider(p)));
  // Each source keeps its own position; their next members merge in order.
  const cursors = sources.map(() => after);
  const pending: string[][] = sources.map(() => []);
  const exhausted = sources.map(() => false);
  while (found.length < want) {
    await Promise.all(
      sources.map(async (key, i) => {
        if (pending[i]!.length || exhausted[i]) return;
        const got = await medium.range(key, cursors[i]!, want);
        if (got.length < want) exhausted[i] = true;
        if (got.length) cursors[i] = got.at(-1)!;
        pending[i] = got;
      }),
    );
    const next = pending
      .flat()
      .sort()
      .slice(0, want - found.length);
    if (!next.length) break;
    const last = next.at(-1)!;
    for (const [i, list] of pending.entries()) pending[i] = list.filter((m) => m > last);
    found.push(...(await checked(medium, keys, read, next, query)));
    if (pending.every((list) => !list.length) && exhausted.every(Boolean)) break;
  }
  return page(found, query.limit);
}

function page(found: ConnectionInfo[], limit: number): ConnectionPageResult {
  return { connections: found.slice(0, limit), more: found.length > limit };
}

/** The `provider\0connection_id` of every prefix-index match after `after`, in order, once each. */
async function termMatches(
  medium: IndexMedium,
  keys: IndexKeys,
  q: string,
  providers: readonly string[] | undefined,
  after: string | null,
): Promise<string[]> {
  const sources = providers === undefined ? [keys.terms] : providers.map((p) => keys.providerTerms(p));
  const matches = new Set<string>();
  for (const key of sources) {
    for (let offset = 0; ; offset += TERM_BATCH) {
      const got = await medium.rangePrefix(key, q, offset, TERM_BATCH);
      for (const m of got) {
        const member = m.slice(m.indexOf(SEP) + 1);
        if (after === null || member > after) matches.add(member);
      }
      if (got.length < TERM_BATCH) break;
    }
  }
  return [...matches].sort();
}

/** The members' connections that still match; repairs the index for those that do not. */
async function checked(
  medium: IndexMedium,
  keys: IndexKeys,
  read: InfoReader,
  members: string[],
  query: ConnectionQuery,
): Promise<ConnectionInfo[]> {
  const refs = members.map(splitIndexMember);
  const infos = await read(refs);
  const kept: ConnectionInfo[] = [];
  await Promise.all(
    infos.map(async (info, i) => {
      if (!info) return medium.remove(keys, ...refs[i]!);
      if (!matchesQuery(info, query)) return medium.put(keys, entryOf(info));
    }),
  );
  for (const info of infos) if (info && matchesQuery(info, query)) kept.push(info);
  return kept;
}

/** Counts by provider and status, as kept by every update (one hash read). */
export async function readCounts(medium: IndexMedium, keys: IndexKeys): Promise<ConnectionCount[]> {
  const all = await medium.hashAll(keys.counts);
  return Object.entries(all)
    .map(([field, n]) => {
      const [provider, status] = splitIndexMember(field);
      return { provider, status: status as ConnectionStatus, count: Number(n) };
    })
    .filter((c) => c.count > 0)
    .sort((a, b) => (a.provider + SEP + a.status < b.provider + SEP + b.status ? -1 : 1));
}

/** The sorted sets and hashes of the index, in memory: the same semantics as on Redis. */
export class MemoryIndexMedium implements IndexMedium {
  private readonly sets = new Map<string, string[]>();
  private readonly hashes = new Map<string, Map<string, string>>();

  async put(keys: IndexKeys, entry: IndexEntry): Promise<void> {
    const field = memberOf(entry.provider, entry.connectionId);
    const old = this.entry(keys, field);
    if (old && old.version > entry.version) return;
    if (old) this.unindex(keys, entry.provider, field, old);
    this.add(keys.all, field);
    this.add(keys.provider(entry.provider), field);
    this.add(keys.status(entry.status), field);
    this.add(keys.providerStatus(entry.provider, entry.status), field);
    for (const term of entry.terms) {
      this.add(keys.terms, `${term}${SEP}${field}`);
      this.add(keys.providerTerms(entry.provider), `${term}${SEP}${field}`);
    }
    this.bump(keys, entry.provider, entry.status, 1);
    this.hash(keys.entries).set(
      field,
      JSON.stringify({ v: entry.version, s: entry.status, t: entry.terms } satisfies StoredEntry),
    );
  }

  async remove(keys: IndexKeys, provider: string, connectionId: string): Promise<void> {
    const field = memberOf(provider, connectionId);
    const old = this.entry(keys, field);
    if (!old) return;
    this.unindex(keys, provider, field, old);
    this.hash(keys.entries).delete(field);
  }

  async range(key: string, after: string | null, count: number): Promise<string[]> {
    const list = this.sets.get(key) ?? [];
    const from = after === null ? 0 : upperBound(list, after);
    return list.slice(from, from + count);
  }

  async rangePrefix(key: string, prefix: string, offset: number, count: number): Promise<string[]> {
    const list = this.sets.get(key) ?? [];
    const found: string[] = [];
    for (let i = lowerBound(list, prefix) + offset; i < list.length && found.length < count; i++) {
      if (!list[i]!.startsWith(prefix)) break;
      found.push(list[i]!);
    }
    return found;
  }

  async hashAll(key: string): Promise<Record<string, string>> {
    return Object.fromEntries(this.hashes.get(key) ?? []);
  }

  async hashGet(key: string, field: string): Promise<string | null> {
    return this.hashes.get(key)?.get(field) ?? null;
  }

  async hashSet(key: string, field: string, value: string): Promise<void> {
    this.hash(key).set(field, value);
  }

  private entry(keys: IndexKeys, field: string): IndexEntryFields | null {
    const raw = this.hashes.get(keys.entries)?.get(field);
    if (raw === undefined) return null;
    const stored = JSON.parse(raw) as StoredEntry;
    return { version: stored.v, status: stored.s, terms: stored.t };
  }

  private unindex(keys: IndexKeys, provider: string, field: string, old: IndexEntryFields): void {
    this.delete(keys.all, field);
    this.delete(keys.provider(provider), field);
    this.delete(keys.status(old.status), field);
    this.delete(keys.providerStatus(provider, old.status), field);
    for (const term of old.terms) {
      this.delete(keys.terms, `${term}${SEP}${field}`);
      this.delete(keys.providerTerms(provider), `${term}${SEP}${field}`);
    }
    this.bump(keys, provider, old.status, -1);
  }

  private bump(keys: IndexKeys, provider: string, status: ConnectionStatus, by: number): void {
    const counts = this.hash(keys.counts);
    const field = `${provider}${SEP}${status}`;
    counts.set(field, String(Number(counts.get(field) ?? 0) + by));
  }

  private hash(key: string): Map<string, string> {
    let hash = this.hashes.get(key);
    if (!hash) this.hashes.set(key, (hash = new Map()));
    return hash;
  }

  private add(key: string, member: string): void {
    let list = this.sets.get(key);
    if (!list) this.sets.set(key, (list = []));
    const at = lowerBound(list, member);
    if (list[at] !== member) list.splice(at, 0, member);
  }

  private delete(key: string, member: string): void {
    const list = this.sets.get(key);
    if (!list) return;
    const at = lowerBound(list, member);
    if (list[at] === member) list.splice(at, 1);
  }
}

/** An entry as kept in the `entries` hash (short names: 100,000 of them). */
export interface StoredEntry {
  v: number;
  s: ConnectionStatus;
  t: string[];
}

type IndexEntryFields = Pick<IndexEntry, 'version' | 'status' | 'terms'>;

/** The first position whose member is not below `value`. */
function lowerBound(list: string[], value: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first position whose member is above `value`. */
function upperBound(list: string[], value: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
