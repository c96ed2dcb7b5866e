import { Readable } from 'node:stream';
import axios, {
  AxiosError,
  AxiosHeaders,
  type AxiosInstance,
  type AxiosRequestConfig,
  type AxiosResponse,
} from 'axios';
import { resolveApiUrl } from '../providers/api-target';
import { requireTarget, resolveConnectionTarget } from './connection-target';
import type { Provider, ProviderRegistry } from '../providers/registry';
import { DEFAULT_RETRY, nextRetryDelay, type RetryOptions } from './retry-policy';
import type { CredentialSource, ResolvedCredential } from './types';

/** Paths are pinned under `apiBaseUrl` by the proxy's rules (SECURITY.md §10, §27); kept exported here for callers of the client. */
export { resolveApiUrl };

/** What a caller may set on a request; the client owns the base URL, redirects and the credential. */
export type ApiRequestConfig<D = unknown> = Omit<
  AxiosRequestConfig<D>,
  'baseURL' | 'maxRedirects' | 'allowAbsoluteUrls' | 'auth'
>;

/**
 * An axios-like client bound to one connection: paths are relative to the provider's
 * `apiBaseUrl`, and every request carries the stored credential and the provider's `apiHeaders`.
 */
export interface ConnectionClient {
  readonly provider: Provider;
  readonly connectionId: string;
  request<T = unknown, D = unknown>(config: ApiRequestConfig<D>): Promise<AxiosResponse<T, D>>;
  get<T = unknown>(url: string, config?: ApiRequestConfig): Promise<AxiosResponse<T>>;
  delete<T = unknown>(url: string, config?: ApiRequestConfig): Promise<AxiosResponse<T>>;
  head<T = unknown>(url: string, config?: ApiRequestConfig): Promise<AxiosResponse<T>>;
  options<T = unknown>(url: string, config?: ApiRequestConfig): Promise<AxiosResponse<T>>;
  post<T = unknown, D = unknown>(url: string, data?: D, config?: ApiRequestConfig<D>): Promise<AxiosResponse<T, D>>;
  put<T = unknown, D = unknown>(url: string, data?: D, config?: ApiRequestConfig<D>): Promise<AxiosResponse<T, D>>;
  patch<T = unknown, D = unknown>(url: string, data?: D, config?: ApiRequestConfig<D>): Promise<AxiosResponse<T, D>>;
}

export interface ApiClientDeps {
  credentials: CredentialSource;
  /** Needed only to name providers by id in `forConnection`. */
  providers?: ProviderRegistry;
  /** The HTTP client requests go through (tests hand in one nock can see). */
  http?: AxiosInstance;
  /** Default request timeout. */
  timeoutMs?: number;
  retry?: Partial<RetryOptions>;
  /** How retries wait (tests pass one that records and resolves at once). */
  sleep?: (ms: number) => Promise<void>;
}

export interface ApiClient {
  forConnection(provider: Provider | string, connectionId?: string): ConnectionClient;
}

const REDACTED = '[redacted]';

/**
 * Builds the authenticated API client every TypeScript caller uses. Per request:
 * - the credential comes from the {@link CredentialSource} (refreshed first when due);
 * - on a 401 the credential is refreshed once and the request retried once (RFC 6750 §3.1),
 *   behind a per-request guard, so it can never loop; a stream body is not replayed;
 * - 429 and 503-like answers are retried for idempotent methods only (RFC 9110 §9.2.2), with
 *   exponential backoff that honours `Retry-After`, bounded in attempts and in total time;
 * - redirects are not followed (they would carry the credential to wherever they point), and the
 *   credential is blanked from the config of every response and error handed back.
 */
export function createApiClient(deps: ApiClientDeps): ApiClient {
  const http = deps.http ?? axios.create();
  const retry: RetryOptions = { ...DEFAULT_RETRY, ...deps.retry };
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  return {
    forConnection(providerOrId, connectionId = 'default') {
      const provider = typeof providerOrId === 'string' ? requireRegistry(deps).require(providerOrId) : providerOrId;
      const request = <T, D>(config: ApiRequestConfig<D>) =>
        send<T, D>({ ...deps, http, retry, sleep }, provider, connectionId, config);
      return {
        provider,
        connectionId,
        request,
        get: (url, config) => request({ ...config, method: 'GET', url }),
        delete: (url, config) => request({ ...config, method: 'DELETE', url }),
        head: (url, config) => request({ ...config, method: 'HEAD', url }),
        options: (url, config) => request({ ...config, method: 'OPTIONS', url }),
        post: (url, data, config) => request({ ...config, method: 'POST', url, data }),
        put: (url, data, config) => request({ ...config, method: 'PUT', url, data }),
        patch: (url, data, config) => request({ ...config, method: 'PATCH', url, data }),
      };
    },
  };
}

