import { Cluster, type Redis } from 'ioredis';
import type { Clock } from '../clock';
import { AppError } from '../errors';
import {
  DEFAULT_EVENT_LIMITS,
  WEBHOOK_GROUP,
  eventFields,
  eventOfFields,
  fieldsToRecord,
  newEventId,
  pageEvents,
  pendingMember,
  pendingOfMember,
  type DeadDelivery,
  type EventConsumer,
  type EventDelivery,
  type EventInput,
  type EventLog,
  type EventLogLimits,
  type EventPage,
  type EventQuery,
  type LoggedEvent,
  type PendingEvent,
  type RawEntry,
} from './event-log';
import { waitForReady, type RedisClient } from './redis-client';

/**
 * `append(stream, cap, group, fields)`: appends to the global stream and trims it to the cap (at
 * most 100 entries a call, so the cost of one append stays bounded), never past the webhook
 * group's floor: the oldest entry it has pending and the first it has not yet read. So an
 * undelivered event is never trimmed, whatever the cap.
 */
const APPEND_FUNCTION = `
local function lt(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local function append(stream, cap, group, fields)
  local id = redis.call('XADD', stream, '*', unpack(fields))
  local excess = redis.call('XLEN', stream) - cap
  if excess <= 0 then return id end
  if excess > 100 then excess = 100 end
  local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', excess + 1)
  local cut = oldest[#oldest][1]
  local groups = redis.call('XINFO', 'GROUPS', stream)
  for _, g in ipairs(groups) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info['name'] == group then
      if lt(info['last-delivered-id'], cut) then cut = info['last-delivered-id'] end
      if tonumber(info['pending']) > 0 then
        local first = redis.call('XPENDING', stream, group, '-', '+', 1)
        if first[1] and lt(first[1][1], cut) then cut = first[1][1] end
      end
    end
  end
  redis.call('XTRIM', stream, 'MINID', cut)
  return id
end
`;

/** ARGV[1] cap, ARGV[2] group, ARGV[3..] the fields. */
const APPEND_EVENT = `${APPEND_FUNCTION}
return append(KEYS[1], tonumber(ARGV[1]), ARGV[2], { unpack(ARGV, 3) })
`;

/**
 * An event of an outbox, once per id: KEYS[2] (under the stream's tag) remembers the entry id it
 * got until the event is settled (or ARGV[3] ms), so a relay repeated after a crash appends
 * nothing and hands back the same entry id. ARGV[1] cap, ARGV[2] group, ARGV[4..] the fields.
 */
const APPEND_RECORDED = `${APPEND_FUNCTION}
local seen = redis.call('GET', KEYS[2])
if seen then return seen end
local id = append(KEYS[1], tonumber(ARGV[1]), ARGV[2], { unpack(ARGV, 4) })
redis.call('SET', KEYS[2], id, 'PX', ARGV[3])
return id
`;

/** A pending mark scored with this server's time (ms), returned. KEYS[1] the marks, ARGV[1] the member. */
const MARK_PENDING = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
return now
`;

/**
 * The mark goes; the repeat guard (under the same tag) stays ARGV[2] ms more, so a relay that read
 * the outbox entry just before another removed it still appends nothing.
 */
const SETTLE_PENDING = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`;

/** Marks older than ARGV[1] ms by this server's clock, oldest first, at most ARGV[2]. */
const STALE_PENDING = `
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, tonumber(ARGV[2]))
`;

/** How long the repeat guard outlives a relay that never settled (every instance down that long). */
const RECORDED_GUARD_MS = 24 * 3600_000;
/** How long it stays once settled: far longer than a relay's few commands, however slow. */
const SETTLED_GUARD_MS = 10 * 60_000;

/** Dead record written and the entry acknowledged in one step (both keys under the `{events}` tag). */
const BURY = `
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return redis.call('XACK', KEYS[1], ARGV[3], ARGV[4])
`;

