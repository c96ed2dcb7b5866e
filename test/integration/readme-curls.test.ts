import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from '../helpers/latchkey-process';
import { descendantsOf, isAlive, spawnNpm, temporaryPackage, type NpmProcess } from '../helpers/npm-process';

/**
 * The README as a newcomer reads it: every command of its `sh` and `bash` blocks, in the
 * README's order, runs as written against `npm run demo` (started through npm, in a throw-away
 * package folder), in one bash session in that folder, so the variables one block exports are
 * there for the next. A command followed by `# → …` must print that (whitespace collapsed, `…`
 * standing for anything); a command without one must exit 0 and print none of Latchkey's error
 * bodies. A line `[VAR=value …] npm run demo` (re)starts the demo with those variables, as a user
 * would after Ctrl-C.
 *
 * The one liberty taken: the demo listens on free ports rather than 3000 and 4010 (other tests
 * run at the same time), so `http://localhost:3000` and `http://127.0.0.1:4010` are replaced by
 * the ports it got, in the commands and in the outputs they must print.
 *
 * What is not run, and why, is NOT_RUN; each entry must still match a command of the README, so
 * the list cannot go stale. The browser half of connecting (the consent page) is not a command:
 * test/e2e/connect-page.test.ts clicks through it in Chromium.
 */
const ROOT = resolve(__dirname, '../..');
const README_PORT = 'http://localhost:3000';
const README_SANDBOX = 'http://127.0.0.1:4010';
const BANNER = /Latchkey demo: open (http:\/\/\S+)\/ and click/;
const DEMO = /^((?:[A-Z][A-Z0-9_]*=\S+\s+)*)npm run demo\b/;

const NOT_RUN: Array<{ command: RegExp; why: string }> = [
  { command: /^npm ci\b/, why: 'installs the dependencies this test already runs on' },
  { command: /^npm test\b/, why: 'is the whole suite, this test among it' },
  {
    command: /^npm run setup -- --public-url /,
    why: "'Running it for real' needs a provider app of your own: init is test/integration/setup-cli.test.ts",
  },
  { command: /^npm run build$/, why: 'the build and npm start are test/integration/built-package.test.ts' },
  { command: /^npm start$/, why: 'the build and npm start are test/integration/built-package.test.ts' },
];

interface Command {
  /** The README line the command starts on. */
  line: number;
  text: string;
  /** What a `# → …` line after it says it prints. */
  expected?: string;
}

