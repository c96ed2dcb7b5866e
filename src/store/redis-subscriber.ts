import { Cluster, type Redis } from 'ioredis';
import type { ChannelHandlers } from './backend';
import type { RedisClient } from './redis-client';

export interface RedisSubscriberOptions {
  /** CLIENT SETNAME of the subscriber connection, so that operators (and tests) can find it. */
  name?: string;
  /**
   * How often the subscriber connection is PINGed (0: never). A ping not answered within the
   * command timeout counts as a lost subscription, so a half-open socket, which TCP would only
   * notice hours later, cannot keep the feed "live" while it misses every message.
   */
  heartbeatMs?: number;
}

const DEFAULT_NAME = 'latchkey-feed';
const DEFAULT_HEARTBEAT_MS = 10_000;
const reopenDelay = (attempt: number) => Math.min(attempt * 100, 1000);

/** A handler's failure is its own: the other subscribers must still hear. */
function safely(call: () => void): void {
  try {
    call();
  } catch {
    // Nothing to do: the handler owns its errors.
  }
}

/**
 * The store's one pub/sub connection, opened on the first subscription and closed with the last.
 *
 * - Redis and Sentinel: a `duplicate()` of the process's client (same address, credentials, TLS
 *   and Sentinel discovery), reconnecting with the client's own backoff; the Sentinel failover
 *   detector stays on the main client only.
 * - Cluster: a connection to one master, duplicated from the cluster's own node client. A classic
 *   PUBLISH reaches the subscribers of every node, so any node will do; when the connection
 *   ends, another node is picked from the current slot map. (ioredis' built-in cluster
 *   subscriber would do the same, but it tells no one when its connection drops, and a
 *   subscriber that cannot say "I may have missed something" is of no use to a cache.)
 *
 * Each channel is subscribed explicitly on every `ready`, and its handlers hear `live()` once
 * Redis has acknowledged it; `lost()` as soon as the connection closes, reconnects, errors or
 * misses a heartbeat.
 */
export class RedisSubscriber {
  private readonly channels = new Map<string, Set<ChannelHandlers>>();
  /** Channels acknowledged on the current connection. */
  private readonly subscribed = new Set<string>();
  private connection: Redis | null = null;
  private heartbeat?: NodeJS.Timeout;
  private reopenTimer?: NodeJS.Timeout;
  private attempts = 0;
  private closed = false;

  constructor(
    private readonly client: RedisClient,
    private readonly options: RedisSubscriberOptions = {},
  ) {}

  subscribe(channel: string, handlers: ChannelHandlers): () => void {
    if (this.closed) return () => {};
    let set = this.channels.get(channel);
    const first = !set;
    if (!set) this.channels.set(channel, (set = new Set()));
    set.add(handlers);
    if (this.subscribed.has(channel)) handlers.live();
    else if (!this.connection) this.open();
    else if (first && this.connection.status === 'ready') this.subscribeOn(this.connection, [channel]);
    const handlerSet = set;
    return () => {
      handlerSet.delete(handlers);
      if (handlerSet.size || this.channels.get(channel) !== handlerSet) return;
      this.channels.delete(channel);
      this.subscribed.delete(channel);
      if (!this.channels.size) void this.shut();
      else this.connection?.unsubscribe(channel).catch(() => {});
    };
  }

  /** Closes the connection; handlers still subscribed hear `lost()`. */
  async close(): Promise<void> {
    this.closed = true;
    await this.shut();
  }

  private async shut(): Promise<void> {
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    const connection = this.connection;
    if (!connection) return;
    this.lose(connection);
    this.connection = null;
    if (connection.status === 'ready') {
      try {
        await connection.quit();
        return;
      } catch {
        // Fall through: drop the socket instead.
      }
    }
    connection.disconnect();
  }

  private open(): void {
    const connection = this.create();
    if (!connection) return this.reopenLater();
    this.connection = connection;
    connection.on('ready', () => this.subscribeOn(connection, [...this.channels.keys()]));
    connection.on('message', (channel: string, message: string) => this.deliver(channel, message));
    connection.on('close', () => this.lose(connection));
    connection.on('reconnecting', () => this.lose(connection));
    connection.on('error', () => {
      // A subscriber that errors while it looks ready is not trusted: start again.
      if (this.connection === connection && connection.status === 'ready') this.restart(connection);
    });
    connection.on('end', () => {
      this.lose(connection);
      if (this.connection !== connection) return;
      this.connection = null;
      this.reopenLater();
    });
  }

  private create(): Redis | null {
    const override = {
      lazyConnect: false,
      autoResubscribe: false,
      enableOfflineQueue: false,
      connectionName: this.options.name ?? DEFAULT_NAME,
    };
    if (this.client instanceof Cluster) {
      const masters = this.client.nodes('master');
      const node = masters[Math.floor(Math.random() * masters.length)];
      // No reconnection of its own: when it ends, reopenLater() picks a node from the fresh slot map.
      return node ? node.duplicate({ ...override, retryStrategy: () => null }) : null;
    }
    return this.client.duplicate({ ...override, failoverDetector: false });
  }

  private reopenLater(): void {
    if (this.closed || this.reopenTimer || this.connection || !this.channels.size) return;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      if (!this.closed && !this.connection && this.channels.size) this.open();
    }, reopenDelay(++this.attempts)).unref();
  }

  /**
   * Gives up on a connection and opens another without waiting for the old one to end: a
   * half-open socket may take a long time to report that it has.
   */
  private restart(connection: Redis): void {
    this.lose(connection);
    if (this.connection !== connection) return;
    this.connection = null;
    connection.disconnect();
    this.reopenLater();
  }

  private subscribeOn(connection: Redis, channels: string[]): void {
    if (!channels.length) return;
    connection.subscribe(...channels).then(
      () => {
        if (this.connection !== connection || connection.status !== 'ready') return;
        this.attempts = 0;
        for (const channel of channels) {
          const handlers = this.channels.get(channel);
          if (!handlers || this.subscribed.has(channel)) continue;
          this.subscribed.add(channel);
          for (const h of [...handlers]) safely(() => h.live());
        }
        this.startHeartbeat(connection);
      },
      () => {
        if (this.connection === connection) this.restart(connection);
      },
    );
  }

  private deliver(channel: string, message: string): void {
    const handlers = this.channels.get(channel);
    if (handlers) for (const h of [...handlers]) safely(() => h.message(message));
  }

  private lose(connection: Redis): void {
    if (this.connection !== connection) return;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    const lost = [...this.subscribed];
    this.subscribed.clear();
    for (const channel of lost) for (const h of [...(this.channels.get(channel) ?? [])]) safely(() => h.lost());
  }

  private startHeartbeat(connection: Redis): void {
    const every = this.options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    if (this.heartbeat || every <= 0) return;
    let waiting = false;
    this.heartbeat = setInterval(() => {
      if (waiting) return;
      waiting = true;
      connection.ping().then(
        () => (waiting = false),
        () => {
          waiting = false;
          if (this.connection === connection) this.restart(connection);
        },
      );
    }, every).unref();
  }
}
