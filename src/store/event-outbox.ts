import type { Clock } from '../clock';
import type { ConnectionEventType, EventDetail } from '../events';
import type { KvBackend, OutboxWrite } from './backend';
import { OUTBOX_FRESH_MS, newEventId, type EventLog, type LoggedEvent, type PendingEvent } from './event-log';
import type { Keys } from './keys';

/** What a writer says about the change it makes; the store gives it its id, time and connection. */
export interface RecordedEvent {
  type: ConnectionEventType;
  detail?: EventDetail;
}

/** An event prepared for the write that carries it: final id, marked pending, and its outbox entry. */
export interface PreparedEvent {
  event: LoggedEvent;
  outbox: OutboxWrite;
}

/** What one recovery step did. */
export interface OutboxRecoveryStep {
  /** Events moved from an outbox to the log. */
  relayed: number;
  /** Marks whose write never happened (or whose relay had finished), dropped. */
  cleared: number;
  /** A full batch came back: there may be more. */
  more: boolean;
}

/**
 * The transactional outbox of the event log (CONTRACT "Events and webhooks": an event is recorded
 * atomically with the change it reports). A connection's keys share the hash tag
 * `{provider:connectionId}` while the log is one global stream (`{events}`), so on Redis Cluster
 * no script can write both. Instead:
 *
 * 1. **mark** — the event gets its final id, and a pending mark (`{events}:outbox-pending`, scored
 *    by the log's clock) is added *before* the write;
 * 2. **write** — the connection's own script writes the change and puts the event into
 *    `conn:{tag}:outbox` in the same step, or, refused (a version conflict, nothing to delete),
 *    writes neither: no change without its event, no event without its change;
 * 3. **relay** — right after, the event is appended to the log once per id (a guard under the
 *    log's tag hands a repeat the entry it made), removed from the outbox, and its mark settled.
 *
 * A crash, or a store failure, anywhere after 1 leaves the mark. **Recovery** looks only at marks
 * older than `OUTBOX_RECOVERY_AGE_MS` — never a scan of the keyspace, never a cross-slot
 * script: for each, it reads that one outbox entry; present, it relays it (same id, so a receiver
 * de-duplicates a webhook it may already have had); absent, the write never happened (or the relay
 * finished but its settle did not) and the mark is dropped.
 *
 * Why the mark comes before the write: a mark added after it would be lost by a crash in between,
 * and the outbox entry with it. Why dropping a mark whose entry is absent is safe: the only write
 * that could still add the entry is one whose command has been stalled (a client's offline queue,
 * a partition) longer than the recovery age; the write script refuses an entry whose mark is older
 * than {@link OUTBOX_FRESH_MS} by the server's clock, so that write fails instead (store_unavailable),
 * and the caller sees it. The gap between the two bounds absorbs clock skew between Cluster nodes.
 */
export class EventOutbox {
  constructor(private readonly deps: { backend: KvBackend; eventLog: EventLog; keys: Keys; clock: Clock }) {}

  /** Step 1: the event with its final id, marked pending; pass `outbox` to the write. */
  async prepare(provider: string, connectionId: string, recorded: RecordedEvent): Promise<PreparedEvent> {
    const event: LoggedEvent = {
      id: newEventId(),
      type: recorded.type,
      provider,
      connectionId,
      at: this.deps.clock.now(),
      detail: recorded.detail ?? {},
    };
    const markedAt = await this.deps.eventLog.markPending(pendingOf(event));
    return {
      event,
      outbox: {
        key: this.deps.keys.outbox(provider, connectionId),
        field: event.id,
        value: JSON.stringify(event),
        markedAt,
        freshMs: OUTBOX_FRESH_MS,
      },
    };
  }

  /**
   * Step 3, after a write that recorded `event`. Never throws: the change has happened, and an
   * event this cannot move is moved by recovery. False when it was left to recovery.
   */
  async relay(event: LoggedEvent): Promise<boolean> {
    try {
      await this.move(event);
      return true;
    } catch {
      return false;
    }
  }

  /** After a write that was refused: it recorded nothing, so its mark goes (recovery would drop it too). */
  async abandon(event: LoggedEvent): Promise<void> {
    await this.deps.eventLog.settle(pendingOf(event)).catch(() => {});
  }

  /**
   * One bounded recovery step over up to `limit` marks older than `olderThanMs`. Marks of one
   * connection are handled in order; a failure stops the step (the store is down: try later).
   */
  async recover(olderThanMs: number, limit: number): Promise<OutboxRecoveryStep> {
    const stale = await this.deps.eventLog.stalePending(olderThanMs, limit);
    const step: OutboxRecoveryStep = { relayed: 0, cleared: 0, more: stale.length >= limit };
    for (const pending of stale) {
      const raw = await this.deps.backend.hashGet(
        this.deps.keys.outbox(pending.provider, pending.connectionId),
        pending.eventId,
      );
      if (raw === null) {
        await this.deps.eventLog.settle(pending);
        step.cleared += 1;
        continue;
      }
      await this.move(JSON.parse(raw) as LoggedEvent);
      step.relayed += 1;
    }
    return step;
  }

  /** Log, then outbox, then mark: each step repeatable, so a crash between any two is finished by recovery. */
  private async move(event: LoggedEvent): Promise<void> {
    await this.deps.eventLog.appendRecorded(event);
    await this.deps.backend.hashDelete(this.deps.keys.outbox(event.provider, event.connectionId), event.id);
    await this.deps.eventLog.settle(pendingOf(event));
  }
}

function pendingOf(event: LoggedEvent): PendingEvent {
  return { eventId: event.id, provider: event.provider, connectionId: event.connectionId };
}
