import { createServer, request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Not a jest helper only: no jest globals here, like latchkey-process.ts. */

/** Where a held exchange waits: before the provider sees the request, or after it answered. */
export type HoldStage = 'request' | 'response';

/** Exchanges held at the gate until the test releases them. */
export interface Hold {
  /** Exchanges held so far: requests received (`request`), or provider answers received (`response`). */
  readonly count: number;
  /** Resolves once `n` exchanges are held. */
  arrival(n?: number): Promise<void>;
  /** Lets every held exchange through, and later ones too; resolves when the held ones are finished. */
  release(): Promise<void>;
}

export interface ProviderGate {
  url: string;
  /**
   * From now on holds the requests `match` picks, until `release()`: the provider answers when the
   * test says so, not after a fixed delay that a loaded machine can outrun. At `response`, the
   * provider has already acted on the request (a refresh token is rotated) and only its answer waits.
   */
  hold(options: { match: (req: IncomingMessage) => boolean; stage: HoldStage }): Hold;
  /** Releases whatever is held and stops listening. */
  close(): Promise<void>;
}

/** Token requests, whatever the grant. */
export const tokenRequests = (req: IncomingMessage): boolean =>
  req.method === 'POST' && (req.url ?? '').split('?')[0] === '/oauth/token';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'proxy-connection']);

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)));
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request to `target`, body and answer buffered (the sandbox's answers are small). */
function forward(target: URL, req: IncomingMessage, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...endToEnd(req.headers), 'content-length': String(body.length) },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    upstream.on('error', reject);
    upstream.end(body);
  });
}

/**
 * A loopback HTTP server in front of the sandbox provider (`target`) that forwards every request
 * and holds the ones a {@link Hold} picks. The provider's side goes on whatever happens to the
 * caller: an exchange held at `response` is answered by the provider even if its caller was killed.
 */
export function startProviderGate(target: string): Promise<ProviderGate> {
  const targetUrl = new URL(target);
  let current: { match: (req: IncomingMessage) => boolean; stage: HoldStage; held: HeldSet } | undefined;
  const holds = new Set<HeldSet>();

  const server = createServer((req, res) => {
    req.on('error', () => {});
    res.on('error', () => {});
    const hold = current && current.match(req) ? current : undefined;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let entered = false;
      const wait = () => {
        entered = true;
        return hold!.held.enter();
      };
      void (async () => {
        try {
          if (hold?.stage === 'request') await wait();
          const answer = await forward(targetUrl, req, Buffer.concat(chunks));
          if (hold?.stage === 'response') await wait();
          if (res.destroyed) return; // the caller is gone (killed): nobody to answer
          res.writeHead(answer.status, { ...endToEnd(answer.headers), 'content-length': String(answer.body.length) });
          res.end(answer.body);
        } catch {
          if (!res.headersSent && !res.destroyed) res.writeHead(502).end('provider gate: forwarding failed');
        } finally {
          if (entered) hold!.held.leave();
        }
      })();
    });
  });

  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        hold({ match, stage }) {
          const held = new HeldSet();
          const entry = { match, stage, held };
          holds.add(held);
          current = entry;
          return {
            get count() {
              return held.count;
            },
            arrival: (n = 1) => held.arrival(n),
            async release() {
              if (current === entry) current = undefined;
              await held.open();
              holds.delete(held);
            },
          };
        },
        async close() {
          current = undefined;
          await Promise.all([...holds].map((held) => held.open()));
          await new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          });
        },
      });
    });
  });
}

/** The exchanges of one hold: a counter with waiters, and a gate that opens once. */
class HeldSet {
  count = 0;
  private inside = 0;
  private opened = false;
  private readonly openWaiters: Array<() => void> = [];
  private readonly arrivalWaiters: Array<{ n: number; resolve: () => void }> = [];
  private readonly emptyWaiters: Array<() => void> = [];

  /** Counts the exchange as held; resolves when the gate opens. */
  enter(): Promise<void> {
    this.count += 1;
    this.inside += 1;
    for (const waiter of [...this.arrivalWaiters]) {
      if (this.count < waiter.n) continue;
      this.arrivalWaiters.splice(this.arrivalWaiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    return this.opened ? Promise.resolve() : new Promise((resolve) => this.openWaiters.push(resolve));
  }

  /** The exchange is finished: answered, or its caller gone. */
  leave(): void {
    this.inside -= 1;
    if (this.inside === 0) this.emptyWaiters.splice(0).forEach((resolve) => resolve());
  }

  arrival(n: number): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve) => this.arrivalWaiters.push({ n, resolve }));
  }

  /** Opens the gate; resolves when every exchange held so far is finished. */
  open(): Promise<void> {
    this.opened = true;
    this.openWaiters.splice(0).forEach((resolve) => resolve());
    if (this.inside === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }
}
