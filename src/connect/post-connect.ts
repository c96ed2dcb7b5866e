import type { AxiosInstance } from 'axios';
import type { AuthHeader } from '../client/types';
import { requireTarget, resolveConnectionTarget } from '../client/connection-target';
import type { Logger } from '../logger';
import { resolveApiUrl } from '../providers/api-target';
import { readFieldPath } from '../providers/provider-templates';
import type { Provider } from '../providers/registry';
import type { ConnectionConfig, ConnectionMetadata } from '../store';
import { MAX_METADATA_VALUE_LENGTH } from '../store';

/** The short bound on each post-connect call: a person is waiting for the flow to finish. */
export const POST_CONNECT_TIMEOUT_MS = 3000;

export interface PostConnectDeps {
  http: AxiosInstance;
  logger?: Logger;
  timeoutMs?: number;
}

export interface PostConnectResult {
  /** What the calls captured (CONTRACT `postConnect`). */
  captured: ConnectionMetadata;
  /** The metadata names that could not be captured (their call failed, or the answer lacked them). */
  missing: string[];
}

/**
 * Runs the provider's `postConnect` calls with the new credential, in order, each through the
 * pinned path of the connection's resolved `apiBaseUrl` (api-target.ts, as the proxy pins), with
 * the connection's resolved `apiHeaders` (a value captured by an earlier call already counts),
 * no redirect followed, a short timeout. A call that fails leaves its values missing: it never
 * fails the connect (CONTRACT: only `apiKey.check` refuses). Failures are logged as a warning
 * with the provider, the call's path and a status or code, never a credential or a value.
 */
export async function runPostConnect(
  deps: PostConnectDeps,
  provider: Provider,
  header: AuthHeader,
  values: { config: ConnectionConfig; metadata: ConnectionMetadata },
  connectionId: string,
): Promise<PostConnectResult> {
  const captured: ConnectionMetadata = {};
  const missing: string[] = [];
  for (const call of provider.postConnect) {
    const names = Object.keys(call.capture);
    let body: unknown;
    try {
      const target = requireTarget(
        resolveConnectionTarget(provider, { config: values.config, metadata: { ...values.metadata, ...captured } }),
      );
      const headers: Record<string, string> = { accept: 'application/json' };
      for (const [name, value] of Object.entries(target.headers)) headers[name.toLowerCase()] = value;
      headers[header.name.toLowerCase()] = header.value;
      const res = await deps.http.request({
        method: call.method,
        url: resolveApiUrl(target.base, call.path),
        headers,
        timeout: deps.timeoutMs ?? POST_CONNECT_TIMEOUT_MS,
        maxRedirects: 0,
        maxContentLength: 1024 * 1024,
        validateStatus: (status) => status >= 200 && status < 300,
      });
      body = res.data;
    } catch (err) {
      const e = err as { response?: { status?: number }; code?: string };
      deps.logger?.warn(
        {
          provider: provider.id,
          connectionId,
          path: call.path,
          status: e.response?.status,
          code: e.response ? undefined : (e.code ?? (err as Error).name),
          missing: names,
        },
        'a post-connect call failed; the connection is active without these values',
      );
      missing.push(...names);
      continue;
    }
    const lacking: string[] = [];
    for (const [name, path] of Object.entries(call.capture)) {
      const value = readFieldPath(body, path);
      if (value === undefined || (typeof value === 'string' && value.length > MAX_METADATA_VALUE_LENGTH))
        lacking.push(name);
      else captured[name] = value;
    }
    if (lacking.length) {
      deps.logger?.warn(
        { provider: provider.id, connectionId, path: call.path, missing: lacking },
        'a post-connect answer lacked values to capture; the connection is active without them',
      );
      missing.push(...lacking);
    }
  }
  return { captured, missing };
}
