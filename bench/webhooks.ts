import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { Pool } from 'undici';
import { parseConfig } from '../src/config';
import { createSandbox } from '../src/sandbox/sandbox';
import { PROCESS_API_KEY, startLatchkeyProcess, type LatchkeyProcess } from '../test/helpers/latchkey-process';
import { deleteUnder } from '../test/helpers/redis';
import { startWebhookReceiver, type WebhookReceiver } from './lib/webhook-receiver';

/**
 * The webhook throughput benchmark (issue 11, performance targets): two Latchkey processes
 * (`src/server.ts`) on the local Redis under a prefix of their own, WEBHOOK_URL pointing at a
 * receiver in this process that checks both signatures. N events (BENCH_WEBHOOK_EVENTS, default
 * 10,000) are made through the public routes: per connection one `PUT /connections/videoask/:id`
 * import (`connection.created`; a refresh token only, so no provider call) and nine `PATCH`es of
 * its metadata (`connection.metadata_updated`), ten events a connection, well under the log's cap
 * of 100 per connection. At 30% of the writes (BENCH_WEBHOOK_KILL_AT=0.3) one instance is
 * SIGKILLed (its requests go to the other from then on); at 60% (BENCH_WEBHOOK_OUTAGE_AT) the
 * receiver goes down for BENCH_WEBHOOK_OUTAGE_MS (default 25,000): the first half answering 503,
 * the second half with its port closed. Then it waits (at most BENCH_WEBHOOK_DRAIN_MS, default
 * 300,000) until every event id in `GET /events` has reached the receiver at least once and the
 * webhook backlog is 0.
 *
 * Target: 0 lost. Prints repeats (deliveries of an id beyond its first) and events per second;
 * exits non-zero when an event is lost or a delivery fails its signature check. Never a test
 * assertion.
 *
 *   npx tsx bench/webhooks.ts      (or: npm run bench -- webhooks)
 *   BENCH_WEBHOOK_EVENTS=2000 BENCH_WEBHOOK_OUTAGE_MS=10000 npx tsx bench/webhooks.ts
 */
const EVENTS = Number(process.env.BENCH_WEBHOOK_EVENTS ?? 10_000);
const OUTAGE_MS = Number(process.env.BENCH_WEBHOOK_OUTAGE_MS ?? 25_000);
const DRAIN_MS = Number(process.env.BENCH_WEBHOOK_DRAIN_MS ?? 300_000);
const WRITES_PER_CONNECTION = 10;
/** Connections written at once (each one's writes in order: its PATCHes follow its PUT). */
const CONCURRENCY = 32;
/** Shares of the writes answered at which one instance is killed and the receiver goes down. */
const KILL_AT = Number(process.env.BENCH_WEBHOOK_KILL_AT ?? 0.3);
const OUTAGE_AT = Number(process.env.BENCH_WEBHOOK_OUTAGE_AT ?? 0.6);
const SECRET = `bench-webhook-secret-${randomBytes(8).toString('hex')}`;
const REDIS_URL = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DEADLINE_MS = DRAIN_MS + OUTAGE_MS + 10 * 60_000;

interface Instance {
  process: LatchkeyProcess;
  pool: Pool;
  alive: boolean;
}

