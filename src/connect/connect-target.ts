import { AppError } from '../errors';
import type { Provider } from '../providers/registry';
import { CONNECTION_ID_PATTERN, type FlowDeps } from './authorization-flow';
import { claimConnectLink, ConnectLinkError, type ClaimedLink } from './connect-sessions';
import { resolveReturnTo } from './return-to';

/** Which connection a browser may create, and where it goes afterwards. */
export interface ConnectTarget {
  provider: Provider;
  connectionId: string;
  returnTo: string;
  /** The connect link this target came from, claimed but not yet spent. */
  link?: ClaimedLink;
  /** `connectionConfig` values, checked (from the link's `connection_config`, or the config form). */
  config?: Record<string, string>;
}

export interface ConnectQuery {
  token?: string;
  connection_id?: string;
  return_to?: string;
}

/**
 * Decides who may connect: the holder of a single-use connect link, or, when anonymous connect is
 * on, anyone naming a `connection_id` (default `default`). Everything that can be checked without
 * the link is checked first (the provider, `return_to`), and the link is claimed last, so a
 * request that fails does not use it up.
 */
export async function resolveConnectTarget(
  deps: FlowDeps,
  providerId: string,
  query: ConnectQuery,
): Promise<ConnectTarget> {
  const provider = deps.providers.requireEnabled(providerId);
  // Refused even when the link names its own return_to: a bad one is a broken request.
  const askedReturnTo = query.return_to === undefined ? undefined : resolveReturnTo(query.return_to, deps.config);
  if (query.token) {
    const link = await claimConnectLink(deps, query.token, provider);
    return {
      provider,
      connectionId: link.session.connectionId,
      returnTo: link.session.returnTo ?? askedReturnTo ?? resolveReturnTo(undefined, deps.config),
      link,
      config: link.session.config,
    };
  }
  if (!deps.config.allowAnonymousConnect) {
    throw new ConnectLinkError(
      'missing',
      'Connecting needs a connect link from the application: this address has none.',
    );
  }
  const connectionId = query.connection_id ?? 'default';
  if (!CONNECTION_ID_PATTERN.test(connectionId)) {
    throw new AppError('invalid_request', 'connection_id must match ^[A-Za-z0-9._:@-]{1,128}$');
  }
  return { provider, connectionId, returnTo: askedReturnTo ?? resolveReturnTo(undefined, deps.config) };
}
