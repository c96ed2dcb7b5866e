import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { benchBuild } from './lib/child-process';

/**
 * `npm run bench`: every benchmark in turn, each in its own process so one's load does not
 * colour another's figures. Benchmarks report ratios against a baseline measured in the same
 * run; they are never assertions in the test suite (the machines are shared and noisy).
 */
const benches = ['proxy.ts', 'proxy-outage.ts', 'refresh.ts', 'listing.ts', 'webhooks.ts'];
const only = process.argv.slice(2);
let failed = 0;
// Compiled once for every benchmark's children (see benchBuild).
if (process.env.BENCH_TSX !== '1') benchBuild();
for (const file of benches) {
  if (only.length && !only.some((o) => file.startsWith(o))) continue;
  const path = join(__dirname, file);
  if (!existsSync(path)) {
    process.stdout.write(`\n== ${file}: not present\n`);
    continue;
  }
  process.stdout.write(`\n== bench/${file}\n`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', path], { stdio: 'inherit' });
  if (run.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