/** Writes answered, and the failed attempts (retried elsewhere) by status or `network`. */
interface WriteStats {
  acked: number;
  ackedByConnection: Map<string, number>;
  failures: Record<string, number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function main(): Promise<void> {
  const prefix = `lkbench:webhooks:${randomBytes(4).toString('hex')}:`;
  const { config } = parseConfig({
    NODE_ENV: 'test',
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
  });
  const raw = new Redis(REDIS_URL);
  const sandbox = await createSandbox().listen();
  const receiver = await startWebhookReceiver(SECRET);
  const instances: Instance[] = [];
  const deadline = setTimeout(() => {
    process.stderr.write(`webhooks bench: still running after ${seconds(DEADLINE_MS)}, giving up\n`);
    for (const i of instances) void i.process.kill('SIGKILL');
    process.exit(1);
  }, DEADLINE_MS);
  try {
    for (let n = 0; n < 2; n++) {
      const latchkey = await startLatchkeyProcess({
        sandboxUrl: sandbox.url,
        prefix,
        encryptionKeys: config.tokenEncryptionKeys,
        env: {
          WEBHOOK_URL: receiver.url,
          WEBHOOK_SECRET: SECRET,
          SERVICE_RATE_LIMIT_PER_MINUTE: '0',
          // Only the bench's own writes make events: no background refresh of the imported connections.
          KEEPALIVE: 'false',
          LOG_LEVEL: 'error',
        },
      });
      instances.push({ process: latchkey, pool: new Pool(latchkey.url, { connections: CONCURRENCY }), alive: true });
    }
    await waitForWebhookGroup(raw, prefix);
    const result = await run(instances, receiver, (pid) => pendingOfProcess(raw, prefix, pid));
    const lost = report(result, receiver);
    if (lost > 0 || receiver.rejected() > 0) process.exitCode = 1;
  } finally {
    clearTimeout(deadline);
    await Promise.all(instances.map((i) => i.pool.close()));
    await Promise.all(instances.map((i) => i.process.kill('SIGKILL')));
    await receiver.close();
    await sandbox.close();
    await deleteUnder(raw, prefix);
    raw.disconnect();
  }
}

/**
 * The `webhooks` group starts at the stream's end when the first instance joins it: events
 * appended before then would never be for it, so no write starts earlier.
 */
async function waitForWebhookGroup(raw: Redis, prefix: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const groups = (await raw.xinfo('GROUPS', `${prefix}{events}`).catch(() => [])) as unknown[];
    if (groups.length > 0) return;
    await sleep(50);
  }
  throw new Error('no instance joined the webhooks group within 10 s');
}

interface RunResult {
  stats: WriteStats;
  startedAt: number;
  writtenAt: number;
  killedAt: number;
  /** Event ids pending under the killed instance's consumer right after it died (left for the survivor to claim). */
  heldByKilled: string[];
  downAt: number;
  upAt: number;
  /** Ids not yet accepted when the receiver came back. */
  missingAtUp: number;
  eventIds: string[];
  eventsByConnection: Map<string, number>;
  drainedAt: number | null;
  backlogAtEnd: number;
}

