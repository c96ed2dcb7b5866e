/** The connection events of the contract; a webhook sink delivers them (see client/webhooks). */
export type ConnectionEventType =
  | 'connection.created'
  | 'connection.refreshed'
  | 'connection.refresh_failed'
  | 'connection.reauth_required'
  | 'connection.deleted'
  | 'connection.metadata_updated'
  | 'connection.connect_failed';

/** What an event says beyond its type: codes and counts, never a secret. */
export type EventDetail = Record<string, string | number | boolean>;

export interface ConnectionEvent {
  /** Present on events read from the log (stable across deliveries: the `webhook-id`). */
  id?: string;
  type: ConnectionEventType;
  provider: string;
  connection_id: string;
  at: string;
  detail?: EventDetail;
}

/**
 * The types that report a change of a stored connection. Their writer hands the event to the
 * store's write, which records it in the log atomically with the change (store/event-outbox.ts);
 * the writer then emits it too, for any other sink. The others report a failure that changed
 * nothing, and only an emit records them.
 */
export const CHANGE_EVENT_TYPES: ReadonlySet<ConnectionEventType> = new Set<ConnectionEventType>([
  'connection.created',
  'connection.refreshed',
  'connection.reauth_required',
  'connection.deleted',
  'connection.metadata_updated',
]);

/**
 * Fire and forget: emitting never blocks or fails a request. Every event is emitted once it has
 * happened, a change's event after the write that recorded it.
 */
export interface EventSink {
  emit(type: ConnectionEventType, provider: string, connectionId: string, detail?: EventDetail): void;
}

export const noopEvents: EventSink = { emit: () => {} };
