/**
 * What the Latchkey service API answers, as the Node client hands it out: the contract's
 * snake_case wire fields in camelCase, times as ISO-8601 strings.
 */

export interface Connection {
  provider: string;
  connectionId: string;
  status: 'active' | 'reauth_required';
  scopes: string[];
  /** Access-token expiry; null when the provider gave none. */
  expiresAt: string | null;
  createdAt: string;
  updatedAt: string;
  lastRefreshedAt: string | null;
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
  tokenType: string;
  expiresAt: string | null;
}

/**
 * What became of the grant at the provider when a connection was deleted (it is deleted in every
 * case). `not_possible`: its stored credentials could not be opened (sealed with a key that is no
 * longer configured), so nothing could be revoked.
 */
export type Revocation = 'revoked' | 'failed' | 'not_supported' | 'not_possible';

export type QueryValue = string | number | boolean | null | undefined | ReadonlyArray<string | number | boolean>;

export interface ProxyOptions {
  /** Which connection to use; Latchkey's default is `default`. */
  connectionId?: string;
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  /** A plain object or array is sent as JSON; strings, bytes, forms and streams as they are. */
  body?: unknown;
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
