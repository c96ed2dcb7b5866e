import { AppError } from '../errors';
import { memberOf, type IndexEntry, type IndexKeys, type IndexMedium } from './connection-index';
import type { RedisClient } from './redis-client';

/**
 * Indexes one connection (ARGV: op, field, version, status, terms as JSON, provider), unless the
 * index holds a later version of it; or unindexes it (op `del`). KEYS: entries, counts, all,
 * provider, status active, status reauth_required, provider+active, provider+reauth_required,
 * terms, provider terms — all in the `{idx}` slot. A count moves only with a real change.
 */
const UPDATE_INDEX = `
local field = ARGV[2]
local provider = ARGV[6]
local raw = redis.call('HGET', KEYS[1], field)
local old = nil
if raw then old = cjson.decode(raw) end
local function slots(status)
  if status == 'active' then return KEYS[5], KEYS[7] end
  return KEYS[6], KEYS[8]
end
local function unindex(e)
  local s, ps = slots(e.s)
  redis.call('ZREM', KEYS[3], field)
  redis.call('ZREM', KEYS[4], field)
  redis.call('ZREM', s, field)
  redis.call('ZREM', ps, field)
  for _, t in ipairs(e.t) do
    redis.call('ZREM', KEYS[9], t .. '\\0' .. field)
    redis.call('ZREM', KEYS[10], t .. '\\0' .. field)
  end
  redis.call('HINCRBY', KEYS[2], provider .. '\\0' .. e.s, -1)
end
if ARGV[1] == 'del' then
  if old then
    unindex(old)
    redis.call('HDEL', KEYS[1], field)
  end
  return 1
end
local v = tonumber(ARGV[3])
if old and tonumber(old.v) > v then return 0 end
if old then unindex(old) end
local terms = cjson.decode(ARGV[5])
local s, ps = slots(ARGV[4])
redis.call('ZADD', KEYS[3], 0, field)
redis.call('ZADD', KEYS[4], 0, field)
redis.call('ZADD', s, 0, field)
redis.call('ZADD', ps, 0, field)
for _, t in ipairs(terms) do
  redis.call('ZADD', KEYS[9], 0, t .. '\\0' .. field)
  redis.call('ZADD', KEYS[10], 0, t .. '\\0' .. field)
end
redis.call('HINCRBY', KEYS[2], provider .. '\\0' .. ARGV[4], 1)
redis.call('HSET', KEYS[1], field, ARGV[7])
return 1
`;

/** The same replies as the store's: "not now" rather than "wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|NOREPLICAS)\b/;

/**
 * Runs one command of an index kept beside the store (listing, keep-alive): a lost connection or a
 * "not now" reply is AppError `store_unavailable`, as for the store's own commands.
 */
export async function runIndexCommand<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if ((err as Error).name === 'ReplyError' && !UNAVAILABLE_REPLY.test((err as Error).message)) throw err;
    throw new AppError('store_unavailable', 'The credential store is unavailable', { cause: err });
  }
}

type Scripted = RedisClient & {
  lkUpdateIndex(...keysAndArgs: string[]): Promise<number>;
};

/** The index on Redis (or Redis Cluster: every key in the `{idx}` slot). */
export class RedisIndexMedium implements IndexMedium {
  private readonly redis: Scripted;

  constructor(client: RedisClient) {
    client.defineCommand('lkUpdateIndex', { numberOfKeys: 10, lua: UPDATE_INDEX });
    this.redis = client as Scripted;
  }

  private run<T>(op: () => Promise<T>): Promise<T> {
    return runIndexCommand(op);
  }

  private update(keys: IndexKeys, op: 'put' | 'del', entry: IndexEntry): Promise<number> {
    const field = memberOf(entry.provider, entry.connectionId);
    const p = entry.provider;
    return this.run(() =>
      this.redis.lkUpdateIndex(
        keys.entries,
        keys.counts,
        keys.all,
        keys.provider(p),
        keys.status('active'),
        keys.status('reauth_required'),
        keys.providerStatus(p, 'active'),
        keys.providerStatus(p, 'reauth_required'),
        keys.terms,
        keys.providerTerms(p),
        op,
        field,
        String(entry.version),
        entry.status,
        JSON.stringify(entry.terms),
        p,
        JSON.stringify({ v: entry.version, s: entry.status, t: entry.terms }),
      ),
    );
  }

  async put(keys: IndexKeys, entry: IndexEntry): Promise<void> {
    await this.update(keys, 'put', entry);
  }

  async remove(keys: IndexKeys, provider: string, connectionId: string): Promise<void> {
    await this.update(keys, 'del', { provider, connectionId, version: 0, status: 'active', terms: [] });
  }

  range(key: string, after: string | null, count: number): Promise<string[]> {
    return this.run(() => this.redis.zrangebylex(key, after === null ? '-' : `(${after}`, '+', 'LIMIT', 0, count));
  }

  rangePrefix(key: string, prefix: string, offset: number, count: number): Promise<string[]> {
    // 0xff is above every byte of UTF-8: `[prefix` to `[prefix\xff` is every member starting with it.
    const max = Buffer.concat([Buffer.from(`[${prefix}`), Buffer.from([0xff])]);
    return this.run(() => this.redis.zrangebylex(key, `[${prefix}`, max, 'LIMIT', offset, count));
  }

  hashAll(key: string): Promise<Record<string, string>> {
    return this.run(() => this.redis.hgetall(key));
  }

  hashGet(key: string, field: string): Promise<string | null> {
    return this.run(() => this.redis.hget(key, field));
  }

  async hashSet(key: string, field: string, value: string): Promise<void> {
    await this.run(() => this.redis.hset(key, field, value));
  }
}
