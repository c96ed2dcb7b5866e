import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { AppError } from '../errors';
import { plainIssueWords } from '../plain-issues';
import { BUILT_IN_PROVIDERS } from './catalog';
import {
  providerDefinitionSchema,
  type ApiKeyProviderDefinition,
  type OAuth2ProviderDefinition,
  type ProviderDefinition,
  type ProviderInput,
} from './schema';

export type OAuth2Provider = OAuth2ProviderDefinition & {
  clientId?: string;
  clientSecret?: string;
  /** oauth2: client id and secret are configured. */
  enabled: boolean;
};
export type ApiKeyProvider = ApiKeyProviderDefinition & { enabled: true };
export type Provider = OAuth2Provider | ApiKeyProvider;

export class ProviderConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid provider definitions:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ProviderConfigError';
  }
}

export interface ProviderRegistry {
  get(id: string): Provider | undefined;
  /** The provider, or `unknown_provider` (404). */
  require(id: string): Provider;
  /** The provider when its credentials are configured, or `provider_not_enabled` (404). */
  requireEnabled(id: string): Provider;
  list(): Provider[];
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
      raw.set(e.id, base ? mergeOverride(base, e) : { ...e });
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
    providers.set(id, withCredentials(parsed.data, env));
  }
  if (problems.length) throw new ProviderConfigError(problems);
  return createRegistry(providers);
}

function createRegistry(providers: Map<string, Provider>): ProviderRegistry {
  const list = [...providers.values()];
  return {
    get: (id) => providers.get(id),
    require(id) {
      const p = providers.get(id);
      if (!p) throw new AppError('unknown_provider', `Unknown provider "${id.slice(0, 64)}"`);
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

function withCredentials(def: ProviderDefinition, env: Readonly<Record<string, string | undefined>>): Provider {
  if (def.authMode === 'api_key') return { ...def, enabled: true };
  const prefix = providerEnvPrefix(def.id);
  const clientId = env[`${prefix}_CLIENT_ID`]?.trim() || undefined;
  const clientSecret = env[`${prefix}_CLIENT_SECRET`]?.trim() || undefined;
  const scopesEnv = env[`${prefix}_SCOPES`];
  const scopes = scopesEnv !== undefined && scopesEnv.trim() !== '' ? scopesEnv.trim().split(/\s+/) : def.scopes;
  return { ...def, scopes, clientId, clientSecret, enabled: Boolean(clientId && clientSecret) };
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
];
const API_KEY_ONLY_FIELDS = ['apiKey'];

/** Override only the named fields; nested objects (tokenRequest, apiKey, …) merge one level down. */
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
