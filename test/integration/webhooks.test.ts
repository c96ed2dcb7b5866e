import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import supertest from 'supertest';
import { createApp } from '../../src/app';
import { createWebhookSink, verifyWebhookSignature, type WebhookSink } from '../../src/client';
import { createLogger } from '../../src/logger';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { seedConnection, waitUntil } from '../helpers/latchkey-process';

const SECRET = 'webhook-secret-0123456789abcdef';

interface Receiver {
  url: string;
  received: Array<{ raw: string; headers: IncomingHttpHeaders }>;
  /** Status to answer with; 0 = never answer. */
  status: number;
  close(): Promise<void>;
}

async function startReceiver(status: number): Promise<Receiver> {
  const receiver = { received: [], status } as unknown as Receiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.received.push({ raw: Buffer.concat(chunks).toString(), headers: req.headers });
      if (receiver.status !== 0) res.writeHead(receiver.status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/latchkey-events`;
  receiver.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return receiver;
}

const eventsOf = (receiver: Receiver) =>
  receiver.received.map((r) => JSON.parse(r.raw) as { type: string; connection_id: string });

describe('webhooks', () => {
  describe('configured with WEBHOOK_URL and WEBHOOK_SECRET', () => {
    let receiver: Receiver;
    let h: Harness;

    beforeAll(async () => {
      receiver = await startReceiver(204);
      h = await startHarness({ env: { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: SECRET, REFRESH_COOLDOWN_MS: '0' } });
    });
    afterAll(async () => {
      await h.close();
      await receiver.close();
    });

    it('signs every event with HMAC-SHA256 of the raw body, verifiable with the secret', async () => {
      await seedConnection(h.store, h.sandbox, {
        connectionId: 'hooked',
        expiresAt: Date.now() + 3600_000,
        now: Date.now(),
      });
      expect((await h.api().post('/connections/videoask/hooked/refresh')).status).toBe(200);
      h.sandbox.failNextTokenRequests(1, 503);
      expect((await h.api().post('/connections/videoask/hooked/refresh')).status).toBe(502);
      const stored = await h.store.getConnection('videoask', 'hooked');
      await h.store.updateConnection(
        { ...stored!, credentials: { ...stored!.credentials, refreshToken: 'sbx_rt_unknown' } },
        stored!.version,
      );
      expect((await h.api().post('/connections/videoask/hooked/refresh')).status).toBe(409);

      await waitUntil(() => receiver.received.length === 3);
      expect(
        eventsOf(receiver)
          .map((e) => e.type)
          .sort(),
      ).toEqual(['connection.reauth_required', 'connection.refresh_failed', 'connection.refreshed']);
      for (const { raw, headers } of receiver.received) {
        expect(JSON.parse(raw)).toEqual({
          id: expect.stringMatching(/^evt_/),
          type: expect.any(String),
          provider: 'videoask',
          connection_id: 'hooked',
          at: expect.any(String),
          detail: expect.any(Object),
        });
        expect(headers['latchkey-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`);
        expect(verifyWebhookSignature(SECRET, raw, headers['latchkey-signature'] as string)).toBe(true);
        expect(verifyWebhookSignature('not-the-secret-0123456789', raw, headers['latchkey-signature'] as string)).toBe(
          false,
        );
      }
    });
  });

  describe('metrics of deliveries', () => {
    let receiver: Receiver;
    let h: Harness;

    beforeAll(async () => {
      receiver = await startReceiver(204);
      h = await startHarness({ env: { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: SECRET } });
    });
    afterAll(async () => {
      await h.close();
      await receiver.close();
    });

    it('counts deliveries by result and reports the backlog on /metrics', async () => {
      await seedConnection(h.store, h.sandbox, {
        connectionId: 'counted',
        expiresAt: Date.now() + 3600_000,
        now: Date.now(),
      });
      expect((await h.api().post('/connections/videoask/counted/refresh')).status).toBe(200);
      await waitUntil(() => receiver.received.length === 1);
      await waitUntil(async () => (await h.store.eventLog.backlog()) === 0);
      const text = (await supertest(h.app).get('/metrics')).text;
      expect(text).toMatch(/^latchkey_webhook_deliveries_total\{result="delivered"\} 1$/m);
      expect(text).toMatch(/^latchkey_webhook_backlog 0$/m);
    });
  });

  describe('with a failing receiver', () => {
    let h: Harness;
    let sink: WebhookSink;
    let receiver: Receiver;

    beforeAll(async () => {
      h = await startHarness({ sandbox: { rotation: 'none' } });
    });
    afterAll(async () => h.close());
    afterEach(async () => {
      sink.close();
      await receiver.close();
    });

    const appWith = (status: number) =>
      startReceiver(status).then((r) => {
        receiver = r;
        sink = createWebhookSink({ url: r.url, secret: SECRET, baseDelayMs: 20, timeoutMs: 60_000 });
        return createApp({
          config: h.config,
          store: h.store,
          providers: h.providers,
          events: sink,
          logger: createLogger('silent'),
        }).handler;
      });

    it('a receiver that never answers holds up no request', async () => {
      const app = await appWith(0);
      await seedConnection(h.store, h.sandbox, {
        connectionId: 'hung',
        expiresAt: Date.now() + 3600_000,
        now: Date.now(),
      });
      for (let i = 0; i < 10; i++) {
        const res = await supertest(app)
          .post('/connections/videoask/hung/refresh')
          .set('Authorization', `Bearer ${TEST_API_KEY}`);
        expect(res.status).toBe(200);
      }
      // Every event is still undelivered (the receiver holds each one open), yet every request finished.
      await waitUntil(() => receiver.received.length >= 1);
      expect(sink.pending()).toBe(10);
    });

    it('a receiver answering 500 gets retries while requests carry on', async () => {
      const app = await appWith(500);
      await seedConnection(h.store, h.sandbox, {
        connectionId: 'failing',
        expiresAt: Date.now() + 3600_000,
        now: Date.now(),
      });
      const res = await supertest(app)
        .post('/connections/videoask/failing/refresh')
        .set('Authorization', `Bearer ${TEST_API_KEY}`);
      expect(res.status).toBe(200);
      await waitUntil(() => receiver.received.length >= 3);
      const ids = new Set(receiver.received.map((r) => r.headers['latchkey-event-id']));
      expect(ids.size).toBe(1);
      expect(eventsOf(receiver)[0]).toMatchObject({ type: 'connection.refreshed', connection_id: 'failing' });
    });
  });
});
