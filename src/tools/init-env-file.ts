import { open } from 'node:fs/promises';
import { ConfigError, parseConfig } from '../config';
import { newApiKey, newEncryptionKey, newSessionSecret } from './env-secrets';

export interface InitOptions {
  /** Where to write; never replaced when it exists. */
  path: string;
  publicUrl?: string;
  redisUrl?: string;
  now?: Date;
}

export type InitResult =
  | { written: true; path: string; apiKey: string; keyId: string; publicUrl: string }
  | { written: false; reason: 'exists'; path: string }
  | { written: false; reason: 'invalid'; path: string; problems: string[] };

const DEFAULT_PUBLIC_URL = 'http://localhost:3000';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Writes a production `.env` with fresh secrets: SESSION_SECRET, a first TOKEN_ENCRYPTION_KEYS
 * entry and one CONNECTOR_API_KEYS key. The file is created with O_EXCL and mode 0600, so an
 * existing file (or a symlink, even a dangling one) is never replaced or written through: the
 * keys in an existing `.env` are what decrypt the stored credentials. The values are checked
 * with the server's own configuration parser first, so what is written is what Latchkey accepts.
 */
export async function initEnvFile(options: InitOptions): Promise<InitResult> {
  const now = options.now ?? new Date();
  const key = newEncryptionKey(now);
  const apiKey = newApiKey();
  const values = {
    NODE_ENV: 'production',
    PORT: '3000',
    PUBLIC_URL: options.publicUrl ?? DEFAULT_PUBLIC_URL,
    REDIS_URL: options.redisUrl ?? DEFAULT_REDIS_URL,
    SESSION_SECRET: newSessionSecret(),
    TOKEN_ENCRYPTION_KEYS: key.entry,
    CONNECTOR_API_KEYS: apiKey,
  };
  try {
    parseConfig(values);
  } catch (err) {
    if (err instanceof ConfigError)
      return { written: false, reason: 'invalid', path: options.path, problems: err.problems };
    throw err;
  }

  let file;
  try {
    file = await open(options.path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      return { written: false, reason: 'exists', path: options.path };
    throw err;
  }
  try {
    await file.chmod(0o600); // the mode given to open() is narrowed by the umask, never widened; make it exact
    await file.writeFile(renderEnvFile(values, now));
    await file.sync();
  } finally {
    await file.close();
  }
  return { written: true, path: options.path, apiKey, keyId: key.id, publicUrl: values.PUBLIC_URL };
}

/**
 * The file's text. Values are written unquoted: they hold no space, quote or `#`, and both dotenv
 * and docker compose's `env_file` read an unquoted value the same way (compose v1 would keep
 * quotes as part of the value).
 */
function renderEnvFile(v: Record<string, string>, now: Date): string {
  return `# Latchkey configuration, written by \`latchkey init\` on ${now.toISOString()}.
# Keep this file secret: TOKEN_ENCRYPTION_KEYS decrypts every stored credential. Back it up apart
# from the Redis backups. Every other variable is described in .env.example and docs/operations.md.

NODE_ENV=${v.NODE_ENV}
PORT=${v.PORT}
# External base URL; register PUBLIC_URL + "/callback" as the redirect URI at each provider.
PUBLIC_URL=${v.PUBLIC_URL}
# Docker compose sets its own (redis://redis:6379).
REDIS_URL=${v.REDIS_URL}

# Browser-session secrets, comma-separated; the first signs.
SESSION_SECRET=${v.SESSION_SECRET}
# keyId:base64(32 bytes), comma-separated; the first encrypts, all decrypt.
# \`latchkey keys rotate\` adds a new first key; then \`npm run reencrypt\`.
TOKEN_ENCRYPTION_KEYS=${v.TOKEN_ENCRYPTION_KEYS}
# Service API keys ("Authorization: Bearer <key>"), comma-separated.
CONNECTOR_API_KEYS=${v.CONNECTOR_API_KEYS}

# The provider's OAuth app (see the README, "Providers").
VIDEOASK_CLIENT_ID=
VIDEOASK_CLIENT_SECRET=
`;
}
