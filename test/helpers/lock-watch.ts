import type Redis from 'ioredis';

/** What a watch of one lock key has seen so far. */
export interface LockWatch {
  /** Extensions by the same holder: its PTTL went back up while its value stayed the same. */
  readonly heartbeats: number;
  /** Distinct holders (values) seen. */
  readonly holders: number;
  stop(): Promise<void>;
}

/**
 * Reads a lock key (`SET NX PX` with a holder-unique value) every `everyMs` and counts its
 * holder's heartbeats: between two of them the PTTL only falls, so every rise is one extension
 * (a missed reading can only undercount). For a holder in another process, where no spy reaches.
 */
export function watchLock(redis: Redis, key: string, everyMs = 10): LockWatch {
  let heartbeats = 0;
  const values = new Set<string>();
  let last: { value: string; pttl: number } | undefined;
  let running = true;
  const loop = (async () => {
    while (running) {
      const replies = await redis
        .multi()
        .get(key)
        .pttl(key)
        .exec()
        .catch(() => null);
      if (!replies) return; // Redis gone: the counts stay as they are, and the test's bound decides
      const [[, value], [, pttl]] = replies as [[unknown, string | null], [unknown, number]];
      if (value !== null && pttl > 0) {
        if (last && last.value === value && pttl > last.pttl) heartbeats += 1;
        values.add(value);
        last = { value, pttl };
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    get heartbeats() {
      return heartbeats;
    },
    get holders() {
      return values.size;
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}
