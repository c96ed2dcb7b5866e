import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { AppError } from '../errors';
import { plainIssueWords } from '../plain-issues';
import { BUILT_IN_PROVIDERS } from './catalog';
import { compileProviderTemplates, type ProviderTemplates } from './provider-templates';
import {
  providerDefinitionSchema,
  type ApiKeyProviderDefinition,
  type OAuth2ProviderDefinition,
  type ProviderDefinition,
  type ProviderInput,
} from './schema';

/**
 * What the registry adds to a definition. Note `enabled`: in a definition it is the switch
 * (CONTRACT `enabled`); on a built provider it says whether the provider can be used now.
 */
interface ProviderState {
  /** `enabled: false` in its definition, or `<ID>_ENABLED=false`: gone from every page and route but DELETE. */
  switchedOff: boolean;
  /** Its credentials are set: oauth2 client id and secret; always true for api_key. */
  configured: boolean;
  /** Switched on and configured: it may be connected and called. */
  enabled: boolean;
  /**
   * The templated fields, compiled (resolve them per connection with templates.ts). The plain
   * fields keep the definition's text; `apiHeaders` holds only the headers without a template,
   * i.e. what a call carries when no connection value is known.
   */
  templates: ProviderTemplates;
}

export type OAuth2Provider = OAuth2ProviderDefinition &
  ProviderState & {
    clientId?: string;
    clientSecret?: string;
  };
export type ApiKeyProvider = ApiKeyProviderDefinition & ProviderState;
export type Provider = OAuth2Provider | ApiKeyProvider;

export class ProviderConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid provider definitions:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ProviderConfigError';
  }
}

export interface ProviderRegistry {
  /** Any known provider, switched off or not. */
  get(id: string): Provider | undefined;
  /** The provider unless switched off: `unknown_provider` or `provider_not_enabled` (404). */
  require(id: string): Provider;
  /**
   * Any known provider, also one switched off, or `unknown_provider` (404): for what must keep
   * working for a switched-off provider (deleting its stored connections).
   */
  requireKnown(id: string): Provider;
  /** The provider when switched on and its credentials are configured, or `provider_not_enabled` (404). */
  requireEnabled(id: string): Provider;
  /** Every provider, switched off ones included. */
  list(): Provider[];
  /** The providers that can be used now (switched on and configured). */
  listEnabled(): Provider[];
}

/** A list of provider entries and where they came from (a file path, or "demo"), for messages. */
export interface ProviderSource {
  source: string;
  entries: unknown;
}

/** `<ID>` of the per-provider variables: the id upper-cased with `-` → `_`. */
export function providerEnvPrefix(id: string): string {
  return id.toUpperCase().replace(/-/g, '_');
}

/** Reads PROVIDERS_FILE; a missing file or bad JSON is a start-up error naming the file. */
export function readProvidersFile(path: string): ProviderSource {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ProviderConfigError([`PROVIDERS_FILE ${path}: cannot be read (${(err as NodeJS.ErrnoException).code})`]);
  }
  try {
    return { source: `PROVIDERS_FILE ${path}`, entries: JSON.parse(text) };
  } catch (err) {
    throw new ProviderConfigError([`PROVIDERS_FILE ${path}: is not valid JSON (${(err as Error).message})`]);
  }
}

/**
 * Builds the catalog: built-in entries, then each source's entries (adding providers, or
 * overriding only the named fields of one already known), then the environment's credentials.
 */
export function buildProviderRegistry(
  env: Readonly<Record<string, string | undefined>>,
  sources: ProviderSource[] = [],
): ProviderRegistry {
  const problems: string[] = [];
  const raw = new Map<string, Record<string, unknown>>();
  for (const entry of BUILT_IN_PROVIDERS) raw.set(entry.id, structuredClone(entry) as Record<string, unknown>);
  const origin = new Map<string, string>();

  for (const { source, entries } of sources) {
    if (!Array.isArray(entries)) {
      problems.push(`${source}: must be a JSON array of provider definitions`);
      continue;
    }
    entries.forEach((entry: unknown, i: number) => {
      const where = `${source}: entry ${i + 1}`;
      if (!entry || typeof entry !== 'object' || Array.isArray(entry)) {
        problems.push(`${where}: must be an object`);
        return;
      }
      const e = entry as Record<string, unknown>;
      if (typeof e.id !== 'string') {
        problems.push(`${where}: field "id": is required`);
        return;
      }
      const base = raw.get(e.id);
      // An entry Latchkey does not ship is unverified unless the operator says otherwise.
      raw.set(e.id, base ? mergeOverride(base, e) : { verified: false, ...e });
      origin.set(e.id, `${where} ("${e.id}")`);
    });
  }

  const providers = new Map<string, Provider>();
  for (const [id, input] of raw) {
    // In an operator's words: the problems are printed at start-up with the configuration's.
    const parsed = providerDefinitionSchema.safeParse(input, { error: plainIssueWords });
    if (!parsed.success) {
      const where = origin.get(id) ?? `built-in provider "${id}"`;
      problems.push(...parsed.error.issues.map((issue) => `${where}: ${describeIssue(issue)}`));
      continue;
    }
    const switchedOff = readSwitch(parsed.data, env, problems);
    providers.set(id, withCredentials(parsed.data, env, switchedOff));
  }
  if (problems.length) throw new ProviderConfigError(problems);
  return createRegistry(providers);
}

