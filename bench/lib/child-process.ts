import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');
/** Where {@link benchBuild} puts the compiled project (git-ignored). */
const BUILD_DIR = join(ROOT, '.bench', 'build');

/**
 * The project compiled with tsc, as `npm run build` ships it, so the children measure the code
 * that runs in production: under tsx, esbuild's keep-names wraps every function created per
 * request in a `__name()` call (a few per cent of a proxied call in a profile) that the build
 * does not have. Type-checking is left to `npm run lint`; this only emits. Built once per run:
 * `npm run bench` builds before its first benchmark and passes BENCH_BUILD_DIR to each.
 * BENCH_TSX=1 runs the children through tsx instead (no build step, for quick edits).
 */
export function benchBuild(): string {
  if (process.env.BENCH_BUILD_DIR) return process.env.BENCH_BUILD_DIR;
  rmSync(BUILD_DIR, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'bench', 'tsconfig.bench.json'), '--noCheck'],
    {
      stdio: 'inherit',
    },
  );
  // The app finds its static files beside its sources (src/public/assets.ts: ../../public).
  if (!existsSync(join(BUILD_DIR, 'public'))) symlinkSync(join(ROOT, 'public'), join(BUILD_DIR, 'public'));
  process.env.BENCH_BUILD_DIR = BUILD_DIR;
  return BUILD_DIR;
}

/**
 * What a server child reports: CPU time used so far (µs), and the largest resident set size
 * sampled (every 50 ms) since it was first asked — the start-up peak of loading the code is
 * left out, the load is not.
 */
export interface Usage {
  cpuMicros: number;
  maxRssBytes: number;
}

export interface Listening {
  type: 'listening';
  port: number;
}

/**
 * In a child: answer `usage` messages with this process's CPU time and peak RSS, and exit on
 * `stop` (or when the parent goes away, so no child outlives the benchmark).
 */
export function reportUsageOnRequest(stop: () => void | Promise<void>): void {
  let peakRss = 0;
  let sampler: NodeJS.Timeout | undefined;
  const sample = () => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  };
  process.on('message', (message: { type: string }) => {
    if (message.type === 'usage') {
      sampler ??= setInterval(sample, 50).unref();
      sample();
      const cpu = process.cpuUsage();
      process.send!({ type: 'usage', cpuMicros: cpu.user + cpu.system, maxRssBytes: peakRss });
    } else if (message.type === 'stop') {
      void Promise.resolve(stop()).finally(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
}

/** A child process of this directory, run from the {@link benchBuild}, with a typed request/answer channel. */
export class Child {
  private constructor(readonly process: ChildProcess) {}

  static start(file: string, args: string[] = [], env: Record<string, string> = {}): Child {
    const tsx = process.env.BENCH_TSX === '1';
    const script = tsx ? join(__dirname, file) : join(benchBuild(), 'bench', 'lib', file.replace(/\.ts$/, '.js'));
    const child = fork(script, args, {
      // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of every child there, to see where the time goes.
      execArgv: [
        ...(tsx ? ['--import', 'tsx'] : []),
        ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
      ],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    return new Child(child);
  }

  /** The next message of `type`, within `timeoutMs`. */
  next<T>(type: string, timeoutMs = 60_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.process.off('message', onMessage);
        this.process.off('exit', onExit);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no "${type}" message within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (message: { type: string }) => {
        if (message.type !== type) return;
        done();
        resolve(message as T);
      };
      const onExit = (code: number | null) => {
        done();
        reject(new Error(`child exited (${code}) before "${type}"`));
      };
      this.process.on('message', onMessage);
      this.process.on('exit', onExit);
    });
  }

  async ask<T>(message: object, answerType: string, timeoutMs?: number): Promise<T> {
    const answer = this.next<T>(answerType, timeoutMs);
    this.process.send(message);
    return answer;
  }

  usage(): Promise<Usage> {
    return this.ask<Usage>({ type: 'usage' }, 'usage');
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.process.exitCode !== null) return resolve();
      this.process.once('exit', () => resolve());
      this.process.send({ type: 'stop' });
      setTimeout(() => this.process.kill('SIGKILL'), 5000).unref();
    });
  }
}
