import type { Clock } from '../clock';
import type { EventSink } from '../events';
import type { Logger } from '../logger';
import type { Store } from '../store';

/** An {@link EventSink} that appends to the store's event log; see {@link createEventRecorder}. */
export interface EventRecorder extends EventSink {
  /** Resolves once every append started so far has settled (for shutdown and tests). */
  flush(): Promise<void>;
}

/**
 * Appends each event to the store's log (CONTRACT "Events and webhooks"), from which the webhook
 * is delivered. `emit` returns at once: a request never waits for the log. The append follows
 * the write it reports as its own command, so a crash (or a store failure) between the two loses
 * the event; that failure is logged at error level with the event's type and connection.
 */
export function createEventRecorder(deps: { store: Store; clock: Clock; logger: Logger }): EventRecorder {
  const inFlight = new Set<Promise<void>>();
  return {
    emit(type, provider, connectionId, detail = {}) {
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
