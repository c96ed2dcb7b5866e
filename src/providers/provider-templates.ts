import type { ProviderDefinition } from './schema';
import {
  compileHeadersTemplate,
  compileParamsTemplate,
  compileUrlTemplate,
  slotValueProblem,
  type HeadersTemplate,
  type ParamsTemplate,
  type SlotKind,
  type UrlTemplate,
} from './templates';

/**
 * A provider's templated fields, compiled once when the registry is built, so that resolving
 * them for a connection (templates.ts: `resolveProviderUrl`, `resolveHeaders`,
 * `resolveAuthorizationParams`) is a concatenation and a few checks.
 */
export interface ProviderTemplates {
  apiBaseUrl: UrlTemplate;
  apiHeaders: HeadersTemplate;
  /** oauth2 only (null for api_key providers). */
  authorizationUrl: UrlTemplate | null;
  tokenUrl: UrlTemplate | null;
  revocationUrl: UrlTemplate | null;
  authorizationParams: ParamsTemplate;
  /** Where each `connectionConfig` value is put: the kinds of slot that name it (empty: stored only). */
  configSlots: ReadonlyMap<string, ReadonlySet<SlotKind>>;
  /** The metadata names any template uses. */
  metadataNames: ReadonlySet<string>;
  /** `connectionConfig` patterns, compiled to match a whole value. */
  configPatterns: ReadonlyMap<string, RegExp>;
}

/** Compiles a definition the schema accepted (so compiling cannot fail here). */
export function compileProviderTemplates(def: ProviderDefinition): ProviderTemplates {
  const apiBaseUrl = compileUrlTemplate(def.apiBaseUrl, { metadata: true });
  const apiHeaders = compileHeadersTemplate(def.apiHeaders);
  const oauth2 = def.authMode === 'oauth2' ? def : undefined;
  const authorizationUrl = oauth2 ? compileUrlTemplate(oauth2.authorizationUrl, { metadata: false }) : null;
  const tokenUrl = oauth2 ? compileUrlTemplate(oauth2.tokenUrl, { metadata: false }) : null;
  const revocationUrl = oauth2?.revocationUrl ? compileUrlTemplate(oauth2.revocationUrl, { metadata: true }) : null;
  const authorizationParams = compileParamsTemplate(oauth2?.authorizationParams ?? {});

  const configSlots = new Map<string, Set<SlotKind>>();
  for (const name of Object.keys(def.connectionConfig)) configSlots.set(name, new Set());
  const metadataNames = new Set<string>();
  const note = (compiled: { refs: readonly { source: string; name: string }[]; kinds: readonly SlotKind[] }) =>
    compiled.refs.forEach((ref, i) => {
      if (ref.source === 'config') configSlots.get(ref.name)?.add(compiled.kinds[i]!);
      else metadataNames.add(ref.name);
    });
  for (const url of [apiBaseUrl, authorizationUrl, tokenUrl, revocationUrl]) if (url) note(url);
  for (const [, value] of apiHeaders.templated) note(value);
  for (const [, value] of authorizationParams.entries) note(value);

  const configPatterns = new Map<string, RegExp>();
  for (const [name, entry] of Object.entries(def.connectionConfig)) {
    configPatterns.set(name, new RegExp(`^(?:${entry.pattern})$`, 'u'));
  }
  return {
    apiBaseUrl,
    apiHeaders,
    authorizationUrl,
    tokenUrl,
    revocationUrl,
    authorizationParams,
    configSlots,
    metadataNames,
    configPatterns,
  };
}

/** Longest connection config value accepted, whatever the pattern says. */
export const MAX_CONFIG_VALUE_LENGTH = 256;

export interface ConfigProblem {
  /** The `connectionConfig` name (or the unknown name given). */
  name: string;
  message: string;
}

/**
 * Checks the connection config a connect session or the connect form supplies: only declared
 * names, strings, each matching its whole pattern, and usable in every slot that names it (a
 * host label, a path segment, a header); a required name must be present. The messages name the
 * field and the rule, never echo the value. An empty string counts as not given.
 *
 * @param input what the caller sent (an object of strings, or undefined)
 * @param options.partial true while some required values may still come from the form
 */
export function checkConnectionConfig(
  provider: { connectionConfig: ProviderDefinition['connectionConfig']; templates: ProviderTemplates },
  input: unknown,
  options: { partial?: boolean } = {},
): { config: Record<string, string>; missing: string[] } | { problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const config: Record<string, string> = {};
  if (input !== undefined && input !== null && (typeof input !== 'object' || Array.isArray(input))) {
    return { problems: [{ name: '', message: 'connection_config must be an object of strings' }] };
  }
  const given = (input ?? {}) as Record<string, unknown>;
  for (const [name, value] of Object.entries(given)) {
    const entry = Object.hasOwn(provider.connectionConfig, name) ? provider.connectionConfig[name] : undefined;
    if (!entry) {
      problems.push({ name, message: `"${name.slice(0, 50)}" is not a connection config value of this provider` });
      continue;
    }
    if (typeof value !== 'string') {
      problems.push({ name, message: `${entry.label} must be a string` });
      continue;
    }
    // Empty counts as unset, as everywhere.
    if (value === '') continue;
    if (value.length > MAX_CONFIG_VALUE_LENGTH) {
      problems.push({ name, message: `${entry.label} is longer than ${MAX_CONFIG_VALUE_LENGTH} characters` });
      continue;
    }
    if (!provider.templates.configPatterns.get(name)!.test(value)) {
      problems.push({ name, message: `${entry.label} must match ${entry.pattern}` });
      continue;
    }
    const kinds = provider.templates.configSlots.get(name) ?? new Set<SlotKind>();
    const slotProblem = [...kinds, 'param' as const].map((kind) => slotValueProblem(kind, value)).find(Boolean);
    if (slotProblem) {
      problems.push({ name, message: `${entry.label} ${slotProblem}` });
      continue;
    }
    config[name] = value;
  }
  const missing = Object.entries(provider.connectionConfig)
    .filter(([name, entry]) => entry.required && config[name] === undefined && !problems.some((p) => p.name === name))
    .map(([name]) => name);
  if (!options.partial) {
    for (const name of missing)
      problems.push({ name, message: `${provider.connectionConfig[name]!.label} is required` });
  }
  return problems.length ? { problems } : { config, missing };
}

/**
 * Reads a captured value at `path` (`results.0.organization_id`) in a parsed JSON answer:
 * own properties only, array indexes as numbers. Only strings, finite numbers and booleans are
 * captured (metadata is never an object); anything else is undefined.
 */
export function readFieldPath(value: unknown, path: string): string | number | boolean | undefined {
  let at: unknown = value;
  for (const key of path.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    if (Array.isArray(at)) {
      if (!/^(0|[1-9]\d*)$/.test(key)) return undefined;
      at = at[Number(key)];
    } else {
      if (!Object.hasOwn(at, key)) return undefined;
      at = (at as Record<string, unknown>)[key];
    }
  }
  if (typeof at === 'string' || typeof at === 'boolean') return at;
  return typeof at === 'number' && Number.isFinite(at) ? at : undefined;
}
