import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { FakeClock } from '../../src/clock';
import { startWebhookDelivery, type DeliveryResult, type WebhookDelivery } from '../../src/client/webhook-delivery';
import { verifyWebhookSignature } from '../../src/client';
import { CredentialCipher, type EventInput, type LoggedEvent, type Store } from '../../src/store';
import { KvStore } from '../../src/store/kv-store';
import { MemoryBackend } from '../../src/store/memory-backend';
import { RedisBackend } from '../../src/store/redis-backend';
import { createRedisClient } from '../../src/store/redis-client';
import { startHarness } from '../helpers/harness';
import { testEncryptionKey } from '../helpers/keys';
import { startLatchkeyProcess, waitUntil } from '../helpers/latchkey-process';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';

/**
 * Webhooks delivered from the event log at least once (CONTRACT "Events and webhooks"): a
 * receiver down then up, signatures both ways with two secrets, dead after the max age and
 * retried, shutdown that acknowledges nothing unanswered, and a delivering process SIGKILLed.
 */

const SECRETS = ['new-webhook-secret-0123456789', 'old-webhook-secret-0123456789'];

/** A Standard Webhooks check, written here from the spec: `v1,<base64 HMAC-SHA256(id.timestamp.body)>`. */
function standardWebhookValid(secret: string, headers: IncomingHttpHeaders, raw: string, nowSeconds: number): boolean {
  const id = headers['webhook-id'] as string;
  const timestamp = Number(headers['webhook-timestamp']);
  if (!id || !Number.isInteger(timestamp) || Math.abs(nowSeconds - timestamp) > 5 * 60) return false;
  const expected = createHmac('sha256', Buffer.from(secret)).update(`${id}.${timestamp}.${raw}`).digest();
  return String(headers['webhook-signature'])
    .split(' ')
    .some((part) => {
      const [version, b64] = part.split(',');
      const given = Buffer.from(b64 ?? '', 'base64');
      return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
    });
}

const event = (clock: FakeClock, over: Partial<EventInput> = {}): EventInput => ({
  type: 'connection.refreshed',
  provider: 'videoask',
  connectionId: 'hooked',
  at: clock.now(),
  detail: { rotated: true },
  ...over,
});

type Opened = { store: Store; cleanup: () => Promise<void> };

async function openStore(kind: 'redis' | 'memory', clock: FakeClock, prefix = uniquePrefix('hooks')): Promise<Opened> {
  if (kind === 'memory') {
    const store = new KvStore({
      backend: new MemoryBackend(clock),
      cipher: new CredentialCipher([testEncryptionKey()]),
      clock,
      prefix,
    });
    return { store, cleanup: () => store.close() };
  }
  const client = createRedisClient({ redisUrl: TEST_REDIS_URL });
  client.on('error', () => {});
  const store = new KvStore({
    backend: new RedisBackend(client),
    cipher: new CredentialCipher([testEncryptionKey()]),
    clock,
    prefix,
  });
  if (!(await store.ready(5000))) throw new Error('Redis did not become ready');
  return {
    store,
    cleanup: async () => {
      const raw = rawRedis();
      await deleteUnder(raw, prefix);
      raw.disconnect();
      await store.close();
    },
  };
}

