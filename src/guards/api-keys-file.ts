import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { ApiKeyEntry } from './api-keys';

/**
 * `API_KEYS_FILE` (CONTRACT "API keys with a scope"): a JSON array of
 * `{ name, sha256, providers?, access }`. Only the SHA-256 of each key is stored, so the file
 * can be read by whoever deploys Latchkey without handing out the keys themselves.
 */

/** What a key's name may look like: it is written in logs and rate-limit keys. */
export const API_KEY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const PROVIDER_ID_PATTERN = /^[a-z][a-z0-9-]{1,40}$/;
const ACCESS_LEVELS = ['read', 'proxy', 'full'] as const;

const entrySchema = z.strictObject({
  name: z.string().regex(API_KEY_NAME_PATTERN),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/),
  providers: z.array(z.string().regex(PROVIDER_ID_PATTERN)).min(1).optional(),
  access: z.enum(ACCESS_LEVELS),
});

/** What each field expects, in the words of the report (never zod's). */
const EXPECTED: Record<string, string> = {
  name: 'must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit',
  sha256: 'must be the 64 hex digits of the key\'s SHA-256 (printf %s "$KEY" | sha256sum)',
  providers: 'must be a non-empty list of provider ids such as ["videoask"], or be left out for every provider',
  access: 'must be "read", "proxy" or "full"',
};

export interface ApiKeysFileResult {
  entries: ApiKeyEntry[];
  /** Every problem of the file, each naming the file, the entry and the field. */
  problems: string[];
}

export interface ApiKeysFileOptions {
  /** Tells whether a provider id is known; unknown ids in `providers` are problems. */
  knownProvider?: (id: string) => boolean;
  /** Keys that come from elsewhere (CONNECTOR_API_KEYS): their names and hashes are taken. */
  taken?: readonly ApiKeyEntry[];
}

/**
 * Reads and validates the file. Never throws: a missing file, bad JSON or a bad entry is
 * reported in `problems` (and then `entries` must not be used). Duplicate names or hashes,
 * within the file or with the keys of CONNECTOR_API_KEYS, are refused: a name must say which key
 * was used, and one key cannot have two scopes.
 */
export function readApiKeysFile(path: string, options: ApiKeysFileOptions = {}): ApiKeysFileResult {
  const source = `API_KEYS_FILE ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { entries: [], problems: [`${source}: cannot be read (${(err as NodeJS.ErrnoException).code})`] };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { entries: [], problems: [`${source}: is not valid JSON (${(err as Error).message})`] };
  }
  return parseApiKeyEntries(json, source, options);
}

/** Validates the parsed JSON of an API keys file; `source` starts every message. */
export function parseApiKeyEntries(json: unknown, source: string, options: ApiKeysFileOptions = {}): ApiKeysFileResult {
  if (!Array.isArray(json)) {
    return { entries: [], problems: [`${source}: must be a JSON array of { name, sha256, providers?, access }`] };
  }
  const problems: string[] = [];
  const entries: ApiKeyEntry[] = [];
  const names = new Map<string, string>();
  const hashes = new Map<string, string>();
  for (const taken of options.taken ?? []) {
    names.set(taken.name, 'a key of CONNECTOR_API_KEYS');
    hashes.set(taken.sha256.toString('hex'), 'a key of CONNECTOR_API_KEYS');
  }

  json.forEach((raw: unknown, i: number) => {
    const label =
      raw && typeof raw === 'object' && typeof (raw as { name?: unknown }).name === 'string'
        ? ` ("${String((raw as { name: string }).name).slice(0, 64)}")`
        : '';
    const where = `${source}: entry ${i + 1}${label}`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push(`${where}: must be an object { name, sha256, providers?, access }`);
      return;
    }
    const parsed = entrySchema.safeParse(raw);
    if (!parsed.success) {
      problems.push(...describeIssues(parsed.error.issues, raw).map((p) => `${where}: ${p}`));
      return;
    }
    const { name, sha256, providers, access } = parsed.data;
    const hex = sha256.toLowerCase();
    let ok = true;
    const sameName = names.get(name);
    if (sameName) {
      problems.push(`${where}: field "name": "${name}" is already the name of ${sameName}`);
      ok = false;
    }
    const sameHash = hashes.get(hex);
    if (sameHash) {
      problems.push(`${where}: field "sha256": the same key as ${sameHash}; a key has one name and one scope`);
      ok = false;
    }
    for (const [j, id] of (providers ?? []).entries()) {
      if (options.knownProvider && !options.knownProvider(id)) {
        problems.push(`${where}: field "providers" (item ${j + 1}): "${id}" is not a known provider`);
        ok = false;
      }
    }
    names.set(name, `entry ${i + 1}`);
    hashes.set(hex, `entry ${i + 1} ("${name}")`);
    if (ok) {
      entries.push({
        name,
        access,
        providers: providers ? Object.freeze([...new Set(providers)]) : null,
        sha256: Buffer.from(hex, 'hex'),
      });
    }
  });
  return { entries, problems };
}

function describeIssues(issues: readonly z.core.$ZodIssue[], raw: object): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        out.push(`field "${key.slice(0, 64)}": is not a known field (name, sha256, providers, access)`);
      }
      continue;
    }
    const field = String(issue.path[0] ?? '');
    const item = issue.path.length > 1 ? ` (item ${Number(issue.path[1]) + 1})` : '';
    const expected = EXPECTED[field] ?? 'has a value that is not accepted';
    const text = `field "${field}"${item}: ${field in raw ? expected : `is required: it ${expected}`}`;
    // One line per field: zod may report several checks of the same value.
    if (!out.includes(text)) out.push(text);
  }
  return out;
}
