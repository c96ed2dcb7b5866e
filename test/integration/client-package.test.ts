import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startHarness, TEST_API_KEY, PUBLIC_URL, type Harness } from '../helpers/harness';
import { listen, type Listening } from '../helpers/proxy-harness';
import { seedOAuthConnection } from '../helpers/seed';
import { SANDBOX_ORGANIZATIONS } from '../../src/sandbox/api-routes';

const ROOT = resolve(__dirname, '../..');
const CLIENT = join(ROOT, 'packages', 'client');

/** The first ```ts block of the package README's "Example" section: what a user copies. */
function readmeExample(): string {
  const readme = readFileSync(join(CLIENT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Example'));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error('packages/client/README.md has no ```ts example under "## Example"');
  return match[1]!;
}

/**
 * `@latchkey/client` as a user gets it: packed (`npm pack -w packages/client`, which builds it
 * on prepack), installed from the tarball into an empty project without the network (the
 * registry pointed at a closed port), its README example compiled with `tsc --strict` against
 * the installed types and run against a running Latchkey; `require` works too.
 */
describe('the packed client package', () => {
  let work: string;
  let app: string;
  let h: Harness;
  let server: Listening;

  const run = (cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) =>
    spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 170_000, env: { ...process.env, ...env } });

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'latchkey-client-pkg-'));
    app = join(work, 'app');
    mkdirSync(app);
    h = await startHarness();
    server = await listen(h.app);
  });
  afterAll(async () => {
    await server?.close();
    await h?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('installs as one package without the network, and its README example compiles with tsc --strict and runs', async () => {
    const pack = run('npm', ['pack', '-w', 'packages/client', '--pack-destination', work, '--json'], ROOT);
    expect([pack.status, pack.stderr.includes('ERR') ? pack.stderr : '']).toEqual([0, '']);
    const [packed] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    const shipped = packed!.files.map((f) => f.path).sort();
    expect(shipped).toEqual(
      expect.arrayContaining([
        'README.md',
        'package.json',
        'dist/esm/index.js',
        'dist/esm/index.d.ts',
        'dist/cjs/index.js',
        'dist/cjs/index.d.ts',
        'dist/cjs/package.json',
      ]),
    );
    expect(shipped.filter((f) => !f.startsWith('dist/') && f !== 'README.md' && f !== 'package.json')).toEqual([]);

    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'example', private: true, type: 'module' }));
    const install = run(
      'npm',
      ['install', '--offline', '--no-audit', '--no-fund', join(work, packed!.filename.replace(/^.*\//, ''))],
      app,
      { npm_config_registry: 'http://127.0.0.1:9/' },
    );
    expect([install.status, install.status === 0 ? '' : install.stderr]).toEqual([0, '']);
    expect(readdirSync(join(app, 'node_modules')).sort()).toEqual(['.package-lock.json', '@latchkey']);
    expect(readdirSync(join(app, 'node_modules', '@latchkey'))).toEqual(['client']);
    const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, unknown>;
    };
    expect(Object.keys(lock.packages).sort()).toEqual(['', 'node_modules/@latchkey/client']);
    const installed = JSON.parse(readFileSync(join(app, 'node_modules/@latchkey/client/package.json'), 'utf8'));
    expect([installed.dependencies, installed.peerDependencies, installed.optionalDependencies]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);

    writeFileSync(join(app, 'example.ts'), readmeExample());
    writeFileSync(
      join(app, 'check.cts'),
      "import client = require('@latchkey/client');\n" +
        "const latchkey: client.Latchkey = new client.Latchkey({ baseUrl: 'http://127.0.0.1', apiKey: 'k' });\n" +
        "const ok: boolean = client.verifyWebhookSignature({ secret: 's', body: '', headers: {} });\n" +
        'export = { latchkey, ok };\n',
    );
    const tsc = run(
      process.execPath,
      [
        join(ROOT, 'node_modules/typescript/bin/tsc'),
        '--strict',
        '--target',
        'es2022',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--types',
        'node',
        '--typeRoots',
        join(ROOT, 'node_modules/@types'),
        '--outDir',
        'out',
        'example.ts',
        'check.cts',
      ],
      app,
    );
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
    expect(existsSync(join(app, 'out', 'example.js'))).toBe(true);

    // As connecting leaves it: VideoAsk's postConnect call keeps the first organisation.
    await seedOAuthConnection(h.store, h.sandbox, {
      connectionId: 'user-42',
      metadata: { organizationId: SANDBOX_ORGANIZATIONS[0].organization_id },
    });
    // Asynchronously: the Latchkey it calls runs in this process.
    const example = await promisify(execFile)(process.execPath, [join(app, 'out', 'example.js')], {
      cwd: app,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, LATCHKEY_URL: server.url, LATCHKEY_API_KEY: TEST_API_KEY },
    });
    expect(example.stderr).toBe('');
    const lines = example.stdout.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^send the user to ${PUBLIC_URL}/auth/videoask\\?token=\\S+$`));
    expect(lines).toContain('forms: Customer feedback, Job application, Product demo request');
    expect(lines.at(-1)).toBe('connection_not_found 404 false');

    const cjs = run(
      process.execPath,
      [
        '-e',
        "const c = require('@latchkey/client'); console.log(typeof c.Latchkey, typeof c.verifyWebhookSignature, new c.LatchkeyError('forbidden', 'm', 403).retryable)",
      ],
      app,
    );
    expect([cjs.stdout.trim(), cjs.stderr]).toEqual(['function function false', '']);
    const cts = run(process.execPath, [join(app, 'out', 'check.cjs')], app);
    expect([cts.status, cts.stderr]).toEqual([0, '']);
  }, 240_000);
});