async function run(
  instances: Instance[],
  receiver: WebhookReceiver,
  pendingOf: (pid: number) => Promise<string[]>,
): Promise<RunResult> {
  const stats: WriteStats = { acked: 0, ackedByConnection: new Map(), failures: {} };
  const connections = Math.ceil(EVENTS / WRITES_PER_CONNECTION);
  const [victim, survivor] = instances as [Instance, Instance];
  let killedAt = 0;
  let killed: Promise<string[]> | undefined;
  let outage: Promise<void> | undefined;
  let downAt = 0;
  let upAt = 0;
  const startedAt = performance.now();

  const onAcked = () => {
    if (!killedAt && stats.acked >= EVENTS * KILL_AT) {
      killedAt = performance.now();
      victim.alive = false;
      killed = victim.process.kill('SIGKILL').then(() => pendingOf(victim.process.pid));
    }
    if (!outage && stats.acked >= EVENTS * OUTAGE_AT) {
      outage = (async () => {
        downAt = performance.now();
        await receiver.setMode('refusing');
        await sleep(OUTAGE_MS / 2);
        await receiver.setMode('closed');
        await sleep(OUTAGE_MS / 2);
        await receiver.setMode('up');
        upAt = performance.now();
      })();
    }
  };

  let next = 0;
  let round = 0;
  const worker = async () => {
    for (let c = next++; c < connections; c = next++) {
      const connectionId = `hook-${String(c).padStart(6, '0')}`;
      for (let w = 0; w < WRITES_PER_CONNECTION && c * WRITES_PER_CONNECTION + w < EVENTS; w++) {
        const target = instances.filter((i) => i.alive)[round++ % (victim.alive ? 2 : 1)]!;
        await write(instances, target, connectionId, w, stats);
        onAcked();
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const writtenAt = performance.now();
  await outage;
  const heldByKilled = (await killed) ?? [];

  // Every event id in the log (paged through GET /events on the survivor), then until each has arrived.
  let { eventIds, eventsByConnection } = await listEvents(survivor);
  const drainDeadline = performance.now() + DRAIN_MS;
  let drainedAt: number | null = null;
  let backlog = Number.NaN;
  while (performance.now() < drainDeadline) {
    if (eventIds.every((id) => receiver.accepted.has(id))) {
      backlog = await backlogOf(survivor);
      if (backlog === 0) {
        // Anything appended meanwhile (none expected) is waited for too.
        const again = await listEvents(survivor);
        if (again.eventIds.length === eventIds.length) {
          drainedAt = Math.max(...eventIds.map((id) => receiver.firstAccepted.get(id)!));
          break;
        }
        ({ eventIds, eventsByConnection } = again);
      }
    }
    await sleep(250);
  }
  if (drainedAt === null) backlog = await backlogOf(survivor);
  return {
    stats,
    startedAt,
    writtenAt,
    killedAt,
    heldByKilled,
    downAt,
    upAt,
    missingAtUp: eventIds.filter((id) => (receiver.firstAccepted.get(id) ?? Infinity) >= upAt).length,
    eventIds,
    eventsByConnection,
    drainedAt,
    backlogAtEnd: backlog,
  };
}

/**
 * One write, sent to `target` and, while it fails, to whichever instance is alive (a request
 * to the instance being killed fails mid-way: it may or may not have been written, so it is
 * sent again, which can make one more event; the log, not this count, says what was made).
 */
async function write(
  instances: Instance[],
  target: Instance,
  connectionId: string,
  n: number,
  stats: WriteStats,
): Promise<void> {
  const request =
    n === 0
      ? { method: 'PUT' as const, body: { refresh_token: `bench-rt-${connectionId}`, metadata: { n: 0 } } }
      : { method: 'PATCH' as const, body: { metadata: { n } } };
  let instance = target;
  for (let attempt = 0; attempt < 20; attempt++) {
    let failure: string;
    try {
      const res = await instance.pool.request({
        method: request.method,
        path: `/connections/videoask/${connectionId}`,
        headers: { authorization: `Bearer ${PROCESS_API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(request.body),
      });
      await res.body.dump();
      if (res.statusCode < 300) {
        stats.acked++;
        stats.ackedByConnection.set(connectionId, (stats.ackedByConnection.get(connectionId) ?? 0) + 1);
        return;
      }
      failure = String(res.statusCode);
      if (res.statusCode < 500) throw new Error(`${request.method} ${connectionId}: ${res.statusCode}`);
    } catch (err) {
      if (/^(PUT|PATCH) /.test((err as Error).message)) throw err;
      failure = 'network';
    }
    stats.failures[failure] = (stats.failures[failure] ?? 0) + 1;
    await sleep(50);
    instance = instances.find((i) => i.alive) ?? instance;
  }
  throw new Error(`${request.method} ${connectionId}: failed 20 times`);
}

interface EventPageWire {
  events: Array<{ id: string; connection_id: string }>;
  next_cursor: string | null;
}

/** Every event in the log, through `GET /events` a page of 1000 at a time. */
async function listEvents(
  instance: Instance,
): Promise<{ eventIds: string[]; eventsByConnection: Map<string, number> }> {
  const eventIds: string[] = [];
  const eventsByConnection = new Map<string, number>();
  let cursor: string | null = null;
  do {
    const res = await instance.pool.request({
      method: 'GET',
      path: `/events?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      headers: { authorization: `Bearer ${PROCESS_API_KEY}` },
    });
    if (res.statusCode !== 200) throw new Error(`GET /events: ${res.statusCode} ${await res.body.text()}`);
    const page = (await res.body.json()) as EventPageWire;
    for (const e of page.events) {
      eventIds.push(e.id);
      eventsByConnection.set(e.connection_id, (eventsByConnection.get(e.connection_id) ?? 0) + 1);
    }
    cursor = page.next_cursor;
  } while (cursor);
  return { eventIds, eventsByConnection };
}

/**
 * The event ids pending under the consumer of the process `pid` (named `<host>-<pid>-<random>`),
 * read from the webhook group: what it had read and not acknowledged when it died. A diagnostic
 * that reads the store's stream directly; if its layout differs, it says nothing.
 */
async function pendingOfProcess(raw: Redis, prefix: string, pid: number): Promise<string[]> {
  const stream = `${prefix}{events}`;
  try {
    const summary = (await raw.xpending(stream, 'webhooks')) as [number, string, string, Array<[string, string]>];
    const consumer = (summary[3] ?? []).find(([name]) => name.includes(`-${pid}-`))?.[0];
    if (!consumer) return [];
    const entries = (await raw.xpending(stream, 'webhooks', '-', '+', 100_000, consumer)) as Array<[string]>;
    const ids: string[] = [];
    for (const [entryId] of entries) {
      const [row] = (await raw.xrange(stream, entryId, entryId)) as Array<[string, string[]]>;
      const fields = row?.[1] ?? [];
      const at = fields.indexOf('id');
      if (at >= 0 && at % 2 === 0) ids.push(fields[at + 1]!);
    }
    return ids;
  } catch {
    return [];
  }
}

/** `latchkey_webhook_backlog` from the instance's /metrics: pending in the group plus unread. */
async function backlogOf(instance: Instance): Promise<number> {
  const res = await instance.pool.request({ method: 'GET', path: '/metrics' });
  const text = await res.body.text();
  const line = text.split('\n').find((l) => l.startsWith('latchkey_webhook_backlog '));
  return line ? Number(line.split(' ')[1]) : Number.NaN;
}

/** Prints the figures; returns how many events were lost. */
function report(r: RunResult, receiver: WebhookReceiver): number {
  const ids = new Set(r.eventIds);
  const lost = r.eventIds.filter((id) => !receiver.accepted.has(id)).length;
  let deliveries = 0;
  for (const [id, count] of receiver.accepted) if (ids.has(id)) deliveries += count;
  const unique = r.eventIds.length - lost;
  const repeats = deliveries - unique;
  const foreign = [...receiver.accepted.keys()].filter((id) => !ids.has(id)).length;
  // Writes answered 2xx with fewer events in the log than answers (the append follows the write).
  let unrecorded = 0;
  for (const [connectionId, acked] of r.stats.ackedByConnection)
    unrecorded += Math.max(0, acked - (r.eventsByConnection.get(connectionId) ?? 0));
  const end = r.drainedAt ?? performance.now();
  const held = new Set(r.heldByKilled);
  const arrivals = r.eventIds.filter((id) => !held.has(id)).map((id) => receiver.firstAccepted.get(id) ?? Infinity);
  const restDrainedAt = Math.max(r.upAt, ...arrivals);
  const backlogAfterUp = arrivals.filter((at) => at >= r.upAt).length;
  const heldArrivedAt = Math.max(r.killedAt, ...r.heldByKilled.map((id) => receiver.firstAccepted.get(id) ?? Infinity));
  const out = [
    `${r.stats.acked} writes answered (PUT import + PATCH metadata) in ${seconds(r.writtenAt - r.startedAt)} ` +
      `(${((r.stats.acked * 1000) / (r.writtenAt - r.startedAt)).toFixed(0)} writes/s over two instances, then one); ` +
      `failed attempts sent again: ${JSON.stringify(r.stats.failures)}`,
    `one instance SIGKILLed at ${seconds(r.killedAt - r.startedAt)}; receiver down ${seconds(r.downAt - r.startedAt)}` +
      `–${seconds(r.upAt - r.startedAt)} (503 for ${seconds(OUTAGE_MS / 2)}, then port closed), ` +
      `${receiver.refused()} deliveries answered 503; ${r.missingAtUp} events not yet arrived when it came back`,
    `events in the log (GET /events): ${r.eventIds.length}; writes answered without their event in the log: ${unrecorded}`,
    `lost: ${lost} (target 0) ${lost === 0 ? 'met' : 'MISSED'}; deliveries failing a signature check: ${receiver.rejected()}` +
      `; ids not in the log: ${foreign}`,
    `repeats: ${repeats} of ${deliveries} accepted deliveries (${((100 * repeats) / Math.max(1, deliveries)).toFixed(2)}%)`,
    r.drainedAt === null
      ? `NOT drained within ${seconds(DRAIN_MS)} of the writes: backlog ${r.backlogAtEnd}`
      : `drained ${seconds(r.drainedAt - r.upAt)} after the receiver came back; backlog 0`,
    `  the ${r.heldByKilled.length} events the killed instance held (read, not acknowledged): last arrived ` +
      `${seconds(heldArrivedAt - r.killedAt)} after the kill (claimed by the survivor once idle 60 s); ` +
      `all the others: ${seconds(restDrainedAt - r.upAt)} after the receiver came back`,
    `events/s: ${((unique * 1000) / (end - r.startedAt)).toFixed(0)} from the first write to the last event arrived ` +
      `(kill, outage and claim wait included); the backlog after the receiver came back (${backlogAfterUp} ` +
      `events, the killed instance's left out): ${((backlogAfterUp * 1000) / Math.max(1, restDrainedAt - r.upAt)).toFixed(0)}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  return lost;
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(`webhooks bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
