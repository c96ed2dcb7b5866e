import { createHmac, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import axios, { type AxiosInstance } from 'axios';
import { Gauge, type Registry } from 'prom-client';
import { systemClock, type Clock } from '../clock';
import type { ConnectionEvent } from '../events';
import type { Logger } from '../logger';
import type { EventConsumer, EventDelivery, Store } from '../store';
import { signWebhookBody } from './webhooks';

export type DeliveryResult = 'delivered' | 'failed' | 'dead';

export interface WebhookDeliveryOptions {
  store: Store;
  url: string;
  /** WEBHOOK_SECRET split on commas: one signature per secret in each signature header. */
  secrets: string[];
  /** This instance's name in the consumer group; default host, pid and a random part. */
  consumerName?: string;
  /** How long a delivery is retried before it is dead (from the event, or from its retry). */
  maxAgeMs: number;
  http?: AxiosInstance;
  clock?: Clock;
  logger?: Logger;
  /** Told about every attempt's result (metrics). */
  onResult?: (result: DeliveryResult) => void;
  /** First retry delay, doubled each attempt, capped by `maxDelayMs`. Defaults 1000 and 300000. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per-attempt timeout. Default 10000. */
  timeoutMs?: number;
  /** Deliveries held at once (in flight or waiting for their retry). Default 100. */
  maxHeld?: number;
  /** A pending entry unacknowledged this long (its holder died) is claimed. Default 60000. */
  claimIdleMs?: number;
  /** How long one read waits for new events. Default 5000. */
  blockMs?: number;
  /** On close, how long deliveries in flight may still finish before they are abandoned. Default 5000. */
  closeGraceMs?: number;
}

/** A delivery this instance holds whose last attempt failed, waiting for its retry (the operator console shows them). */
export interface RetryingDelivery {
  event: EventDelivery['event'];
  attempts: number;
  /** `status 503`, `network ECONNREFUSED`…: never a body or a header. */
  lastFailure: string;
  nextAttemptAt: number;
}

export interface WebhookDelivery {
  /** Deliveries held: in flight or waiting for a retry. */
  held(): number;
  /** The held deliveries whose last attempt failed, oldest event first. */
  retrying(): RetryingDelivery[];
  /**
   * Stops: no new reads, retries cancelled, deliveries in flight get `closeGraceMs` to finish
   * and are then abandoned. Whatever was not acknowledged stays pending for another instance (or
   * this one after a restart). Idempotent.
   */
  close(): Promise<void>;
}

/** `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` per secret, space-separated (Standard Webhooks). */
export function signStandardWebhook(secrets: string[], id: string, timestamp: number, body: string): string {
  return secrets
    .map((secret) => {
      const mac = createHmac('sha256', Buffer.from(secret, 'utf8'))
        .update(`${id}.${timestamp}.${body}`)
        .digest('base64');
      return `v1,${mac}`;
    })
    .join(' ');
}

/** The webhook's body: the contract's `{ id, type, provider, connection_id, at, detail }`. */
export function webhookBody(delivery: EventDelivery): string {
  const { event } = delivery;
  const body: Required<ConnectionEvent> = {
    id: event.id,
    type: event.type,
    provider: event.provider,
    connection_id: event.connectionId,
    at: new Date(event.at).toISOString(),
    detail: event.detail,
  };
  return JSON.stringify(body);
}

interface Held {
  delivery: EventDelivery;
  attempts: number;
  timer?: NodeJS.Timeout;
  controller?: AbortController;
  inFlight?: Promise<void>;
  lastFailure?: string;
  nextAttemptAt?: number;
}

/**
 * Delivers the event log to `url` at least once (CONTRACT "Events and webhooks"), as one member
 * of the log's `webhooks` consumer group: any instance may deliver, each entry goes to one of
 * them, and an entry is acknowledged only after the receiver answered 2xx. A refused or failed
 * attempt is retried after a backoff (`baseDelayMs`, doubling, capped at `maxDelayMs`) while the
 * entry stays pending under this consumer (its idle time reset so no one else claims it); past
 * `maxAgeMs` it is dead: recorded, retryable, and acknowledged. The entries of an instance that
 * died (SIGKILL) stay pending and are claimed by whoever sees them idle for `claimIdleMs`.
 *
 * Nothing here runs on a request's path: the recorder appends, this reads.
 */
export function startWebhookDelivery(options: WebhookDeliveryOptions): WebhookDelivery {
  const http = options.http ?? axios.create();
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  const name = options.consumerName ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const baseDelayMs = options.baseDelayMs ?? 1000;
  const maxDelayMs = options.maxDelayMs ?? 300_000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxHeld = options.maxHeld ?? 100;
  const claimIdleMs = options.claimIdleMs ?? 60_000;
  const blockMs = options.blockMs ?? 5000;
  const closeGraceMs = options.closeGraceMs ?? 5000;

  const held = new Map<string, Held>();
  let consumer: EventConsumer | undefined;
  let closed = false;
  let wakeLoop: (() => void) | undefined;
  const wake = () => wakeLoop?.();

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeLoop = undefined;
        resolve();
      }
      wakeLoop = done;
    });

  const release = (h: Held) => {
    held.delete(h.delivery.entryId);
    wake();
  };

  const post = async (h: Held): Promise<string | null> => {
    const { delivery } = h;
    const body = webhookBody(delivery);
    const timestamp = Math.floor(clock.now() / 1000);
    h.controller = new AbortController();
    try {
      const res = await http.post(options.url, body, {
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'Latchkey-Webhooks',
          'Latchkey-Signature': options.secrets.map((secret) => signWebhookBody(secret, body)).join(' '),
          'Latchkey-Event-Id': delivery.event.id,
          'webhook-id': delivery.event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signStandardWebhook(options.secrets, delivery.event.id, timestamp, body),
        },
        transformRequest: [(data: unknown) => data],
        timeout: timeoutMs,
        maxRedirects: 0,
        signal: h.controller.signal,
        validateStatus: () => true,
      });
      return res.status >= 200 && res.status < 300 ? null : `status ${res.status}`;
    } catch (err) {
      return `network ${(err as { code?: string }).code ?? 'error'}`;
    } finally {
      h.controller = undefined;
    }
  };

  const attempt = async (h: Held): Promise<void> => {
    if (closed) return release(h);
    h.attempts += 1;
    const { delivery } = h;
    const failure = await post(h);
    const fields = { eventId: delivery.event.id, type: delivery.event.type, attempt: h.attempts };
    if (failure === null) {
      try {
        await consumer!.ack(delivery.entryId);
      } catch (err) {
        // Still pending: it will be delivered again (at least once), never lost.
        logger?.warn({ ...fields, err }, 'webhook delivered but not acknowledged; it will be sent again');
      }
      options.onResult?.('delivered');
      return release(h);
    }
    options.onResult?.('failed');
    if (closed) return release(h);
    logger?.warn({ ...fields, failure }, 'webhook delivery failed');
    if (clock.now() - delivery.since >= options.maxAgeMs) {
      try {
        await consumer!.bury(delivery, h.attempts, failure);
        options.onResult?.('dead');
        logger?.error({ ...fields, failure }, 'webhook delivery dead: retried for WEBHOOK_MAX_AGE_HOURS');
      } catch (err) {
        logger?.warn({ ...fields, err }, 'dead webhook delivery not recorded; it stays pending');
      }
      return release(h);
    }
    const backoff = Math.min(maxDelayMs, baseDelayMs * 2 ** (h.attempts - 1));
    const delay = Math.round(backoff * (0.8 + Math.random() * 0.2));
    h.lastFailure = failure;
    h.nextAttemptAt = clock.now() + delay;
    h.timer = setTimeout(() => {
      h.timer = undefined;
      h.inFlight = attempt(h);
    }, delay);
  };

  const take = (delivery: EventDelivery) => {
    if (held.has(delivery.entryId) || closed) return;
    const h: Held = { delivery, attempts: 0 };
    held.set(delivery.entryId, h);
    h.inFlight = attempt(h);
  };

  // Entries waiting for a retry stay ours: their idle time is reset well before anyone may claim them.
  const toucher = setInterval(
    () => {
      if (!consumer || !held.size) return;
      consumer.touch([...held.keys()]).catch((err: unknown) => logger?.warn({ err }, 'webhook claims not renewed'));
    },
    Math.max(50, Math.floor(claimIdleMs / 3)),
  );
  toucher.unref();

  const loop = async () => {
    let failures = 0;
    let lastClaim = Number.NEGATIVE_INFINITY;
    while (!closed) {
      try {
        if (!consumer) {
          const joined = await options.store.eventLog.consumer(name);
          if (closed) {
            await joined.close();
            break;
          }
          consumer = joined;
        }
        const free = maxHeld - held.size;
        if (free <= 0) {
          await pause(blockMs);
          continue;
        }
        if (performance.now() - lastClaim >= claimIdleMs / 2) {
          lastClaim = performance.now();
          for (const delivery of await consumer.claimStale(claimIdleMs, free)) take(delivery);
          continue;
        }
        for (const delivery of await consumer.read(Math.min(free, 100), blockMs)) take(delivery);
        failures = 0;
      } catch (err) {
        failures += 1;
        if (closed) break;
        logger?.warn({ err, failures }, 'webhook delivery: the event log did not answer; trying again');
        await pause(Math.min(5000, 100 * 2 ** failures));
      }
    }
  };
  const looping = loop();

  let closing: Promise<void> | undefined;
  return {
    held: () => held.size,
    retrying: () =>
      [...held.values()]
        .filter((h) => h.lastFailure !== undefined)
        .map((h) => ({
          event: h.delivery.event,
          attempts: h.attempts,
          lastFailure: h.lastFailure!,
          nextAttemptAt: h.nextAttemptAt!,
        }))
        .sort((a, b) => a.event.at - b.event.at),
    close: () =>
      (closing ??= (async () => {
        closed = true;
        clearInterval(toucher);
        wake();
        for (const h of held.values()) {
          if (h.timer) {
            clearTimeout(h.timer);
            held.delete(h.delivery.entryId);
          }
        }
        await consumer?.close();
        const inFlight = [...held.values()].map((h) => h.inFlight);
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, closeGraceMs)));
        await Promise.race([Promise.all(inFlight), grace]);
        clearTimeout(timer);
        // Abandoned, not acknowledged: another instance delivers them.
        for (const h of held.values()) h.controller?.abort();
        await Promise.all(inFlight);
        await looping;
      })()),
  };
}

/**
 * `latchkey_webhook_backlog`: entries pending in the webhook group plus those it has not read
 * yet, read from the store on each scrape (one XINFO GROUPS on Redis). Registered once per
 * registry; a store that does not answer leaves the last value.
 */
export function registerBacklogGauge(registry: Registry, store: Store): void {
  if (registry.getSingleMetric('latchkey_webhook_backlog')) return;
  new Gauge({
    name: 'latchkey_webhook_backlog',
    help: 'Webhook deliveries pending or not yet read from the event log',
    registers: [registry],
    async collect() {
      try {
        this.set(await store.eventLog.backlog());
      } catch {
        // Keep the last value: a scrape must not fail because the store is down.
      }
    },
  });
}
