#!/usr/bin/env node
'use strict';
/**
 * The `latchkey` command (`npx latchkey init` in a checkout, `npm run setup`). In a checkout it
 * runs the TypeScript source through tsx, a dev dependency, so it never runs a stale build; where
 * there is no source or no tsx (a built and pruned install, the image) it runs dist/tools/cli.js.
 */
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const source = path.join(root, 'src', 'tools', 'cli.ts');
const built = path.join(root, 'dist', 'tools', 'cli.js');

function resolveTsx() {
  try {
    return require.resolve('tsx/cjs/api', { paths: [root] });
  } catch {
    return undefined;
  }
}

function loadCli() {
  const tsx = existsSync(source) ? resolveTsx() : undefined;
  if (tsx) {
    require(tsx).register();
    return require(source);
  }
  if (existsSync(built)) return require(built);
  process.stderr.write(
    'latchkey: neither src/tools/cli.ts (with tsx installed) nor dist/tools/cli.js is here; run npm ci, or npm run build.\n',
  );
  process.exit(1);
}

loadCli()
  .run(process.argv.slice(2), { out: process.stdout, err: process.stderr, cwd: process.cwd() })
  .then(
    (code) => (process.exitCode = code),
    (err) => {
      process.stderr.write(`latchkey: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
