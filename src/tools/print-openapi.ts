import { buildOpenApiDocument } from '../http/openapi';

/**
 * Prints the OpenAPI document that `/openapi.json` serves, for linting and code generators:
 * `tsx src/tools/print-openapi.ts [PUBLIC_URL] > openapi.json`. The server is the PUBLIC_URL given
 * (default: the one in the environment, else `https://latchkey.internal`).
 */
const publicUrl = (process.argv[2] ?? process.env.PUBLIC_URL ?? 'https://latchkey.internal').replace(/\/+$/, '');
process.stdout.write(`${JSON.stringify(buildOpenApiDocument({ publicUrl }), null, 2)}\n`);