interface SendDeps {
  credentials: CredentialSource;
  http: AxiosInstance;
  timeoutMs?: number;
  retry: RetryOptions;
  sleep: (ms: number) => Promise<void>;
}

async function send<T, D>(
  deps: SendDeps,
  provider: Provider,
  connectionId: string,
  config: ApiRequestConfig<D>,
): Promise<AxiosResponse<T, D>> {
  const method = (config.method ?? 'GET').toUpperCase();
  // A provider without a templated base is pinned before anything is read, as in the first release.
  const fixedUrl =
    provider.templates.apiBaseUrl.refs.length === 0 ? resolveApiUrl(provider.apiBaseUrl, config.url ?? '') : null;
  const replayable = !(config.data instanceof Readable);
  const started = performance.now();
  let slept = 0;
  let credential = await deps.credentials.getCredential(provider, connectionId);
  let refreshedAfter401 = false;

  for (let attempt = 1; ; attempt++) {
    // The connection's resolved base is the pin; its resolved apiHeaders go with it (409 connection_incomplete when it cannot be built).
    const target = requireTarget(credential.target ?? resolveConnectionTarget(provider, credential.connection));
    const outgoing: AxiosRequestConfig<D> = {
      ...config,
      method,
      url: fixedUrl ?? resolveApiUrl(target.base, config.url ?? ''),
      headers: buildHeaders(target.headers, config.headers, credential),
      timeout: config.timeout ?? deps.timeoutMs,
      maxRedirects: 0,
      validateStatus: () => true,
    };
    let response: AxiosResponse<T, D>;
    try {
      response = await deps.http.request<T, AxiosResponse<T, D>, D>(outgoing);
    } catch (err) {
      throw redactError(err, credential);
    }

    if (response.status === 401 && !refreshedAfter401 && replayable) {
      refreshedAfter401 = true;
      const renewed = await deps.credentials.refreshAfterUnauthorized(provider, connectionId, credential);
      if (renewed) {
        credential = renewed;
        attempt -= 1; // the retry after a refresh is not a backoff attempt
        continue;
      }
    }

    const elapsedMs = Math.max(performance.now() - started, slept);
    const delay = replayable ? nextRetryDelay(response, method, { attempt, elapsedMs }, deps.retry, Date.now()) : null;
    if (delay !== null) {
      slept += delay;
      await deps.sleep(delay);
      continue;
    }
    return finish(response, config, credential);
  }
}

/** Accept, then the connection's `apiHeaders`, then the caller's (which win), then the credential (which nothing overrides). */
function buildHeaders(
  apiHeaders: Readonly<Record<string, string>>,
  callerHeaders: ApiRequestConfig['headers'],
  credential: ResolvedCredential,
): AxiosHeaders {
  const headers = new AxiosHeaders();
  headers.set('Accept', 'application/json');
  headers.set({ ...apiHeaders });
  if (callerHeaders) headers.set(AxiosHeaders.from(callerHeaders as never));
  headers.set(credential.header.name, credential.header.value);
  return headers;
}

/** Applies the caller's `validateStatus` (axios default: 2xx) and blanks the credential. */
function finish<T, D>(
  response: AxiosResponse<T, D>,
  config: ApiRequestConfig<D>,
  credential: ResolvedCredential,
): AxiosResponse<T, D> {
  response.config = redactConfig(response.config, credential) as typeof response.config;
  const valid = config.validateStatus === null || (config.validateStatus ?? defaultValidateStatus)(response.status);
  if (valid) return response;
  const code = response.status >= 500 ? AxiosError.ERR_BAD_RESPONSE : AxiosError.ERR_BAD_REQUEST;
  const { request: _request, ...bare } = response;
  throw new AxiosError(
    `Request failed with status code ${response.status}`,
    code,
    response.config,
    undefined,
    bare as AxiosResponse,
  );
}

function defaultValidateStatus(status: number): boolean {
  return status >= 200 && status < 300;
}

/** axios errors carry the request config, Authorization header included (SECURITY.md §8): blank it, drop the socket. */
function redactError(err: unknown, credential: ResolvedCredential): unknown {
  if (!axios.isAxiosError(err)) return err;
  if (err.config) err.config = redactConfig(err.config, credential) as typeof err.config;
  if (err.response) {
    err.response.config = redactConfig(err.response.config, credential) as typeof err.response.config;
    err.response.request = undefined;
  }
  err.request = undefined;
  return err;
}

function redactConfig<C extends { headers?: unknown }>(config: C, credential: ResolvedCredential): C {
  if (!config) return config;
  const headers = AxiosHeaders.from((config.headers ?? {}) as never);
  if (headers.has(credential.header.name)) headers.set(credential.header.name, REDACTED);
  return { ...config, headers };
}

function requireRegistry(deps: ApiClientDeps): ProviderRegistry {
  if (!deps.providers) throw new Error('createApiClient needs `providers` to look providers up by id');
  return deps.providers;
}
