import type { Cluster, Redis } from 'ioredis';
import type { MemoryBackend } from '../../src/store/memory-backend';

/** The value of one key as text: a string as it is, a hash's fields and values, a set's members. */
async function valueOf(redis: Redis | Cluster, key: string): Promise<string> {
  const type = await redis.type(key);
  if (type === 'hash') return JSON.stringify(await redis.hgetall(key));
  if (type === 'set') return JSON.stringify((await redis.smembers(key)).sort());
  if (type === 'zset') return JSON.stringify(await redis.zrange(key, 0, -1, 'WITHSCORES'));
  if (type === 'list') return JSON.stringify(await redis.lrange(key, 0, -1));
  if (type === 'stream') return JSON.stringify(await redis.xrange(key, '-', '+'));
  return (await redis.get(key)) ?? '';
}

/** Every key of `keys` with its value as text, sorted by key: what a reader of Redis would see. */
export async function dumpRedis(redis: Redis | Cluster, keys: string[]): Promise<Array<[string, string]>> {
  const sorted = [...keys].sort();
  return Promise.all(sorted.map(async (key) => [key, await valueOf(redis, key)] as [string, string]));
}

/** The same for the in-memory backend (its Map is private: read here, for tests only); empty sets left out. */
export function dumpMemory(backend: MemoryBackend): Array<[string, string]> {
  const entries = (backend as unknown as { entries: Map<string, { value: string | Set<string> }> }).entries;
  const out: Array<[string, string]> = [];
  for (const [key, { value }] of entries) {
    if (typeof value === 'string') out.push([key, value]);
    else if (value.size) out.push([key, JSON.stringify([...value].sort())]);
  }
  return out.sort(([a], [b]) => (a < b ? -1 : 1));
}