describe.each(['redis', 'memory'] as const)('webhooks from the %s event log', (kind) => {
  let clock: FakeClock;
  let opened: Opened;
  let receiver: WebhookReceiver;
  let delivery: WebhookDelivery | undefined;
  let results: DeliveryResult[];

  beforeEach(async () => {
    clock = new FakeClock(Date.now());
    opened = await openStore(kind, clock);
    results = [];
  });
  afterEach(async () => {
    await delivery?.close();
    delivery = undefined;
    await receiver?.close();
    await opened.cleanup();
  });

  const deliver = (over: Partial<Parameters<typeof startWebhookDelivery>[0]> = {}) =>
    startWebhookDelivery({
      store: opened.store,
      url: receiver.url,
      secrets: SECRETS,
      maxAgeMs: 24 * 3600_000,
      clock,
      baseDelayMs: 20,
      maxDelayMs: 200,
      blockMs: 200,
      onResult: (result) => results.push(result),
      ...over,
    });

  /** The webhook group is created when a first consumer joins; from then on every appended event is for it. */
  const joined = async () => {
    await (await opened.store.eventLog.consumer('setup')).close();
  };

  it('delivers every event once a receiver that was down comes back, signed both ways with each secret', async () => {
    receiver = await startWebhookReceiver(503);
    await joined();
    delivery = deliver();
    const appended: LoggedEvent[] = [];
    for (let i = 0; i < 12; i++) appended.push(await opened.store.eventLog.append(event(clock, { detail: { n: i } })));
    await waitUntil(() => receiver.received.filter((r) => r.status === 503).length >= 12);
    expect(results).toContain('failed');
    receiver.status = 204;
    await waitUntil(() => appended.every((e) => receiver.delivered().has(e.id)), 15_000);
    await waitUntil(async () => (await opened.store.eventLog.backlog()) === 0);

    for (const e of appended) {
      const got = receiver.received.find((r) => r.headers['webhook-id'] === e.id && r.status === 204)!;
      expect(JSON.parse(got.raw)).toEqual({
        id: e.id,
        type: 'connection.refreshed',
        provider: 'videoask',
        connection_id: 'hooked',
        at: new Date(e.at).toISOString(),
        detail: e.detail,
      });
      // Every attempt of one event carries the same webhook-id: receivers de-duplicate on it.
      const attempts = receiver.received.filter((r) => JSON.parse(r.raw).id === e.id);
      expect(new Set(attempts.map((r) => r.headers['webhook-id']))).toEqual(new Set([e.id]));
      const now = Math.floor(clock.now() / 1000);
      for (const secret of SECRETS) {
        expect(standardWebhookValid(secret, got.headers, got.raw, now)).toBe(true);
        expect(verifyWebhookSignature(secret, got.raw, got.headers['latchkey-signature'] as string)).toBe(true);
      }
      expect(standardWebhookValid('another-secret-0123456789', got.headers, got.raw, now)).toBe(false);
      expect(
        verifyWebhookSignature('another-secret-0123456789', got.raw, got.headers['latchkey-signature'] as string),
      ).toBe(false);
      expect(String(got.headers['webhook-signature']).split(' ')).toHaveLength(2);
      expect(String(got.headers['latchkey-signature']).split(' ')).toHaveLength(2);
    }
    expect(results.filter((r) => r === 'delivered').length).toBeGreaterThanOrEqual(12);
  });

  it('marks a delivery dead after the max age (fake clock), and a retry of it delivers the same event id', async () => {
    receiver = await startWebhookReceiver(500);
    await joined();
    delivery = deliver();
    const doomed = await opened.store.eventLog.append(event(clock, { type: 'connection.reauth_required' }));
    await waitUntil(() => receiver.received.some((r) => r.headers['webhook-id'] === doomed.id));
    clock.advance(24 * 3600_000 + 1);
    await waitUntil(async () => (await opened.store.eventLog.deadDeliveries(10)).some((d) => d.event.id === doomed.id));
    const [dead] = await opened.store.eventLog.deadDeliveries(10);
    expect(dead).toMatchObject({ event: doomed, lastError: 'status 500' });
    expect(dead!.attempts).toBeGreaterThanOrEqual(2);
    expect(results).toContain('dead');
    expect(await opened.store.eventLog.backlog()).toBe(0);

    receiver.status = 204;
    expect(await opened.store.eventLog.retryDead(doomed.id)).toBe(true);
    await waitUntil(() => receiver.delivered().has(doomed.id));
    expect(await opened.store.eventLog.deadDeliveries(10)).toEqual([]);
  });

  it('on close, acknowledges nothing the receiver did not answer, and another instance delivers it', async () => {
    receiver = await startWebhookReceiver(0);
    await joined();
    delivery = deliver({ closeGraceMs: 100 });
    const hung = await opened.store.eventLog.append(event(clock));
    await waitUntil(() => receiver.received.some((r) => r.headers['webhook-id'] === hung.id));
    await delivery.close();
    expect(await opened.store.eventLog.backlog()).toBe(1);

    receiver.status = 204;
    clock.advance(1000); // memory: idle by the store's clock; Redis: by its own
    delivery = deliver({ claimIdleMs: 300 });
    await waitUntil(() => receiver.delivered().has(hung.id), 15_000);
    await waitUntil(async () => (await opened.store.eventLog.backlog()) === 0);
  });
});

describe('a delivering process killed with SIGKILL', () => {
  it('loses no event: another instance claims what it held and delivers it', async () => {
    const h = await startHarness();
    const clock = new FakeClock(Date.now());
    const receiver = await startWebhookReceiver(0);
    const child = await startLatchkeyProcess({
      sandboxUrl: h.sandboxUrl,
      prefix: h.prefix,
      encryptionKeys: h.config.tokenEncryptionKeys,
      env: { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: SECRETS.join(',') },
    });
    let other: WebhookDelivery | undefined;
    try {
      const raw = rawRedis();
      await waitUntil(async () => {
        const groups = (await raw.xinfo('GROUPS', `${h.prefix}{events}`).catch(() => [])) as unknown[][];
        return groups.length === 1;
      });
      raw.disconnect();
      const appended: LoggedEvent[] = [];
      for (let i = 0; i < 10; i++) appended.push(await h.store.eventLog.append(event(clock, { detail: { n: i } })));
      // The child holds every one of them open at the receiver, then dies mid-delivery.
      await waitUntil(() => appended.every((e) => receiver.received.some((r) => r.headers['webhook-id'] === e.id)));
      expect((await child.kill('SIGKILL')).signal).toBe('SIGKILL');
      expect(await h.store.eventLog.backlog()).toBe(10);

      receiver.status = 204;
      other = startWebhookDelivery({
        store: h.store,
        url: receiver.url,
        secrets: SECRETS,
        maxAgeMs: 24 * 3600_000,
        claimIdleMs: 300,
        blockMs: 200,
      });
      await waitUntil(() => appended.every((e) => receiver.delivered().has(e.id)), 20_000);
      await waitUntil(async () => (await h.store.eventLog.backlog()) === 0);
    } finally {
      await other?.close();
      await child.kill('SIGKILL');
      await receiver.close();
      await h.close();
    }
  }, 60_000);
});
