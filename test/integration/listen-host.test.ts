import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { ConfigError } from '../../src/config';
import { createLogger } from '../../src/logger';
import { main, startLatchkey, type RunningLatchkey } from '../../src/server';

/** A non-loopback IPv4 address of this machine, if it has one. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && !i.internal && i.family === 'IPv4')?.address;
const withExternal = external ? it : it.skip;
if (!external) {
  console.warn('listen-host.test: this machine has no non-loopback IPv4 address; the reachability checks are skipped');
}

/** Opens a TCP connection and closes it: 'connected', or the error code (ECONNREFUSED). */
function tryConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

const baseEnv = { NODE_ENV: 'test', PORT: '0', RATE_LIMIT_PER_MINUTE: '0' };

describe('where Latchkey listens (SECURITY.md 25)', () => {
  let running: RunningLatchkey | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  it('listens on 127.0.0.1 when HOST is not set, and says so at start-up', async () => {
    const { logger, lines } = capture();
    running = await startLatchkey({ env: { ...baseEnv }, logger });
    expect(running.config.host).toBe('127.0.0.1');
    expect(running.server.address()).toMatchObject({ address: '127.0.0.1', port: running.port });
    expect(await tryConnect('127.0.0.1', running.port)).toBe('connected');
    expect(running.url).toBe(`http://127.0.0.1:${running.port}`);
    const line = lines.find((l) => String(l.msg).startsWith('Latchkey listening'));
    expect(line).toMatchObject({
      host: '127.0.0.1',
      port: running.port,
      url: `http://127.0.0.1:${running.port}`,
      reach: 'loopback only',
      msg: `Latchkey listening on 127.0.0.1:${running.port} (loopback only): http://127.0.0.1:${running.port}`,
    });
  });

  withExternal(`is not reachable on this machine's other address (${external ?? 'none'}) without HOST`, async () => {
    running = await startLatchkey({ env: { ...baseEnv }, logger: createLogger('silent') });
    expect(await tryConnect(external!, running.port)).toBe('ECONNREFUSED');
    expect(await tryConnect('127.0.0.1', running.port)).toBe('connected');
  });

  withExternal(
    `is reachable on ${external ?? 'none'} with HOST=0.0.0.0, and says it listens on every interface`,
    async () => {
      const { logger, lines } = capture();
      running = await startLatchkey({ env: { ...baseEnv, HOST: '0.0.0.0' }, logger });
      expect(await tryConnect(external!, running.port)).toBe('connected');
      expect(await tryConnect('127.0.0.1', running.port)).toBe('connected');
      const res = await fetch(`http://${external}:${running.port}/healthz`);
      expect(res.status).toBe(200);
      expect(lines.find((l) => String(l.msg).startsWith('Latchkey listening'))).toMatchObject({
        host: '0.0.0.0',
        reach: 'every interface',
        url: `http://127.0.0.1:${running.port}`,
      });
    },
  );

  withExternal('listens on exactly the address HOST names', async () => {
    running = await startLatchkey({ env: { ...baseEnv, HOST: external! }, logger: createLogger('silent') });
    expect(running.url).toBe(`http://${external}:${running.port}`);
    expect(await tryConnect(external!, running.port)).toBe('connected');
    expect(await tryConnect('127.0.0.1', running.port)).toBe('ECONNREFUSED');
  });

  it('guesses nothing from a container-looking environment', async () => {
    running = await startLatchkey({
      env: { ...baseEnv, KUBERNETES_SERVICE_HOST: '10.0.0.1', container: 'docker', HOSTNAME: 'f00dcafe' },
      logger: createLogger('silent'),
    });
    expect(running.server.address()).toMatchObject({ address: '127.0.0.1' });
  });

  it('refuses to start on a broken environment, with config and PROVIDERS_FILE problems in one report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-start-'));
    try {
      const providersFile = join(dir, 'providers.json');
      writeFileSync(providersFile, JSON.stringify([{ id: 'videoask', pkce: 'yes' }]));
      const err = await startLatchkey({
        env: { ...baseEnv, HOST: 'anywhere at all', PROVIDERS_FILE: providersFile },
        logger: createLogger('silent'),
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([
        expect.stringMatching(/^HOST must be an address to listen on/),
        `PROVIDERS_FILE ${providersFile}: entry 1 ("videoask"): field "pkce": must be true or false`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SIGHUP', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'latchkey-sighup-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');
  const call = (running: RunningLatchkey, key: string) =>
    fetch(`${running.url}/connections`, { headers: { Authorization: `Bearer ${key}` } }).then((r) => r.status);

  it('reloads API_KEYS_FILE in the running process; a file that does not validate keeps the keys in force', async () => {
    const file = join(dir, 'keys.json');
    const first = 'first-key-0123456789abcdef';
    const second = 'second-key-0123456789abcdef';
    writeFileSync(file, JSON.stringify([{ name: 'first', sha256: sha256(first), access: 'read' }]));
    const { logger, lines } = capture();
    const before = new Set(process.listeners('SIGHUP'));
    const beforeTerm = new Set([...process.listeners('SIGTERM'), ...process.listeners('SIGINT')]);
    const running = await main({ env: { ...baseEnv, API_KEYS_FILE: file }, logger });
    try {
      expect(await call(running, first)).toBe(200);
      expect(await call(running, second)).toBe(401);

      writeFileSync(file, JSON.stringify([{ name: 'second', sha256: sha256(second), access: 'read' }]));
      process.emit('SIGHUP', 'SIGHUP');
      expect(await call(running, second)).toBe(200);
      expect(await call(running, first)).toBe(401);
      expect(lines.find((l) => l.msg === 'API keys reloaded')).toMatchObject({ apiKeys: ['second'] });

      writeFileSync(file, JSON.stringify([{ name: 'second', sha256: 'oops', access: 'read' }]));
      process.emit('SIGHUP', 'SIGHUP');
      expect(await call(running, second)).toBe(200);
      const refused = lines.find((l) => String(l.msg).startsWith('API keys not reloaded'));
      expect(refused).toMatchObject({
        level: 50,
        problems: [expect.stringContaining(`API_KEYS_FILE ${file}: entry 1 ("second"): field "sha256": must be`)],
      });
      expect(JSON.stringify(lines)).not.toContain(second);
    } finally {
      for (const l of process.listeners('SIGHUP')) if (!before.has(l)) process.off('SIGHUP', l);
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        for (const l of process.listeners(signal)) if (!beforeTerm.has(l)) process.off(signal, l);
      }
      await running.close();
    }
  });
});

describe('deployment files', () => {
  const ROOT = resolve(__dirname, '../..');

  it('the image listens on every interface of its container (HOST=0.0.0.0 in the final stage)', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(finalStage).toMatch(/^ENV HOST=0\.0\.0\.0$/m);
  });

  it('compose sets HOST=0.0.0.0 on every Latchkey service, above whatever .env says', () => {
    // `environment:` wins over `env_file:` in compose, so a HOST copied into .env cannot hide the container.
    const parsed = spawnSync(
      'python3',
      [
        '-c',
        'import sys, json, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)',
        join(ROOT, 'docker-compose.yml'),
      ],
      { encoding: 'utf8' },
    );
    expect(parsed.status).toBe(0);
    const services = (
      JSON.parse(parsed.stdout) as {
        services: Record<string, { image?: string; build?: unknown; environment?: Record<string, string> }>;
      }
    ).services;
    const latchkeys = Object.entries(services).filter(([name]) => name.startsWith('latchkey'));
    expect(latchkeys.map(([name]) => name).sort()).toEqual(['latchkey', 'latchkey-a', 'latchkey-b']);
    for (const [name, service] of latchkeys) expect([name, service.environment?.HOST]).toEqual([name, '0.0.0.0']);
  });
});
