import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** Not a jest helper only: no jest globals here. */

const ROOT = resolve(__dirname, '../..');

/**
 * A throw-away copy of the package to run npm scripts in, so that they find their `.env` where
 * a user's would be (npm runs a script in its package's folder) without touching the
 * repository's: package.json copied, the rest symlinked (`link`), or copied (`copy`).
 */
export function temporaryPackage(options: { link?: string[]; copy?: string[] } = {}): {
  dir: string;
  remove(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-pkg-'));
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  for (const name of options.link ?? []) symlinkSync(join(ROOT, name), join(dir, name));
  for (const name of options.copy ?? []) copyFileSync(join(ROOT, name), join(dir, name));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Variables of the test's own environment that would change what an npm script does. */
const LEAKY =
  /^(PORT|SANDBOX_PORT|PUBLIC_URL|NODE_ENV|REDIS_.*|CONNECTOR_API_KEYS|SESSION_SECRET|TOKEN_ENCRYPTION_KEYS|DOTENV_CONFIG_.*|LOG_LEVEL)$/;

export interface NpmProcess {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the output once it matches, rejects when the process ends first or time runs out. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** Runs `npm <args>` in `cwd` with a clean Latchkey environment plus `env`. */
export function spawnNpm(args: string[], cwd: string, env: Record<string, string>): NpmProcess {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !LEAKY.test(name)));
  const child = spawn('npm', args, { cwd, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const wake of waiters) wake();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let ended = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    child.once('exit', (code, signal) => {
      ended = true;
      for (const wake of waiters) wake();
      resolveExit({ code, signal });
    }),
  );
  return {
    child,
    pid: child.pid!,
    output: () => output,
    exited,
    waitForOutput(pattern, timeoutMs = 30_000) {
      return new Promise((resolveMatch, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${output}`));
        }, timeoutMs);
        const check = () => {
          const match = pattern.exec(output);
          if (match || ended) {
            clearTimeout(timer);
            waiters.delete(check);
            if (match) resolveMatch(match);
            else reject(new Error(`npm ${args.join(' ')} ended before ${pattern}:\n${output}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Every process below `pid` now (Linux: read from /proc). */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    // "pid (comm) state ppid …"; comm may hold spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** Whether a process with this pid still exists (a zombie counts: it was not reaped yet). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolveProbe) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolveProbe(true);
    });
    socket.once('error', () => resolveProbe(false));
  });
}
