import { hash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseDotenv } from 'dotenv';

/**
 * The keys of ADMIN_API_KEYS (CONTRACT "Operator console"), kept as SHA-256 digests only and
 * named like the keys of CONNECTOR_API_KEYS (`key-<first 8 hex of the SHA-256>`), so that a log
 * line says which key acted without ever holding it.
 */

/** Why a key is refused: the same rule as ADMIN_API_KEYS at start (src/config.ts). */
const MIN_KEY_LENGTH = 16;

interface AdminKeyEntry {
  name: string;
  sha256: Buffer;
}

const sha256 = (value: string): Buffer => hash('sha256', value, 'buffer') as unknown as Buffer;

/** A comma list, each item trimmed, empty items (and an empty or blank value) dropped. */
export function splitKeyList(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
}

export type AdminKeysReload = { ok: true; names: string[] } | { ok: false; problems: string[] };

/** The console's keys in force, swapped whole by {@link AdminKeyHolder.reload} (a SIGHUP). */
export interface AdminKeyHolder {
  /** True while at least one key is set: otherwise the console is off. */
  enabled(): boolean;
  /**
   * The name of the key `presented` is, or undefined. Both sides are hashed first and every
   * entry is compared, so neither the length, a prefix nor the position of a key shows in the time.
   */
  nameOf(presented: string): string | undefined;
  /** Whether a key of this name is still in force (a session of a removed key is over). */
  has(name: string): boolean;
  /** Takes a new value of ADMIN_API_KEYS; one that does not validate changes nothing. */
  reload(raw: string | undefined): AdminKeysReload;
}

function entriesOf(keys: readonly string[]): AdminKeyEntry[] {
  return keys.map((key) => {
    const digest = sha256(key);
    return { name: `key-${digest.toString('hex').slice(0, 8)}`, sha256: digest };
  });
}

/** @param initial ADMIN_API_KEYS as parsed at start (already checked by parseConfig) */
export function createAdminKeyHolder(initial: readonly string[]): AdminKeyHolder {
  let entries: readonly AdminKeyEntry[] = Object.freeze(entriesOf(initial));
  return {
    enabled: () => entries.length > 0,
    nameOf(presented) {
      const digest = sha256(presented);
      let found: string | undefined;
      for (const entry of entries) if (timingSafeEqual(entry.sha256, digest)) found = entry.name;
      return found;
    },
    has: (name) => entries.some((e) => e.name === name),
    reload(raw) {
      const keys = splitKeyList(raw);
      const problems = keys.flatMap((key, i) =>
        key.length < MIN_KEY_LENGTH
          ? [`ADMIN_API_KEYS (item ${i + 1}): must have at least ${MIN_KEY_LENGTH} characters`]
          : [],
      );
      if (problems.length) return { ok: false, problems };
      entries = Object.freeze(entriesOf(keys));
      return { ok: true, names: entries.map((e) => e.name) };
    },
  };
}

/**
 * What a SIGHUP reads as the new value of `name`: the `.env` file's, when the file exists and
 * sets it (a process's own environment cannot change while it runs, so that file is the place to
 * edit), otherwise `env`'s, the value at start.
 */
export function readVariableAgain(
  name: string,
  env: Readonly<Record<string, string | undefined>>,
  dotenvPath?: string,
): string | undefined {
  if (dotenvPath) {
    try {
      const parsed = parseDotenv(readFileSync(dotenvPath));
      if (Object.prototype.hasOwnProperty.call(parsed, name)) return parsed[name];
    } catch {
      // No .env file (or unreadable): the environment's value stays.
    }
  }
  return env[name];
}
