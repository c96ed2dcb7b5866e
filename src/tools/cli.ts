import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { initEnvFile } from './init-env-file';
import { rotateEncryptionKey } from './rotate-encryption-key';

/**
 * `latchkey` (`npx latchkey …` in a checkout, `npm run setup`, `node dist/tools/cli.js …` in the
 * image): setup helpers that write the secrets to a file instead of a terminal's scrollback.
 *
 *   latchkey init [--file .env] [--public-url URL] [--redis-url URL]
 *   latchkey keys rotate [--file .env]
 */

export interface CliIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  cwd: string;
  now?: Date;
}

const USAGE = `Usage:
  latchkey init [--file <path>] [--public-url <url>] [--redis-url <url>]
      Writes a new .env (mode 0600) with a fresh SESSION_SECRET, TOKEN_ENCRYPTION_KEYS and
      one service API key, and prints the API key. Never replaces an existing file.
  latchkey keys rotate [--file <path>]
      Adds a new first key to TOKEN_ENCRYPTION_KEYS in the .env, keeping the old ones.

  --file defaults to .env in the current directory.
`;

/** Runs one command; resolves with the process exit code (0 done, 1 refused or failed, 2 usage). */
export async function run(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        // Not --env-file: Node 20 takes that flag for itself even after the script's name.
        file: { type: 'string' },
        'public-url': { type: 'string' },
        'redis-url': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.err.write(`latchkey: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals.join(' ');
  if (values.help || command === 'help' || command === '') {
    (command === '' && !values.help ? io.err : io.out).write(USAGE);
    return command === '' && !values.help ? 2 : 0;
  }
  const envFile = resolve(io.cwd, values.file ?? '.env');
  if (command === 'init') {
    return init(io, envFile, { publicUrl: values['public-url'], redisUrl: values['redis-url'] });
  }
  if (command === 'keys rotate') {
    if (values['public-url'] !== undefined || values['redis-url'] !== undefined) {
      io.err.write(`latchkey keys rotate: takes only --file\n\n${USAGE}`);
      return 2;
    }
    return rotate(io, envFile);
  }
  io.err.write(`latchkey: unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

async function init(io: CliIo, path: string, urls: { publicUrl?: string; redisUrl?: string }): Promise<number> {
  const result = await initEnvFile({ path, ...urls, now: io.now });
  if (!result.written && result.reason === 'exists') {
    io.err.write(
      `latchkey init: ${path} already exists; it was left untouched.\n` +
        '  Its TOKEN_ENCRYPTION_KEYS decrypt the credentials Latchkey has stored, so init never replaces it.\n' +
        '  To add a new encryption key: latchkey keys rotate. To start over, move the file away first.\n',
    );
    return 1;
  }
  if (!result.written) {
    io.err.write(`latchkey init: nothing written.\n${result.problems.map((p) => `  - ${p}\n`).join('')}`);
    return 1;
  }
  io.out.write(
    [
      `Wrote ${result.path} (mode 0600): NODE_ENV=production, a fresh SESSION_SECRET, encryption key "${result.keyId}" and one service API key.`,
      '',
      'Service API key (shown this once; it is in the file as CONNECTOR_API_KEYS):',
      '',
      `  ${result.apiKey}`,
      '',
      'Next:',
      `  1. Set VIDEOASK_CLIENT_ID and VIDEOASK_CLIENT_SECRET in the file, and register ${result.publicUrl}/callback`,
      '     as the redirect URI of your VideoAsk app (PUBLIC_URL must be the address browsers use).',
      '  2. npm run build && npm start      (or: docker compose up -d)',
      '  Keep the file out of git (it is in .gitignore) and back up TOKEN_ENCRYPTION_KEYS apart from Redis.',
      '',
    ].join('\n'),
  );
  return 0;
}

async function rotate(io: CliIo, path: string): Promise<number> {
  const result = await rotateEncryptionKey(path, io.now);
  if (!result.rotated) {
    const why = {
      missing: `there is no ${path}; run "latchkey init" first`,
      ambiguous: `TOKEN_ENCRYPTION_KEYS in ${path} is assigned on more than one line, or in a form this command does not edit; keep one plain TOKEN_ENCRYPTION_KEYS=… line`,
      invalid: `TOKEN_ENCRYPTION_KEYS in ${path} is not valid:\n${(result.problems ?? []).map((p) => `  - ${p}`).join('\n')}`,
    }[result.reason];
    io.err.write(`latchkey keys rotate: nothing changed: ${why}\n`);
    return 1;
  }
  const kept = result.keptKeyIds.length
    ? `The old keys (${result.keptKeyIds.join(', ')}) stay listed after it, so what they sealed still decrypts.`
    : 'There was no key before: credentials sealed with a random development key cannot be recovered.';
  io.out.write(
    [
      `Added encryption key "${result.keyId}" first in TOKEN_ENCRYPTION_KEYS of ${result.path}.`,
      kept,
      '',
      'Next:',
      '  1. Restart Latchkey with this file; from then on it seals every write with the new key.',
      '     Several instances: give all of them the new key in second place first, then move it first',
      '     (docs/operations.md, "Rotating the encryption key").',
      '  2. Re-encrypt what is stored now, with the same environment:',
      '       npm run reencrypt                  (a checkout)',
      '       node dist/tools/reencrypt.js       (after npm run build, or in the image;',
      '                                           compose: docker compose run --rm latchkey node dist/tools/reencrypt.js)',
      ...(path === resolve(io.cwd, '.env')
        ? []
        : [
            `     Both read .env in their working directory; for this file, prefix them with DOTENV_CONFIG_PATH=${path}`,
          ]),
      '  3. Once it reports "failed: 0", remove the old keys from TOKEN_ENCRYPTION_KEYS and restart;',
      '     keep them wherever backups made before today are kept.',
      '',
    ].join('\n'),
  );
  return 0;
}

if (require.main === module) {
  run(process.argv.slice(2), { out: process.stdout, err: process.stderr, cwd: process.cwd() }).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`latchkey: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
