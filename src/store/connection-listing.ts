import type { KvBackend } from './backend';
import {
  MemoryIndexMedium,
  createIndexKeys,
  entryOf,
  matchesQuery,
  memberOf,
  queryIndex,
  readCounts,
  type ConnectionCount,
  type ConnectionPageResult,
  type ConnectionQuery,
  type IndexKeys,
  type IndexMedium,
  type InfoReader,
} from './connection-index';
import { MemoryBackend } from './memory-backend';
import { RedisBackend } from './redis-backend';
import { RedisIndexMedium } from './redis-connection-index';
import type { ConnectionInfo } from './types';

/** In memory, every store on one backend (an instance and its peers) shares one index. */
const memoryIndexes = new WeakMap<MemoryBackend, MemoryIndexMedium>();

function mediumFor(backend: KvBackend): IndexMedium {
  if (backend instanceof RedisBackend) return new RedisIndexMedium(backend.client);
  if (backend instanceof MemoryBackend) {
    let medium = memoryIndexes.get(backend);
    if (!medium) memoryIndexes.set(backend, (medium = new MemoryIndexMedium()));
    return medium;
  }
  throw new Error(`no listing index for a ${backend.kind} backend`);
}

/** What one backfill step did. */
export interface BackfillStep {
  /** Connections (re)indexed by this step. */
  indexed: number;
  /** True when this step finished a pass over every connection. */
  passDone: boolean;
}

export interface ConnectionListingOptions {
  backend: KvBackend;
  prefix: string;
  /** The first release's set of `provider:connectionId`, which every write still keeps. */
  legacyIndex: string;
  read: InfoReader;
  /** Every connection the slow way (the legacy set, one read each), for before the backfill. */
  listAll: (provider?: string) => Promise<ConnectionInfo[]>;
  now: () => number;
}

/**
 * The listing index of a {@link KvStore}: kept up to date by every write and delete, filled for
 * stores of the first release by {@link backfillStep}. Until a first backfill pass has finished
 * (marked `done` in the index's state hash), pages are answered from the legacy set, slower
 * (every connection read) but complete; from then on from the index.
 */
export class ConnectionListing {
  private readonly keys: IndexKeys;
  private readonly medium: IndexMedium;
  private ready = false;

  constructor(private readonly options: ConnectionListingOptions) {
    this.keys = createIndexKeys(options.prefix);
    this.medium = mediumFor(options.backend);
  }

  /** Right after a connection's write (its own step: the index lives in another slot). */
  indexed(info: ConnectionInfo): Promise<void> {
    return this.medium.put(this.keys, entryOf(info));
  }

  /** Right after a connection's delete. */
  unindexed(provider: string, connectionId: string): Promise<void> {
    return this.medium.remove(this.keys, provider, connectionId);
  }

  async query(query: ConnectionQuery): Promise<ConnectionPageResult> {
    if (await this.indexReady()) return queryIndex(this.medium, this.keys, this.options.read, query);
    return this.queryLegacy(query);
  }

  counts(): Promise<ConnectionCount[]> {
    return readCounts(this.medium, this.keys);
  }

  /**
   * Indexes up to `batch` connections of the legacy set, from where the last step stopped (a
   * cursor kept in the store, so another instance or a restart resumes it). Idempotent: an entry is
   * re-indexed from the connection as it is now, a count moves only with a real change, and a
   * connection written meanwhile keeps its newer entry. The step that ends a pass marks the index
   * ready and starts the next pass from the beginning.
   */
  async backfillStep(batch: number): Promise<BackfillStep> {
    const cursor = (await this.medium.hashGet(this.keys.state, 'cursor')) ?? '0';
    const step = await this.options.backend.scanMembers(this.options.legacyIndex, cursor, batch);
    const refs = step.members.map(splitLegacyMember);
    const infos = await this.options.read(refs);
    await Promise.all(infos.map((info) => (info ? this.indexed(info) : undefined)));
    await this.medium.hashSet(this.keys.state, 'cursor', step.cursor);
    const passDone = step.cursor === '0';
    if (passDone) {
      await this.medium.hashSet(this.keys.state, 'done', String(this.options.now()));
      this.ready = true;
    }
    return { indexed: infos.filter(Boolean).length, passDone };
  }

  /** True once a backfill pass has finished on this store (by any instance). */
  async indexReady(): Promise<boolean> {
    if (!this.ready) this.ready = (await this.medium.hashGet(this.keys.state, 'done')) !== null;
    return this.ready;
  }

  /** Before the backfill: every connection read and filtered here, then paged. */
  private async queryLegacy(query: ConnectionQuery): Promise<ConnectionPageResult> {
    const after = query.after ? memberOf(query.after[0], query.after[1]) : null;
    const matches = (await this.options.listAll(query.provider))
      .filter((c) => matchesQuery(c, query) && (after === null || memberOf(c.provider, c.connectionId) > after))
      .sort((a, b) => (memberOf(a.provider, a.connectionId) < memberOf(b.provider, b.connectionId) ? -1 : 1));
    return { connections: matches.slice(0, query.limit), more: matches.length > query.limit };
  }
}

/** `provider:connectionId` (provider ids hold no ':'; connection ids may). */
function splitLegacyMember(member: string): [string, string] {
  const sep = member.indexOf(':');
  return [member.slice(0, sep), member.slice(sep + 1)];
}
