/** The connection events of the contract; a webhook sink delivers them (see client/webhooks). */
export type ConnectionEventType =
  | 'connection.created'
  | 'connection.refreshed'
  | 'connection.refresh_failed'
  | 'connection.reauth_required'
  | 'connection.deleted'
  | 'connection.metadata_updated';

export interface ConnectionEvent {
  type: ConnectionEventType;
  provider: string;
  connection_id: string;
  at: string;
}

/** Fire and forget: emitting never blocks or fails a request. */
export interface EventSink {
  emit(type: ConnectionEventType, provider: string, connectionId: string): void;
}

export const noopEvents: EventSink = { emit: () => {} };
