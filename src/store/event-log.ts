import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock';
import type { ConnectionEventType, EventDetail } from '../events';

/**
 * The connection event log (CONTRACT "Events and webhooks"): every event appended once, kept
 * capped per connection and in total, read newest first with a cursor, and delivered to the
 * webhook through a consumer group so that any instance may deliver and none is lost to a crash.
 */

/** An event as the store keeps it. `at` is ms epoch; `detail` holds codes and counts, never a secret. */
export interface LoggedEvent {
  id: string;
  type: ConnectionEventType;
  provider: string;
  connectionId: string;
  at: number;
  detail: EventDetail;
}

export type EventInput = Omit<LoggedEvent, 'id'>;

export interface EventQuery {
  provider?: string;
  connectionId?: string;
  type?: string;
  /** 1–1000. */
  limit: number;
  /** `next_cursor` of the page before: the page starts just older than it. */
  cursor?: string;
  /** Providers the reader may see; null or absent: every provider. */
  visibleProviders?: readonly string[] | null;
}

export interface EventPage {
  events: LoggedEvent[];
  /** Null on the last page. */
  nextCursor: string | null;
}

/** One event handed to a consumer; `entryId` is what it acknowledges. */
export interface EventDelivery {
  entryId: string;
  event: LoggedEvent;
  /** ms epoch from which the delivery's age counts: the event's time, or when a dead one was retried. */
  since: number;
}

export interface DeadDelivery {
  event: LoggedEvent;
  attempts: number;
  lastError: string;
  deadAt: number;
}

/** One instance's member of the `webhooks` consumer group. */
export interface EventConsumer {
  /** New entries (never delivered to anyone), waiting up to `blockMs` when there are none. */
  read(count: number, blockMs: number): Promise<EventDelivery[]>;
  /** Entries delivered to some consumer that has not acknowledged them for `minIdleMs`: now ours. */
  claimStale(minIdleMs: number, count: number): Promise<EventDelivery[]>;
  /** Resets the idle time of entries we still hold (waiting for a retry), so no one claims them. */
  touch(entryIds: string[]): Promise<void>;
  /** The receiver answered 2xx: the entry is done. */
  ack(entryId: string): Promise<void>;
  /** Given up on: recorded as dead (retryable) and acknowledged, in one step. */
  bury(delivery: EventDelivery, attempts: number, lastError: string): Promise<void>;
  /** Stops a blocked read (it resolves empty); entries held stay pending for someone else. */
  close(): Promise<void>;
}

/** An event marked pending: written (or about to be) to its connection's outbox, not yet in the log. */
export interface PendingEvent {
  eventId: string;
  provider: string;
  connectionId: string;
}

/** How long a pending mark may be before recovery takes it for a crashed writer's (event-outbox.ts). */
export const OUTBOX_RECOVERY_AGE_MS = 60_000;
/** A write carrying its event must run within this of the mark, or it refuses (well under the age above). */
export const OUTBOX_FRESH_MS = 10_000;

export interface EventLog {
  /** An event with no change to report with it (a failed connect or refresh): appended, a new id. */
  append(input: EventInput): Promise<LoggedEvent>;
  /**
   * Appends an event whose id was chosen before the write that carried it (its outbox entry), at
   * most once per id: a repeat after a crash between this and the outbox entry's removal finds the
   * entry it made and appends nothing.
   */
  appendRecorded(event: LoggedEvent): Promise<void>;
  /**
   * Marks an event pending before the write that carries it, so recovery can find its outbox
   * without a scan. Returns the mark's time, on the log's own clock (Redis: the server's TIME).
   */
  markPending(event: PendingEvent): Promise<number>;
  /**
   * The event is in the log, or its write never happened: the mark goes (the repeat guard soon
   * after, so a relay racing this one still appends nothing).
   */
  settle(event: PendingEvent): Promise<void>;
  /** Up to `limit` marks older than `olderThanMs` by the log's clock, oldest first. */
  stalePending(olderThanMs: number, limit: number): Promise<PendingEvent[]>;
  list(query: EventQuery): Promise<EventPage>;
  /** Joins the consumer group (creating it, from now on, when it does not exist yet). */
  consumer(name: string): Promise<EventConsumer>;
  deadDeliveries(limit: number): Promise<DeadDelivery[]>;
  /** Puts a dead delivery back to be delivered (same event id); false when there is no such dead delivery. */
  retryDead(eventId: string): Promise<boolean>;
  /** Entries pending in the group plus those not yet read by it. */
  backlog(): Promise<number>;
  close(): Promise<void>;
}

