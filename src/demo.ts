import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { parse } from 'dotenv';
import { DEMO_API_KEY, resolveDemoEnv, type DemoEnv } from './demo/demo-env';
import { demoProviderSources } from './sandbox/provider-entry';
import { createSandbox } from './sandbox/sandbox';

/**
 * `npm run demo`: the sandbox provider and Latchkey together, VideoAsk pointed at the sandbox
 * through a provider override. Which values it takes from the environment and `.env`, and
 * which it decides itself, is described in src/demo/demo-env.ts; the banner names the source of
 * each. The environment is read before anything loads `.env` into it (server.ts does, through
 * dotenv), so the two can be told apart: server.ts is imported only after that.
 */
async function demo(): Promise<void> {
  const environment = { ...process.env };
  const dotenvPath = resolve(environment.DOTENV_CONFIG_PATH || '.env');
  const resolved = resolveDemoEnv({ environment, dotenv: readDotenv(dotenvPath), freePort: await freePort() });

  const sandbox = createSandbox({
    clientId: 'sandbox-client',
    clientSecret: 'sandbox-secret',
    accessTokenTtlSeconds: resolved.sandboxAccessTokenTtlSeconds,
  });
  const sandboxServer = await sandbox
    .listen(resolved.sandboxPort, '127.0.0.1')
    .catch(
      explainListenError(`the sandbox provider cannot listen on 127.0.0.1:${resolved.sandboxPort}`, 'SANDBOX_PORT'),
    );
  const { main } = await import('./server');
  const latchkey = await main({ env: resolved.env, providerSources: demoProviderSources(sandboxServer.url) }).catch(
    explainListenError(`Latchkey cannot listen on port ${resolved.port}`, 'PORT'),
  );
  process.once('exit', () => void sandboxServer.close());
  process.stdout.write(banner(resolved, sandboxServer.url, latchkey.config.publicUrl, dotenvPath));
}

function explainListenError(what: string, variable: string): (err: NodeJS.ErrnoException) => never {
  return (err) => {
    if (err.code === 'EADDRINUSE' || err.code === 'EACCES') {
      throw new Error(`${what} (${err.code}); choose another with ${variable}=…`);
    }
    throw err;
  };
}

function readDotenv(path: string): Record<string, string> {
  try {
    return parse(readFileSync(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
}

/** A free port, for PORT=0 (the public URL must name the port before Latchkey listens). */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function banner(demoEnv: DemoEnv, sandboxUrl: string, publicUrl: string, dotenvPath: string): string {
  const width = Math.max(...demoEnv.settings.map((s) => s.name.length)) + 2;
  const valueWidth = Math.max(...demoEnv.settings.map((s) => s.shown.length)) + 2;
  const lines = [
    '',
    `  Latchkey demo: open ${publicUrl}/ and click "Connect VideoAsk".`,
    `  Sandbox provider (VideoAsk's stand-in): ${sandboxUrl}`,
    '',
  ];
  if (demoEnv.printableApiKey) {
    lines.push(
      `  Service API key for this demo: ${demoEnv.printableApiKey}`,
      `  Try: curl -H 'Authorization: Bearer ${demoEnv.printableApiKey}' ${publicUrl}/connections`,
    );
  } else {
    const keys = demoEnv.apiKeyCount === 1 ? 'the key' : `one of the ${demoEnv.apiKeyCount} keys`;
    lines.push(
      `  Service API key: ${keys} in CONNECTOR_API_KEYS (from ${demoEnv.apiKeySource}); ${DEMO_API_KEY} is off.`,
      `  Try: curl -H "Authorization: Bearer $KEY" ${publicUrl}/connections`,
    );
  }
  lines.push('', '  Where each value comes from (the environment, then .env, then the demo):');
  for (const s of demoEnv.settings) {
    lines.push(`    ${s.name.padEnd(width)}${s.shown.padEnd(valueWidth)}${s.source}${s.note ? `: ${s.note}` : ''}`);
  }
  if (demoEnv.passedThrough.environment.length) {
    lines.push(`    ${'environment'.padEnd(width)}${demoEnv.passedThrough.environment.join(', ')}`);
  }
  if (demoEnv.passedThrough.dotenv.length) {
    lines.push(`    ${'.env'.padEnd(width)}${demoEnv.passedThrough.dotenv.join(', ')}`);
  }
  if (demoEnv.ignored.length) {
    lines.push('', `  Ignored (.env is ${dotenvPath}):`);
    for (const i of demoEnv.ignored) {
      lines.push(`    ${i.name} from ${i.source}${i.value === undefined ? '' : ` (${i.value})`}: ${i.why}`);
    }
  }
  lines.push('');
  return `${lines.join('\n')}\n`;
}

demo().catch((err) => {
  process.stderr.write(`Demo failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
