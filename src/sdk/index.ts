import type { ConnectionView } from '../http/views';
import { LatchkeyError, type LatchkeyErrorCode } from './errors';
import type { ConnectSession, Connection, ProxyOptions, ProxyResponse, QueryValue, Revocation, Token } from './types';

export { LatchkeyError, type LatchkeyErrorCode } from './errors';
export type * from './types';

export interface LatchkeyOptions {
  /** Where Latchkey runs, e.g. `http://latchkey.internal:3000` (PUBLIC_URL, or the internal address). */
  baseUrl: string;
  /** One of Latchkey's CONNECTOR_API_KEYS. */
  apiKey: string;
  /** Per-call timeout, in ms. Default 30 000. */
  timeoutMs?: number;
  /** A fetch of your own (tests, proxies, instrumentation); the global one by default. */
  fetch?: typeof fetch;
}

/** The contract's wire format (a type only: the client carries none of the server's code). */
type WireConnection = ConnectionView;

const toConnection = (c: WireConnection): Connection => ({
  provider: c.provider,
  connectionId: c.connection_id,
  status: c.status,
  scopes: c.scopes,
  expiresAt: c.expires_at,
  createdAt: c.created_at,
  updatedAt: c.updated_at,
  lastRefreshedAt: c.last_refreshed_at,
});

const segment = (value: string) => encodeURIComponent(value);

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

/**
 * The typed Node client of Latchkey's service API, for internal services. It uses the global
 * `fetch` (Node 18+), no dependency. Latchkey's own errors throw {@link LatchkeyError} with the
 * contract's `code`; a provider's answers through `proxy.*` come back whatever their status.
 *
 * ```ts
 * import { Latchkey } from 'latchkey/client';
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
    create: async (input: { provider: string; connectionId: string; returnTo?: string }): Promise<ConnectSession> => {
      const body: Record<string, string> = { provider: input.provider, connection_id: input.connectionId };
      if (input.returnTo !== undefined) body.return_to = input.returnTo;
      const issued = await this.call<{ token: string; url: string; expires_at: string }>('POST', '/connect-sessions', {
        body,
      });
      return { token: issued.token, url: issued.url, expiresAt: issued.expires_at };
    },
  };

  /** The stored connections (never their tokens). */
  readonly connections = {
    /** `GET /connections[?provider=]`. */
    list: async (options: { provider?: string } = {}): Promise<Connection[]> => {
      const { connections } = await this.call<{ connections: WireConnection[] }>('GET', '/connections', {
        query: { provider: options.provider },
      });
      return connections.map(toConnection);
    },
    /** `GET /connections/:provider/:connectionId`; throws `connection_not_found`. */
    get: async (provider: string, connectionId = 'default'): Promise<Connection> =>
      toConnection(
        await this.call<WireConnection>('GET', `/connections/${segment(provider)}/${segment(connectionId)}`),
      ),
    /** `DELETE …`: revokes at the provider when it can, deletes in any case, and says what became of the grant. */
    delete: async (provider: string, connectionId = 'default'): Promise<{ revocation: Revocation }> => {
      const res = await this.send('DELETE', `/connections/${segment(provider)}/${segment(connectionId)}`);
      await this.failUnlessOk(res);
      return { revocation: (res.headers.get('latchkey-revocation') as Revocation | null) ?? 'not_supported' };
    },
    /** `POST …/refresh`: forces a refresh; throws `reauth_required` when the user must reconnect. */
    refresh: async (provider: string, connectionId = 'default'): Promise<Connection> =>
      toConnection(
        await this.call<WireConnection>('POST', `/connections/${segment(provider)}/${segment(connectionId)}/refresh`),
      ),
  };

  /** `GET …/token`: a working access token, refreshed first when it is close to expiry. */
  async token(provider: string, connectionId = 'default'): Promise<Token> {
    const t = await this.call<{ access_token: string; token_type: string; expires_at: string | null }>(
      'GET',
      `/connections/${segment(provider)}/${segment(connectionId)}/token`,
    );
    return { accessToken: t.access_token, tokenType: t.token_type, expiresAt: t.expires_at };
  }

  /**
   * The provider's API through Latchkey's proxy, with the stored credential: `path` is relative
   * to the provider's `apiBaseUrl` (`/forms` or `forms`). The answer is the provider's, whatever
   * its status; only Latchkey's own errors (bad path, no connection, reconnect needed, timeouts…)
   * throw. `request` gives the raw `Response`, to stream a large body.
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

  private async proxyRequest(method: string, provider: string, path: string, options: ProxyOptions): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.connectionId !== undefined) headers['Connection-Id'] = options.connectionId;
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
  private async call<T>(
    method: string,
    path: string,
    options: { query?: Record<string, QueryValue>; body?: unknown } = {},
  ): Promise<T> {
    const res = await this.send(method, path, options);
    await this.failUnlessOk(res);
    try {
      return (await res.json()) as T;
    } catch (err) {
      throw new LatchkeyError(
        'invalid_response',
        `Latchkey answered ${method} ${path} with a body that is not JSON`,
        res.status,
        undefined,
        { cause: err },
      );
    }
  }

  private async send(
    method: string,
    path: string,
    options: {
      query?: Record<string, QueryValue>;
      headers?: Record<string, string>;
      body?: unknown;
      signal?: AbortSignal;
    } = {},
  ): Promise<Response> {
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
        {
          cause: err,
        },
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
      const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
      code ??= (parsed.error?.code as LatchkeyErrorCode | undefined) ?? null;
      if (parsed.error?.message) message = parsed.error.message;
    } catch {
      // Not Latchkey's JSON (a proxy in between, say): the status is all there is.
    }
    const retryAfter = Number(res.headers.get('retry-after'));
    throw new LatchkeyError(
      code ?? 'invalid_response',
      message,
      res.status,
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
    );
  }
}
