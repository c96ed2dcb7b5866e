/**
 * CLI for the sandbox provider (`npm run sandbox`). Listens on 127.0.0.1:SANDBOX_PORT (default 4010) and reads
 * SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_ACCESS_TOKEN_TTL (seconds), SANDBOX_CLIENT_AUTH
 * (body|basic|any) and SANDBOX_TOKEN_DELAY_MS from the environment.
 */
import { z } from 'zod';

import { SANDBOX_API_KEY } from './api-key-routes';
import { createSandbox, type SandboxOptions } from './sandbox';

const EnvSchema = z.object({
  SANDBOX_PORT: z.coerce.number().int().min(0).max(65535).default(4010),
  SANDBOX_CLIENT_ID: z.string().min(1).default('sandbox-client'),
  SANDBOX_CLIENT_SECRET: z.string().default('sandbox-secret'),
  SANDBOX_ACCESS_TOKEN_TTL: z.coerce.number().min(0).default(3600),
  SANDBOX_CLIENT_AUTH: z.enum(['body', 'basic', 'any']).default('any'),
  SANDBOX_TOKEN_DELAY_MS: z.coerce.number().min(0).default(0),
});

/** Reads the sandbox port and options from environment variables; throws a readable error when invalid. */
export function readSandboxEnv(env: NodeJS.ProcessEnv): { port: number; options: Partial<SandboxOptions> } {
  const blankAsUnset = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = EnvSchema.safeParse(blankAsUnset);
  if (!parsed.success) throw new Error(`Invalid sandbox environment: ${z.prettifyError(parsed.error)}`);
  const config = parsed.data;
  return {
    port: config.SANDBOX_PORT,
    options: {
      clientId: config.SANDBOX_CLIENT_ID,
      clientSecret: config.SANDBOX_CLIENT_SECRET,
      accessTokenTtlSeconds: config.SANDBOX_ACCESS_TOKEN_TTL,
      clientAuth: config.SANDBOX_CLIENT_AUTH,
      tokenDelayMs: config.SANDBOX_TOKEN_DELAY_MS,
    },
  };
}

async function main(): Promise<void> {
  const { port, options } = readSandboxEnv(process.env);
  const server = await createSandbox(options).listen(port, '127.0.0.1');
  console.log(`Sandbox provider listening on ${server.url}`);
  console.log(
    `API-key stand-ins: ${server.url}/webinargeek and ${server.url}/livestorm accept the key ${SANDBOX_API_KEY}`,
  );

  const shutdown = (): void => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
