import Redis, { Cluster, type RedisOptions } from 'ioredis';
import type { Config } from '../config';

export type RedisClient = Redis | Cluster;

/**
 * Options that make an outage fail fast instead of hanging: no offline queue (a command sent
 * while disconnected fails at once), a command timeout, and reconnection forever in the
 * background so service resumes by itself when Redis is back.
 */
const FAIL_FAST: RedisOptions = {
  enableOfflineQueue: false,
  commandTimeout: 1000,
  connectTimeout: 2000,
  maxRetriesPerRequest: 1,
  retryStrategy: (times) => Math.min(times * 100, 1000),
  lazyConnect: false,
};

export type RedisConfig = Pick<Config, 'redisUrl' | 'redisClusterNodes' | 'redisSentinels' | 'redisSentinelName'>;

export function hasRedis(config: RedisConfig): boolean {
  return Boolean(config.redisUrl || config.redisClusterNodes?.length || config.redisSentinels?.length);
}

/** One ioredis client for the whole process: plain, TLS (`rediss://`), Sentinel or Cluster. */
export function createRedisClient(config: RedisConfig): RedisClient {
  if (config.redisClusterNodes?.length) {
    const auth = config.redisUrl ? credentialsOf(config.redisUrl) : {};
    return new Cluster(config.redisClusterNodes, {
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => Math.min(times * 100, 1000),
      redisOptions: { ...FAIL_FAST, ...auth },
    });
  }
  if (config.redisSentinels?.length) {
    const auth = config.redisUrl ? credentialsOf(config.redisUrl) : {};
    return new Redis({
      ...FAIL_FAST,
      ...auth,
      sentinels: config.redisSentinels,
      name: config.redisSentinelName,
      sentinelRetryStrategy: (times) => Math.min(times * 100, 1000),
    });
  }
  return new Redis(config.redisUrl!, FAIL_FAST);
}

function credentialsOf(url: string): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  const u = new URL(url);
  return {
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

/** Resolves once the client is ready, or after `timeoutMs` (the caller starts anyway; /readyz tells). */
export function waitForReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    client.once('ready', onReady);
  });
}
