import 'dotenv/config';
import { main } from './server';
import { createSandbox } from './sandbox/sandbox';
import { videoaskSandboxSource } from './sandbox/provider-entry';

/**
 * `npm run demo`: the sandbox provider and Latchkey together, VideoAsk pointed at the sandbox
 * through a provider override, the in-memory store unless REDIS_URL is set.
 */
async function demo(): Promise<void> {
  const sandbox = createSandbox({ clientId: 'sandbox-client', clientSecret: 'sandbox-secret' });
  const sandboxPort = Number(process.env.SANDBOX_PORT ?? 4010);
  const running = await sandbox.listen(sandboxPort, '127.0.0.1');
  const port = process.env.PORT ?? '3000';
  const env = {
    ...process.env,
    PORT: port,
    PUBLIC_URL: process.env.PUBLIC_URL ?? `http://localhost:${port}`,
    VIDEOASK_CLIENT_ID: 'sandbox-client',
    VIDEOASK_CLIENT_SECRET: 'sandbox-secret',
    CONNECTOR_API_KEYS: process.env.CONNECTOR_API_KEYS ?? 'demo-api-key-change-me',
  };
  const latchkey = await main({ env, providerSources: [videoaskSandboxSource(running.url)] });
  process.once('exit', () => void running.close());
  process.stdout.write(
    [
      '',
      `  Sandbox provider: ${running.url}`,
      `  Latchkey:         ${latchkey.config.publicUrl}`,
      '',
      `  Open ${latchkey.config.publicUrl}/ and click "Connect VideoAsk".`,
      `  Service API key for this demo: ${env.CONNECTOR_API_KEYS === 'demo-api-key-change-me' ? 'demo-api-key-change-me' : '(from CONNECTOR_API_KEYS)'}`,
      `  Try: curl -H 'Authorization: Bearer demo-api-key-change-me' ${latchkey.config.publicUrl}/connections`,
      '',
    ].join('\n'),
  );
}

demo().catch((err) => {
  process.stderr.write(`Demo failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
