import { randomBytes } from 'node:crypto';
import { open, readFile, realpath, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse } from 'dotenv';
import { ConfigError, parseConfig } from '../config';
import { encryptionKeyIds, newEncryptionKey } from './env-secrets';

export type RotateResult =
  | { rotated: true; path: string; keyId: string; keptKeyIds: string[] }
  | { rotated: false; reason: 'missing' | 'ambiguous' | 'invalid'; path: string; problems?: string[] };

const VARIABLE = 'TOKEN_ENCRYPTION_KEYS';
/** A line that assigns the variable, as dotenv reads it (an optional `export `, spaces around `=`). */
const ASSIGNMENT = new RegExp(`^([ \\t]*(?:export[ \\t]+)?${VARIABLE}[ \\t]*=)[^\\r\\n]*`, 'gm');

/**
 * `latchkey keys rotate`: puts a new key first in the file's TOKEN_ENCRYPTION_KEYS and keeps
 * every old key after it, so values they sealed still decrypt (the first key seals, all open).
 * Nothing else in the file changes. The file is replaced atomically (a temporary file beside it,
 * mode 0600, then a rename), through a symlink to the file it points at. Refuses, changing
 * nothing, when the current value is not a valid key list or is assigned on more than one line.
 */
export async function rotateEncryptionKey(path: string, now = new Date()): Promise<RotateResult> {
  let target: string;
  let text: string;
  try {
    target = await realpath(path);
    text = await readFile(target, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { rotated: false, reason: 'missing', path };
    throw err;
  }

  const current = parse(text)[VARIABLE] ?? '';
  const problems = keyListProblems(current);
  if (problems.length) return { rotated: false, reason: 'invalid', path, problems };
  const kept = encryptionKeyIds(current);
  const key = newEncryptionKey(now, kept);
  const value = [key.entry, ...current.split(',').map((s) => s.trim())].filter(Boolean).join(',');

  const lines = text.match(ASSIGNMENT) ?? [];
  if (lines.length > 1) return { rotated: false, reason: 'ambiguous', path };
  const updated = lines.length
    ? text.replace(ASSIGNMENT, (_line, head: string) => `${head}${value}`)
    : `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${VARIABLE}=${value}\n`;
  // The edit must read back as exactly the new list (a multi-line quoted value would not).
  if (parse(updated)[VARIABLE] !== value) return { rotated: false, reason: 'ambiguous', path };

  await replaceFile(target, updated);
  return { rotated: true, path, keyId: key.id, keptKeyIds: kept };
}

/** Problems of a TOKEN_ENCRYPTION_KEYS value, as the server would report them at start-up. */
function keyListProblems(value: string): string[] {
  try {
    parseConfig({ [VARIABLE]: value, LOG_LEVEL: 'silent' });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.filter((p) => p.startsWith(VARIABLE));
  }
}

async function replaceFile(target: string, text: string): Promise<void> {
  const temporary = join(dirname(target), `.latchkey-${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(temporary, 'wx', 0o600);
  try {
    await file.chmod(0o600);
    await file.writeFile(text);
    await file.sync();
  } catch (err) {
    await file.close();
    await rm(temporary, { force: true });
    throw err;
  }
  await file.close();
  try {
    await rename(temporary, target);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}
