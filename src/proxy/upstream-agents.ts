import type { LookupFunction } from 'node:net';
import { Pool } from 'undici';

/**
 * How sockets to providers are opened, beyond the system's defaults: a name resolver and the
 * certificate authorities to trust. Only code that builds the app passes it (the tests point
 * `*.example.test` at a TLS server on loopback with it); there is no variable for it, so no
 * deployment can turn certificate checks or DNS aside by accident. Certificates are always checked.
 */
export interface UpstreamConnect {
  /** Resolves provider host names instead of the system's resolver (`dns.lookup`'s signature). */
  lookup?: LookupFunction;
  /** Certificate authorities trusted instead of Node's bundled ones (PEM). */
  ca?: string | Buffer | Array<string | Buffer>;
}

export interface UpstreamAgentOptions {
  /** Most sockets open to one provider origin (PROXY_MAX_SOCKETS_PER_ORIGIN). Default 128. */
  connections?: number;
  /** Idle keep-alive sockets are closed after this long, unless the provider says less. Default 30 s. */
  keepAliveTimeoutMs?: number;
  /** Bound on establishing a TCP/TLS connection. */
  connectTimeoutMs: number;
  /** A resolver and trusted CAs for the sockets; the system's when absent. */
  connect?: UpstreamConnect;
}

/** A call that queued for one of an origin's sockets. */
export interface OriginEntrant {
  /** A socket came free for this call: it holds the slot from now on and must {@link UpstreamOrigin.leave} it. */
  admit(): void;
}

/** A place in an origin's queue, to give up with {@link UpstreamOrigin.cancel}. */
export class OriginWaiter {
  prev: OriginWaiter | null = null;
  next: OriginWaiter | null = null;
  queued = true;
  constructor(readonly entrant: OriginEntrant) {}
}

/**
 * One provider origin: its undici `Pool` and the count of calls holding one of its sockets. A
 * call beyond `maxSockets` waits in a first-in, first-out queue of this origin's own (never
 * behind another origin's calls), and gives its place up when its deadline passes or its caller
 * leaves, so an abandoned call never reaches the provider nor holds memory in undici's queue.
 */
export class UpstreamOrigin {
  private active = 0;
  private head: OriginWaiter | null = null;
  private tail: OriginWaiter | null = null;
  private waiting = 0;

  constructor(
    readonly pool: Pool,
    readonly maxSockets: number,
  ) {}

  /** Takes a socket slot when one is free; otherwise false, and the call {@link wait}s. */
  tryEnter(): boolean {
    if (this.active >= this.maxSockets) return false;
    this.active++;
    return true;
  }

  /** Queues `entrant` for the next free slot. */
  wait(entrant: OriginEntrant): OriginWaiter {
    const waiter = new OriginWaiter(entrant);
    waiter.prev = this.tail;
    if (this.tail) this.tail.next = waiter;
    else this.head = waiter;
    this.tail = waiter;
    this.waiting++;
    return waiter;
  }

  /** Leaves the queue without a slot (the deadline passed, or the caller went away). */
  cancel(waiter: OriginWaiter): void {
    if (!waiter.queued) return;
    waiter.queued = false;
    if (waiter.prev) waiter.prev.next = waiter.next;
    else this.head = waiter.next;
    if (waiter.next) waiter.next.prev = waiter.prev;
    else this.tail = waiter.prev;
    waiter.prev = waiter.next = null;
    this.waiting--;
  }

  /** Gives back a slot: the first waiter, if any, takes it over. */
  leave(): void {
    const next = this.head;
    if (!next) {
      this.active--;
      return;
    }
    this.cancel(next);
    next.entrant.admit();
  }

  /** Calls holding a slot, and calls queued for one. */
  get stats(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.waiting };
  }
}

/**
 * One undici `Pool` per provider origin, with keep-alive: a proxied call reuses a warm socket
 * instead of paying a TCP (and TLS) handshake. Each pool holds at most `connections` sockets, and
 * its {@link UpstreamOrigin} lets no more calls than that in at once: one origin's full pool
 * never delays a call to another. undici never follows redirects unless asked, so a provider's
 * 3xx goes back to the caller and the credential never travels to another host (SECURITY.md §10).
 */
export class UpstreamAgents {
  private readonly origins = new Map<string, UpstreamOrigin>();
  private closed = false;

  constructor(private readonly options: UpstreamAgentOptions) {}

  /** The upstream for `origin` (`https://api.example.com`), created on first use. */
  forOrigin(origin: string): UpstreamOrigin {
    let upstream = this.origins.get(origin);
    if (!upstream) {
      if (this.closed) throw new Error('The upstream agents are closed');
      const connections = this.options.connections ?? 128;
      const pool = new Pool(origin, {
        connections,
        pipelining: 1,
        keepAliveTimeout: this.options.keepAliveTimeoutMs ?? 30_000,
        keepAliveMaxTimeout: this.options.keepAliveTimeoutMs ?? 30_000,
        connect: { ...upstreamConnectOptions(this.options.connect), timeout: this.options.connectTimeoutMs },
      });
      upstream = new UpstreamOrigin(pool, connections);
      this.origins.set(origin, upstream);
    }
    return upstream;
  }

  /** Closes every pool: in-flight calls finish, idle sockets close. */
  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.origins.values()].map((o) => o.pool);
    this.origins.clear();
    await Promise.all(pools.map((p) => p.close()));
  }
}

/** Only the two fields {@link UpstreamConnect} names reach the connector, never `rejectUnauthorized` or the like. */
function upstreamConnectOptions(connect: UpstreamConnect | undefined): UpstreamConnect {
  if (!connect) return {};
  return {
    ...(connect.lookup ? { lookup: connect.lookup } : {}),
    ...(connect.ca ? { ca: connect.ca } : {}),
  };
}
