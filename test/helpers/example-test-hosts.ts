import { Agent as HttpsAgent, createServer, type ServerOptions } from 'node:https';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import type { TLSSocket } from 'node:tls';
import axios, { type AxiosInstance, type AxiosRequestConfig } from 'axios';
import type { AppDeps } from '../../src/app';
import { selfSignedCertificate } from './self-signed-cert';

/**
 * `*.example.test` (RFC 2606: never a real host) served by one TLS server on loopback, reached
 * through an injected resolver, so a test sees which host name a client connected to: the TLS
 * SNI and the Host header of every request, as the server received them.
 */
export interface ExampleTestHosts {
  /** The server's port: URLs are `https://<label>.example.test:<port>/…`. */
  port: number;
  /** Every name the resolver was asked for, in order: anything but `*.example.test` fails to resolve. */
  resolved: string[];
  /** Every request the server received. */
  requests: SeenRequest[];
  /** The app's seams: the proxy's socket options and an axios for its other calls, both resolving here. */
  appDeps: Required<Pick<AppDeps, 'http' | 'upstreamConnect'>>;
  /** An axios that resolves and trusts these hosts (for the TypeScript API client). */
  axios(): AxiosInstance;
  setHandler(handler: RequestListener): void;
  close(): Promise<void>;
}

export interface SeenRequest {
  /** The TLS server name the client sent (SNI). */
  sni: string | undefined;
  host: string | undefined;
  method: string;
  path: string;
  authorization: string | undefined;
}

const SUFFIX = '.example.test';

export async function startExampleTestHosts(): Promise<ExampleTestHosts> {
  const { cert, key } = selfSignedCertificate([`*${SUFFIX}`]);
  const requests: SeenRequest[] = [];
  const resolved: string[] = [];
  let handler: RequestListener = (_req, res) => res.writeHead(503).end();
  const options: ServerOptions = { cert, key };
  const server = createServer(options, (req: IncomingMessage, res) => {
    requests.push({
      sni: (req.socket as TLSSocket).servername || undefined,
      host: req.headers.host,
      method: req.method ?? '',
      path: req.url ?? '',
      authorization: req.headers.authorization,
    });
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
    resolved.push(hostname);
    if (!hostname.endsWith(SUFFIX)) {
      const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      err.code = 'ENOTFOUND';
      return callback(err, '', 4);
    }
    if (lookupOptions.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
  };
  const agents: HttpsAgent[] = [];
  const trustingAxios = () => {
    const httpsAgent = new HttpsAgent({ ca: cert, keepAlive: false });
    agents.push(httpsAgent);
    // The same callback: axios's types spell the address family differently from node:net's.
    return axios.create({ lookup: lookup as AxiosRequestConfig['lookup'], httpsAgent });
  };
  return {
    port: (server.address() as AddressInfo).port,
    resolved,
    requests,
    appDeps: { http: trustingAxios(), upstreamConnect: { lookup, ca: cert } },
    axios: trustingAxios,
    setHandler: (next) => (handler = next),
    close: () =>
      new Promise((resolve) => {
        for (const agent of agents) agent.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The first label of the host a request was made to, read from its SNI: `acme` for acme.example.test. */
export function labelOf(req: IncomingMessage): string {
  return ((req.socket as TLSSocket).servername || '').split('.')[0] ?? '';
}

/**
 * The provider `*.example.test` stands for: each host name is a tenant (its first label). The
 * token endpoint issues tokens named after the tenant and answers a `site` beside them (captured
 * as metadata); `/api/t/<site>/whoami` is the post-connect call; `/api/t/<site>/…` echoes what it saw.
 */
export function tenantProvider(req: IncomingMessage, res: ServerResponse): void {
  const tenant = labelOf(req);
  const json = (status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk.toString()));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'https://provider.invalid');
    if (req.method === 'POST' && url.pathname === '/oauth/token') {
      const form = new URLSearchParams(body);
      const round = form.get('grant_type') === 'refresh_token' ? 2 : 1;
      const expected = round === 1 ? `code-${tenant}` : `rt-${tenant}`;
      if ((form.get('code') ?? form.get('refresh_token')) !== expected) return json(400, { error: 'invalid_grant' });
      return json(200, {
        access_token: `at-${tenant}-${round}`,
        refresh_token: `rt-${tenant}`,
        token_type: 'Bearer',
        expires_in: 3600,
        site: `site-${tenant}`,
      });
    }
    if (url.pathname === `/api/t/site-${tenant}/whoami`) return json(200, { tenant_number: `n-${tenant}` });
    if (url.pathname.startsWith('/api/t/')) return json(200, { tenant, path: url.pathname });
    json(404, { error: 'not_found' });
  });
}
