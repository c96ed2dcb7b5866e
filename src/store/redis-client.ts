import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { sep } from 'node:path';
import type { Config } from '../config';
import type { Logger } from '../logger';

export type RedisClient = Redis | Cluster;

const backoff = (times: number) => Math.min(times * 100, 1000);

/**
 * Options that make an outage fail fast instead of hanging (SECURITY.md §17): no offline queue
 * (a command sent while disconnected fails at once), a command timeout, and reconnection
 * forever in the background so service resumes by itself when Redis is back.
 */
const FAIL_FAST: RedisOptions = {
  enableOfflineQueue: false,
  commandTimeout: 1000,
  connectTimeout: 2000,
  maxRetriesPerRequest: 1,
  retryStrategy: backoff,
  // After a Sentinel failover the old master may still accept the connection as a replica:
  // reconnect, and the Sentinel connector finds the new master (the failing command errors once).
  reconnectOnError: (err) => err.message.startsWith('READONLY'),
  lazyConnect: false,
};

export type RedisConfig = Pick<Config, 'redisUrl' | 'redisClusterNodes' | 'redisSentinels' | 'redisSentinelName'>;

export function hasRedis(config: RedisConfig): boolean {
  return Boolean(config.redisUrl || config.redisClusterNodes?.length || config.redisSentinels?.length);
}

/**
 * One ioredis client for the whole process:
 * - `REDIS_CLUSTER_NODES`: a Cluster client on those seeds; `REDIS_URL`, if also set, gives only
 *   the credentials and `rediss:` (TLS to every node);
 * - `REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`: the master those sentinels name, followed across
 *   failovers; `REDIS_URL`, if also set, gives the master's credentials and `rediss:`;
 * - otherwise `REDIS_URL` itself (`rediss://` is TLS, verified against the system CAs and
 *   `NODE_EXTRA_CA_CERTS`).
 */
export function createRedisClient(config: RedisConfig): RedisClient {
  if (config.redisClusterNodes?.length) return new Cluster(config.redisClusterNodes, clusterOptions(config));
  if (config.redisSentinels?.length) {
    const auth = config.redisUrl ? credentialsOf(config.redisUrl) : {};
    return new Redis({
      ...FAIL_FAST,
      ...auth,
      sentinels: config.redisSentinels,
      name: config.redisSentinelName,
      sentinelRetryStrategy: backoff,
      enableTLSForSentinelMode: Boolean(auth.tls),
      // Subscribes to +switch-master, so a failover is noticed at once rather than on the next error.
      failoverDetector: true,
    });
  }
  return new Redis(config.redisUrl!, FAIL_FAST);
}

/**
 * The Cluster client fails fast like the others: the cluster-level offline queue is off (a
 * command sent while the cluster is not ready fails at once), and each node connection has the
 * command timeout. Node connections are managed by the cluster (lazy, no retry of their own:
 * a lost node is found again through the slot map), so FAIL_FAST's connection fields stay out.
 * The store's multi-key scripts keep their keys in one slot through a hash tag (see keys.ts).
 */
export function clusterOptions(config: RedisConfig): ClusterOptions {
  const {
    retryStrategy: _r,
    lazyConnect: _l,
    enableOfflineQueue: _q,
    reconnectOnError: _e,
    ...nodeOptions
  } = FAIL_FAST;
  const auth = config.redisUrl ? credentialsOf(config.redisUrl) : {};
  return {
    enableOfflineQueue: false,
    clusterRetryStrategy: backoff,
    slotsRefreshTimeout: 2000,
    redisOptions: { ...nodeOptions, ...auth },
  };
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

const IOREDIS_FRAME = `${sep}node_modules${sep}ioredis${sep}`;

/**
 * ioredis writes a few warnings straight to the console ("[WARN] Redis server does not require
 * a password…", a skipped ready check, "[ioredis] Unhandled error event: <stack>"), plain text
 * in the middle of the JSON log stream. While installed, a `console.warn` or `console.error`
 * called from inside ioredis goes to `logger` at warn instead, as one line of text: strings and
 * error messages only, never an argument object (a command's arguments hold keys and sealed
 * values). Other callers' console output is left alone.
 *
 * @returns a function that stops the routing and puts the console functions back (unless
 *   something replaced them since)
 */
export function routeRedisWarnings(logger: Pick<Logger, 'warn'>): () => void {
  let active = true;
  const wrap = (original: (...args: unknown[]) => void) =>
    function routed(...args: unknown[]): void {
      if (active && new Error().stack?.includes(IOREDIS_FRAME)) {
        const text = args
          .map((a) => (typeof a === 'string' ? a : a instanceof Error ? a.message : ''))
          .join(' ')
          .replace(/\s+/g, ' ')
          .replace(/^\[(WARN|ERROR|ioredis)\]\s*/, '')
          .trim()
          .slice(0, 500);
        logger.warn({ source: 'ioredis' }, text);
        return;
      }
      original.apply(console, args);
    };
  const originals = { warn: console.warn, error: console.error };
  const routed = { warn: wrap(originals.warn), error: wrap(originals.error) };
  console.warn = routed.warn;
  console.error = routed.error;
  return () => {
    active = false;
    if (console.warn === routed.warn) console.warn = originals.warn;
    if (console.error === routed.error) console.error = originals.error;
  };
}
