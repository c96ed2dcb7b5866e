import { isLoopbackHost } from './config-checks';

/** Where a server listening on `host:port` is, for the start-up line and for callers on this machine. */
export interface ListenAddress {
  host: string;
  port: number;
  /** A URL that reaches the server from this machine (loopback when it listens on every interface). */
  url: string;
  /** `loopback only`, `every interface`, or `one address`: who can connect. */
  reach: 'loopback only' | 'every interface' | 'one address';
}

const WILDCARDS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

/** Describes the address the server listens on (SECURITY.md 25: the start-up log says where). */
export function describeListenAddress(host: string, port: number): ListenAddress {
  if (WILDCARDS.has(host)) return { host, port, url: `http://127.0.0.1:${port}`, reach: 'every interface' };
  const inUrl = host.includes(':') ? `[${host}]` : host;
  return {
    host,
    port,
    url: `http://${inUrl}:${port}`,
    reach: isLoopbackHost(host) ? 'loopback only' : 'one address',
  };
}
