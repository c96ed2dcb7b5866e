import { createHmac, timingSafeEqual } from 'node:crypto';
import type {
  Connection,
  ConnectionFilters,
  ConnectionPage,
  ConnectSession,
  ConnectSessionInput,
  EventFilters,
  EventPage,
  ImportInput,
  ImportResult,
  LatchkeyErrorCode,
  LatchkeyEvent,
  MetadataValue,
  PageOptions,
  Provider,
  ProxyOptions,
  ProxyResponse,
  QueryValue,
  Revocation,
  Token,
} from './types.js';
import type {
  WireConnection,
  WireConnectionList,
  WireConnectSession,
  WireConnectSessionRequest,
  WireErrorBody,
  WireEvent,
  WireEventList,
  WireImportRequest,
  WireListConnectionsQuery,
  WireListEventsQuery,
  WireMetadataPatch,
  WireProvider,
  WireProviderList,
  WireToken,
} from './wire.js';

export type * from './types.js';
export type * from './wire.js';

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

const RETRYABLE = new Set<LatchkeyErrorCode>([
  'rate_limited',
  'provider_error',
  'store_unavailable',
  'upstream_timeout',
  'network_error',
]);

/**
 * One of Latchkey's own errors (`{ error: { code, message } }` with `Latchkey-Error`), or the
 * client failing to reach Latchkey (`network_error`, status 0) or to read its answer
 * (`invalid_response`). A provider's error answer through the proxy is never one of these: it
 * comes back as a {@link ProxyResponse} with the provider's status.
 */
export class LatchkeyError extends Error {
  override readonly name = 'LatchkeyError';

  constructor(
    /** The contract's error code (CONTRACT "Errors"), or one of the client's two. */
    readonly code: LatchkeyErrorCode,
    message: string,
    /** The HTTP status Latchkey answered; 0 when it could not be reached. */
    readonly status: number,
    /** Seconds to wait before trying again, from `Retry-After` (rate limits, provider or store outages). */
    readonly retryAfter?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** True when trying again later may succeed (429, 502, 503, 504, or Latchkey unreachable). */
  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }
}

/** `Retry-After` as seconds: delta-seconds, or an HTTP date (RFC 9110 §10.2.3); undefined when absent or past. */
function retryAfterOf(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  if (Number.isNaN(at)) return undefined;
  const seconds = Math.ceil((at - now) / 1000);
  return seconds > 0 ? seconds : undefined;
}

// ---------------------------------------------------------------------------------------------
// Wire ↔ camelCase
// ---------------------------------------------------------------------------------------------

const toConnection = (c: WireConnection): Connection => ({
  provider: c.provider,
  connectionId: c.connection_id,
  status: c.status,
  scopes: c.scopes,
  expiresAt: c.expires_at,
  createdAt: c.created_at,
  updatedAt: c.updated_at,
  lastRefreshedAt: c.last_refreshed_at,
  config: c.config ?? {},
  metadata: c.metadata ?? {},
  account: c.account ?? null,
});

const toProvider = (p: WireProvider): Provider => ({
  id: p.id,
  displayName: p.display_name,
  authMode: p.auth_mode,
  configured: p.configured,
  verified: p.verified,
  connectionConfig: p.connection_config,
});

const toEvent = (e: WireEvent): LatchkeyEvent => ({
  id: e.id,
  type: e.type,
  provider: e.provider,
  connectionId: e.connection_id,
  at: e.at,
  detail: e.detail,
});

const segment = (value: string) => encodeURIComponent(value);
const connectionPath = (provider: string, connectionId: string, suffix = '') =>
  `/connections/${segment(provider)}/${segment(connectionId)}${suffix}`;

function appendQuery(url: URL, query: Record<string, QueryValue> | undefined): void {
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(v));
  }
}

