import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { verifyWebhookSignature as verifyStandardWebhook } from '../../packages/client/src/index';
import { verifyWebhookSignature as verifyLatchkeySignature } from '../../src/client/webhooks';

/**
 * How the receiver answers: `up` 204 to a delivery signed both ways, `refusing` 503 to every
 * delivery, `closed` not listening at all (connections refused, those open destroyed).
 */
export type ReceiverMode = 'up' | 'refusing' | 'closed';

/**
 * A webhook receiver for the benchmarks, in the benchmark's own process: it checks both
 * signatures of every delivery (Standard Webhooks `webhook-signature` with the client package's
 * verifier, `Latchkey-Signature` with Latchkey's) and that the body's `id` is the `webhook-id`,
 * answers 400 to one that fails (so Latchkey retries it, and it counts as not arrived), and
 * records the ids it accepted: how often, and when first.
 */
export interface WebhookReceiver {
  url: string;
  mode(): ReceiverMode;
  /** Switches mode; `closed` resolves once the port is closed, `up`/`refusing` once it listens again. */
  setMode(mode: ReceiverMode): Promise<void>;
  /** Accepted deliveries by `webhook-id`. */
  readonly accepted: Map<string, number>;
  /** When each id was first accepted (performance.now()). */
  readonly firstAccepted: Map<string, number>;
  /** Deliveries answered 503 while `refusing`. */
  refused(): number;
  /** Deliveries whose signature (either) or id did not check; each answered 400. */
  rejected(): number;
  close(): Promise<void>;
}

export async function startWebhookReceiver(secret: string): Promise<WebhookReceiver> {
  let mode: ReceiverMode = 'up';
  let refused = 0;
  let rejected = 0;
  const accepted = new Map<string, number>();
  const firstAccepted = new Map<string, number>();

  const checks = (raw: string, req: IncomingMessage): boolean => {
    const id = req.headers['webhook-id'];
    if (typeof id !== 'string') return false;
    if (!verifyStandardWebhook({ secret, body: raw, headers: req.headers })) return false;
    if (!verifyLatchkeySignature(secret, raw, req.headers['latchkey-signature'] as string | undefined)) return false;
    try {
      return (JSON.parse(raw) as { id?: unknown }).id === id;
    } catch {
      return false;
    }
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (mode === 'refusing') {
        refused++;
        res.writeHead(503).end();
        return;
      }
      const raw = Buffer.concat(chunks).toString('utf8');
      if (!checks(raw, req)) {
        rejected++;
        res.writeHead(400).end();
        return;
      }
      const id = req.headers['webhook-id'] as string;
      accepted.set(id, (accepted.get(id) ?? 0) + 1);
      if (!firstAccepted.has(id)) firstAccepted.set(id, performance.now());
      res.writeHead(204).end();
    });
  };

  let server: Server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  const shut = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  // The same port again: Latchkey's WEBHOOK_URL does not change.
  const reopen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer(handle);
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });

  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    mode: () => mode,
    async setMode(next) {
      if (next === mode) return;
      const wasClosed = mode === 'closed';
      mode = next;
      if (next === 'closed') await shut();
      else if (wasClosed) await reopen();
    },
    accepted,
    firstAccepted,
    refused: () => refused,
    rejected: () => rejected,
    close: () => (mode === 'closed' ? Promise.resolve() : shut()),
  };
}
