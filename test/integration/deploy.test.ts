/**
 * Deployment artefacts: docker-compose.yml (validated by `docker-compose config`), the
 * Dockerfile (checked statically), .dockerignore and deploy/nginx.conf.
 *
 * Nothing here builds an image or starts a container, so it stays fast. `docker-compose`
 * must be installed (CI installs Debian's `docker-compose`); without it the compose tests
 * fail rather than skip.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

// ---------------------------------------------------------------------------------------------
// docker-compose config
// ---------------------------------------------------------------------------------------------

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Values written to the throw-away .env that compose's `env_file: .env` needs. */
const FAKE_ENV = {
  NODE_ENV: 'development', // must lose against the compose file's `environment:`
  REDIS_URL: 'redis://elsewhere:6399',
  SESSION_SECRET: 'compose-config-test-only',
  LATCHKEY_COMPOSE_TEST: 'from-env-file',
};

function run(
  cmd: string,
  args: string[],
  input?: string,
): { status: number | null; stdout: string; stderr: string; error?: Error } {
  // Compose lets the shell's variables win over .env in substitutions: keep the test's own PORT out.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'PORT'));
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, env, timeout: 20_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

/** Runs `docker-compose config` on the repository's compose file and returns it as JSON. */
function loadComposeConfig(projectDir: string): Json {
  const version = run('docker-compose', ['version', '--short']);
  if (version.error || version.status !== 0) {
    throw new Error(
      '`docker-compose` is not installed or does not run, so docker-compose.yml cannot be validated. ' +
        'Install it (Debian: `apt-get install -y docker-compose`); CI installs it. ' +
        `(${version.error?.message ?? version.stderr.trim()})`,
    );
  }
  const base = [
    '-f',
    path.join(ROOT, 'docker-compose.yml'),
    '--project-directory',
    projectDir,
    '--profile',
    'scale',
    'config',
  ];
  const isV1 = /^v?1\./.test(version.stdout.trim());
  // Compose v2 prints JSON itself; v1 (Python) only prints YAML, and always has PyYAML beside it.
  const out = run('docker-compose', isV1 ? base : [...base, '--format', 'json']);
  if (out.status !== 0) throw new Error(`docker-compose config failed:\n${out.stderr}${out.stdout}`);
  if (!isV1) return JSON.parse(out.stdout) as Json;
  const toJson = run(
    'python3',
    ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'],
    out.stdout,
  );
  if (toJson.status !== 0) throw new Error(`could not convert docker-compose config output to JSON:\n${toJson.stderr}`);
  return JSON.parse(toJson.stdout) as Json;
}

/** Named-volume mounts as `source → target`, for both the short (v1) and long (v2) syntax. */
function mounts(service: Json): { source: string; target: string; readOnly: boolean }[] {
  return (service.volumes ?? []).map((v: string | Json) => {
    if (typeof v === 'string') {
      const [source = '', target = '', mode = ''] = v.split(':');
      return { source, target, readOnly: mode.split(',').includes('ro') };
    }
    return { source: String(v.source), target: String(v.target), readOnly: v.read_only === true };
  });
}

function publishedPorts(service: Json): { published: number; target: number }[] {
  return (service.ports ?? []).map((p: string | Json) => {
    if (typeof p === 'string') {
      const [published, target] = p.split(':').slice(-2).map(Number);
      return { published: published!, target: target! };
    }
    return { published: Number(p.published), target: Number(p.target) };
  });
}

function healthcheckCommand(service: Json): string {
  const test = service.healthcheck?.test;
  return Array.isArray(test) ? test.join(' ') : String(test ?? '');
}

/** A throw-away compose project folder whose .env holds `values` (or the given text). */
function composeProject(values: Record<string, string> | string): string {
  // env_file: .env must exist for compose to load the file; keep it out of the repository.
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-compose-'));
  const text =
    typeof values === 'string'
      ? values
      : Object.entries(values)
          .map(([k, v]) => `${k}=${v}`)
          .join('\n') + '\n';
  writeFileSync(path.join(dir, '.env'), text);
  return dir;
}

describe('docker-compose.yml', () => {
  let projectDir: string;
  let config: Json;
  let services: Json;

  beforeAll(() => {
    projectDir = composeProject(FAKE_ENV);
    config = loadComposeConfig(projectDir);
    services = config.services ?? {};
  });

  afterAll(() => {
    if (projectDir) rmSync(projectDir, { recursive: true, force: true });
  });

  it('runs redis 7 with append-only persistence on a named volume and a ping healthcheck', () => {
    const redis = services.redis;
    expect(redis.image).toBe('redis:7-alpine');
    const command = Array.isArray(redis.command) ? redis.command.join(' ') : String(redis.command);
    expect(command).toMatch(/--appendonly\s+yes/);
    const data = mounts(redis).find((m) => m.target === '/data');
    expect(data).toBeDefined();
    expect(Object.keys(config.volumes ?? {})).toContain(data!.source);
    expect(healthcheckCommand(redis)).toMatch(/redis-cli\s+ping/);
  });

  it('starts latchkey in production on redis only once redis is healthy, on port 3000', () => {
    const latchkey = services.latchkey;
    expect(latchkey.build).toBeDefined();
    expect(latchkey.image).toBe('latchkey:local');
    expect(latchkey.depends_on?.redis?.condition).toBe('service_healthy');
    expect(publishedPorts(latchkey)).toContainEqual({ published: 3000, target: 3000 });
    expect(latchkey.environment.NODE_ENV).toBe('production');
    expect(latchkey.environment.REDIS_URL).toBe('redis://redis:6379');
    expect(latchkey.restart).toBe('unless-stopped');
    expect(healthcheckCommand(latchkey)).toContain('/healthz');
  });

  it('reads the secrets from .env while its own NODE_ENV and REDIS_URL take precedence', () => {
    const env = services.latchkey.environment;
    expect(env.LATCHKEY_COMPOSE_TEST).toBe('from-env-file');
    expect(env.SESSION_SECRET).toBe(FAKE_ENV.SESSION_SECRET);
    expect(env.NODE_ENV).toBe('production');
  });

  it('listens on and publishes the PORT that .env sets, and keeps the replicas on the port nginx.conf names', () => {
    expect(services.latchkey.environment.PORT).toBe('3000'); // no PORT in .env
    const dir = composeProject({ ...FAKE_ENV, PORT: '4123' });
    try {
      const withPort = loadComposeConfig(dir).services as Json;
      expect(publishedPorts(withPort.latchkey)).toEqual([{ published: 4123, target: 4123 }]);
      expect(withPort.latchkey.environment.PORT).toBe('4123');
      for (const name of ['latchkey-a', 'latchkey-b']) expect(withPort[name].environment.PORT).toBe('3000');
      expect(read('deploy/nginx.conf')).toMatch(/server\s+latchkey-a:3000/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const empty = composeProject({ ...FAKE_ENV, PORT: '' }); // empty counts as unset
    try {
      const withEmpty = loadComposeConfig(empty).services as Json;
      expect(publishedPorts(withEmpty.latchkey)).toEqual([{ published: 3000, target: 3000 }]);
      expect(withEmpty.latchkey.environment.PORT).toBe('3000');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('reads a .env written by latchkey init with every secret intact', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-compose-'));
    try {
      const init = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'latchkey.js'), 'init'], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(init.status).toBe(0);
      const written = parseDotenv(readFileSync(path.join(dir, '.env')));
      const env = (loadComposeConfig(dir).services as Json).latchkey.environment;
      for (const name of ['SESSION_SECRET', 'TOKEN_ENCRYPTION_KEYS', 'CONNECTOR_API_KEYS', 'PUBLIC_URL']) {
        expect([name, env[name]]).toEqual([name, written[name]]);
      }
      expect(env.NODE_ENV).toBe('production');
      expect(env.REDIS_URL).toBe('redis://redis:6379');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('offers a "scale" profile: two unpublished replicas on the same redis behind nginx', () => {
    for (const name of ['latchkey-a', 'latchkey-b']) {
      const replica = services[name];
      expect(replica).toBeDefined();
      expect(replica.profiles).toEqual(['scale']);
      expect(replica.image).toBe(services.latchkey.image);
      expect(replica.ports ?? []).toEqual([]);
      expect(replica.environment.NODE_ENV).toBe('production');
      expect(replica.environment.REDIS_URL).toBe(services.latchkey.environment.REDIS_URL);
      expect(replica.environment.TRUST_PROXY).toBe('1');
      expect(replica.environment.SESSION_SECRET).toBe(FAKE_ENV.SESSION_SECRET);
      expect(replica.depends_on?.redis?.condition).toBe('service_healthy');
    }
    const lb = services.lb;
    expect(lb.image).toBe('nginx:1.27-alpine');
    expect(lb.profiles).toEqual(['scale']);
    expect(publishedPorts(lb)).toContainEqual({ published: 8080, target: 8080 });
    expect(Object.keys(lb.depends_on ?? {}).sort()).toEqual(['latchkey-a', 'latchkey-b']);
    const conf = mounts(lb).find((m) => m.target === '/etc/nginx/nginx.conf');
    expect(conf).toBeDefined();
    expect(conf!.readOnly).toBe(true);
    expect(conf!.source.endsWith(path.join('deploy', 'nginx.conf'))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Dockerfile, statically
// ---------------------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
}

/** Splits a Dockerfile into instructions: comments dropped, `\` continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (pending && line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/.exec(full);
    if (m) out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim() });
  }
  return out;
}

interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

function splitStages(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      stages.push({ image: m?.[1] ?? ins.args, name: m?.[2], instructions: [] });
    } else if (stages.length) {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return stages;
}

/** `ENV A=1 B=2` or `ENV A 1` → names; `ARG A=1` → names with defaults. */
function declaredNames(ins: Instruction): { name: string; hasValue: boolean }[] {
  if (ins.keyword === 'ARG') {
    const [name = '', ...rest] = ins.args.split('=');
    return [{ name: name.trim(), hasValue: rest.length > 0 }];
  }
  if (!ins.args.includes('=') || /^\S+\s/.test(ins.args.split('=')[0]!)) {
    return [{ name: ins.args.split(/\s+/)[0]!, hasValue: true }];
  }
  return [...ins.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=/g)].map((m) => ({ name: m[1]!, hasValue: true }));
}

const of = (stage: Stage, keyword: string): Instruction[] => stage.instructions.filter((i) => i.keyword === keyword);
const OMITS_DEV = /npm\s+(?:ci|install|prune)\b[^&;|]*(?:--omit[= ]dev|--only[= ]prod(?:uction)?|--production)\b/;

describe('Dockerfile', () => {
  const instructions = parseDockerfile(read('Dockerfile'));
  const stages = splitStages(instructions);
  const final = stages[stages.length - 1]!;
  const workdir = (stage: Stage): string => of(stage, 'WORKDIR').pop()?.args ?? '/';
  const cmd = (): string[] => {
    const c = of(final, 'CMD').pop();
    expect(c).toBeDefined();
    expect(c!.args.startsWith('[')).toBe(true); // exec form: node is PID 1 and gets SIGTERM
    return JSON.parse(c!.args) as string[];
  };

  it('is multi-stage, every stage on the pinned node:24-bookworm-slim, a supported LTS', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.image).toBe('node:24-bookworm-slim');
    expect(stages[0]!.name).toBe('build');
    const label = of(final, 'LABEL').find((i) => i.args.includes('org.opencontainers.image.base.name'));
    expect(label?.args).toContain('org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim"');
    // The code still runs on Node 20 (this machine's, CI's): the image is newer, the code is not.
    const pkg = JSON.parse(read('package.json')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe('>=20');
  });

  it('runs the final stage as a non-root user', () => {
    const user = of(final, 'USER').pop()?.args;
    expect(user).toBeDefined();
    expect(user!.split(':')[0]).not.toMatch(/^(root|0)$/);
  });

  it('declares a healthcheck on /healthz that needs nothing but node', () => {
    const hc = of(final, 'HEALTHCHECK').pop()?.args ?? '';
    expect(hc).toContain('/healthz');
    expect(hc).toMatch(/CMD\s+\[\s*"node"/);
    expect(hc).not.toMatch(/\b(curl|wget)\b/);
  });

  it('starts node dist/server.js in exec form, listening on 3000, stopped by SIGTERM', () => {
    expect(cmd()).toEqual(['node', 'dist/server.js']);
    expect(of(final, 'STOPSIGNAL').pop()?.args).toBe('SIGTERM');
    expect(of(final, 'EXPOSE').map((i) => i.args)).toContain('3000');
    expect(of(final, 'ENV').some((i) => /\bPORT[= ]3000\b/.test(i.args))).toBe(true);
    expect(of(final, 'LABEL').some((i) => i.args.includes('org.opencontainers.image.'))).toBe(true);
  });

  it('ships only production dependencies in the final stage', () => {
    const runs = (stage: Stage): string[] => of(stage, 'RUN').map((i) => i.args);
    const finalInstalls = runs(final).some((r) => OMITS_DEV.test(r));
    const copied = of(final, 'COPY').filter((i) => /node_modules/.test(i.args));
    if (!finalInstalls) {
      expect(copied.length).toBeGreaterThan(0);
      for (const copy of copied) {
        const from = /--from=(\S+)/.exec(copy.args)?.[1];
        const source = stages.find((s, i) => s.name === from || String(i) === from);
        expect(source).toBeDefined();
        // The last npm command that touches node_modules in that stage must drop dev deps.
        const npm = runs(source!)
          .flatMap((r) => r.split(/&&|;/))
          .filter((c) => /npm\s+(ci|install|prune)\b/.test(c));
        expect(npm.length).toBeGreaterThan(0);
        expect(npm[npm.length - 1]).toMatch(OMITS_DEV);
      }
    }
    // Nothing in the final stage installs dev dependencies back.
    for (const r of runs(final)) if (/npm\s+(ci|install)\b/.test(r)) expect(r).toMatch(OMITS_DEV);
  });

  it('ships the static public/ assets the app reads at run time next to dist/', () => {
    // e.g. GET /connect.js sends dist/http/../../public/connect.js; tsc does not emit it.
    if (!existsSync(path.join(ROOT, 'public'))) return;
    const copy = of(final, 'COPY').find((i) => {
      const [src, dest] = i.args.split(/\s+/).filter((a) => !a.startsWith('--'));
      return (
        !/--from=/.test(i.args) &&
        path.posix.normalize(src!).replace(/\/$/, '') === 'public' &&
        path.posix.resolve(workdir(final), dest!) === path.posix.join(workdir(final), 'public')
      );
    });
    expect(copy).toBeDefined();
  });

  it('carries no secret in ENV or ARG, no .env, and does not force NODE_ENV=production', () => {
    const secretish = /SECRET|KEY|TOKEN|PASSWORD/i;
    for (const ins of instructions.filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')) {
      for (const { name, hasValue } of declaredNames(ins)) {
        if (secretish.test(name) && hasValue) throw new Error(`Dockerfile sets ${ins.keyword} ${name} with a value`);
      }
      // Production makes every secret mandatory and refuses the in-memory store; compose sets it.
      expect(ins.args).not.toMatch(/NODE_ENV[= ]"?production/);
    }
    for (const ins of instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
      expect(ins.args).not.toMatch(/(^|\s|\/)\.env(\s|$)/);
    }
  });

  it('builds with the package.json build script and runs what tsconfig.build.json emits for src/server.ts', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
    // `exec`, so npm's signals reach node itself rather than the shell npm runs the script in.
    expect(pkg.scripts.start).toBe(`exec ${cmd().join(' ')}`);

    const build = stages[0]!;
    const buildRuns = of(build, 'RUN').map((i) => i.args);
    expect(buildRuns.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(buildRuns.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    const copies = of(build, 'COPY')
      .map((i) => i.args)
      .join('\n');
    expect(copies).toMatch(/package(?:\*|-lock)?\.json/);
    expect(copies).toMatch(/tsconfig(?:\*|\.build)\.json/);
    expect(copies).toMatch(/tsconfig(?:\*|)\.json/); // the base config tsconfig.build.json extends
    expect(copies).toMatch(/(^|\s)src(\/)?\s/m);

    // What tsc emits for src/server.ts with tsconfig.build.json (extends resolved).
    const file = path.join(ROOT, 'tsconfig.build.json');
    const { config: raw, error } = ts.readConfigFile(file, ts.sys.readFile);
    expect(error).toBeUndefined();
    const parsed = ts.parseJsonConfigFileContent(raw, ts.sys, ROOT, undefined, file);
    const { outDir, rootDir } = parsed.options;
    expect(outDir && rootDir).toBeTruthy();
    const emitted = path
      .join(outDir!, path.relative(rootDir!, path.join(ROOT, 'src', 'server.ts')))
      .replace(/\.ts$/, '.js');
    const emittedRel = path.relative(ROOT, emitted).split(path.sep).join('/');
    expect(emittedRel).toBe('dist/server.js');

    // The build stage compiles in its WORKDIR; the final stage copies that output dir to where CMD looks.
    const outRel = path.relative(ROOT, outDir!).split(path.sep).join('/');
    const distCopy = of(final, 'COPY').find((i) =>
      new RegExp(`--from=${build.name}\\b.*\\s\\S*${outRel}/?\\s`).test(i.args),
    );
    expect(distCopy).toBeDefined();
    const [src, dest] = distCopy!.args.split(/\s+/).filter((a) => !a.startsWith('--'));
    expect(path.posix.resolve(workdir(build), src!)).toBe(path.posix.join(workdir(build), outRel));
    expect(path.posix.resolve(workdir(final), dest!)).toBe(path.posix.join(workdir(final), outRel));
    expect(path.posix.resolve(workdir(final), cmd()[1]!)).toBe(path.posix.join(workdir(final), emittedRel));
  });
});

// ---------------------------------------------------------------------------------------------
// package.json: what `npm ci` and `npm run …` do
// ---------------------------------------------------------------------------------------------

describe('package.json', () => {
  const pkg = JSON.parse(read('package.json')) as {
    scripts: Record<string, string>;
    allowScripts?: Record<string, boolean>;
  };

  it('decides on every install script in the lockfile, so npm ci warns about none', () => {
    // npm 11 skips a dependency's install scripts unless allowScripts approves them, and warns
    // about each one allowScripts does not mention; `false` denies one quietly.
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { version?: string; hasInstallScript?: boolean }>;
    };
    const withScripts = Object.entries(lock.packages)
      .filter(([where, entry]) => where !== '' && entry.hasInstallScript)
      .map(([where, entry]) => ({
        name: where.slice(where.lastIndexOf('node_modules/') + 13),
        version: entry.version,
      }));
    expect(withScripts.length).toBeGreaterThan(0);
    const decided = Object.keys(pkg.allowScripts ?? {});
    for (const { name, version } of withScripts) {
      expect([name, decided.some((key) => key === name || key === `${name}@${version}`)]).toEqual([name, true]);
    }
  });

  it('runs each long-lived script with exec, so a signal to npm reaches the server and not only a shell', () => {
    for (const name of ['start', 'demo', 'dev', 'sandbox']) {
      expect([name, pkg.scripts[name]]).toEqual([name, expect.stringMatching(/^exec \S/)]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// .dockerignore and nginx.conf
// ---------------------------------------------------------------------------------------------

/** Docker's rule: the last pattern that matches a path (or one of its parents) decides. */
function dockerIgnores(patterns: string[], file: string): boolean {
  const toRegExp = (glob: string): RegExp =>
    new RegExp(
      '^' +
        glob
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*\*\/?/g, '\u0000')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          .replace(/\u0000/g, '.*') +
        '$',
    );
  const parts = file.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = path.posix.normalize((negate ? raw.slice(1) : raw).trim()).replace(/^\/|\/$/g, '');
    if (candidates.some((c) => toRegExp(pattern).test(c))) ignored = !negate;
  }
  return ignored;
}

describe('.dockerignore', () => {
  const patterns = read('.dockerignore')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('keeps local state, secrets and tests out of the build context', () => {
    for (const f of [
      'node_modules/x',
      'dist/server.js',
      '.git/HEAD',
      '.env',
      'coverage/x',
      'test-output/x',
      'npm-debug.log',
      '.bench/x',
      'bench/run.ts',
      'test/unit/x.test.ts',
    ]) {
      expect([f, dockerIgnores(patterns, f)]).toEqual([f, true]);
    }
  });

  it('keeps what the build needs', () => {
    for (const f of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'src/server.ts',
      'src/store/index.ts',
      'public/connect.js',
    ]) {
      expect([f, dockerIgnores(patterns, f)]).toEqual([f, false]);
    }
  });
});

describe('deploy/nginx.conf', () => {
  const conf = read('deploy/nginx.conf');
  const directives = conf.replace(/#.*$/gm, '');

  it('balances both replicas over kept-alive HTTP/1.1 without buffering streamed answers', () => {
    expect(existsSync(path.join(ROOT, 'deploy', 'nginx.conf'))).toBe(true);
    expect(directives).toMatch(
      /upstream\s+\S+\s*\{[^}]*server\s+latchkey-a:3000[^}]*server\s+latchkey-b:3000[^}]*keepalive\s+\d+/,
    );
    expect(directives).toMatch(/listen\s+8080\s*;/);
    expect(directives).toMatch(/proxy_http_version\s+1\.1\s*;/);
    expect(directives).toMatch(/proxy_set_header\s+Connection\s+""\s*;/);
    expect(directives).toMatch(/proxy_set_header\s+Host\s+\$\S+\s*;/);
    expect(directives).toMatch(/proxy_set_header\s+X-Forwarded-For\s+\$\S+\s*;/);
    expect(directives).toMatch(/proxy_set_header\s+X-Forwarded-Proto\s+\$scheme\s*;/);
    expect(directives).toMatch(/proxy_buffering\s+off\s*;/);
    expect(directives).toMatch(/proxy_read_timeout\s+\d+s?\s*;/);
    expect(conf).toMatch(/#.*TRUST_PROXY=1/);
  });
});
