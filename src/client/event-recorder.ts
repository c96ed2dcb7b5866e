import type { Clock } from '../clock';
import { CHANGE_EVENT_TYPES, type EventSink } from '../events';
import type { Logger } from '../logger';
import type { Store } from '../store';

/** An {@link EventSink} that appends to the store's event log; see {@link createEventRecorder}. */
export interface EventRecorder extends EventSink {
  /** Resolves once every append started so far has settled (for shutdown and tests). */
  flush(): Promise<void>;
}

/**
 * Appends to the store's log (CONTRACT "Events and webhooks") the events that report no change of
 * a stored connection (`connection.connect_failed`, `connection.refresh_failed`), from which the
 * webhook is delivered. An event that reports a change ({@link CHANGE_EVENT_TYPES}) is skipped: the
 * writer passed it to the store's write, which recorded it atomically with the change
 * (store/event-outbox.ts), and emits it afterwards only for other sinks.
 * `emit` returns at once: a request never waits for the log. A failed append is logged at error
 * level with the event's type and connection.
 */
export function createEventRecorder(deps: { store: Store; clock: Clock; logger: Logger }): EventRecorder {
  const inFlight = new Set<Promise<void>>();
  return {
    emit(type, provider, connectionId, detail = {}) {
      // Already in the log, put there by the write it reports.
      if (CHANGE_EVENT_TYPES.has(type)) return;
      const appended = deps.store.eventLog
        .append({ type, provider, connectionId, at: deps.clock.now(), detail })
        .then(
          () => {},
          (err: unknown) => deps.logger.error({ err, type, provider, connectionId }, 'event not recorded'),
        )
        .finally(() => inFlight.delete(appended));
      inFlight.add(appended);
    },
    async flush() {
      await Promise.all([...inFlight]);
    },
  };
}

/** Every event to each of `sinks`, in order; one sink's failure is its own. */
export function fanOutEvents(...sinks: EventSink[]): EventSink {
  return {
    emit(type, provider, connectionId, detail) {
      for (const sink of sinks) {
        try {
          sink.emit(type, provider, connectionId, detail);
        } catch {
          // Fire and forget: emitting never fails a request.
        }
      }
    },
  };
}