/** Bodies fetch sends as they are; anything else (plain objects, arrays, numbers) goes as JSON. */
function isRawBody(body: unknown): body is BodyInit {
  return (
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof URLSearchParams ||
    body instanceof Blob ||
    body instanceof FormData ||
    body instanceof ReadableStream
  );
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

export interface LatchkeyOptions {
  /** Where Latchkey runs, e.g. `http://latchkey.internal:3000` (PUBLIC_URL, or the internal address). */
  baseUrl: string;
  /** A key of Latchkey's CONNECTOR_API_KEYS or API_KEYS_FILE. */
  apiKey: string;
  /** Per-call timeout, in ms. Default 30 000. */
  timeoutMs?: number;
  /** A fetch of your own (tests, proxies, instrumentation); the global one by default. */
  fetch?: typeof fetch;
}

interface SendOptions {
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  body?: unknown;
  signal?: AbortSignal;
}

/**
 * The typed client of Latchkey's service API, for internal services. It uses the global `fetch`
 * (Node 20+) and has no dependencies. Latchkey's own errors throw {@link LatchkeyError} with the
 * contract's `code`; a provider's answers through `proxy.*` come back whatever their status.
 *
 * ```ts
 * import { Latchkey } from '@latchkey/client';
 * const latchkey = new Latchkey({ baseUrl: 'http://latchkey:3000', apiKey: process.env.LATCHKEY_API_KEY! });
 * const forms = await latchkey.proxy.get<{ results: unknown[] }>('videoask', '/forms', { connectionId: 'user-42' });
 * ```
 */
export class Latchkey {
  private readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;

  constructor(options: LatchkeyOptions) {
    if (!options.baseUrl) throw new TypeError('Latchkey: baseUrl is required');
    if (!options.apiKey) throw new TypeError('Latchkey: apiKey is required');
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /** `POST /connect-sessions`: a single-use, 15-minute link that lets one browser connect one account. */
  readonly connectSessions = {
    create: async (input: ConnectSessionInput): Promise<ConnectSession> => {
      const body: WireConnectSessionRequest = { provider: input.provider, connection_id: input.connectionId };
      if (input.returnTo !== undefined) body.return_to = input.returnTo;
      if (input.connectionConfig !== undefined) body.connection_config = input.connectionConfig;
      const issued = await this.call<WireConnectSession>('POST', '/connect-sessions', { body });
      return { token: issued.token, url: issued.url, expiresAt: issued.expires_at };
    },
  };

  /** The stored connections (never their tokens). */
  readonly connections = {
    /** `GET /connections`: every connection that matches, in `(provider, connectionId)` order. */
    list: async (filters: ConnectionFilters = {}): Promise<Connection[]> => (await this.listPage(filters)).connections,
    /** `GET /connections?limit=…&cursor=…`: one page; pass its `nextCursor` for the next. */
    page: (options: ConnectionFilters & PageOptions): Promise<ConnectionPage> => this.listPage(options),
    /** Every matching connection, page by page (`pageSize` per request, default 100). */
    each: (filters: ConnectionFilters & { pageSize?: number } = {}): AsyncIterable<Connection> => {
      const { pageSize = 100, ...rest } = filters;
      const pageOf = (cursor?: string) => this.listPage({ ...rest, limit: pageSize, cursor });
      return {
        async *[Symbol.asyncIterator]() {
          let cursor: string | undefined;
          do {
            const page = await pageOf(cursor);
            yield* page.connections;
            cursor = page.nextCursor ?? undefined;
          } while (cursor !== undefined);
        },
      };
    },
    /** `GET /connections/:provider/:connectionId`; throws `connection_not_found`. */
    get: async (provider: string, connectionId = 'default'): Promise<Connection> =>
      toConnection(await this.call<WireConnection>('GET', connectionPath(provider, connectionId))),
    /** `DELETE …`: revokes at the provider when it can, deletes in any case, and says what became of the grant. */
    delete: async (provider: string, connectionId = 'default'): Promise<{ revocation: Revocation }> => {
      const res = await this.send('DELETE', connectionPath(provider, connectionId));
      await this.failUnlessOk(res);
      return { revocation: (res.headers.get('latchkey-revocation') as Revocation | null) ?? 'not_supported' };
    },
    /** `POST …/refresh`: forces a refresh; throws `reauth_required` when the user must reconnect. */
    refresh: async (provider: string, connectionId = 'default'): Promise<Connection> =>
      toConnection(await this.call<WireConnection>('POST', connectionPath(provider, connectionId, '/refresh'))),
    /** `PATCH …`: merges `metadata` into the connection's (a null value removes its key). */
    updateMetadata: async (
      provider: string,
      connectionId: string,
      metadata: Record<string, MetadataValue | null>,
    ): Promise<Connection> => {
      const body: WireMetadataPatch = { metadata };
      return toConnection(await this.call<WireConnection>('PATCH', connectionPath(provider, connectionId), { body }));
    },
    /** `PUT …` (`full` keys): imports credentials obtained elsewhere; a refused credential is `invalid_request`. */
    import: async (provider: string, connectionId: string, input: ImportInput): Promise<ImportResult> => {
      const body: WireImportRequest = {};
      if (input.accessToken !== undefined) body.access_token = input.accessToken;
      if (input.refreshToken !== undefined) body.refresh_token = input.refreshToken;
      if (input.expiresAt !== undefined) body.expires_at = input.expiresAt;
      if (input.scopes !== undefined) body.scopes = input.scopes;
      if (input.apiKey !== undefined) body.api_key = input.apiKey;
      if (input.config !== undefined) body.config = input.config;
      if (input.metadata !== undefined) body.metadata = input.metadata;
      const res = await this.send('PUT', connectionPath(provider, connectionId), { body });
      const connection = toConnection(await this.readJson<WireConnection>(res, 'PUT'));
      return { connection, created: res.status === 201 };
    },
    /** `GET …/events`: this connection's events, newest first. */
    events: async (
      provider: string,
      connectionId: string,
      options: { limit?: number; cursor?: string } = {},
    ): Promise<EventPage> => {
      const list = await this.call<WireEventList>('GET', connectionPath(provider, connectionId, '/events'), {
        query: { limit: options.limit, cursor: options.cursor },
      });
      return { events: list.events.map(toEvent), nextCursor: list.next_cursor };
    },
  };

  /** `GET /providers`: every provider that is not switched off, and what a host needs to draw its buttons. */
  readonly providers = {
    list: async (): Promise<Provider[]> =>
      (await this.call<WireProviderList>('GET', '/providers')).providers.map(toProvider),
  };

  /** `GET /events`: the event feed, newest first. */
  readonly events = {
    list: async (filters: EventFilters = {}): Promise<EventPage> => {
      const query: WireListEventsQuery = {
        provider: filters.provider,
        connection_id: filters.connectionId,
        type: filters.type,
        limit: filters.limit,
        cursor: filters.cursor,
      };
      const list = await this.call<WireEventList>('GET', '/events', { query: { ...query } });
      return { events: list.events.map(toEvent), nextCursor: list.next_cursor };
    },
  };

  /** `GET …/token`: a working access token, refreshed first when it is close to expiry. */
  async token(provider: string, connectionId = 'default'): Promise<Token> {
    const t = await this.call<WireToken>('GET', connectionPath(provider, connectionId, '/token'));
    return { accessToken: t.access_token, tokenType: t.token_type, expiresAt: t.expires_at };
  }

  /**
   * The provider's API through Latchkey's proxy, with the stored credential: `path` is relative
   * to the provider's `apiBaseUrl` (`/forms/123` or `forms/123`; its `/` are kept, its segments
   * are yours to encode). The answer is the provider's, whatever its status; only Latchkey's own
   * errors (bad path, no connection, reconnect needed, timeouts…) throw. `request` gives the raw
   * `Response`, to stream a large body.
   */
  readonly proxy = {
    request: (method: string, provider: string, path: string, options: ProxyOptions = {}): Promise<Response> =>
      this.proxyRequest(method, provider, path, options),
    get: <T = unknown>(provider: string, path: string, options?: ProxyOptions) =>
      this.proxyCall<T>('GET', provider, path, options),
    post: <T = unknown>(provider: string, path: string, options?: ProxyOptions) =>
      this.proxyCall<T>('POST', provider, path, options),
    put: <T = unknown>(provider: string, path: string, options?: ProxyOptions) =>
      this.proxyCall<T>('PUT', provider, path, options),
    patch: <T = unknown>(provider: string, path: string, options?: ProxyOptions) =>
      this.proxyCall<T>('PATCH', provider, path, options),
    delete: <T = unknown>(provider: string, path: string, options?: ProxyOptions) =>
      this.proxyCall<T>('DELETE', provider, path, options),
  };

  private async listPage(options: ConnectionFilters & Partial<PageOptions>): Promise<ConnectionPage> {
    const query: WireListConnectionsQuery = {
      provider: options.provider,
      status: options.status,
      q: options.q,
      limit: options.limit,
      cursor: options.cursor,
    };
    const list = await this.call<WireConnectionList>('GET', '/connections', { query: { ...query } });
    return { connections: list.connections.map(toConnection), nextCursor: list.next_cursor ?? null };
  }

  private async proxyRequest(method: string, provider: string, path: string, options: ProxyOptions): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.connectionId !== undefined) headers['Connection-Id'] = options.connectionId;
    if (options.retries !== undefined) headers['Latchkey-Retries'] = String(options.retries);
    // One leading slash is the caller's style ('/forms' or 'forms'); anything more is theirs for Latchkey to judge.
    const res = await this.send(method, `/proxy/${segment(provider)}/${path.startsWith('/') ? path.slice(1) : path}`, {
      query: options.query,
      headers,
      body: options.body,
      signal: options.signal,
    });
    if (res.headers.has('latchkey-error')) await this.failUnlessOk(res);
    return res;
  }

  private async proxyCall<T>(
    method: string,
    provider: string,
    path: string,
    options: ProxyOptions = {},
  ): Promise<ProxyResponse<T>> {
    const res = await this.proxyRequest(method, provider, path, options);
    const text = await res.text();
    const isJson = /^application\/(?:[\w.+-]+\+)?json\b/i.test(res.headers.get('content-type') ?? '');
    let data: unknown = text;
    if (isJson && text !== '') {
      try {
        data = JSON.parse(text);
      } catch (err) {
        throw new LatchkeyError('invalid_response', 'The provider answered invalid JSON', res.status, undefined, {
          cause: err,
        });
      }
    }
    return { status: res.status, ok: res.ok, headers: res.headers, data: data as T };
  }

  /** A service-API call whose success is JSON. */
  private async call<T>(method: string, path: string, options: SendOptions = {}): Promise<T> {
    return this.readJson<T>(await this.send(method, path, options), `${method} ${path}`);
  }

  private async readJson<T>(res: Response, what: string): Promise<T> {
    await this.failUnlessOk(res);
    try {
      return (await res.json()) as T;
    } catch (err) {
      throw new LatchkeyError(
        'invalid_response',
        `Latchkey answered ${what} with a body that is not JSON`,
        res.status,
        undefined,
        { cause: err },
      );
    }
  }

  private async send(method: string, path: string, options: SendOptions = {}): Promise<Response> {
    const url = new URL(`${this.baseUrl}${path}`);
    appendQuery(url, options.query);
    const headers: Record<string, string> = {
      Accept: 'application/json',
      ...options.headers,
      Authorization: `Bearer ${this.apiKey}`,
    };
    let body: BodyInit | undefined;
    if (options.body !== undefined) {
      if (isRawBody(options.body)) body = options.body;
      else {
        body = JSON.stringify(options.body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
          headers['Content-Type'] = 'application/json';
      }
    }
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    try {
      return await this.fetch(url, {
        method,
        headers,
        body,
        signal,
        redirect: 'manual',
        ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
      });
    } catch (err) {
      // The cause may be a fetch error whose message names the URL, never the API key.
      const timedOut = (err as Error).name === 'TimeoutError';
      throw new LatchkeyError(
        'network_error',
        timedOut ? `Latchkey did not answer within ${this.timeoutMs} ms` : 'Latchkey could not be reached',
        0,
        undefined,
        { cause: err },
      );
    }
  }

  /** Throws the {@link LatchkeyError} of a non-2xx answer, with the contract's code when Latchkey gave one. */
  private async failUnlessOk(res: Response): Promise<void> {
    if (res.ok) return;
    const text = await res.text().catch(() => '');
    let code = res.headers.get('latchkey-error') as LatchkeyErrorCode | null;
    let message = `Latchkey answered ${res.status}`;
    try {
      const parsed = JSON.parse(text) as Partial<WireErrorBody>;
      code ??= parsed.error?.code ?? null;
      if (parsed.error?.message) message = parsed.error.message;
    } catch {
      // Not Latchkey's JSON (a proxy in between, say): the status is all there is.
    }
    throw new LatchkeyError(
      code ?? 'invalid_response',
      message,
      res.status,
      retryAfterOf(res.headers.get('retry-after')),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

/** Headers as `fetch` gives them, or as Node's `req.headers` (lower-case names). */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

export type WebhookSecret = string | Uint8Array;

export interface VerifyWebhookOptions {
  /**
   * WEBHOOK_SECRET: one secret, or several while it is being rotated. A string is keyed by its
   * UTF-8 bytes, as Latchkey signs; bytes are used as they are.
   */
  secret: WebhookSecret | readonly WebhookSecret[];
  /** The raw body, exactly as received (before any JSON parsing). */
  body: string | Uint8Array;
  headers: WebhookHeaders;
  /** How far `webhook-timestamp` may be from now, in seconds. Default 300. */
  toleranceSeconds?: number;
  /** Now, in ms since the epoch (for tests). Default `Date.now()`. */
  now?: number;
  /**
   * Also accept a delivery that carries only `Latchkey-Signature: sha256=<hex>` (a first-release
   * Latchkey sends no other). That scheme has no timestamp, so a captured delivery can be replayed:
   * leave this off once your Latchkey sends the Standard Webhooks headers. Default false.
   */
  legacy?: boolean;
}

function headerOf(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value.join(' ') : value;
}

const bytesOf = (value: string | Uint8Array): Buffer =>
  typeof value === 'string'
    ? Buffer.from(value, 'utf8')
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);

/** True when `given` equals one of `expected`, each compared in constant time. */
function matchesAny(given: readonly string[], expected: readonly Buffer[]): boolean {
  let found = false;
  for (const candidate of given) {
    const bytes = Buffer.from(candidate, 'utf8');
    for (const e of expected) if (bytes.length === e.length && timingSafeEqual(bytes, e)) found = true;
  }
  return found;
}

/**
 * Verifies a webhook delivery from Latchkey (CONTRACT "Events and webhooks"): with the Standard
 * Webhooks headers, `webhook-signature: v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`
 * keyed by the bytes of the secret, and `webhook-timestamp` within `toleranceSeconds` of now; or,
 * with `legacy: true` and no Standard Webhooks headers, `Latchkey-Signature: sha256=<hex HMAC-SHA256
 * of the body>`. Either header may carry several space-separated signatures (one per secret while
 * WEBHOOK_SECRET is rotated): one that matches one of `secret` is enough. Never throws.
 *
 * @see https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
 */
export function verifyWebhookSignature(options: VerifyWebhookOptions): boolean {
  const given =
    typeof options.secret === 'string' || options.secret instanceof Uint8Array ? [options.secret] : options.secret;
  const secrets = given.map(bytesOf).filter((key) => key.length > 0);
  if (secrets.length === 0) return false;
  const body = bytesOf(options.body);
  const id = headerOf(options.headers, 'webhook-id');
  const timestamp = headerOf(options.headers, 'webhook-timestamp');
  const signature = headerOf(options.headers, 'webhook-signature');

  if (id !== undefined || timestamp !== undefined || signature !== undefined) {
    if (!id || !timestamp || !signature || !/^\d{1,12}$/.test(timestamp.trim())) return false;
    const tolerance = options.toleranceSeconds ?? 300;
    const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
    if (Math.abs(nowSeconds - Number(timestamp.trim())) > tolerance) return false;
    const signed = Buffer.concat([Buffer.from(`${id}.${timestamp.trim()}.`, 'utf8'), body]);
    const expected = secrets.map((key) => Buffer.from(createHmac('sha256', key).update(signed).digest('base64')));
    const v1 = signature
      .split(' ')
      .filter((part) => part.startsWith('v1,'))
      .map((part) => part.slice(3));
    return matchesAny(v1, expected);
  }

  if (!options.legacy) return false;
  const legacy = headerOf(options.headers, 'latchkey-signature');
  if (!legacy) return false;
  const expected = secrets.map((key) => Buffer.from(`sha256=${createHmac('sha256', key).update(body).digest('hex')}`));
  return matchesAny(legacy.trim().split(/\s+/), expected);
}
