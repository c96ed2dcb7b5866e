import { copyFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
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
 * `npm run demo` as a newcomer runs it: in a package folder that has a `.env` (here copied from
 * .env.example, as the Docker steps say), through npm, on free ports.
 */
const ROOT = resolve(__dirname, '../..');
const BANNER = /Latchkey demo: open (http:\/\/\S+)\/ and click/;
const PRINTED_KEY = /Service API key for this demo: (\S+)/;

describe('npm run demo', () => {
  let pkg: ReturnType<typeof temporaryPackage>;
  let demo: NpmProcess | undefined;
  /** The processes below npm once the demo is up: cleaned up even if they outlived npm. */
  let started: number[] = [];
  let port: number;
  let sandboxPort: number;

  beforeEach(async () => {
    pkg = temporaryPackage({ link: ['src', 'node_modules', 'public', 'tsconfig.json'] });
    copyFileSync(join(ROOT, '.env.example'), join(pkg.dir, '.env'));
    port = await freePort();
    sandboxPort = await freePort();
  });
  afterEach(async () => {
    if (demo) {
      for (const pid of [demo.pid, ...started, ...descendantsOf(demo.pid)])
        if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      await demo.exited;
      demo.child.stdout?.destroy();
      demo.child.stderr?.destroy();
      demo = undefined;
    }
    started = [];
    pkg.remove();
  });

  const start = async (env: Record<string, string> = {}) => {
    demo = spawnNpm(['run', 'demo'], pkg.dir, { PORT: String(port), SANDBOX_PORT: String(sandboxPort), ...env });
    const [, url] = await demo.waitForOutput(BANNER);
    started = descendantsOf(demo.pid);
    return url!;
  };
  const api = (url: string, path: string, key: string) =>
    fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(10_000) });

  it('works with a copied .env.example: its port, its callback, the memory store, and a printed key that works', async () => {
    const url = await start();
    expect(url).toBe(`http://localhost:${port}`);
    const key = PRINTED_KEY.exec(demo!.output())?.[1];
    expect(key).toBe('demo-api-key-change-me');

    const connections = await api(url, '/connections', key!);
    expect(connections.status).toBe(200);
    expect(await connections.json()).toMatchObject({ connections: [] });
    expect((await api(url, '/connections', 'not-the-demo-key-0123456789')).status).toBe(401);

    // The callback is on the port the demo listens on, not on .env's PUBLIC_URL (port 3000).
    const auth = await fetch(`${url}/auth/videoask?connection_id=demo-test`, { redirect: 'manual' });
    expect(auth.status).toBe(302);
    const authorize = new URL(auth.headers.get('location')!);
    expect(authorize.origin).toBe(`http://127.0.0.1:${sandboxPort}`);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${url}/callback`);

    // .env's REDIS_URL does not move the demo onto that Redis.
    const ready = await fetch(`${url}/readyz`);
    expect(await ready.json()).toMatchObject({ store: 'memory' });

    // It says where each value came from, and what it ignored.
    const out = demo!.output();
    expect(out).toMatch(/PUBLIC_URL\s+http:\/\/localhost:\d+\s+demo: derived from PORT/);
    expect(out).toMatch(/PORT\s+\d+\s+environment/);
    expect(out).toMatch(/CONNECTOR_API_KEYS\s+demo-api-key-change-me\s+demo default/);
    expect(out).toContain('PUBLIC_URL from .env (http://localhost:3000): the demo listens on');
    expect(out).toContain('REDIS_URL from .env: the demo never uses the Redis a .env names');
  });

  it('uses the API keys a .env sets, prints none of them, and then refuses the demo key', async () => {
    const own = 'own-key-from-dotenv-0123456789abcdef';
    writeFileSync(join(pkg.dir, '.env'), `CONNECTOR_API_KEYS=${own}\n`);
    const url = await start();
    const out = demo!.output();
    expect(out).not.toMatch(PRINTED_KEY);
    expect(out).not.toContain(own);
    expect(out).not.toContain("Bearer demo-api-key-change-me'");
    expect(out).toContain('Service API key: the key in CONNECTOR_API_KEYS (from .env)');
    expect((await api(url, '/connections', own)).status).toBe(200);
    expect((await api(url, '/connections', 'demo-api-key-change-me')).status).toBe(401);
  });

  it('hands out access tokens that live SANDBOX_ACCESS_TOKEN_TTL seconds, so a refresh can be watched', async () => {
    const url = await start({ SANDBOX_ACCESS_TOKEN_TTL: '2' });
    expect(demo!.output()).toMatch(/SANDBOX_ACCESS_TOKEN_TTL\s+2 s\s+environment/);
    const sandbox = `http://127.0.0.1:${sandboxPort}`;
    const issued = await fetch(`${sandbox}/_sandbox/issue-tokens`, { method: 'POST' });
    expect(await issued.json()).toMatchObject({ expires_in: 2 });

    // Through Latchkey: an imported pair, then a refresh at the sandbox's token endpoint.
    const pair = await fetch(`${sandbox}/_sandbox/issue-tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ as: 'import' }),
    });
    const key = { Authorization: 'Bearer demo-api-key-change-me', 'Content-Type': 'application/json' };
    const put = await fetch(`${url}/connections/videoask/ttl`, {
      method: 'PUT',
      headers: key,
      body: await pair.text(),
    });
    expect(put.status).toBe(201);
    const refreshed = await fetch(`${url}/connections/videoask/ttl/refresh`, { method: 'POST', headers: key });
    const connection = (await refreshed.json()) as { expires_at: string; last_refreshed_at: string };
    const lifetimeMs = Date.parse(connection.expires_at) - Date.parse(connection.last_refreshed_at);
    // Two seconds, less what the token request took.
    expect(lifetimeMs).toBeGreaterThan(1000);
    expect(lifetimeMs).toBeLessThanOrEqual(2000);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'stops every process it started when the npm process gets %s',
    async (signal) => {
      const url = await start();
      expect(started.length).toBeGreaterThan(0);
      expect(await isListening(port)).toBe(true);
      expect(await isListening(sandboxPort)).toBe(true);

      process.kill(demo!.pid, signal);
      await demo!.exited;
      await waitUntil(() => started.every((pid) => !isAlive(pid)), 15_000);
      expect(await isListening(port)).toBe(false);
      expect(await isListening(sandboxPort)).toBe(false);
      // Latchkey got the signal itself and shut down through its handler, rather than being killed.
      expect(demo!.output()).toContain(`${signal} received`);
      expect(url).toBe(`http://localhost:${port}`);
    },
  );
});
