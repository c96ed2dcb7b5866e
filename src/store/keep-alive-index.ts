import type { KvBackend } from './backend';
import type { BackfillStep } from './connection-listing';
import { MemoryBackend } from './memory-backend';
import { RedisBackend } from './redis-backend';
import type { RedisClient } from './redis-client';
import { runIndexCommand } from './redis-connection-index';
import type { Connection, ConnectionInfo } from './types';

/**
 * The keep-alive index (issue 11 part 3): per provider, a sorted set of connection ids scored by
 * the time the connection's keep-alive counts from — its last refresh, or its connect when it was
 * never refreshed. A connection falls due when that time is `keepAliveHours` old, so the sweep
 * asks for the scores at or before `now - keepAliveHours` (a range read, not a scan), and an
 * operator who changes `keepAliveHours` needs no re-index. Only what the sweep can refresh is in
 * it: active oauth2 connections with a refresh token.
 *
 * Every write and delete of a connection updates it, right after the connection's own step (the
 * index lives in the `{ka}` slot, the connection in its own); the connection stays the truth: the
 * sweep re-reads it under the refresh lock, so an entry made stale by a crash between the two
 * steps, by a race, or by an instance of the first release costs one look and is corrected.
 */
export function createKeepAliveKeys(prefix: string) {
  const base = `${prefix}ka:{ka}:`;
  return {
    provider: (p: string) => `${base}p:${p}`,
    /** The backfill's cursor over the first release's set of connections. */
    state: `${base}state`,
  };
}

export type KeepAliveKeys = ReturnType<typeof createKeepAliveKeys>;

/**
 * The time a connection's keep-alive counts from: its last refresh, or (never refreshed) its
 * creation. Not `updatedAt`: a PATCH of metadata moves that without using the grant, and would
 * postpone the keep-alive for as long as PATCHes keep coming. A reconnect keeps the first
 * `createdAt`, so an old connection reconnected is refreshed once soon after: one token request
 * too many, never one too few.
 */
export function keepAliveSince(info: Pick<ConnectionInfo, 'lastRefreshedAt' | 'createdAt'>): number {
  return info.lastRefreshedAt ?? info.createdAt;
}

/** The medium: Redis sorted sets and a hash, or their in-memory twins. */
interface KeepAliveMedium {
  set(key: string, member: string, score: number, onlyIfAbsent: boolean): Promise<void>;
  remove(key: string, member: string): Promise<void>;
  score(key: string, member: string): Promise<number | null>;
  /** Up to `limit` members scored at most `max`, lowest first, each moved to `claimedAs` in the same step. */
  claim(key: string, max: number, claimedAs: number, limit: number): Promise<string[]>;
  count(key: string, max: number): Promise<number>;
  hashGet(key: string, field: string): Promise<string | null>;
  hashSet(key: string, field: string, value: string): Promise<void>;
}

/** Decides a backfilled connection's keep-alive time (jitter included), or null to leave it out. */
export type KeepAliveBackfillPlan = (info: ConnectionInfo) => number | null;

export interface KeepAliveIndexOptions {
  backend: KvBackend;
  prefix: string;
  /** The first release's set of `provider:connectionId`, which every write still keeps. */
  legacyIndex: string;
  /** Reads connections' plaintext fields (null: gone), in one round trip. */
  read: (refs: Array<[string, string]>) => Promise<Array<ConnectionInfo | null>>;
}

/** In memory, every store on one backend (an instance and its peers) shares one index. */
const memoryMedia = new WeakMap<MemoryBackend, MemoryKeepAliveMedium>();

function mediumFor(backend: KvBackend): KeepAliveMedium {
  if (backend instanceof RedisBackend) return new RedisKeepAliveMedium(backend.client);
  if (backend instanceof MemoryBackend) {
    let medium = memoryMedia.get(backend);
    if (!medium) memoryMedia.set(backend, (medium = new MemoryKeepAliveMedium()));
    return medium;
  }
  throw new Error(`no keep-alive index for a ${backend.kind} backend`);
}

/** The keep-alive index of a {@link KvStore}; see {@link createKeepAliveKeys}. */
export class KeepAliveIndex {
  private readonly keys: KeepAliveKeys;
  private readonly medium: KeepAliveMedium;

