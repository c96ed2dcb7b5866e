import { AppError } from '../errors';
import { parseApiBase, type ApiBase } from '../providers/api-target';
import type { OAuth2Provider, Provider } from '../providers/registry';
import {
  resolveAuthorizationParams,
  resolveHeaders,
  resolveProviderUrl,
  type TemplateValues,
} from '../providers/templates';

/**
 * Where a connection's API calls go and what they carry, resolved once from the provider's
 * templates and the connection's config and metadata (CONTRACT "Provider definition":
 * templates). `base` is the pin of every call (SECURITY.md §10).
 */
export interface ConnectionTarget {
  base: ApiBase;
  /** The resolved `apiHeaders`: a header whose value is missing is left out. */
  headers: Readonly<Record<string, string>>;
  /**
   * Lower-case names of the headers filled from `{metadata.*}`: a caller's own value of one of
   * them wins over the resolved one (never the credential's header, never a stripped one).
   */
  callerWins: ReadonlySet<string>;
}

/** A target, or why the connection's `apiBaseUrl` cannot be built (409 `connection_incomplete`). */
export type ResolvedTarget = ConnectionTarget | { incomplete: AppError };

const staticTargets = new WeakMap<Provider, ConnectionTarget>();

/**
 * Resolves `apiBaseUrl` and `apiHeaders` for a connection. A provider without templates gets one
 * shared target; a templated one is resolved each time (callers keep the result with the
 * credential, so it is resolved once per cached entry).
 */
export function resolveConnectionTarget(provider: Provider, values: TemplateValues): ResolvedTarget {
  const { templates } = provider;
  const plain = templates.apiBaseUrl.refs.length === 0 && templates.apiHeaders.templated.length === 0;
  if (plain) {
    let target = staticTargets.get(provider);
    if (!target) {
      target = { base: parseApiBase(provider.apiBaseUrl), headers: templates.apiHeaders.fixed, callerWins: new Set() };
      staticTargets.set(provider, target);
    }
    return target;
  }
  const url = resolveProviderUrl(templates.apiBaseUrl, values);
  if (typeof url !== 'string') {
    const why = 'missing' in url ? `${url.missing} is missing` : `${url.invalid} ${url.reason}`;
    return {
      incomplete: new AppError(
        'connection_incomplete',
        `The ${provider.displayName} connection cannot be called: its API URL needs ${why}; reconnect it or set the value`,
      ),
    };
  }
  const callerWins = new Set<string>();
  for (const [name, value] of templates.apiHeaders.templated) {
    if (value.refs.some((ref) => ref.source === 'metadata')) callerWins.add(name.toLowerCase());
  }
  return { base: parseApiBase(url), headers: resolveHeaders(templates.apiHeaders, values).headers, callerWins };
}

/** The target, or the 409 `connection_incomplete` that says which value is missing. */
export function requireTarget(target: ResolvedTarget): ConnectionTarget {
  if ('incomplete' in target) throw target.incomplete;
  return target;
}

/**
 * The provider with its OAuth endpoints (`authorizationUrl`, `tokenUrl`, `revocationUrl`,
 * `authorizationParams`) resolved from a connection's config (and, for revocation, metadata),
 * so the protocol code builds every URL from the connection's values. A provider without
 * templates is given back as it is.
 *
 * @throws AppError `connection_incomplete` (409) naming the value an authorization or token URL lacks
 */
export function withConnectionEndpoints(provider: OAuth2Provider, values: TemplateValues): OAuth2Provider {
  const { templates } = provider;
  const templated = [templates.authorizationUrl, templates.tokenUrl, templates.revocationUrl].some(
    (t) => t && t.refs.length > 0,
  );
  const paramsTemplated = templates.authorizationParams.entries.some(([, v]) => v.refs.length > 0);
  if (!templated && !paramsTemplated) return provider;
  const url = (template: typeof templates.tokenUrl, field: string): string => {
    const resolved = resolveProviderUrl(template!, values);
    if (typeof resolved === 'string') return resolved;
    const why = 'missing' in resolved ? `${resolved.missing} is missing` : `${resolved.invalid} ${resolved.reason}`;
    throw new AppError('connection_incomplete', `The ${provider.displayName} ${field} cannot be built: ${why}`);
  };
  const params = resolveAuthorizationParams(templates.authorizationParams, values) as Record<string, unknown>;
  // The result is the parameters when it holds exactly the declared names; otherwise it says what is missing.
  const names = templates.authorizationParams.entries.map(([name]) => name);
  const resolved = Object.keys(params).length === names.length && names.every((n) => typeof params[n] === 'string');
  if (!resolved) {
    const which = String(params.missing ?? params.invalid);
    throw new AppError('connection_incomplete', `The ${provider.displayName} authorization needs ${which}`);
  }
  const authorizationParams = params as Record<string, string>;
  let revocationUrl = provider.revocationUrl;
  if (templates.revocationUrl) {
    // A revocation URL that cannot be built means no revocation, never a failed delete.
    const resolved = resolveProviderUrl(templates.revocationUrl, values);
    revocationUrl = typeof resolved === 'string' ? resolved : null;
  }
  return {
    ...provider,
    authorizationUrl: url(templates.authorizationUrl, 'authorization URL'),
    tokenUrl: url(templates.tokenUrl, 'token URL'),
    revocationUrl,
    authorizationParams,
  };
}
