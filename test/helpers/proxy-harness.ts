import {
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type RequestListener,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Harness } from './harness';
import { TEST_API_KEY } from './harness';
import { seedOAuthConnection } from './seed';

export interface Listening {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1, any free port; `close` also drops keep-alive sockets. */
export function listen(handler: RequestListener): Promise<Listening & { server: Server }> {
  return new Promise((resolve) => {
    const server = createServer(handler);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        server,
        port,
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** A loopback server that must never be reached: it counts what it gets. */
export async function startTrap(): Promise<Listening & { hits: string[] }> {
  const hits: string[] = [];
  const l = await listen((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.end('trapped');
  });
  return { ...l, hits };
}

export interface RawResponse {
  status: number;
  /** The reason phrase of the status line, as received. */
  statusMessage: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One HTTP request with the request target sent byte for byte as given (no client-side
 * normalisation of `..`, `//` or encodings, unlike fetch or superagent).
 */
export function rawRequest(
  port: number,
  options: { method?: string; path: string; headers?: Record<string, string | string[]>; body?: string | Buffer },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      method: options.method ?? 'GET',
      path: options.path,
      headers: options.headers,
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on('error', reject);
    });
    req.end(options.body);
  });
}

export const apiAuth = { authorization: `Bearer ${TEST_API_KEY}` };

/**
 * Stores a videoask connection holding a token family the sandbox really issued, as if the
 * user had just connected (the browser flow itself is tested elsewhere).
 */
export async function seedVideoAsk(
  h: Harness,
  connectionId = 'default',
): Promise<{ accessToken: string; refreshToken: string }> {
  const { accessToken, refreshToken } = await seedOAuthConnection(h.store, h.sandbox, { connectionId });
  return { accessToken, refreshToken };
}

/** The requests the sandbox received on its API (control and OAuth routes left out). */
export function apiRequestsOf(h: Harness): Harness['sandbox']['stats']['requests'] {
  return h.sandbox.stats.requests.filter((r) => !r.path.startsWith('/oauth/') && !r.path.startsWith('/authorize'));
}
