import { AppError } from '../errors';
import { parseApiBase, type ApiBase } from '../providers/api-target';
import type { Provider } from '../providers/registry';
import { resolveHeaders, resolveProviderUrl, type TemplateValues } from '../providers/templates';

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