/** A dead delivery back on the stream, if nobody retried it meanwhile. ARGV[1] id, ARGV[2] record, ARGV[3..] fields. */
const RETRY_DEAD = `
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;

type Scripted = RedisClient & {
  lkAppendEvent(stream: string, cap: string, group: string, ...fields: string[]): Promise<string>;
  lkAppendRecorded(
    stream: string,
    guard: string,
    cap: string,
    group: string,
    guardMs: string,
    ...fields: string[]
  ): Promise<string>;
  lkMarkPending(marks: string, member: string): Promise<number>;
  lkSettlePending(marks: string, guard: string, member: string, keepMs: string): Promise<number>;
  lkStalePending(marks: string, olderThanMs: string, limit: string): Promise<string[]>;
  lkBuryEvent(
    stream: string,
    dead: string,
    eventId: string,
    record: string,
    group: string,
    entryId: string,
  ): Promise<number>;
  lkRetryDead(stream: string, dead: string, eventId: string, record: string, ...fields: string[]): Promise<number>;
};

type StreamEntry = [id: string, fields: string[] | null];

/**
 * The log on Redis Streams. Keys: the global stream `${prefix}{events}` and its dead records
 * `${prefix}{events}:dead` share one hash tag, so burying and retrying are single scripts in
 * Cluster too; each connection's capped stream `${prefix}events:{provider:connectionId}` shares
 * the connection's tag and carries the same entry ids as the global stream.
 *
 * The consumer's blocking read (XREADGROUP BLOCK) holds a connection while it waits, so it gets
 * its own `duplicate()` of the process's client, opened when a consumer starts: the only
 * connection this log opens (on Cluster, a duplicate of the cluster client, which connects to the
 * nodes it needs, and reads that block for less than the command timeout).
 */
/**
 * A claim pass reads at most this many XAUTOCLAIM pages (each looks at up to 10 × COUNT pending
 * entries), so a huge pending list costs a bounded pass; the next pass starts from the top again.
 */
const MAX_CLAIM_STEPS = 20;

export class RedisEventLog implements EventLog {
  private readonly redis: Scripted;
  private readonly stream: string;
  private readonly dead: string;
  /** Pending marks (a sorted set scored by time) of events in connection outboxes (event-outbox.ts). */
  private readonly marks: string;
  private readonly blocking = new Set<Redis | RedisClient>();

  constructor(
    client: RedisClient,
    private readonly prefix: string,
    private readonly clock: Clock,
    private readonly limits: EventLogLimits = DEFAULT_EVENT_LIMITS,
  ) {
    client.defineCommand('lkAppendEvent', { numberOfKeys: 1, lua: APPEND_EVENT });
    client.defineCommand('lkAppendRecorded', { numberOfKeys: 2, lua: APPEND_RECORDED });
    client.defineCommand('lkMarkPending', { numberOfKeys: 1, lua: MARK_PENDING });
    client.defineCommand('lkSettlePending', { numberOfKeys: 2, lua: SETTLE_PENDING });
    client.defineCommand('lkStalePending', { numberOfKeys: 1, lua: STALE_PENDING });
    client.defineCommand('lkBuryEvent', { numberOfKeys: 2, lua: BURY });
    client.defineCommand('lkRetryDead', { numberOfKeys: 2, lua: RETRY_DEAD });
    this.redis = client as Scripted;
    this.stream = `${prefix}{events}`;
    this.dead = `${prefix}{events}:dead`;
    this.marks = `${prefix}{events}:outbox-pending`;
  }

  /** The repeat guard of one recorded event, under the stream's tag like the marks. */
  private guard(eventId: string): string {
    return `${this.prefix}{events}:recorded:${eventId}`;
  }

  private connectionStream(provider: string, connectionId: string): string {
    return `${this.prefix}events:{${provider}:${connectionId}}`;
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw new AppError('store_unavailable', 'The event log is unavailable', { cause: err });
    }
  }

  async append(input: EventInput): Promise<LoggedEvent> {
    const event: LoggedEvent = { ...input, id: newEventId() };
    const fields = eventFields(event);
    const entryId = await this.run(() =>
      this.redis.lkAppendEvent(this.stream, String(this.limits.total), WEBHOOK_GROUP, ...fields),
    );
    await this.index(event, entryId, fields);
    return event;
  }

  async appendRecorded(event: LoggedEvent): Promise<void> {
    const fields = eventFields(event);
    const entryId = await this.run(() =>
      this.redis.lkAppendRecorded(
        this.stream,
        this.guard(event.id),
        String(this.limits.total),
        WEBHOOK_GROUP,
        String(RECORDED_GUARD_MS),
        ...fields,
      ),
    );
    await this.index(event, entryId, fields);
  }

  async markPending(event: PendingEvent): Promise<number> {
    return Number(await this.run(() => this.redis.lkMarkPending(this.marks, pendingMember(event))));
  }

  async settle(event: PendingEvent): Promise<void> {
    await this.run(() =>
      this.redis.lkSettlePending(this.marks, this.guard(event.eventId), pendingMember(event), String(SETTLED_GUARD_MS)),
    );
  }

  async stalePending(olderThanMs: number, limit: number): Promise<PendingEvent[]> {
    const members = await this.run(() => this.redis.lkStalePending(this.marks, String(olderThanMs), String(limit)));
    return members.map(pendingOfMember);
  }

  /**
   * The per-connection index: the same entry id, so one cursor format pages both. An entry id at
   * or below the stream's last one is already there (a repeated relay), or older than an event
   * indexed since (a relay that crashed half-way, finished by recovery after newer events): a
   * stream cannot take it in the middle, so it stays in the global log only.
   */
  private async index(event: LoggedEvent, entryId: string, fields: string[]): Promise<void> {
    const key = this.connectionStream(event.provider, event.connectionId);
    try {
      await this.redis.xadd(key, 'MAXLEN', String(this.limits.perConnection), entryId, ...fields);
    } catch (err) {
      if ((err as Error).name === 'ReplyError' && /equal or smaller/i.test((err as Error).message)) return;
      throw new AppError('store_unavailable', 'The event log is unavailable', { cause: err });
    }
  }

  list(query: EventQuery): Promise<EventPage> {
    return pageEvents(async (log, count, before) => {
      const key = log === 'all' ? this.stream : this.connectionStream(log.provider, log.connectionId);
      const rows = (await this.run(() =>
        this.redis.xrevrange(key, before === undefined ? '+' : `(${before}`, '-', 'COUNT', count),
      )) as StreamEntry[];
      return rows.filter((row): row is [string, string[]] => row[1] !== null).map(rawEntryOf);
    }, query);
  }

  async consumer(name: string): Promise<EventConsumer> {
    await this.run(async () => {
      try {
        await this.redis.xgroup('CREATE', this.stream, WEBHOOK_GROUP, '$', 'MKSTREAM');
      } catch (err) {
        if (!/BUSYGROUP/.test((err as Error).message)) throw err;
      }
    });
    // The client's command timeout would cut a blocked read short: a single connection goes
    // without one; a cluster's duplicate keeps it, and its reads block for less than it.
    const cluster = this.redis instanceof Cluster;
    const blocking = cluster
      ? (this.redis as Cluster).duplicate()
      : (this.redis as Redis).duplicate({ commandTimeout: undefined });
    const maxBlockMs = cluster ? 800 : Number.POSITIVE_INFINITY;
    blocking.on('error', () => {});
    this.blocking.add(blocking);
    await waitForReady(blocking, 5000);
    let closed = false;
    const deliveriesOf = (rows: StreamEntry[]): EventDelivery[] =>
      rows
        .filter((row): row is [string, string[]] => row[1] !== null)
        .map(([entryId, flat]) => {
          const record = fieldsToRecord(flat);
          return { entryId, event: eventOfFields(record), since: Number(record.since ?? record.at) };
        });
    return {
      read: async (count, blockMs) => {
        if (closed) return [];
        try {
          const reply = (await blocking.xreadgroup(
            'GROUP',
            WEBHOOK_GROUP,
            name,
            'COUNT',
            count,
            'BLOCK',
            Math.max(1, Math.min(blockMs, maxBlockMs)),
            'STREAMS',
            this.stream,
            '>',
          )) as Array<[string, StreamEntry[]]> | null;
          return reply ? deliveriesOf(reply[0]![1]) : [];
        } catch (err) {
          if (closed) return [];
          throw new AppError('store_unavailable', 'The event log is unavailable', { cause: err });
        }
      },
      // Every pass walks the pending list from its start: a cursor kept between passes would move
      // past an entry that was not idle enough yet, leaving it until the walk came round again.
      claimStale: async (minIdleMs, count) => {
        if (closed) return [];
        const claimed: EventDelivery[] = [];
        let cursor = '0-0';
        for (let step = 0; step < MAX_CLAIM_STEPS && claimed.length < count; step++) {
          const [next, rows, deleted] = (await this.run(() =>
            this.redis.xautoclaim(this.stream, WEBHOOK_GROUP, name, minIdleMs, cursor, 'COUNT', count - claimed.length),
          )) as [string, StreamEntry[], string[]?];
          // Entries trimmed while pending cannot be delivered any more: nothing is left to acknowledge but the id.
          if (deleted?.length) await this.run(() => this.redis.xack(this.stream, WEBHOOK_GROUP, ...deleted));
          claimed.push(...deliveriesOf(rows));
          if (next === '0-0') break;
          cursor = next;
        }
        return claimed;
      },
      touch: async (entryIds) => {
        if (!entryIds.length || closed) return;
        await this.run(() => this.redis.xclaim(this.stream, WEBHOOK_GROUP, name, 0, ...entryIds, 'JUSTID'));
      },
      ack: async (entryId) => {
        await this.run(() => this.redis.xack(this.stream, WEBHOOK_GROUP, entryId));
      },
      bury: async (delivery, attempts, lastError) => {
        const record: DeadDelivery = { event: delivery.event, attempts, lastError, deadAt: this.clock.now() };
        await this.run(() =>
          this.redis.lkBuryEvent(
            this.stream,
            this.dead,
            delivery.event.id,
            JSON.stringify(record),
            WEBHOOK_GROUP,
            delivery.entryId,
          ),
        );
      },
      close: async () => {
        if (closed) return;
        closed = true;
        this.blocking.delete(blocking);
        blocking.disconnect();
      },
    };
  }

  async deadDeliveries(limit: number): Promise<DeadDelivery[]> {
    const [, flat] = await this.run(() => this.redis.hscan(this.dead, '0', 'COUNT', Math.max(limit, 10)));
    const out: DeadDelivery[] = [];
    for (let i = 1; i < flat.length && out.length < limit; i += 2) out.push(JSON.parse(flat[i]!) as DeadDelivery);
    return out;
  }

  async retryDead(eventId: string): Promise<boolean> {
    const raw = await this.run(() => this.redis.hget(this.dead, eventId));
    if (raw === null) return false;
    const { event } = JSON.parse(raw) as DeadDelivery;
    const fields = eventFields(event, { retry: '1', since: String(this.clock.now()) });
    return (await this.run(() => this.redis.lkRetryDead(this.stream, this.dead, eventId, raw, ...fields))) === 1;
  }

  async backlog(): Promise<number> {
    const groups = await this.run(async () => {
      try {
        return (await this.redis.xinfo('GROUPS', this.stream)) as unknown[][];
      } catch (err) {
        if (/no such key/i.test((err as Error).message)) return [];
        throw err;
      }
    });
    for (const flat of groups) {
      const info = fieldsToRecord(flat.map(String));
      if (info.name !== WEBHOOK_GROUP) continue;
      const pending = Number(info.pending ?? 0);
      const lag = info.lag === undefined || info.lag === '' || info.lag === 'null' ? NaN : Number(info.lag);
      // `lag` is unknown after some trims: count what is past the group's last read instead.
      const unread = Number.isFinite(lag)
        ? lag
        : (
            (await this.run(() =>
              this.redis.xrange(this.stream, `(${info['last-delivered-id']}`, '+', 'COUNT', 10_000),
            )) as unknown[]
          ).length;
      return pending + unread;
    }
    return 0;
  }

  async close(): Promise<void> {
    for (const connection of this.blocking) connection.disconnect();
    this.blocking.clear();
  }
}

function rawEntryOf([entryId, flat]: [string, string[]]): RawEntry {
  const record = fieldsToRecord(flat);
  return { entryId, event: eventOfFields(record), retry: record.retry === '1' };
}
