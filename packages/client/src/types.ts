/**
 * What the Latchkey service API answers, as the client hands it out: the contract's snake_case
 * wire fields in camelCase, times as ISO-8601 strings.
 */
import type { WireErrorCode, WireEventType, WireMetadataValue, WireRevocation } from './wire.js';

/** The contract's error codes, plus two of the client's own: Latchkey unreachable, or its answer unreadable. */
export type LatchkeyErrorCode = WireErrorCode | 'network_error' | 'invalid_response';

export type ConnectionStatus = 'active' | 'reauth_required';
export type MetadataValue = WireMetadataValue;

export interface Connection {
  provider: string;
  connectionId: string;
  status: ConnectionStatus;
  scopes: string[];
  /** Access-token expiry; null when the provider gave none. */
  expiresAt: string | null;
  createdAt: string;
  updatedAt: string;
  lastRefreshedAt: string | null;
  /** The provider's `connectionConfig` values, fixed at connect. */
  config: Record<string, string>;
  /** Captured at connect or set with {@link Latchkey.connections}`.updateMetadata`; never secret. */
  metadata: Record<string, MetadataValue>;
  /** The provider's account, when its API says which. */
  account: { id: string | null; label: string | null } | null;
}

export interface ConnectionFilters {
  provider?: string;
  status?: ConnectionStatus;
  /** A case-insensitive prefix of the connection id or of the account label. */
  q?: string;
}

export interface PageOptions {
  /** 1–1000. */
  limit: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
}

export interface ConnectionPage {
  connections: Connection[];
  /** null on the last page. */
  nextCursor: string | null;
}

export interface ConnectSessionInput {
  provider: string;
  connectionId: string;
  /** An absolute URL on Latchkey's ALLOWED_RETURN_ORIGINS, or a path on its PUBLIC_URL. */
  returnTo?: string;
  /** Values for the provider's `connectionConfig` (a subdomain, a region…). */
  connectionConfig?: Record<string, string>;
}

export interface ConnectSession {
  /** Single use, 15 minutes. */
  token: string;
  /** The `/auth/:provider?token=…` link to open in the user's browser. */
  url: string;
  expiresAt: string;
}

export interface Token {
  accessToken: string;
  /** `Bearer` (or the provider's type); `api_key` for an API-key connection. */
  tokenType: string;
  expiresAt: string | null;
}

/**
 * What became of the grant at the provider when a connection was deleted (it is deleted in every
 * case). `not_possible`: its stored credentials could not be opened (sealed with a key that is no
 * longer configured), so nothing could be revoked.
 */
export type Revocation = WireRevocation;

/** Credentials obtained elsewhere, to move into Latchkey (`PUT /connections/:provider/:connectionId`). */
export interface ImportInput {
  /** oauth2: `accessToken` or `refreshToken` (or both). */
  accessToken?: string;
  refreshToken?: string;
  /** ISO-8601. */
  expiresAt?: string;
  scopes?: string[];
  /** api_key providers. */
  apiKey?: string;
  config?: Record<string, string>;
  metadata?: Record<string, MetadataValue>;
}

export interface ImportResult {
  connection: Connection;
  /** True when the connection is new (201), false when it replaced one (200). */
  created: boolean;
}

export interface Provider {
  id: string;
  displayName: string;
  authMode: 'oauth2' | 'api_key';
  /** Its credentials are set (always true for api_key providers). */
  configured: boolean;
  verified: boolean;
  connectionConfig: Array<{ name: string; label: string; pattern: string; required: boolean }>;
}

export type EventType = WireEventType;

export interface LatchkeyEvent {
  id: string;
  type: EventType;
  provider: string;
  connectionId: string;
  at: string;
  /** Codes and counts, never a secret. */
  detail: Record<string, string | number | boolean | null>;
}

export interface EventFilters {
  provider?: string;
  connectionId?: string;
  type?: EventType;
  limit?: number;
  cursor?: string;
}

export interface EventPage {
  /** Newest first. */
  events: LatchkeyEvent[];
  nextCursor: string | null;
}

export type QueryValue = string | number | boolean | null | undefined | ReadonlyArray<string | number | boolean>;

export interface ProxyOptions {
  /** Which connection to use; Latchkey's default is `default`. */
  connectionId?: string;
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  /** A plain object or array is sent as JSON; strings, bytes, forms and streams as they are. */
  body?: unknown;
  /**
   * `Latchkey-Retries` (0–3): for GET, HEAD, OPTIONS, PUT and DELETE, Latchkey retries a 429
   * after its Retry-After and a 502, 503, 504 or connection failure after a backoff.
   */
  retries?: 0 | 1 | 2 | 3;
  /** Aborts the call (in addition to the client's timeout). */
  signal?: AbortSignal;
}

/** A provider's answer, passed through by the proxy: any status, the provider's headers and body. */
export interface ProxyResponse<T = unknown> {
  status: number;
  /** True for 2xx. A provider error is an answer, not an exception: only Latchkey's own errors throw. */
  ok: boolean;
  headers: Headers;
  /** Parsed JSON when the provider answered JSON, otherwise the text (empty for no body). */
  data: T;
}
