/**
 * Latchkey's wire format as the client sees it (snake_case, ISO-8601 times): the client's own
 * copy of the contract's shapes, so that the package carries none of the server's code. A test in
 * the Latchkey repository (test/unit/client-wire-types.test.ts) fails when these types and the
 * server's zod schemas disagree.
 */

export type WireErrorCode =
  | 'invalid_request'
  | 'invalid_state'
  | 'unauthorized'
  | 'forbidden'
  | 'unknown_provider'
  | 'provider_not_enabled'
  | 'connection_not_found'
  | 'not_found'
  | 'reauth_required'
  | 'credential_unreadable'
  | 'connection_incomplete'
  | 'link_expired'
  | 'payload_too_large'
  | 'rate_limited'
  | 'internal_error'
  | 'provider_error'
  | 'store_unavailable'
  | 'upstream_timeout';

export interface WireErrorBody {
  error: { code: WireErrorCode; message: string };
}

export type WireConnectionStatus = 'active' | 'reauth_required';
export type WireMetadataValue = string | number | boolean;

export interface WireConnection {
  provider: string;
  connection_id: string;
  status: WireConnectionStatus;
  scopes: string[];
  expires_at: string | null;
  created_at: string;
  updated_at: string;
  last_refreshed_at: string | null;
  config: Record<string, string>;
  metadata: Record<string, WireMetadataValue>;
  account: { id: string | null; label: string | null } | null;
}

export interface WireConnectionList {
  connections: WireConnection[];
  next_cursor: string | null;
}

export interface WireListConnectionsQuery {
  provider?: string;
  status?: WireConnectionStatus;
  q?: string;
  limit?: number;
  cursor?: string;
}

export interface WireConnectSessionRequest {
  provider: string;
  connection_id: string;
  return_to?: string;
  connection_config?: Record<string, string>;
}

export interface WireConnectSession {
  token: string;
  url: string;
  expires_at: string;
}

export interface WireToken {
  access_token: string;
  token_type: string;
  expires_at: string | null;
}

export interface WireProvider {
  id: string;
  display_name: string;
  auth_mode: 'oauth2' | 'api_key';
  configured: boolean;
  verified: boolean;
  connection_config: Array<{ name: string; label: string; pattern: string; required: boolean }>;
}

export interface WireProviderList {
  providers: WireProvider[];
}

export interface WireMetadataPatch {
  metadata: Record<string, WireMetadataValue | null>;
}

export interface WireImportRequest {
  access_token?: string;
  refresh_token?: string;
  expires_at?: string;
  scopes?: string[];
  api_key?: string;
  config?: Record<string, string>;
  metadata?: Record<string, WireMetadataValue>;
}

export type WireEventType =
  | 'connection.created'
  | 'connection.refreshed'
  | 'connection.refresh_failed'
  | 'connection.reauth_required'
  | 'connection.deleted'
  | 'connection.metadata_updated'
  | 'connection.connect_failed';

export interface WireEvent {
  id: string;
  type: WireEventType;
  provider: string;
  connection_id: string;
  at: string;
  detail: Record<string, string | number | boolean | null>;
}

export interface WireEventList {
  events: WireEvent[];
  next_cursor: string | null;
}

export interface WireListEventsQuery {
  provider?: string;
  connection_id?: string;
  type?: WireEventType;
  limit?: number;
  cursor?: string;
}

export type WireRevocation = 'revoked' | 'failed' | 'not_supported' | 'not_possible';