function createRegistry(providers: Map<string, Provider>): ProviderRegistry {
  const list = [...providers.values()];
  return {
    get: (id) => providers.get(id),
    requireKnown(id) {
      const p = providers.get(id);
      if (!p) throw new AppError('unknown_provider', `Unknown provider "${id.slice(0, 64)}"`);
      return p;
    },
    require(id) {
      const p = this.requireKnown(id);
      if (p.switchedOff) {
        throw new AppError(
          'provider_not_enabled',
          `Provider "${id}" is switched off on this Latchkey (enabled: false, or ${providerEnvPrefix(id)}_ENABLED=false)`,
        );
      }
      return p;
    },
    requireEnabled(id) {
      const p = this.require(id);
      if (!p.enabled) {
        throw new AppError(
          'provider_not_enabled',
          `Provider "${id}" is not enabled: set ${providerEnvPrefix(id)}_CLIENT_ID and ${providerEnvPrefix(id)}_CLIENT_SECRET`,
        );
      }
      return p;
    },
    list: () => list,
    listEnabled: () => list.filter((p) => p.enabled),
  };
}

/**
 * Whether the provider is switched off: `<ID>_ENABLED` when set (`true`/`false`, `1`/`0`; empty
 * counts as unset), else the definition's `enabled`. The environment wins both ways, so an
 * operator can switch a provider back on without editing PROVIDERS_FILE.
 */
function readSwitch(
  def: ProviderDefinition,
  env: Readonly<Record<string, string | undefined>>,
  problems: string[],
): boolean {
  const name = `${providerEnvPrefix(def.id)}_ENABLED`;
  const value = env[name]?.trim().toLowerCase();
  if (!value) return !def.enabled;
  if (value === 'false' || value === '0') return true;
  if (value === 'true' || value === '1') return false;
  problems.push(`${name}: must be true or false`);
  return !def.enabled;
}

function withCredentials(
  def: ProviderDefinition,
  env: Readonly<Record<string, string | undefined>>,
  switchedOff: boolean,
): Provider {
  const templates = compileProviderTemplates(def);
  const state = { switchedOff, templates, apiHeaders: { ...templates.apiHeaders.fixed } };
  if (def.authMode === 'api_key') return { ...def, ...state, configured: true, enabled: !switchedOff };
  const prefix = providerEnvPrefix(def.id);
  const clientId = env[`${prefix}_CLIENT_ID`]?.trim() || undefined;
  const clientSecret = env[`${prefix}_CLIENT_SECRET`]?.trim() || undefined;
  const scopesEnv = env[`${prefix}_SCOPES`];
  const scopes = scopesEnv !== undefined && scopesEnv.trim() !== '' ? scopesEnv.trim().split(/\s+/) : def.scopes;
  const configured = Boolean(clientId && clientSecret);
  return { ...def, ...state, scopes, clientId, clientSecret, configured, enabled: configured && !switchedOff };
}

const OAUTH2_ONLY_FIELDS = [
  'authorizationUrl',
  'tokenUrl',
  'revocationUrl',
  'scopes',
  'scopeSeparator',
  'authorizationParams',
  'pkce',
  'tokenRequest',
  'issuer',
  'refreshMarginSeconds',
  'tokenResponseMetadata',
  'keepAliveHours',
];
const API_KEY_ONLY_FIELDS = ['apiKey'];

/**
 * Override only the named fields; nested objects (tokenRequest, apiKey, connectionConfig,
 * tokenResponseMetadata, …) merge one level down, so `{ "apiKey": { "check": null } }` drops
 * only the check. Arrays (scopes, postConnect) and the header and parameter maps are replaced.
 */
function mergeOverride(base: Record<string, unknown>, override: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = merged[key];
    const bothObjects =
      value &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      current &&
      typeof current === 'object' &&
      !Array.isArray(current);
    merged[key] =
      bothObjects && key !== 'apiHeaders' && key !== 'authorizationParams' ? { ...current, ...value } : value;
  }
  // Switching authMode drops the base's fields of the other mode (unless the override names them).
  if (override.authMode !== undefined && override.authMode !== base.authMode) {
    const baseModeOnly = base.authMode === 'oauth2' ? OAUTH2_ONLY_FIELDS : API_KEY_ONLY_FIELDS;
    for (const k of baseModeOnly) {
      if (!(k in override)) delete merged[k];
    }
  }
  return merged;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `field "${[...issue.path, k].join('.')}": is not a known field`).join('; ');
  }
  const field = issue.path.length ? `field "${issue.path.join('.')}"` : 'entry';
  return `${field}: ${issue.message}`;
}

export type { ProviderInput };
