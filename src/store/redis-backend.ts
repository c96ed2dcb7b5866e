import { AppError } from '../errors';
import type { ChannelHandlers, ConnectionWrite, KvBackend, Notice, OutboxWrite, StoredConnection } from './backend';
import { waitForReady, type RedisClient } from './redis-client';
import { RedisSubscriber, type RedisSubscriberOptions } from './redis-subscriber';

/**
 * Refuses (-2) an outbox entry whose mark is older than ARGV[n+1] ms by this server's clock: the
 * command sat in a client's queue so long that recovery may have dropped the mark (event-outbox.ts).
 * ARGV[n] the mark's time (ms), ARGV[n+1] the bound; an empty ARGV[n-2] (the event id): no event.
 */
const STALE_OUTBOX = (n: number) => `
if ARGV[${n - 2}] ~= '' then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[${n}]) > tonumber(ARGV[${n + 1}]) then
    return -2
  end
end
`;

/** Records the outbox entry (KEYS[3], field ARGV[n], value ARGV[n+1]) when there is one. */
const RECORD_OUTBOX = (n: number) => `
if ARGV[${n}] ~= '' then redis.call('HSET', KEYS[3], ARGV[${n}], ARGV[${n + 1}]) end
`;

/**
 * Version check, both keys written, the change announced and its event put in the outbox, in one
 * step: a write that happened was announced (ARGV[7] channel, ARGV[8] message) and has its event
 * (ARGV[9] id, ARGV[10] entry); a refused one has neither. KEYS share a hash slot; PUBLISH takes
 * no key, and in a cluster it reaches the subscribers of every node.
 */
const WRITE_CONNECTION = `${STALE_OUTBOX(11)}
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if ARGV[1] ~= '' then
  if redis.call('EXISTS', KEYS[1]) == 0 or cur ~= tonumber(ARGV[1]) then return -1 end
end
local v = cur + 1
if ARGV[1] == '' and tonumber(ARGV[2]) > v then v = tonumber(ARGV[2]) end
redis.call('HSET', KEYS[1], 'v', v, 'd', ARGV[3])
if ARGV[4] == '' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
if ARGV[5] == '' then
  redis.call('DEL', KEYS[2])
elseif ARGV[6] == '' then
  redis.call('SET', KEYS[2], ARGV[5])
else
  redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
end
redis.call('PUBLISH', ARGV[7], ARGV[8])
${RECORD_OUTBOX(9)}
return v
`;

/**
 * Both keys deleted and the deletion announced in one step (ARGV[1] channel, ARGV[2] message),
 * with its event (ARGV[3] id, ARGV[4] entry) only when there was something to delete.
 */
const DELETE_CONNECTION = `${STALE_OUTBOX(5)}
local n = redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2])
if n > 0 then
${RECORD_OUTBOX(3)}
end
return n
`;

const READ_CONNECTION = `
local main = redis.call('HMGET', KEYS[1], 'v', 'd')
if not main[2] then return nil end
return { main[1], main[2], redis.call('GET', KEYS[2]) }
`;

