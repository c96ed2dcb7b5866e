import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import axios, { type AxiosInstance } from 'axios';
import { systemClock, type Clock } from '../clock';
import type { ConnectionEvent, ConnectionEventType, EventSink } from '../events';
import type { Logger } from '../logger';

export interface WebhookSinkOptions {
  url: string;
  /** HMAC-SHA256 key of `Latchkey-Signature`. */
  secret: string;
  http?: AxiosInstance;
  clock?: Clock;
  logger?: Logger;
  /** Deliveries kept waiting (queued or between retries); beyond it the oldest waiting one is dropped. Default 1000. */
  maxQueue?: number;
  /** Attempts per event, the first included. Default 6 (about a minute of retries). */
  maxAttempts?: number;
  /** First retry delay, doubled each time (with jitter), capped by `maxDelayMs`. Defaults 1000 and 30000. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per-attempt timeout. Default 5000. */
  timeoutMs?: number;
  /** Deliveries in flight at once. Default 4. */
  concurrency?: number;
}

/** An {@link EventSink} that POSTs to a webhook, in the background. */
export interface WebhookSink extends EventSink {
  /** Deliveries queued, in flight or waiting for a retry. */
  pending(): number;
  /** Resolves once nothing is pending (every event delivered or given up on). */
  drain(): Promise<void>;
  /** Stops: cancels retries, aborts requests in flight, drops the queue. */
  close(): void;
}

interface Delivery {
  id: string;
  type: ConnectionEventType;
  body: string;
  signature: string;
  attempt: number;
}

/** `sha256=<hex HMAC-SHA256 of the raw body>`, the value of `Latchkey-Signature`. */
export function signWebhookBody(secret: string, rawBody: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

/**
 * For receivers: true when `header` holds the signature of `rawBody` (the bytes as received,
 * before any JSON parsing), compared in constant time. During a rotation of WEBHOOK_SECRET the
 * header holds one signature per secret, space-separated; one that matches is enough.
 */
export function verifyWebhookSignature(secret: string, rawBody: string | Buffer, header: string | undefined): boolean {
  if (typeof header !== 'string') return false;
  const expected = Buffer.from(signWebhookBody(secret, rawBody));
  return header
    .trim()
    .split(/\s+/)
    .some((one) => {
      const given = Buffer.from(one);
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}

/**
 * Delivers the contract's connection events as `POST url` with JSON
 * `{ type, provider, connection_id, at }` and `Latchkey-Signature`. `emit` only queues and
 * returns: a slow or failing receiver never delays a request. Failures (network, timeout,
 * non-2xx) are retried with exponential backoff; the queue is bounded so a dead receiver cannot
 * grow memory without limit. `Latchkey-Event-Id` stays the same across retries, for dedupe.
 */
export function createWebhookSink(options: WebhookSinkOptions): WebhookSink {
  const http = options.http ?? axios.create();
  const clock = options.clock ?? systemClock;
  const maxQueue = options.maxQueue ?? 1000;
  const maxAttempts = options.maxAttempts ?? 6;
  const baseDelayMs = options.baseDelayMs ?? 1000;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const concurrency = options.concurrency ?? 4;

  const queue: Delivery[] = [];
  const waiting = new Map<NodeJS.Timeout, Delivery>();
  const inFlight = new Set<AbortController>();
  let drained: Array<() => void> = [];
  let closed = false;

  const pending = () => queue.length + waiting.size + inFlight.size;

  const settle = () => {
    if (pending() > 0) return;
    const resolvers = drained;
    drained = [];
    for (const resolve of resolvers) resolve();
  };

  const dropOldestWaiting = (): boolean => {
    const dropped = queue.shift() ?? takeOldestRetry();
    if (dropped)
      options.logger?.warn(
        { type: dropped.type, eventId: dropped.id },
        'webhook queue full; dropping the oldest event',
      );
    return dropped !== undefined;
  };

  const takeOldestRetry = (): Delivery | undefined => {
    const first = waiting.entries().next();
    if (first.done) return undefined;
    const [timer, delivery] = first.value;
    clearTimeout(timer);
    waiting.delete(timer);
    return delivery;
  };

  const pump = () => {
    while (!closed && inFlight.size < concurrency && queue.length > 0) void deliver(queue.shift()!);
    settle();
  };

  const scheduleRetry = (delivery: Delivery) => {
    const backoff = Math.min(maxDelayMs, baseDelayMs * 2 ** (delivery.attempt - 1));
    const timer = setTimeout(
      () => {
        waiting.delete(timer);
        queue.push(delivery);
        pump();
      },
      Math.round(backoff * (0.5 + Math.random() / 2)),
    );
    timer.unref();
    waiting.set(timer, delivery);
  };

  const deliver = async (delivery: Delivery) => {
    const controller = new AbortController();
    inFlight.add(controller);
    delivery.attempt += 1;
    let ok = false;
    try {
      const res = await http.post(options.url, delivery.body, {
        headers: {
          'Content-Type': 'application/json',
          'Latchkey-Signature': delivery.signature,
          'Latchkey-Event-Id': delivery.id,
          'User-Agent': 'Latchkey-Webhooks',
        },
        transformRequest: [(data: unknown) => data],
        timeout: timeoutMs,
        maxRedirects: 0,
        signal: controller.signal,
        validateStatus: () => true,
      });
      ok = res.status >= 200 && res.status < 300;
      if (!ok)
        options.logger?.warn(
          { type: delivery.type, eventId: delivery.id, status: res.status, attempt: delivery.attempt },
          'webhook refused',
        );
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (!closed)
        options.logger?.warn(
          { type: delivery.type, eventId: delivery.id, code, attempt: delivery.attempt },
          'webhook delivery failed',
        );
    } finally {
      inFlight.delete(controller);
    }
    if (!ok && !closed) {
      if (delivery.attempt < maxAttempts) scheduleRetry(delivery);
      else
        options.logger?.error(
          { type: delivery.type, eventId: delivery.id, attempts: delivery.attempt },
          'webhook given up',
        );
    }
    pump();
  };

  return {
    emit(type, provider, connectionId) {
      if (closed) return;
      const event: ConnectionEvent = {
        type,
        provider,
        connection_id: connectionId,
        at: new Date(clock.now()).toISOString(),
      };
      const body = JSON.stringify(event);
      while (queue.length + waiting.size >= maxQueue && dropOldestWaiting());
      queue.push({ id: randomUUID(), type, body, signature: signWebhookBody(options.secret, body), attempt: 0 });
      // Deliveries start on a later tick: emit() stays synchronous and cheap for the caller.
      setImmediate(pump);
    },
    pending,
    drain() {
      if (pending() === 0) return Promise.resolve();
      return new Promise<void>((resolve) => drained.push(resolve));
    },
    close() {
      closed = true;
      for (const timer of waiting.keys()) clearTimeout(timer);
      waiting.clear();
      queue.length = 0;
      for (const controller of inFlight) controller.abort();
      settle();
    },
  };
}
