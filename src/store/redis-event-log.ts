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
  type DeadDelivery,
  type EventConsumer,
  type EventDelivery,
  type EventInput,
  type EventLog,
  type EventLogLimits,
  type EventPage,
  type EventQuery,
  type LoggedEvent,
  type RawEntry,
} from './event-log';
import { waitForReady, type RedisClient } from './redis-client';

/**
 * Appends to the global stream and trims it to the cap (at most 100 entries a call, so the cost
 * of one append stays bounded), never past the webhook group's floor: the oldest entry it has
 * pending and the first it has not yet read. ARGV[1] cap, ARGV[2] group, ARGV[3..] the fields.
 */
const APPEND_EVENT = `
local function lt(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return id end
if excess > 100 then excess = 100 end
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess + 1)
local cut = oldest[#oldest][1]
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
for _, g in ipairs(groups) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  if info['name'] == ARGV[2] then
    if lt(info['last-delivered-id'], cut) then cut = info['last-delivered-id'] end
    if tonumber(info['pending']) > 0 then
      local first = redis.call('XPENDING', KEYS[1], ARGV[2], '-', '+', 1)
      if first[1] and lt(first[1][1], cut) then cut = first[1][1] end
    end
  end
end
redis.call('XTRIM', KEYS[1], 'MINID', cut)
return id
`;

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
export class RedisEventLog implements EventLog {
  private readonly redis: Scripted;
  private readonly stream: string;
  private readonly dead: string;
  private readonly blocking = new Set<Redis | RedisClient>();

  constructor(
    client: RedisClient,
    private readonly prefix: string,
    private readonly clock: Clock,
    private readonly limits: EventLogLimits = DEFAULT_EVENT_LIMITS,
  ) {
    client.defineCommand('lkAppendEvent', { numberOfKeys: 1, lua: APPEND_EVENT });
    client.defineCommand('lkBuryEvent', { numberOfKeys: 2, lua: BURY });
    client.defineCommand('lkRetryDead', { numberOfKeys: 2, lua: RETRY_DEAD });
    this.redis = client as Scripted;
    this.stream = `${prefix}{events}`;
    this.dead = `${prefix}{events}:dead`;
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
    // The per-connection index: the same entry id, so one cursor format pages both.
    await this.run(() =>
      this.redis.xadd(
        this.connectionStream(event.provider, event.connectionId),
        'MAXLEN',
        String(this.limits.perConnection),
        entryId,
        ...fields,
      ),
    );
    return event;
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
    let claimCursor = '0-0';
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
      claimStale: async (minIdleMs, count) => {
        if (closed) return [];
        const [next, rows, deleted] = (await this.run(() =>
          this.redis.xautoclaim(this.stream, WEBHOOK_GROUP, name, minIdleMs, claimCursor, 'COUNT', count),
        )) as [string, StreamEntry[], string[]?];
        claimCursor = next;
        // Entries trimmed while pending cannot be delivered any more: nothing is left to acknowledge but the id.
        if (deleted?.length) await this.run(() => this.redis.xack(this.stream, WEBHOOK_GROUP, ...deleted));
        return deliveriesOf(rows);
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