/** Compare-and-delete: only the holder of a lock releases it. */
const DEL_IF_EQUALS = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Compare-and-set: a connect link is spent (or given back) only if nobody changed it meanwhile. */
const SET_IF_EQUALS = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`;

/** Compare-and-pexpire: only the holder of a lock extends it. */
const PEXPIRE_IF_EQUALS = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

const INCR_WINDOW = `
local c = redis.call('INCRBY', KEYS[1], ARGV[2])
local t = redis.call('PTTL', KEYS[1])
if t < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  t = tonumber(ARGV[1])
end
return { c, t }
`;

/**
 * Replies that say "not now" rather than "wrong": a server still loading its data after a restart,
 * a master lost or being failed over, a cluster without quorum, a script holding the server.
 */
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|NOREPLICAS)\b/;

type Scripted = RedisClient & {
  lkWriteConnection(main: string, access: string, outbox: string, ...args: string[]): Promise<number>;
  lkReadConnection(main: string, access: string): Promise<[string | null, string, string | null] | null>;
  lkDeleteConnection(main: string, access: string, outbox: string, ...args: string[]): Promise<number>;
  lkDelIfEquals(key: string, value: string): Promise<number>;
  lkSetIfEquals(key: string, expected: string, value: string, ttlMs: string): Promise<number>;
  lkPexpireIfEquals(key: string, value: string, ttlMs: string): Promise<number>;
  lkIncrWindow(key: string, windowMs: string, by: string): Promise<[number, number]>;
};

export interface RedisBackendOptions {
  /** The pub/sub connection of {@link RedisBackend.subscribe}. */
  subscriber?: RedisSubscriberOptions;
}

/**
 * The Redis (or Redis Cluster) medium of the store. Connectivity failures become
 * `store_unavailable`. Besides the process's one client, it opens a single subscriber
 * connection, and only once someone subscribes.
 */
export class RedisBackend implements KvBackend {
  readonly kind = 'redis' as const;
  private readonly redis: Scripted;
  private subscriber?: RedisSubscriber;
  private closed = false;

  constructor(
    client: RedisClient,
    private readonly options: RedisBackendOptions = {},
  ) {
    client.defineCommand('lkWriteConnection', { numberOfKeys: 3, lua: WRITE_CONNECTION });
    client.defineCommand('lkReadConnection', { numberOfKeys: 2, lua: READ_CONNECTION });
    client.defineCommand('lkDeleteConnection', { numberOfKeys: 3, lua: DELETE_CONNECTION });
    client.defineCommand('lkDelIfEquals', { numberOfKeys: 1, lua: DEL_IF_EQUALS });
    client.defineCommand('lkSetIfEquals', { numberOfKeys: 1, lua: SET_IF_EQUALS });
    client.defineCommand('lkPexpireIfEquals', { numberOfKeys: 1, lua: PEXPIRE_IF_EQUALS });
    client.defineCommand('lkIncrWindow', { numberOfKeys: 1, lua: INCR_WINDOW });
    this.redis = client as Scripted;
  }

  get client(): RedisClient {
    return this.redis;
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if ((err as Error).name === 'ReplyError' && !UNAVAILABLE_REPLY.test((err as Error).message)) throw err;
      throw new AppError('store_unavailable', 'The credential store is unavailable', { cause: err });
    }
  }

  get(key: string): Promise<string | null> {
    return this.run(() => this.redis.get(key));
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.run(() => this.redis.set(key, value, 'PX', Math.max(1, Math.ceil(ttlMs))));
  }

  async setNx(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.run(() => this.redis.set(key, value, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'))) === 'OK';
  }

  getDel(key: string): Promise<string | null> {
    return this.run(() => this.redis.getdel(key));
  }

  async del(key: string): Promise<void> {
    await this.run(() => this.redis.del(key));
  }

  async delIfEquals(key: string, value: string): Promise<boolean> {
    return (await this.run(() => this.redis.lkDelIfEquals(key, value))) === 1;
  }

  async setIfEquals(key: string, expected: string, value: string, ttlMs: number): Promise<boolean> {
    const ttl = String(Math.max(1, Math.ceil(ttlMs)));
    return (await this.run(() => this.redis.lkSetIfEquals(key, expected, value, ttl))) === 1;
  }

  async pexpireIfEquals(key: string, value: string, ttlMs: number): Promise<boolean> {
    const ttl = String(Math.max(1, Math.ceil(ttlMs)));
    return (await this.run(() => this.redis.lkPexpireIfEquals(key, value, ttl))) === 1;
  }

  async exists(key: string): Promise<boolean> {
    return (await this.run(() => this.redis.exists(key))) === 1;
  }

  pttl(key: string): Promise<number> {
    return this.run(() => this.redis.pttl(key));
  }

  async writeConnection(w: ConnectionWrite): Promise<number | null> {
    const ms = (n: number | null) => (n === null ? '' : String(Math.max(1, Math.ceil(n))));
    const version = await this.run(() =>
      this.redis.lkWriteConnection(
        w.mainKey,
        w.accessKey,
        // Without an event the key is named but never touched (a key of the same slot, for Cluster).
        w.outbox?.key ?? `${w.mainKey}:outbox`,
        w.expectedVersion === null ? '' : String(w.expectedVersion),
        String(w.minVersion),
        w.data,
        ms(w.mainTtlMs),
        w.access ?? '',
        ms(w.accessTtlMs),
        w.notice.channel,
        w.notice.message,
        ...outboxArgs(w.outbox),
      ),
    );
    if (version === -2) throw staleOutbox();
    return version < 0 ? null : version;
  }

  async readConnection(mainKey: string, accessKey: string): Promise<StoredConnection | null> {
    const row = await this.run(() => this.redis.lkReadConnection(mainKey, accessKey));
    if (!row) return null;
    return { version: Number(row[0] ?? 0), data: row[1], access: row[2] ?? null };
  }

  async readConnectionData(mainKey: string): Promise<Omit<StoredConnection, 'access'> | null> {
    const [version, data] = await this.run(() => this.redis.hmget(mainKey, 'v', 'd'));
    if (!data) return null;
    return { version: Number(version ?? 0), data };
  }

  async deleteConnection(mainKey: string, accessKey: string, notice: Notice, outbox?: OutboxWrite): Promise<boolean> {
    const deleted = await this.run(() =>
      this.redis.lkDeleteConnection(
        mainKey,
        accessKey,
        outbox?.key ?? `${mainKey}:outbox`,
        notice.channel,
        notice.message,
        ...outboxArgs(outbox),
      ),
    );
    if (deleted === -2) throw staleOutbox();
    return deleted > 0;
  }

  hashGet(key: string, field: string): Promise<string | null> {
    return this.run(() => this.redis.hget(key, field));
  }

  async hashDelete(key: string, field: string): Promise<void> {
    await this.run(() => this.redis.hdel(key, field));
  }

  async addMember(setKey: string, member: string): Promise<void> {
    await this.run(() => this.redis.sadd(setKey, member));
  }

  async removeMember(setKey: string, member: string): Promise<void> {
    await this.run(() => this.redis.srem(setKey, member));
  }

  members(setKey: string): Promise<string[]> {
    return this.run(() => this.redis.smembers(setKey));
  }

  async scanMembers(setKey: string, cursor: string, count: number): Promise<{ cursor: string; members: string[] }> {
    const [next, members] = await this.run(() => this.redis.sscan(setKey, cursor, 'COUNT', count));
    return { cursor: next, members };
  }

  async incrWindow(key: string, windowMs: number, by: number): Promise<{ count: number; ttlMs: number }> {
    const [count, ttlMs] = await this.run(() => this.redis.lkIncrWindow(key, String(windowMs), String(by)));
    return { count: Number(count), ttlMs: Number(ttlMs) };
  }

  subscribe(channel: string, handlers: ChannelHandlers): () => void {
    if (this.closed) return () => {};
    this.subscriber ??= new RedisSubscriber(this.redis, this.options.subscriber);
    return this.subscriber.subscribe(channel, handlers);
  }

  async ping(): Promise<void> {
    await this.run(() => this.redis.ping());
  }

  ready(timeoutMs: number): Promise<boolean> {
    return waitForReady(this.redis, timeoutMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.subscriber?.close();
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

/** The four script arguments of an outbox entry (empty: no event): id, entry, mark time, bound. */
function outboxArgs(outbox: OutboxWrite | undefined): string[] {
  return outbox ? [outbox.field, outbox.value, String(outbox.markedAt), String(outbox.freshMs)] : ['', '', '0', '0'];
}

function staleOutbox(): AppError {
  return new AppError('store_unavailable', 'The credential store answered too late to record the change; try again');
}