export interface EventLogLimits {
  /** Events kept per connection. */
  perConnection: number;
  /** Events kept in total (more while the undelivered ones need it). */
  total: number;
}

export const DEFAULT_EVENT_LIMITS: EventLogLimits = { perConnection: 100, total: 100_000 };
export const WEBHOOK_GROUP = 'webhooks';

/** How many entries one page may look through when a filter skips most of them. */
const SCAN_BOUND = 5000;

export function newEventId(): string {
  return `evt_${randomBytes(12).toString('base64url')}`;
}

/** A stream entry id `<ms>-<seq>`; cursors are entry ids. */
export const ENTRY_ID = /^\d{1,16}-\d{1,16}$/;

export function compareEntryIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am !== bm ? am - bm : as - bs;
}

/** An entry of a log as the list logic reads it. `retry`: a redelivery of a dead one, not a new event. */
export interface RawEntry {
  entryId: string;
  event: LoggedEvent;
  retry: boolean;
}

/**
 * Newest first from just older than `before` (exclusive; undefined: the newest), at most
 * `count` entries. What both media implement; {@link pageEvents} does the rest.
 */
export type RangeDesc = (
  log: 'all' | { provider: string; connectionId: string },
  count: number,
  before?: string,
) => Promise<RawEntry[]>;

/**
 * One page, newest first. The cursor is the entry id of the last event returned, so the next page
 * starts strictly older than it: events appended meanwhile are newer and never shift the pages
 * (no gap, no repeat). A filter that skips many entries stops after {@link SCAN_BOUND} of them and
 * hands out a cursor where it stopped (a page may then hold fewer than `limit`).
 */
export async function pageEvents(range: RangeDesc, query: EventQuery): Promise<EventPage> {
  const log =
    query.provider && query.connectionId ? { provider: query.provider, connectionId: query.connectionId } : 'all';
  const matches = (e: RawEntry) =>
    !e.retry &&
    (!query.provider || e.event.provider === query.provider) &&
    (!query.connectionId || e.event.connectionId === query.connectionId) &&
    (!query.type || e.event.type === query.type) &&
    (!query.visibleProviders || query.visibleProviders.includes(e.event.provider));
  const found: RawEntry[] = [];
  let before = query.cursor;
  let scanned = 0;
  const batch = Math.min(1000, Math.max(query.limit + 1, 100));
  for (;;) {
    const entries = await range(log, batch, before);
    for (const entry of entries) {
      scanned += 1;
      if (matches(entry)) found.push(entry);
      if (found.length > query.limit) {
        const page = found.slice(0, query.limit);
        return { events: page.map((e) => e.event), nextCursor: page[page.length - 1]!.entryId };
      }
      before = entry.entryId;
      if (scanned >= SCAN_BOUND) return { events: found.map((e) => e.event), nextCursor: entry.entryId };
    }
    if (entries.length < batch) return { events: found.map((e) => e.event), nextCursor: null };
  }
}

/** The fields of a stream entry, flat (Redis XADD order). */
export function eventFields(event: LoggedEvent, extra: Record<string, string> = {}): string[] {
  const fields: Record<string, string> = {
    id: event.id,
    type: event.type,
    provider: event.provider,
    connection_id: event.connectionId,
    at: String(event.at),
    detail: JSON.stringify(event.detail),
    ...extra,
  };
  return Object.entries(fields).flat();
}

export function fieldsToRecord(flat: string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i]!] = flat[i + 1]!;
  return record;
}

export function eventOfFields(record: Record<string, string>): LoggedEvent {
  let detail: EventDetail = {};
  try {
    detail = JSON.parse(record.detail ?? '{}') as EventDetail;
  } catch {
    // A malformed detail reads as none; the event itself stays.
  }
  return {
    id: record.id ?? '',
    type: record.type as ConnectionEventType,
    provider: record.provider ?? '',
    connectionId: record.connection_id ?? '',
    at: Number(record.at),
    detail,
  };
}