  constructor(private readonly options: KeepAliveIndexOptions) {
    this.keys = createKeepAliveKeys(options.prefix);
    this.medium = mediumFor(options.backend);
  }

  /** Right after a connection's write: scheduled from its last refresh or connect, or left out. */
  indexed(connection: Connection): Promise<void> {
    const { provider, connectionId } = connection;
    const keptAlive =
      connection.authMode === 'oauth2' &&
      connection.status === 'active' &&
      Boolean(connection.credentials.refreshToken);
    if (!keptAlive) return this.unschedule(provider, connectionId);
    return this.schedule(provider, connectionId, keepAliveSince(connection));
  }

  /** Right after a connection's delete. */
  unindexed(provider: string, connectionId: string): Promise<void> {
    return this.unschedule(provider, connectionId);
  }

  /** Sets the time the connection's keep-alive counts from (the sweep puts back what it looked at). */
  schedule(provider: string, connectionId: string, since: number): Promise<void> {
    return this.medium.set(this.keys.provider(provider), connectionId, since, false);
  }

  unschedule(provider: string, connectionId: string): Promise<void> {
    return this.medium.remove(this.keys.provider(provider), connectionId);
  }

  /** The connection's keep-alive time as indexed, or null when it is not (tests and ops). */
  scheduledSince(provider: string, connectionId: string): Promise<number | null> {
    return this.medium.score(this.keys.provider(provider), connectionId);
  }

  /**
   * Claims up to `limit` connections of `provider` idle since `idleSince` or earlier (oldest
   * first): in the same atomic step their time moves to `claimedAs`, so no other sweep, on any
   * instance, sees them due again before then. The claimer's refresh (or its look) then sets the
   * real time; a claimer that dies leaves them to fall due again at `claimedAs`.
   */
  claimDue(provider: string, idleSince: number, claimedAs: number, limit: number): Promise<string[]> {
    return this.medium.claim(this.keys.provider(provider), idleSince, claimedAs, limit);
  }

  /** How many connections of `provider` are idle since `idleSince` or earlier (one ZCOUNT). */
  countDue(provider: string, idleSince: number): Promise<number> {
    return this.medium.count(this.keys.provider(provider), idleSince);
  }

  /**
   * One bounded step (up to `batch` connections) of scheduling the connections that have no entry
   * (written by the first release, or by an instance of it during a rolling upgrade), resuming
   * from the cursor kept in the store, on any instance. Idempotent: an entry that exists (a write's,
   * or an earlier pass's jittered one) is left as it is; `plan` decides the time of a new one.
   */
  async backfillStep(batch: number, plan: KeepAliveBackfillPlan): Promise<BackfillStep> {
    const cursor = (await this.medium.hashGet(this.keys.state, 'cursor')) ?? '0';
    const step = await this.options.backend.scanMembers(this.options.legacyIndex, cursor, batch);
    const infos = await this.options.read(step.members.map(splitLegacyMember));
    let indexed = 0;
    await Promise.all(
      infos.map(async (info) => {
        const since = info ? plan(info) : null;
        if (!info || since === null) return;
        await this.medium.set(this.keys.provider(info.provider), info.connectionId, since, true);
        indexed++;
      }),
    );
    await this.medium.hashSet(this.keys.state, 'cursor', step.cursor);
    return { indexed, passDone: step.cursor === '0' };
  }
}

/** `provider:connectionId` (provider ids hold no ':'; connection ids may). */
function splitLegacyMember(member: string): [string, string] {
  const sep = member.indexOf(':');
  return [member.slice(0, sep), member.slice(sep + 1)];
}

