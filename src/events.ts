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

/** Fire and forget: emitting never blocks or fails a request. */
export interface EventSink {
  emit(type: ConnectionEventType, provider: string, connectionId: string, detail?: EventDetail): void;
}

export const noopEvents: EventSink = { emit: () => {} };
