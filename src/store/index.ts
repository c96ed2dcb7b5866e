import type { Clock } from '../clock';
import type { Config } from '../config';
import { CredentialCipher } from './encryption';
import { KvStore } from './kv-store';
import { MemoryBackend } from './memory-backend';
import { RedisBackend } from './redis-backend';
import { createRedisClient, hasRedis, type RedisClient } from './redis-client';
import type { Store } from './types';

export * from './types';
export * from './connection-values';
export * from './event-log';
export type { OutboxRecoveryStep, RecordedEvent } from './event-outbox';
export { CredentialCipher, SealedValueError } from './encryption';
export { UnreadableCredentialError, isUnreadableCredential } from './credential-errors';

export interface OpenedStore {
  store: Store;
  /** The process's one Redis client, when the store is on Redis (sessions and rate limits share it). */
  redis?: RedisClient;
}

/** Redis when configured, otherwise the embedded in-memory store. */
export function openStore(
  config: Pick<
    Config,
    'redisUrl' | 'redisClusterNodes' | 'redisSentinels' | 'redisSentinelName' | 'redisKeyPrefix' | 'tokenEncryptionKeys'
  >,
  clock: Clock,
): OpenedStore {
  const cipher = new CredentialCipher(config.tokenEncryptionKeys);
  if (!hasRedis(config)) {
    return { store: new KvStore({ backend: new MemoryBackend(clock), cipher, clock, prefix: config.redisKeyPrefix }) };
  }
  const redis = createRedisClient(config);
  // Errors surface per command as store_unavailable; without a listener ioredis would log each one.
  redis.on('error', () => {});
  return {
    store: new KvStore({ backend: new RedisBackend(redis), cipher, clock, prefix: config.redisKeyPrefix }),
    redis,
  };
}