/** The commands of every ```sh and ```bash block (indented ones too, as in a list item), in order. */
function readmeCommands(markdown: string): Command[] {
  const commands: Command[] = [];
  const lines = markdown.split('\n');
  let indent: string | undefined;
  let pending: Command | undefined;
  lines.forEach((raw, i) => {
    const fence = /^(\s*)```(\w*)\s*$/.exec(raw);
    if (fence) {
      if (indent !== undefined) indent = pending = undefined;
      else if (fence[2] === 'sh' || fence[2] === 'bash') indent = fence[1]!;
      return;
    }
    if (indent === undefined) return;
    const line = raw.startsWith(indent) ? raw.slice(indent.length) : raw.trimStart();
    const shown = /^# → (.*)$/.exec(line);
    if (shown) {
      commands.at(-1)!.expected = shown[1];
      return;
    }
    if (pending) pending.text += `\n${line}`;
    else if (line.trim() && !line.startsWith('#')) commands.push((pending = { line: i + 1, text: line }));
    else return;
    // A line ending in `\`, `|` or `&&` goes on on the next one.
    if (!/(\\|\||&&)\s*$/.test(line)) pending = undefined;
  });
  return commands;
}

/** `# → …` as a pattern: whitespace collapsed, `…` for anything. */
function shownAsPattern(expected: string): RegExp {
  const parts = collapse(expected)
    .split('…')
    .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`, 's');
}

const collapse = (text: string) => text.replace(/\s+/g, ' ').trim();

/** One bash session: each command's stdout, stderr and exit status, variables kept between them. */
class Shell {
  private readonly child: ChildProcessWithoutNullStreams;
  private stdout = '';
  private stderr = '';
  private wake?: () => void;

  /** `cwd`: where a user runs them, the package folder (a command may write its `.env`). */
  constructor(cwd: string) {
    // Nothing from this process's environment that curl or a README variable would pick up.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([n]) => !/^(LATCHKEY|KEY|SANDBOX|.*_proxy|.*_PROXY)$/.test(n)),
    );
    this.child = spawn('bash', ['--noprofile', '--norc'], { cwd, env, stdio: 'pipe' });
    this.child.stdout.on('data', (c: Buffer) => this.take('stdout', c));
    this.child.stderr.on('data', (c: Buffer) => this.take('stderr', c));
  }

  private take(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    this[stream] += chunk.toString();
    this.wake?.();
  }

  async run(command: string): Promise<{ stdout: string; stderr: string; status: number }> {
    const mark = `@@readme-${Math.random().toString(36).slice(2)}@@`;
    this.child.stdin.write(`${command}\nprintf '\\n${mark}%s\\n' "$?"; printf '${mark}\\n' >&2\n`);
    const done = new RegExp(`\\n${mark}(\\d+)\\n$`);
    for (;;) {
      const status = done.exec(this.stdout);
      if (status && this.stderr.endsWith(`${mark}\n`)) {
        const result = {
          stdout: this.stdout.slice(0, status.index),
          stderr: this.stderr.slice(0, -`${mark}\n`.length),
          status: Number(status[1]),
        };
        this.stdout = this.stderr = '';
        return result;
      }
      await new Promise<void>((wake) => (this.wake = wake));
    }
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill('SIGKILL');
  }
}

const commands = readmeCommands(readFileSync(join(ROOT, 'README.md'), 'utf8'));
const skipOf = (c: Command) => NOT_RUN.find((n) => n.command.test(c.text));
/** `npm ci && npm run demo` starts the demo: each part of a `&&` list is looked at on its own. */
const partsOf = (c: Command): Command[] => c.text.split(/\s+&&\s+/).map((text) => ({ ...c, text }));
const steps = commands.flatMap(partsOf).filter((c) => !skipOf(c));

describe('the README, run as written against npm run demo', () => {
  let pkg: ReturnType<typeof temporaryPackage>;
  let shell: Shell;
  let demo: NpmProcess | undefined;
  const started: number[] = [];
  let origins: { latchkey: string; sandbox: string } | undefined;
  let ports: [number, number] | undefined;

  /** As Ctrl-C would; a demo that has not stopped within 15 s is killed (and the test fails on it). */
  const stopDemo = async () => {
    if (!demo) return;
    const stopping = demo;
    demo = undefined;
    process.kill(stopping.pid, 'SIGTERM');
    const killer = setTimeout(() => {
      for (const pid of [stopping.pid, ...descendantsOf(stopping.pid)]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }, 15_000);
    const { signal } = await stopping.exited;
    clearTimeout(killer);
    expect(signal).not.toBe('SIGKILL');
  };
  const startDemo = async (variables: string) => {
    await stopDemo();
    const env = Object.fromEntries(
      variables
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]),
    );
    // The same ports on a restart, as for a user: the variables exported earlier still name them.
    ports ??= [await freePort(), await freePort()];
    const [port, sandboxPort] = ports;
    demo = spawnNpm(['run', 'demo'], pkg.dir, { ...env, PORT: String(port), SANDBOX_PORT: String(sandboxPort) });
    const [, url] = await demo.waitForOutput(BANNER, 45_000);
    started.push(...descendantsOf(demo.pid));
    origins = { latchkey: url!, sandbox: `http://127.0.0.1:${sandboxPort}` };
  };
  const onDemo = (text: string) =>
    text.replaceAll(README_PORT, origins!.latchkey).replaceAll(README_SANDBOX, origins!.sandbox);

  beforeAll(() => {
    pkg = temporaryPackage({ link: ['src', 'node_modules', 'public', 'tsconfig.json'] });
    shell = new Shell(pkg.dir);
  });
  afterAll(async () => {
    shell.close();
    await stopDemo().catch(() => undefined);
    for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    pkg.remove();
  });

  it('has shell blocks to run, and every command left out is still in it, with its reason', () => {
    expect(steps.filter((s) => DEMO.test(s.text)).length).toBeGreaterThanOrEqual(2);
    expect(steps.some((s) => s.text.includes('/proxy/videoask/forms'))).toBe(true);
    for (const { command } of NOT_RUN) {
      expect([String(command), commands.flatMap(partsOf).some((c) => command.test(c.text))]).toEqual([
        String(command),
        true,
      ]);
    }
  });

  it.each(steps.map((s) => [s.line, s.text.split('\n')[0], s] as const))(
    'README line %i: %s',
    async (_line, _first, step) => {
      const start = DEMO.exec(step.text);
      if (start) {
        await startDemo(start[1]!);
        return;
      }
      expect(origins).toBeDefined(); // a command before the demo was started
      const ran = await shell.run(onDemo(step.text));
      const output = collapse(ran.stdout);
      const context = { line: step.line, status: ran.status, stdout: output, stderr: ran.stderr.slice(0, 2000) };
      expect({ ...context, status: ran.status }).toEqual({ ...context, status: 0 });
      if (step.expected !== undefined) {
        expect({ ...context, matches: shownAsPattern(onDemo(step.expected)).test(output) }).toEqual({
          ...context,
          matches: true,
        });
      } else {
        expect({ ...context, latchkeyError: /"error":\{"code":/.test(output) }).toEqual({
          ...context,
          latchkeyError: false,
        });
      }
    },
    60_000,
  );
});
