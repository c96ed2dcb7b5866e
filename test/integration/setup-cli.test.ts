import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'dotenv';
import { parseConfig } from '../../src/config';

/**
 * `latchkey init` and `latchkey keys rotate` (bin/latchkey.js, `npm run setup`, `npx latchkey`),
 * run as a user runs them, in a child process. The compiled dist/tools/cli.js is covered by
 * built-package.test.ts.
 */
const ROOT = resolve(__dirname, '../..');
const BIN = join(ROOT, 'bin', 'latchkey.js');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCommand(cmd: string, args: string[], cwd: string): Promise<Ran> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

const latchkey = (args: string[], cwd: string) => runCommand(process.execPath, [BIN, ...args], cwd);

/** Every `keyId:base64` entry's secret part, and the other secrets, to check none is ever printed. */
function secretsOf(values: Record<string, string>): string[] {
  const keys = (values.TOKEN_ENCRYPTION_KEYS ?? '').split(',').map((e) => e.slice(e.indexOf(':') + 1));
  return [values.SESSION_SECRET!, ...keys].filter(Boolean);
}

describe('latchkey init', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'latchkey-init-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes, in an empty folder, a mode-0600 .env with fresh secrets that production accepts, and prints the API key once', async () => {
    const ran = await latchkey(['init'], dir);
    expect(ran).toMatchObject({ code: 0, stderr: '' });

    const file = join(dir, '.env');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const values = parse(readFileSync(file));
    expect(values.NODE_ENV).toBe('production');
    expect(values.TOKEN_ENCRYPTION_KEYS).toMatch(/^k\d{8}-[0-9a-f]{6}:[A-Za-z0-9+/]{43}=$/);
    const [keyId, keyB64] = values.TOKEN_ENCRYPTION_KEYS!.split(':');
    expect(Buffer.from(keyB64!, 'base64')).toHaveLength(32);
    const apiKeys = values.CONNECTOR_API_KEYS!.split(',');
    expect(apiKeys).toHaveLength(1);
    const apiKey = apiKeys[0]!;
    expect(apiKey.length).toBeGreaterThanOrEqual(32);

    // What the server itself will make of the file (with NODE_ENV=production every secret is checked).
    const { config } = parseConfig(values);
    expect(config.isProduction).toBe(true);
    expect(config.connectorApiKeys).toEqual([apiKey]);
    expect(config.tokenEncryptionKeys.map((k) => k.id)).toEqual([keyId]);
    expect(config.sessionSecrets).toHaveLength(1);
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');

    // The API key is printed exactly once; the other secrets never.
    expect(ran.stdout.split(apiKey)).toHaveLength(2);
    for (const secret of secretsOf(values)) expect(ran.stdout).not.toContain(secret);
    expect(ran.stdout).toContain(keyId!);
  });

  it('makes different secrets each time, and takes the public and Redis URLs it is given', async () => {
    const other = mkdtempSync(join(tmpdir(), 'latchkey-init-'));
    try {
      const args = ['--public-url', 'https://connect.example.com', '--redis-url', 'rediss://redis.internal:6380'];
      expect((await latchkey(['init', ...args], dir)).code).toBe(0);
      expect((await latchkey(['init'], other)).code).toBe(0);
      const a = parse(readFileSync(join(dir, '.env')));
      const b = parse(readFileSync(join(other, '.env')));
      expect(a.PUBLIC_URL).toBe('https://connect.example.com');
      expect(a.REDIS_URL).toBe('rediss://redis.internal:6380');
      for (const name of ['SESSION_SECRET', 'TOKEN_ENCRYPTION_KEYS', 'CONNECTOR_API_KEYS']) {
        expect([name, a[name]]).not.toEqual([name, b[name]]);
      }
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('leaves an existing .env byte-equal, with its mode, and exits non-zero saying why', async () => {
    const file = join(dir, '.env');
    const before = Buffer.from('# mine\nTOKEN_ENCRYPTION_KEYS=old:' + 'A'.repeat(43) + '=\nCONNECTOR_API_KEYS=\n');
    writeFileSync(file, before);
    chmodSync(file, 0o644);
    const mtime = statSync(file).mtimeMs;

    const ran = await latchkey(['init'], dir);
    expect(ran.code).toBe(1);
    expect(ran.stdout).toBe('');
    expect(ran.stderr).toContain(`${file} already exists; it was left untouched`);
    expect(ran.stderr).toContain('latchkey keys rotate');
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(statSync(file).mtimeMs).toBe(mtime);
  });

  it('never writes through a symlink named .env, even a dangling one', async () => {
    const target = join(dir, 'elsewhere.env');
    symlinkSync(target, join(dir, '.env'));
    const ran = await latchkey(['init'], dir);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain('already exists');
    expect(existsSync(target)).toBe(false);
    expect(lstatSync(join(dir, '.env')).isSymbolicLink()).toBe(true);
  });

  it('refuses a bad --public-url without writing anything', async () => {
    const ran = await latchkey(['init', '--public-url', 'ftp://nope'], dir);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain('PUBLIC_URL');
    expect(existsSync(join(dir, '.env'))).toBe(false);
  });

  it('runs from a checkout as `npm run setup` and as `npx latchkey init`', async () => {
    const viaNpm = await runCommand('npm', ['run', '--silent', 'setup', '--', '--file', join(dir, 'a.env')], ROOT);
    expect(viaNpm.code).toBe(0);
    const viaNpx = await runCommand('npx', ['--no', 'latchkey', 'init', '--file', join(dir, 'b.env')], ROOT);
    expect(viaNpx.code).toBe(0);
    for (const [name, ran] of [
      ['a.env', viaNpm],
      ['b.env', viaNpx],
    ] as const) {
      const values = parse(readFileSync(join(dir, name)));
      expect(ran.stdout).toContain(values.CONNECTOR_API_KEYS!);
      expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
    }
  });

  it('answers an unknown command with the usage and exit code 2', async () => {
    const ran = await latchkey(['frobnicate'], dir);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toContain('Usage:');
  });
});

describe('latchkey keys rotate', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-rotate-'));
    file = join(dir, '.env');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const tokenLine = /^TOKEN_ENCRYPTION_KEYS=.*$/m;

  it('adds a new first key and keeps the old ones in order, changing nothing else', async () => {
    expect((await latchkey(['init'], dir)).code).toBe(0);
    const first = readFileSync(file, 'utf8');
    const original = parse(first).TOKEN_ENCRYPTION_KEYS!;

    const once = await latchkey(['keys', 'rotate'], dir);
    expect(once).toMatchObject({ code: 0, stderr: '' });
    const second = readFileSync(file, 'utf8');
    const afterOnce = parse(second).TOKEN_ENCRYPTION_KEYS!.split(',');
    expect(afterOnce).toHaveLength(2);
    expect(afterOnce[1]).toBe(original);
    expect(second.replace(tokenLine, '')).toBe(first.replace(tokenLine, ''));

    const twice = await latchkey(['keys', 'rotate'], dir);
    expect(twice.code).toBe(0);
    const third = readFileSync(file, 'utf8');
    const afterTwice = parse(third).TOKEN_ENCRYPTION_KEYS!.split(',');
    expect(afterTwice.slice(1)).toEqual(afterOnce);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const { config } = parseConfig(parse(third));
    const ids = config.tokenEncryptionKeys.map((k) => k.id);
    expect(new Set(ids).size).toBe(3);
    expect(once.stdout).toContain(`Added encryption key "${ids[1]}" first`);
    expect(twice.stdout).toContain(`Added encryption key "${ids[0]}" first`);

    // It says how to re-encrypt, and prints no key material.
    expect(twice.stdout).toContain('npm run reencrypt');
    expect(twice.stdout).toContain('node dist/tools/reencrypt.js');
    for (const secret of secretsOf(parse(third))) expect(once.stdout + twice.stdout).not.toContain(secret);
    expect(once.stdout + twice.stdout).not.toContain(parse(third).CONNECTOR_API_KEYS!);
  });

  it('fills the empty TOKEN_ENCRYPTION_KEYS= of a copied .env.example in place', async () => {
    copyFileSync(join(ROOT, '.env.example'), file);
    const before = readFileSync(file, 'utf8');
    const ran = await latchkey(['keys', 'rotate'], dir);
    expect(ran.code).toBe(0);
    const after = readFileSync(file, 'utf8');
    expect(parse(after).TOKEN_ENCRYPTION_KEYS).toMatch(/^k\d{8}-[0-9a-f]{6}:[A-Za-z0-9+/]{43}=$/);
    expect(after.replace(tokenLine, '')).toBe(before.replace(tokenLine, ''));
  });

  it('edits the file a symlink points at, and keeps the symlink', async () => {
    const real = join(dir, 'real.env');
    expect((await latchkey(['init', '--file', real], dir)).code).toBe(0);
    symlinkSync(real, file);
    expect((await latchkey(['keys', 'rotate'], dir)).code).toBe(0);
    expect(lstatSync(file).isSymbolicLink()).toBe(true);
    expect(parse(readFileSync(real)).TOKEN_ENCRYPTION_KEYS!.split(',')).toHaveLength(2);
  });

  it('changes nothing when the key list is invalid, assigned twice, or the file is missing', async () => {
    const missing = await latchkey(['keys', 'rotate'], dir);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('latchkey init');
    expect(existsSync(file)).toBe(false);

    for (const text of [
      'TOKEN_ENCRYPTION_KEYS=k1:c2hvcnQ=\n',
      `TOKEN_ENCRYPTION_KEYS=k1:${Buffer.alloc(32).toString('base64')}\nTOKEN_ENCRYPTION_KEYS=\n`,
    ]) {
      writeFileSync(file, text);
      const ran = await latchkey(['keys', 'rotate'], dir);
      expect(ran.code).toBe(1);
      expect(ran.stderr).toContain('nothing changed');
      expect(readFileSync(file, 'utf8')).toBe(text);
    }
  });
});
