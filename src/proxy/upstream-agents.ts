import { Pool } from 'undici';

export interface UpstreamAgentOptions {
  /** Most sockets kept open to one provider origin. Default 128. */
  connections?: number;
  /** Idle keep-alive sockets are closed after this long, unless the provider says less. Default 30 s. */
  keepAliveTimeoutMs?: number;
  /** Bound on establishing a TCP/TLS connection. */
  connectTimeoutMs: number;
}

/**
 * One undici `Pool` per provider origin, with keep-alive: a proxied call reuses a warm socket
 * instead of paying a TCP (and TLS) handshake. undici never follows redirects unless asked, so a
 * provider's 3xx goes back to the caller and the credential never travels to another host
 * (SECURITY.md §10).
 */
export class UpstreamAgents {
  private readonly pools = new Map<string, Pool>();
  private closed = false;

  constructor(private readonly options: UpstreamAgentOptions) {}

  /** The pool for `origin` (`https://api.example.com`), created on first use. */
  forOrigin(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      if (this.closed) throw new Error('The upstream agents are closed');
      pool = new Pool(origin, {
        connections: this.options.connections ?? 128,
        pipelining: 1,
        keepAliveTimeout: this.options.keepAliveTimeoutMs ?? 30_000,
        keepAliveMaxTimeout: this.options.keepAliveTimeoutMs ?? 30_000,
        connect: { timeout: this.options.connectTimeoutMs },
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  /** Closes every pool: in-flight calls finish, idle sockets close. */
  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.close()));
  }
}