interface MemoryEntry {
  entryId: string;
  fields: Record<string, string>;
}

interface MemoryPending {
  consumer: string;
  lastAt: number;
}

/**
 * The in-memory log: the same semantics as the Redis streams (entry ids, caps, a consumer group
 * with pending entries, claims of idle ones, dead records), for the embedded store and the
 * contract suite. Delivery happens in process.
 */
export class MemoryEventLog implements EventLog {
  private readonly all: MemoryEntry[] = [];
  private readonly perConnection = new Map<string, MemoryEntry[]>();
  private readonly dead = new Map<string, string>();
  private group: { lastDelivered: string; pending: Map<string, MemoryPending> } | null = null;
  private waiters = new Set<() => void>();
  /** Pending marks, by member, with their time. */
  private readonly pending = new Map<string, number>();
  /** Event ids appended by {@link appendRecorded}, until settled: what makes a repeat a no-op. */
  private readonly recorded = new Set<string>();
  private lastMs = 0;
  private seq = 0;

  constructor(
    private readonly clock: Clock,
    private readonly limits: EventLogLimits = DEFAULT_EVENT_LIMITS,
  ) {}

  private nextEntryId(): string {
    const now = Math.max(this.clock.now(), Date.now());
    if (now > this.lastMs) {
      this.lastMs = now;
      this.seq = 0;
    } else this.seq += 1;
    return `${this.lastMs}-${this.seq}`;
  }

  private push(fields: Record<string, string>): MemoryEntry {
    const entry = { entryId: this.nextEntryId(), fields };
    this.all.push(entry);
    this.trim();
    for (const wake of [...this.waiters]) wake();
    return entry;
  }

  /** Oldest first, never past what the group has not yet acknowledged. */
  private trim(): void {
    while (this.all.length > this.limits.total) {
      const oldest = this.all[0]!;
      if (this.group) {
        const undelivered = compareEntryIds(oldest.entryId, this.group.lastDelivered) > 0;
        if (undelivered || this.group.pending.has(oldest.entryId)) return;
      }
      this.all.shift();
    }
  }

  async append(input: EventInput): Promise<LoggedEvent> {
    const event: LoggedEvent = { ...input, id: newEventId() };
    this.appendEvent(event);
    return event;
  }

  async appendRecorded(event: LoggedEvent): Promise<void> {
    if (this.recorded.has(event.id)) return;
    this.appendEvent(event);
    this.recorded.add(event.id);
  }

  async markPending(event: PendingEvent): Promise<number> {
    const at = this.clock.now();
    this.pending.set(pendingMember(event), at);
    return at;
  }

  async settle(event: PendingEvent): Promise<void> {
    this.pending.delete(pendingMember(event));
    this.recorded.delete(event.eventId);
  }

  async stalePending(olderThanMs: number, limit: number): Promise<PendingEvent[]> {
    const cutoff = this.clock.now() - olderThanMs;
    return [...this.pending]
      .filter(([, at]) => at <= cutoff)
      .sort((a, b) => a[1] - b[1])
      .slice(0, limit)
      .map(([member]) => pendingOfMember(member));
  }

  private appendEvent(event: LoggedEvent): void {
    const entry = this.push(fieldsToRecord(eventFields(event)));
    const key = `${event.provider}:${event.connectionId}`;
    const list = this.perConnection.get(key) ?? [];
    list.push(entry);
    if (list.length > this.limits.perConnection) list.splice(0, list.length - this.limits.perConnection);
    this.perConnection.set(key, list);
  }

  list(query: EventQuery): Promise<EventPage> {
    return pageEvents(async (log, count, before) => {
      const source = log === 'all' ? this.all : (this.perConnection.get(`${log.provider}:${log.connectionId}`) ?? []);
      const out: RawEntry[] = [];
      for (let i = source.length - 1; i >= 0 && out.length < count; i--) {
        const entry = source[i]!;
        if (before !== undefined && compareEntryIds(entry.entryId, before) >= 0) continue;
        out.push(rawOf(entry));
      }
      return out;
    }, query);
  }

