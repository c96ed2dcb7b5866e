import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { routeRedisWarnings } from '../../src/store/redis-client';

/** A module that lives where ioredis does, and warns the way ioredis does. */
function fakeIoredis(dir: string): { warn: (...args: unknown[]) => void; error: (...args: unknown[]) => void } {
  const file = join(dir, 'node_modules', 'ioredis', 'built', 'fake.js');
  mkdirSync(join(dir, 'node_modules', 'ioredis', 'built'), { recursive: true });
  writeFileSync(file, 'exports.warn = (...a) => console.warn(...a);\nexports.error = (...a) => console.error(...a);\n');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as ReturnType<typeof fakeIoredis>;
}

describe("routing ioredis's console warnings", () => {
  let dir: string;
  const saved = { warn: console.warn, error: console.error };
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ioredis-warn-'))));
  afterEach(() => {
    console.warn = saved.warn;
    console.error = saved.error;
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends what ioredis prints to the logger at warn, as text without argument objects', () => {
    const warnings: Array<[unknown, string]> = [];
    const stop = routeRedisWarnings({
      warn: ((fields: unknown, msg: string) => warnings.push([fields, msg])) as never,
    });
    const ioredis = fakeIoredis(dir);
    ioredis.warn('[WARN] Redis server does not require a password, but a password was supplied.');
    ioredis.error('[ioredis] Unhandled error event:', new Error('ECONNREFUSED'), {
      command: { name: 'set', args: ['latchkey:conn:x', 'canary-sealed-value'] },
    });
    stop();
    expect(warnings).toEqual([
      [{ source: 'ioredis' }, 'Redis server does not require a password, but a password was supplied.'],
      [{ source: 'ioredis' }, 'Unhandled error event: ECONNREFUSED'],
    ]);
  });

  it("leaves everyone else's console output alone, and stops when told", () => {
    const printed: unknown[][] = [];
    console.warn = (...args: unknown[]) => printed.push(args);
    const warnings: string[] = [];
    const stop = routeRedisWarnings({ warn: ((_f: unknown, msg: string) => warnings.push(msg)) as never });
    console.warn('from the app', 1);
    stop();
    fakeIoredis(dir).warn('[WARN] after stop');
    expect(printed).toEqual([['from the app', 1], ['[WARN] after stop']]);
    expect(warnings).toEqual([]);
  });
});
