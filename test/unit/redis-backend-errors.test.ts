import { ReplyError } from 'ioredis';
import { RedisBackend } from '../../src/store/redis-backend';
import type { RedisClient } from '../../src/store/redis-client';

/** A client whose GET fails with `err`, as ioredis would report it. */
function failingWith(err: Error): RedisBackend {
  const client = { defineCommand: () => {}, get: () => Promise.reject(err) };
  return new RedisBackend(client as unknown as RedisClient);
}

describe('Redis backend errors', () => {
  it.each([
    'LOADING Redis is loading the dataset in memory',
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
    'CLUSTERDOWN The cluster is down',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    "READONLY You can't write against a read only replica.",
    'BUSY Redis is busy running a script.',
  ])('reports a server that cannot answer now (%s) as store_unavailable', async (message) => {
    await expect(failingWith(new ReplyError(message)).get('k')).rejects.toMatchObject({
      code: 'store_unavailable',
      cause: expect.objectContaining({ message }),
    });
  });

  it('reports a lost connection as store_unavailable', async () => {
    await expect(failingWith(new Error('Connection is closed.')).get('k')).rejects.toMatchObject({
      code: 'store_unavailable',
    });
  });

  it('passes on a reply that says the command itself is wrong', async () => {
    const wrong = new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value');
    await expect(failingWith(wrong).get('k')).rejects.toBe(wrong);
  });
});
