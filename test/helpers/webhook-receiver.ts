import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedDelivery {
  raw: string;
  headers: IncomingHttpHeaders;
  /** What the receiver answered. */
  status: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedDelivery[];
  /** What to answer next; 0 holds the request open (a receiver that hangs). */
  status: number;
  /** Ids answered with a 2xx. */
  delivered(): Set<string>;
  close(): Promise<void>;
}

/** A loopback `WEBHOOK_URL` that records every delivery and answers `status` (changeable meanwhile). */
export async function startWebhookReceiver(status = 204): Promise<WebhookReceiver> {
  const held: ServerResponse[] = [];
  const receiver = { received: [] as ReceivedDelivery[], status } as WebhookReceiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = receiver.status;
      receiver.received.push({ raw: Buffer.concat(chunks).toString(), headers: req.headers, status: answer });
      if (answer === 0) held.push(res);
      else res.writeHead(answer).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  receiver.delivered = () =>
    new Set(
      receiver.received.filter((r) => r.status >= 200 && r.status < 300).map((r) => r.headers['webhook-id'] as string),
    );
  receiver.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return receiver;
}
