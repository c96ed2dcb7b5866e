import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { apiRequestsOf, listen, seedVideoAsk, type Listening } from '../helpers/proxy-harness';

const ROOT = resolve(__dirname, '../..');

/**
 * A client generated from `/openapi.json` the way a team would (openapi-typescript for the types,
 * openapi-fetch for the calls), compiled with `tsc --strict` and run against a running Latchkey.
 * It calls the proxy with a multi-segment path and a query, with the path and query serializers
 * the document's proxy operation describes; and, as the document warns, openapi-fetch's default
 * encodes the path's `/` as `%2F`, which the proxy refuses.
 */
const PROGRAM = `
import createClient from 'openapi-fetch';
import type { paths } from './schema';

// What the document's proxy operation says to pass to openapi-fetch.
const pathSerializer = (p: string, params: Record<string, unknown>) =>
  p.replace(/\\{([^}]+)\\}/g, (_: string, n: string) =>
    n === 'path' ? String(params.path).split('/').map(encodeURIComponent).join('/') : encodeURIComponent(String(params[n])),
  );

async function main(): Promise<void> {
  const sent: string[] = [];
  const options = {
    baseUrl: process.env.LATCHKEY_URL!,
    headers: { Authorization: \`Bearer \${process.env.LATCHKEY_API_KEY!}\` },
    fetch: (request: Request) => {
      sent.push(new URL(request.url).pathname + new URL(request.url).search);
      return fetch(request);
    },
  };
  const documented = createClient<paths>({ ...options, pathSerializer, querySerializer: { object: { style: 'form', explode: true } } });
  const call = {
    params: {
      path: { provider: 'videoask', path: 'echo/a/b' },
      query: { query: { x: '1' } },
      header: { 'Connection-Id': 'generated' },
    },
    parseAs: 'json' as const,
  };
  const ok = await documented.GET('/proxy/{provider}/{path}', call);
  const plain = await createClient<paths>(options).GET('/proxy/{provider}/{path}', call);
  const connection = await documented.GET('/connections/{provider}/{connectionId}', {
    params: { path: { provider: 'videoask', connectionId: 'generated' } },
  });
  const status: string | undefined = connection.data?.status;
  // The second release's routes, typed from the document: an import, then the events it caused.
  const imported = await documented.PUT('/connections/{provider}/{connectionId}', {
    params: { path: { provider: 'videoask', connectionId: 'imported' } },
    body: { refresh_token: 'rt_generated' },
  });
  const events = await documented.GET('/connections/{provider}/{connectionId}/events', {
    params: { path: { provider: 'videoask', connectionId: 'imported' }, query: { limit: 5 } },
  });
  const feed = await documented.GET('/events', { params: { query: { provider: 'videoask', type: 'connection.created' } } });
  const types: string[] | undefined = events.data?.events.map((e) => e.type);
  const feedIds: string[] | undefined = feed.data?.events.map((e) => e.connection_id);
  console.log(
    JSON.stringify({
      sent,
      ok: { status: ok.response.status, data: ok.data },
      plain: { status: plain.response.status, error: plain.response.headers.get('latchkey-error') },
      connection: { status: connection.response.status, connectionStatus: status },
      imported: { status: imported.response.status, connectionId: imported.data?.connection_id },
      events: { status: events.response.status, types },
      feed: { status: feed.response.status, connectionIds: feedIds },
    }),
  );
}
void main();
`;

describe('a client generated from the OpenAPI document (openapi-typescript + openapi-fetch)', () => {
  let h: Harness;
  let server: Listening;
  let dir: string;

  beforeAll(async () => {
    h = await startHarness();
    server = await listen(h.app);
    // Inside the repository, so that openapi-fetch and typescript resolve from its node_modules.
    mkdirSync(join(ROOT, 'test-output'), { recursive: true });
    dir = mkdtempSync(join(ROOT, 'test-output', 'openapi-client-'));
  });
  afterAll(async () => {
    await server.close();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('calls /proxy/<provider>/echo/a/b?x=1 through the documented serializers, imports a connection and reads its events, compiled with tsc --strict', async () => {
    await seedVideoAsk(h, 'generated');
    const document = await (await fetch(`${server.url}/openapi.json`)).text();
    writeFileSync(join(dir, 'openapi.json'), document);
    const generate = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules/openapi-typescript/bin/cli.js'), 'openapi.json', '-o', 'schema.d.ts'],
      { cwd: dir, encoding: 'utf8', timeout: 60_000 },
    );
    expect([generate.status, generate.stderr.includes('✘') ? generate.stderr : '']).toEqual([0, '']);

    writeFileSync(join(dir, 'main.ts'), PROGRAM);
    const tsc = spawnSync(
      process.execPath,
      [
        join(ROOT, 'node_modules/typescript/bin/tsc'),
        '--strict',
        '--target',
        'es2022',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--lib',
        'es2022,dom',
        '--types',
        'node',
        '--typeRoots',
        join(ROOT, 'node_modules/@types'),
        '--skipLibCheck',
        '--outDir',
        'out',
        'main.ts',
      ],
      { cwd: dir, encoding: 'utf8', timeout: 120_000 },
    );
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);

    // Asynchronously: the Latchkey it calls runs in this process.
    const run = await promisify(execFile)(process.execPath, [join(dir, 'out', 'main.js')], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, LATCHKEY_URL: server.url, LATCHKEY_API_KEY: TEST_API_KEY },
    });
    expect(run.stderr).toBe('');
    const result = JSON.parse(run.stdout) as {
      sent: string[];
      ok: { status: number; data: { method: string; path: string; query: Record<string, string> } };
      plain: { status: number; error: string | null };
      connection: { status: number; connectionStatus: string };
      imported: { status: number; connectionId: string };
      events: { status: number; types: string[] };
      feed: { status: number; connectionIds: string[] };
    };
    expect(result.sent[0]).toBe('/proxy/videoask/echo/a/b?x=1');
    expect(result.ok).toEqual({
      status: 200,
      data: expect.objectContaining({ method: 'GET', path: '/echo/a/b', query: { x: '1' } }),
    });
    expect(apiRequestsOf(h).map((r) => r.url)).toContain('/echo/a/b?x=1');
    // openapi-fetch's own default: the path parameter's `/` encoded, and refused.
    expect(result.sent[1]).toBe('/proxy/videoask/echo%2Fa%2Fb?query[x]=1');
    expect(result.plain).toEqual({ status: 400, error: 'invalid_request' });
    expect(result.connection).toEqual({ status: 200, connectionStatus: 'active' });
    expect(result.imported).toEqual({ status: 201, connectionId: 'imported' });
    expect(result.events).toEqual({ status: 200, types: ['connection.created'] });
    expect(result.feed.status).toBe(200);
    expect(result.feed.connectionIds).toContain('imported');
  }, 180_000);
});