  async consumer(name: string): Promise<EventConsumer> {
    this.group ??= { lastDelivered: this.all.at(-1)?.entryId ?? '0-0', pending: new Map() };
    const group = this.group;
    let closed = false;
    let wakeBlocked: (() => void) | undefined;
    const deliveryOf = (entry: MemoryEntry): EventDelivery => ({
      entryId: entry.entryId,
      event: eventOfFields(entry.fields),
      since: Number(entry.fields.since ?? entry.fields.at),
    });
    const takeNew = (count: number) => {
      const fresh = this.all.filter((e) => compareEntryIds(e.entryId, group.lastDelivered) > 0).slice(0, count);
      for (const entry of fresh) group.pending.set(entry.entryId, { consumer: name, lastAt: this.clock.now() });
      if (fresh.length) group.lastDelivered = fresh.at(-1)!.entryId;
      return fresh.map(deliveryOf);
    };
    return {
      read: async (count, blockMs) => {
        if (closed) return [];
        const now = takeNew(count);
        if (now.length || blockMs <= 0) return now;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, blockMs);
          function done() {
            clearTimeout(timer);
            waiters.delete(done);
            resolve();
          }
          const waiters = this.waiters;
          waiters.add(done);
          wakeBlocked = done;
        });
        return closed ? [] : takeNew(count);
      },
      claimStale: async (minIdleMs, count) => {
        if (closed) return [];
        const now = this.clock.now();
        const out: EventDelivery[] = [];
        for (const [entryId, pending] of group.pending) {
          if (out.length >= count) break;
          if (now - pending.lastAt < minIdleMs) continue;
          const entry = this.all.find((e) => e.entryId === entryId);
          if (!entry) {
            group.pending.delete(entryId);
            continue;
          }
          group.pending.set(entryId, { consumer: name, lastAt: now });
          out.push(deliveryOf(entry));
        }
        return out;
      },
      touch: async (entryIds) => {
        for (const id of entryIds)
          if (group.pending.has(id)) group.pending.set(id, { consumer: name, lastAt: this.clock.now() });
      },
      ack: async (entryId) => {
        group.pending.delete(entryId);
        this.trim();
      },
      bury: async (delivery, attempts, lastError) => {
        const record: DeadDelivery = { event: delivery.event, attempts, lastError, deadAt: this.clock.now() };
        this.dead.set(delivery.event.id, JSON.stringify(record));
        group.pending.delete(delivery.entryId);
        this.trim();
      },
      close: async () => {
        closed = true;
        wakeBlocked?.();
      },
    };
  }

  async deadDeliveries(limit: number): Promise<DeadDelivery[]> {
    return [...this.dead.values()].slice(0, limit).map((raw) => JSON.parse(raw) as DeadDelivery);
  }

  async retryDead(eventId: string): Promise<boolean> {
    const raw = this.dead.get(eventId);
    if (raw === undefined) return false;
    const { event } = JSON.parse(raw) as DeadDelivery;
    this.push(fieldsToRecord(eventFields(event, { retry: '1', since: String(this.clock.now()) })));
    this.dead.delete(eventId);
    return true;
  }

  async backlog(): Promise<number> {
    if (!this.group) return 0;
    const { lastDelivered, pending } = this.group;
    return pending.size + this.all.filter((e) => compareEntryIds(e.entryId, lastDelivered) > 0).length;
  }

  async close(): Promise<void> {
    for (const wake of [...this.waiters]) wake();
  }
}

/** A pending mark's member: JSON, since connection ids may hold any character. */
export function pendingMember(event: PendingEvent): string {
  return JSON.stringify([event.eventId, event.provider, event.connectionId]);
}

export function pendingOfMember(member: string): PendingEvent {
  const [eventId, provider, connectionId] = JSON.parse(member) as [string, string, string];
  return { eventId, provider, connectionId };
}

function rawOf(entry: MemoryEntry): RawEntry {
  return { entryId: entry.entryId, event: eventOfFields(entry.fields), retry: entry.fields.retry === '1' };
}