/** KEYS[1] the provider's set; ARGV: the highest score due, the claimed score, the limit. */
const CLAIM_DUE = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return ids
`;

type Scripted = RedisClient & {
  lkClaimKeepAlive(key: string, max: string, to: string, limit: string): Promise<string[]>;
};

/** The index on Redis (or Redis Cluster: every key in the `{ka}` slot). */
class RedisKeepAliveMedium implements KeepAliveMedium {
  private readonly redis: Scripted;

  constructor(client: RedisClient) {
    client.defineCommand('lkClaimKeepAlive', { numberOfKeys: 1, lua: CLAIM_DUE });
    this.redis = client as Scripted;
  }

  private run<T>(op: () => Promise<T>): Promise<T> {
    return runIndexCommand(op);
  }

  async set(key: string, member: string, score: number, onlyIfAbsent: boolean): Promise<void> {
    await this.run(() =>
      onlyIfAbsent ? this.redis.zadd(key, 'NX', score, member) : this.redis.zadd(key, score, member),
    );
  }

  async remove(key: string, member: string): Promise<void> {
    await this.run(() => this.redis.zrem(key, member));
  }

  async score(key: string, member: string): Promise<number | null> {
    const score = await this.run(() => this.redis.zscore(key, member));
    return score === null ? null : Number(score);
  }

  claim(key: string, max: number, claimedAs: number, limit: number): Promise<string[]> {
    return this.run(() => this.redis.lkClaimKeepAlive(key, String(max), String(claimedAs), String(limit)));
  }

  count(key: string, max: number): Promise<number> {
    return this.run(() => this.redis.zcount(key, '-inf', max));
  }

  hashGet(key: string, field: string): Promise<string | null> {
    return this.run(() => this.redis.hget(key, field));
  }

  async hashSet(key: string, field: string, value: string): Promise<void> {
    await this.run(() => this.redis.hset(key, field, value));
  }
}

/**
 * A sorted set in memory: members by score (then by member, as Redis orders ties), kept sorted so
 * that a range read is a binary search, not a scan.
 */
class SortedScores {
  private readonly scores = new Map<string, number>();
  private readonly order: Array<[number, string]> = [];

  get(member: string): number | null {
    return this.scores.get(member) ?? null;
  }

  set(member: string, score: number): void {
    this.remove(member);
    this.scores.set(member, score);
    this.order.splice(this.position(score, member), 0, [score, member]);
  }

  remove(member: string): void {
    const score = this.scores.get(member);
    if (score === undefined) return;
    this.scores.delete(member);
    this.order.splice(this.position(score, member), 1);
  }

  /** The members scored at most `max`, lowest first, up to `limit`. */
  upTo(max: number, limit: number): string[] {
    const found: string[] = [];
    for (const [score, member] of this.order) {
      if (score > max || found.length >= limit) break;
      found.push(member);
    }
    return found;
  }

  countUpTo(max: number): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.order[mid]![0] <= max) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The first position not below `(score, member)`. */
  private position(score: number, member: string): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const [s, m] = this.order[mid]!;
      if (s < score || (s === score && m < member)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** The index in memory: the same semantics as on Redis. */
class MemoryKeepAliveMedium implements KeepAliveMedium {
  private readonly sets = new Map<string, SortedScores>();
  private readonly hashes = new Map<string, Map<string, string>>();

  private sorted(key: string): SortedScores {
    let set = this.sets.get(key);
    if (!set) this.sets.set(key, (set = new SortedScores()));
    return set;
  }

  async set(key: string, member: string, score: number, onlyIfAbsent: boolean): Promise<void> {
    const set = this.sorted(key);
    if (onlyIfAbsent && set.get(member) !== null) return;
    set.set(member, score);
  }

  async remove(key: string, member: string): Promise<void> {
    this.sets.get(key)?.remove(member);
  }

  async score(key: string, member: string): Promise<number | null> {
    return this.sets.get(key)?.get(member) ?? null;
  }

  async claim(key: string, max: number, claimedAs: number, limit: number): Promise<string[]> {
    const set = this.sets.get(key);
    if (!set) return [];
    const claimed = set.upTo(max, limit);
    for (const member of claimed) set.set(member, claimedAs);
    return claimed;
  }

  async count(key: string, max: number): Promise<number> {
    return this.sets.get(key)?.countUpTo(max) ?? 0;
  }

  async hashGet(key: string, field: string): Promise<string | null> {
    return this.hashes.get(key)?.get(field) ?? null;
  }

  async hashSet(key: string, field: string, value: string): Promise<void> {
    let hash = this.hashes.get(key);
    if (!hash) this.hashes.set(key, (hash = new Map()));
    hash.set(field, value);
  }
}
