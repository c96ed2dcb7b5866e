import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createWebhookSink, signWebhookBody, verifyWebhookSignature, type WebhookSink } from '../../src/client';
import { FakeClock } from '../../src/clock';

const SECRET = 'whsec-test-0123456789';

interface Received {
  raw: string;
  headers: IncomingHttpHeaders;
}

/** A loopback receiver answering each delivery with the next status of `script` (the last one repeats); 0 = never answer. */
async function startReceiver(script: number[]): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ raw: Buffer.concat(chunks).toString(), headers: req.headers });
      const status = script[Math.min(received.length - 1, script.length - 1)] ?? 200;
      if (status !== 0) res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('webhook sink', () => {
  const clock = new FakeClock(Date.UTC(2026, 2, 3, 4, 5, 6));
  let sink: WebhookSink | undefined;
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;

  afterEach(async () => {
    sink?.close();
    await receiver?.close();
    sink = undefined;
    receiver = undefined;
  });

  it('queues on emit without waiting, then POSTs the contract body signed with HMAC-SHA256 of the raw bytes', async () => {
    receiver = await startReceiver([204]);
    sink = createWebhookSink({ url: receiver.url, secret: SECRET, clock });
    sink.emit('connection.refreshed', 'videoask', 'user-1');
    expect(sink.pending()).toBe(1);
    expect(receiver.received).toHaveLength(0);
    await sink.drain();

    expect(receiver.received).toHaveLength(1);
    const { raw, headers } = receiver.received[0]!;
    expect(JSON.parse(raw)).toEqual({
      type: 'connection.refreshed',
      provider: 'videoask',
      connection_id: 'user-1',
      at: '2026-03-03T04:05:06.000Z',
    });
    expect(headers['content-type']).toBe('application/json');
    expect(headers['latchkey-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`);
    expect(verifyWebhookSignature(SECRET, raw, headers['latchkey-signature'] as string)).toBe(true);
  });

  it('retries a failing receiver with backoff, sending the same event and signature each time', async () => {
    receiver = await startReceiver([500, 503, 200]);
    sink = createWebhookSink({ url: receiver.url, secret: SECRET, clock, baseDelayMs: 5 });
    sink.emit('connection.reauth_required', 'videoask', 'user-2');
    await sink.drain();
    expect(receiver.received).toHaveLength(3);
    expect(new Set(receiver.received.map((r) => r.raw)).size).toBe(1);
    expect(new Set(receiver.received.map((r) => r.headers['latchkey-event-id'])).size).toBe(1);
    expect(new Set(receiver.received.map((r) => r.headers['latchkey-signature'])).size).toBe(1);
  });

  it('gives up after the attempt bound', async () => {
    receiver = await startReceiver([500]);
    sink = createWebhookSink({ url: receiver.url, secret: SECRET, clock, baseDelayMs: 1, maxAttempts: 3 });
    sink.emit('connection.deleted', 'videoask', 'user-3');
    await sink.drain();
    expect(receiver.received).toHaveLength(3);
    expect(sink.pending()).toBe(0);
  });

  it('bounds its queue when the receiver hangs, dropping the oldest waiting event', async () => {
    receiver = await startReceiver([0]);
    sink = createWebhookSink({
      url: receiver.url,
      secret: SECRET,
      clock,
      concurrency: 1,
      maxQueue: 2,
      timeoutMs: 60_000,
    });
    for (let i = 0; i < 5; i++) sink.emit('connection.created', 'videoask', `user-${i}`);
    expect(sink.pending()).toBe(2);
    await waitFor(() => receiver!.received.length === 1);
    // The first of the two kept went out (and hangs); the older three were dropped.
    expect(JSON.parse(receiver.received[0]!.raw).connection_id).toBe('user-3');
    for (let i = 5; i < 8; i++) sink.emit('connection.created', 'videoask', `user-${i}`);
    // One in flight plus at most two waiting.
    expect(sink.pending()).toBe(3);
    sink.close();
    await sink.drain();
    expect(sink.pending()).toBe(0);
  });

  it('refuses a signature made with another secret, over another body, or missing', () => {
    const body = '{"type":"connection.created"}';
    const signature = signWebhookBody(SECRET, body);
    expect(verifyWebhookSignature(SECRET, body, signature)).toBe(true);
    expect(verifyWebhookSignature('another-secret-0123456', body, signature)).toBe(false);
    expect(verifyWebhookSignature(SECRET, `${body} `, signature)).toBe(false);
    expect(verifyWebhookSignature(SECRET, body, undefined)).toBe(false);
    expect(verifyWebhookSignature(SECRET, body, 'sha256=00')).toBe(false);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
