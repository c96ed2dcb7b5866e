import { isAxiosError, type AxiosInstance } from 'axios';
import { AppError } from '../errors';
import { resolveApiUrl } from '../providers/api-target';
import type { ApiKeyProvider } from '../providers/registry';
import { resolveHeaders, resolveProviderUrl } from '../providers/templates';

/** The short bound on a key check: a person is waiting on the form. */
export const API_KEY_CHECK_TIMEOUT_MS = 5000;

/**
 * What trying a pasted key came to. Only `refused` (the provider answered 401 or 403) says the
 * key is wrong; `failed` (unreachable, too slow, 5xx, any other answer) says nothing about it,
 * so the key is not stored either (CONTRACT `apiKey.check`: a network failure is an error, not
 * an accept). `unchecked`: the provider has no `apiKey.check`.
 */
export type ApiKeyCheck =
  | { outcome: 'accepted'; status: number }
  | { outcome: 'unchecked' }
  | { outcome: 'refused'; status: number; error: AppError }
  | { outcome: 'failed'; error: AppError };

export interface ApiKeyCheckOptions {
  http: AxiosInstance;
  /** Default {@link API_KEY_CHECK_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** The connection's config values, for a provider whose `apiBaseUrl` or `apiHeaders` use them. */
  config?: Readonly<Record<string, string>>;
}

/**
 * Tries `apiKey` once with the provider's `apiKey.check` (CONTRACT "Additions": `apiKey.check`):
 * one request, no retry, to `apiBaseUrl` joined with the check's path through the same pinning
 * as the proxy (api-target.ts), with the provider's `apiHeaders` and the key in its header and
 * format, no redirect followed and no body read. For the API-key form and for imports.
 *
 * `refused` carries `invalid_request` (400); `failed` carries `provider_error` (502) or
 * `upstream_timeout` (504). Neither error holds the key, nor the request it went in.
 */
export async function checkApiKey(
  provider: ApiKeyProvider,
  apiKey: string,
  options: ApiKeyCheckOptions,
): Promise<ApiKeyCheck> {
  const check = provider.apiKey.check;
  if (!check) return { outcome: 'unchecked' };
  const name = provider.displayName;
  const values = { config: options.config ?? {} };
  const base = resolveProviderUrl(provider.templates.apiBaseUrl, values);
  if (typeof base !== 'string') {
    const which = 'missing' in base ? `${base.missing} is missing` : `${base.invalid} ${base.reason}`;
    return { outcome: 'failed', error: new AppError('invalid_request', `The key cannot be checked: ${which}`) };
  }
  const url = resolveApiUrl(base, check.path);
  const headers: Record<string, string> = { accept: 'application/json' };
  for (const [header, value] of Object.entries(resolveHeaders(provider.templates.apiHeaders, values).headers)) {
    headers[header.toLowerCase()] = value;
  }
  // A function, so that `$&` or `$'` in a key is not read as a replacement pattern.
  headers[provider.apiKey.header.toLowerCase()] = provider.apiKey.format.replace('{key}', () => apiKey);

  const timeoutMs = options.timeoutMs ?? API_KEY_CHECK_TIMEOUT_MS;
  let status: number;
  try {
    const res = await options.http.request({
      method: check.method,
      url,
      headers,
      timeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      maxRedirects: 0,
      responseType: 'stream',
      validateStatus: () => true,
    });
    (res.data as { destroy?: () => void } | undefined)?.destroy?.();
    status = res.status;
  } catch (err) {
    const code = isAxiosError(err) ? err.code : (err as NodeJS.ErrnoException).code;
    const timedOut = code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_CANCELED';
    const error = timedOut
      ? new AppError('upstream_timeout', `${name} did not answer the key check in time`, { cause: { code } })
      : new AppError('provider_error', `${name} could not be reached to check the key`, { cause: { code } });
    return { outcome: 'failed', error };
  }
  if (status >= 200 && status < 300) return { outcome: 'accepted', status };
  if (status === 401 || status === 403) {
    const error = new AppError('invalid_request', `${name} did not accept this API key (it answered ${status})`, {
      provider: { status },
    });
    return { outcome: 'refused', status, error };
  }
  const error = new AppError('provider_error', `${name} answered ${status} to the key check`, {
    provider: { status },
  });
  return { outcome: 'failed', error };
}
