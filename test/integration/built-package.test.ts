import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'dotenv';
import { freePort, waitUntil } from '../helpers/latchkey-process';
import {
  descendantsOf,
  isAlive,
  isListening,
  spawnNpm,
  temporaryPackage,
  type NpmProcess,
} from '../helpers/npm-process';

/**
 * What `npm run build` produces, run the way an operator runs it: `npm start`, and the setup
 * command compiled (`node dist/tools/cli.js`, and bin/latchkey.js where there is no src/). The
 * build goes to a temporary package, never to the repository's dist/.
 */
const ROOT = resolve(__dirname, '../..');

describe('the built package', () => {
  let pkg: ReturnType<typeof temporaryPackage>;
  let work: string;

  beforeAll(() => {
    pkg = temporaryPackage({ link: ['node_modules', 'public'] });
    cpSync(join(ROOT, 'bin'), join(pkg.dir, 'bin'), { recursive: true });
    // The package's own build script, with the output redirected. Its exit code is not the point
    // here (type errors are `npm run lint`'s business, and tsc emits regardless): what it emits is.
    spawnSync('npm', ['run', 'build', '--', '--outDir', join(pkg.dir, 'dist')], {
      cwd: ROOT,
      stdio: 'ignore',
      timeout: 170_000,
    });
    expect(existsSync(join(pkg.dir, 'dist', 'server.js'))).toBe(true);
    expect(existsSync(join(pkg.dir, 'dist', 'tools', 'cli.js'))).toBe(true);
  }, 180_000);
  beforeEach(() => (work = mkdtempSync(join(tmpdir(), 'latchkey-built-'))));
  afterEach(() => rmSync(work, { recursive: true, force: true }));
  afterAll(() => pkg?.remove());

  const node = (args: string[]) => spawnSync(process.execPath, args, { cwd: work, encoding: 'utf8', timeout: 30_000 });

  it('runs init and keys rotate compiled, as in the image (node dist/tools/cli.js)', () => {
    const init = node([join(pkg.dir, 'dist', 'tools', 'cli.js'), 'init']);
    expect(init.status).toBe(0);
    const written = parse(readFileSync(join(work, '.env')));
    expect(init.stdout).toContain(written.CONNECTOR_API_KEYS!);
    expect(statSync(join(work, '.env')).mode & 0o777).toBe(0o600);

    const before = readFileSync(join(work, '.env'));
    const again = node([join(pkg.dir, 'dist', 'tools', 'cli.js'), 'init']);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('already exists');
    expect(readFileSync(join(work, '.env')).equals(before)).toBe(true);

    const rotate = node([join(pkg.dir, 'dist', 'tools', 'cli.js'), 'keys', 'rotate']);
    expect(rotate.status).toBe(0);
    const keys = parse(readFileSync(join(work, '.env'))).TOKEN_ENCRYPTION_KEYS!.split(',');
    expect(keys).toEqual([expect.any(String), written.TOKEN_ENCRYPTION_KEYS]);
  });

  it('runs bin/latchkey.js from dist/ where there is no src/', () => {
    expect(existsSync(join(pkg.dir, 'src'))).toBe(false);
    const init = node([join(pkg.dir, 'bin', 'latchkey.js'), 'init']);
    expect(init.stderr).toBe('');
    expect(init.status).toBe(0);
    expect(existsSync(join(work, '.env'))).toBe(true);
  });

  describe('npm start', () => {
    let server: NpmProcess | undefined;
    let started: number[] = [];
    afterEach(async () => {
      if (server) {
        for (const pid of [server.pid, ...started, ...descendantsOf(server.pid)]) {
          if (isAlive(pid)) process.kill(pid, 'SIGKILL');
        }
        await server.exited;
        server.child.stdout?.destroy();
        server.child.stderr?.destroy();
        server = undefined;
      }
      started = [];
    });

    it.each(['SIGTERM', 'SIGINT'] as const)(
      'stops Latchkey, and every process it started, when the npm process gets %s',
      async (signal) => {
        const port = await freePort();
        server = spawnNpm(['start'], pkg.dir, { PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}` });
        await waitUntil(
          () =>
            fetch(`http://127.0.0.1:${port}/healthz`).then(
              (r) => r.ok,
              () => false,
            ),
          30_000,
          50,
        );
        started = descendantsOf(server.pid);
        expect(started.length).toBeGreaterThan(0);

        process.kill(server.pid, signal);
        await server.exited;
        await waitUntil(() => started.every((pid) => !isAlive(pid)), 15_000);
        expect(await isListening(port)).toBe(false);
        expect(server.output()).toContain(`${signal} received`);
      },
    );
  });
});
