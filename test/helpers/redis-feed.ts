import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';

/** A subscriber connection name of the test's own, so a kill never reaches another test's. */
export function feedName(label: string): string {
  return `lkfeed-${label}-${randomBytes(4).toString('hex')}`;
}

/**
 * Kills, as a network failure would, the pub/sub connections named `name` on `nodes`
 * (`CLIENT KILL ID`, never `TYPE pubsub`, which would cut every test's feed). Returns how many.
 */
export async function killPubSubConnection(nodes: Redis[], name: string): Promise<number> {
  let killed = 0;
  for (const node of nodes) {
    const list = (await node.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
    for (const line of list.split('\n')) {
      if (!line.includes(` name=${name} `)) continue;
      const id = /\bid=(\d+)/.exec(line)?.[1];
      if (id) killed += Number(await node.call('CLIENT', 'KILL', 'ID', id));
    }
  }
  return killed;
}
