import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import supertest from 'supertest';
import { buildOpenApiDocument } from '../../src/http/openapi';
import { PUBLIC_URL, startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { listen, seedVideoAsk, type Listening } from '../helpers/proxy-harness';
import { waitUntil } from '../helpers/latchkey-process';

type Json = Record<string, unknown>;
const doc = buildOpenApiDocument({ publicUrl: PUBLIC_URL }) as unknown as Json & {
  paths: Record<string, Json>;
  components: { schemas: Record<string, Json>; responses: Record<string, Json> };
};
const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'] as const;

function resolve<T = Json>(node: Json): T {
  const target = node.$ref as string | undefined;
  if (!target) return node as T;
  const found = target
    .replace(/^#\//, '')
    .split('/')
    .reduce<unknown>((at, key) => (at as Json | undefined)?.[key], doc);
  if (!found) throw new Error(`unresolved $ref ${target}`);
  return resolve(found as Json);
}

/** The subset of JSON Schema the document uses; returns the problems found. */
function check(value: unknown, schema: Json, at = '$'): string[] {
  const s = resolve(schema);
  if ('const' in s) return value === s.const ? [] : [`${at}: expected ${String(s.const)}`];
  if (s.enum && !(s.enum as unknown[]).includes(value))
    return [`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`];
  if (s.anyOf) {
    const fits = (s.anyOf as Json[]).some((option) => check(value, option, at).length === 0);
    return fits ? [] : [`${at}: fits none of anyOf`];
  }
  if (s.type) {
    const types = ([] as unknown[]).concat(s.type);
    const actual =
      value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
    if (!types.includes(actual) && !(actual === 'integer' && types.includes('number')))
      return [`${at}: expected ${types.join('|')}, got ${actual}`];
  }
  const problems: string[] = [];
  if (typeof value === 'string') {
    if (s.pattern && !new RegExp(s.pattern as string).test(value))
      problems.push(`${at}: does not match ${String(s.pattern)}`);
    if (s.format === 'date-time' && Number.isNaN(Date.parse(value))) problems.push(`${at}: not a date-time`);
  }
  if (Array.isArray(value) && s.items)
    value.forEach((v, i) => problems.push(...check(v, s.items as Json, `${at}[${i}]`)));
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const obj = value as Json;
    for (const key of (s.required as string[] | undefined) ?? [])
      if (!(key in obj)) problems.push(`${at}: missing ${key}`);
    const props = (s.properties as Record<string, Json> | undefined) ?? {};
    for (const [key, v] of Object.entries(obj)) {
      if (props[key]) problems.push(...check(v, props[key], `${at}.${key}`));
      else if (s.additionalProperties === false) problems.push(`${at}: unexpected ${key}`);
      else if (s.additionalProperties && typeof s.additionalProperties === 'object')
        problems.push(...check(v, s.additionalProperties as Json, `${at}.${key}`));
    }
  }
  return problems;
}

interface Operation {
  path: string;
  method: (typeof METHODS)[number];
  op: Json & { responses: Record<string, Json>; security?: unknown[] };
  parameters: Json[];
}

function operations(): Operation[] {
  const list: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method] as Operation['op'] | undefined;
      if (op)
        list.push({
          path,
          method,
          op,
          parameters: [...((item.parameters as Json[]) ?? []), ...((op.parameters as Json[]) ?? [])],
        });
    }
  }
  return list;
}

/** A parameter's example: on the parameter, or on its schema (where the zod schemas put it). */
const exampleOf = (p: Json): unknown => p.example ?? (p.schema as Json | undefined)?.example;

/** The documented call of an operation, with its own examples: path, query and header parameters, body. */
function requestOf({ path, method, op, parameters }: Operation, apiKey?: string): supertest.Test {
  let url = path;
  const query: Record<string, string> = {};
  const headers: Record<string, string> = {};
  for (const p of parameters.map((x) => resolve(x))) {
    const example = exampleOf(p);
    if (example === undefined) {
      expect([p.name, p.required]).toEqual([p.name, false]); // only optional parameters may go without one
      continue;
    }
    if (p.in === 'path') url = url.replace(`{${String(p.name)}}`, String(example));
    else if (p.in === 'query') query[String(p.name)] = String(example);
    else if (p.in === 'header') headers[String(p.name)] = String(example);
  }
  let req = supertest(h.app)[method](url).query(query).set(headers);
  if (apiKey) req = req.set('Authorization', `Bearer ${apiKey}`);
  // The body's example: on the media type, or on its (possibly referenced) schema.
  const media = ((op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined)?.[
    'application/json'
  ];
  const example = media?.example ?? (media?.schema ? resolve(media.schema as Json).example : undefined);
  return example === undefined ? req : req.send(example as object);
}

const needsKeyOf = (op: Operation['op']) => op.security === undefined || op.security.length > 0;

/** The documented response of an answer, or undefined; Latchkey's own errors only where an error response is listed. */
function documentedResponse(op: Operation['op'], status: number, latchkeyError: string | undefined): Json | undefined {
  const listed = op.responses[String(status)];
  const isErrorResponse =
    typeof listed?.$ref === 'string' && /^#\/components\/responses\/(E|Page)\d+$/.test(listed.$ref as string);
  if (latchkeyError) return isErrorResponse ? listed : undefined;
  return isErrorResponse ? op.responses.default : (listed ?? op.responses.default);
}

function expectDocumented({ op, method }: Operation, res: supertest.Response): void {
  const latchkeyError = res.headers['latchkey-error'] as string | undefined;
  const documented = documentedResponse(op, res.status, latchkeyError);
  expect([res.status, documented ? 'documented' : 'undocumented']).toEqual([res.status, 'documented']);
  const response = resolve(documented!);
  if (latchkeyError) {
    const allowed =
      (((response.headers as Record<string, Json>)['Latchkey-Error']!.schema as Json).enum as string[]) ?? [];
    expect(allowed).toContain(latchkeyError);
  }
  const schema = ((response.content as Record<string, Json> | undefined)?.['application/json'] as Json | undefined)
    ?.schema as Json | undefined;
  // A HEAD answer is the GET answer's headers without its body.
  if (schema && method !== 'head') expect(check(res.body, schema)).toEqual([]);
}

let h: Harness;
let dir: string;
/** A `full` key limited to another provider than the examples' (videoask). */
const OTHER_PROVIDER_KEY = 'openapi-webinargeek-only-0123456789';

/**
 * The OpenAPI document is the truth about the service API: every documented operation exists
 * and, called with the document's own examples, answers a status the document lists, with a
 * body of the documented shape and, for Latchkey's errors, a documented code.
 */
describe('OpenAPI document', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-openapi-'));
    const file = join(dir, 'api-keys.json');
    const sha256 = createHash('sha256').update(OTHER_PROVIDER_KEY).digest('hex');
    writeFileSync(
      file,
      JSON.stringify([{ name: 'webinargeek-only', sha256, access: 'full', providers: ['webinargeek'] }]),
    );
    h = await startHarness({ env: { API_KEYS_FILE: file } });
  });
  afterAll(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is served at /openapi.json without an API key, as OpenAPI 3.1, with PUBLIC_URL as its server', async () => {
    const res = await supertest(h.app).get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual(JSON.parse(JSON.stringify(doc)));
    expect(res.body.openapi).toBe('3.1.0');
    expect(res.body.servers).toEqual([expect.objectContaining({ url: PUBLIC_URL })]);
  });

  it('documents every route of the contract’s service API and operations that this server serves', () => {
    const documented = operations().map((o) => `${o.method.toUpperCase()} ${o.path}`);
    expect(documented).toEqual(
      expect.arrayContaining([
        'POST /connect-sessions',
        'GET /connections',
        'GET /connections/{provider}/{connectionId}',
        'PATCH /connections/{provider}/{connectionId}',
        'PUT /connections/{provider}/{connectionId}',
        'DELETE /connections/{provider}/{connectionId}',
        'GET /connections/{provider}/{connectionId}/events',
        'GET /events',
        'POST /connections/{provider}/{connectionId}/refresh',
        'GET /connections/{provider}/{connectionId}/token',
        'GET /providers',
        ...['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].map((m) => `${m} /proxy/{provider}/{path}`),
        'GET /auth/{provider}',
        'GET /healthz',
        'GET /readyz',
        'GET /metrics',
      ]),
    );
  });

  it('documents 403 forbidden on every route behind the API key, and 500 on every service route', () => {
    for (const { path, method, op } of operations().filter((o) => needsKeyOf(o.op))) {
      expect([method, path, Object.keys(op.responses)]).toEqual([
        method,
        path,
        expect.arrayContaining(['401', '403', '429', '500', '503']),
      ]);
    }
  });

  it('documents 409 credential_unreadable and reauth_required, and the connect link’s 410 link_expired', () => {
    const e409 = resolve<Json>({ $ref: '#/components/responses/E409' });
    expect(((e409.headers as Record<string, Json>)['Latchkey-Error']!.schema as Json).enum).toEqual(
      expect.arrayContaining(['reauth_required', 'credential_unreadable']),
    );
    const link = (doc.paths['/auth/{provider}']!.get as Operation['op']).responses;
    const page410 = resolve<Json>(link['410']!);
    expect(((page410.headers as Record<string, Json>)['Latchkey-Error']!.schema as Json).enum).toEqual([
      'link_expired',
    ]);
    const with409 = operations().filter((o) => '409' in o.op.responses);
    expect(with409.map((o) => `${o.method.toUpperCase()} ${o.path}`)).toEqual(
      expect.arrayContaining([
        'POST /connections/{provider}/{connectionId}/refresh',
        'GET /connections/{provider}/{connectionId}/token',
        'GET /proxy/{provider}/{path}',
      ]),
    );
  });

  it.each(operations().map((o) => [`${o.method.toUpperCase()} ${o.path}`, o] as const))(
    '%s exists and answers as documented',
    async (_name, operation) => {
      const { path, op } = operation;
      h.sandbox.reset();
      await seedVideoAsk(h, 'default');
      const needsKey = needsKeyOf(op);
      const res = await requestOf(operation, needsKey ? TEST_API_KEY : undefined);

      const latchkeyError = res.headers['latchkey-error'] as string | undefined;
      expect(latchkeyError).not.toBe('not_found');
      // The examples describe a valid call: it succeeds (a proxied call gets the provider's own answer).
      expect([res.status, latchkeyError]).toEqual([res.status, undefined]);
      // A success, or the redirect the operation documents (the connect link's to the provider).
      if (!path.startsWith('/proxy/')) expect(res.status).toBeLessThan(op.responses['302'] ? 400 : 300);
      expectDocumented(operation, res);

      if (needsKey) {
        const anonymous = await requestOf(operation);
        expect(anonymous.status).toBe(401);
        expectDocumented(operation, anonymous);
      }
    },
  );

  it.each(
    operations()
      .filter((o) => needsKeyOf(o.op) && o.path !== '/connections' && o.path !== '/providers')
      .map((o) => [`${o.method.toUpperCase()} ${o.path}`, o] as const),
  )('%s answers a key limited to another provider with the documented 403 forbidden', async (_name, operation) => {
    const res = await requestOf(operation, OTHER_PROVIDER_KEY);
    expect([res.status, res.headers['latchkey-error']]).toEqual([403, 'forbidden']);
    expectDocumented(operation, res);
  });
});

/**
 * The document's `webhooks` describe what Latchkey really POSTs: a delivery, caught by a local
 * receiver, has a body of the documented schema and every documented header, matching its
 * pattern (with two secrets, as during a rotation: two signatures per signature header).
 */
describe('OpenAPI document: the webhook', () => {
  const webhook = (doc as unknown as { webhooks: Record<string, { post: Operation['op'] }> }).webhooks;
  const received: Array<{ body: unknown; headers: Record<string, string | string[] | undefined> }> = [];
  let receiver: Listening;
  let hooked: Harness;

  beforeAll(async () => {
    receiver = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ body: JSON.parse(Buffer.concat(chunks).toString()), headers: req.headers });
        res.writeHead(204).end();
      });
    });
    hooked = await startHarness({
      env: { WEBHOOK_URL: `${receiver.url}/hook`, WEBHOOK_SECRET: 'openapi-secret-one,openapi-secret-two' },
    });
  });
  afterAll(async () => {
    await hooked.close();
    await receiver.close();
  });

  it('is documented as the POST of one connection event, with the signature headers', () => {
    expect(Object.keys(webhook)).toEqual(['connectionEvent']);
    const names = ((webhook.connectionEvent!.post.parameters as Json[]) ?? []).map((p) => [p.in, p.name]);
    expect(names).toEqual(
      expect.arrayContaining(
        ['Latchkey-Signature', 'webhook-id', 'webhook-timestamp', 'webhook-signature'].map((n) => ['header', n]),
      ),
    );
  });

  it('matches a real delivery: its body and every documented header', async () => {
    const put = await supertest(hooked.app)
      .put('/connections/videoask/hooked')
      .set('Authorization', `Bearer ${TEST_API_KEY}`)
      .send({ refresh_token: 'rt_hooked' });
    expect(put.status).toBe(201);
    await waitUntil(() => received.length > 0);

    const { post } = webhook.connectionEvent!;
    const [delivery] = received;
    const body = resolve<Json>((post.requestBody as Json).content as Json)['application/json'] as Json;
    expect(check(delivery!.body, body.schema as Json)).toEqual([]);
    expect(delivery!.body).toMatchObject({ type: 'connection.created', connection_id: 'hooked' });
    for (const parameter of post.parameters as Json[]) {
      const value = delivery!.headers[String(parameter.name).toLowerCase()];
      expect([parameter.name, typeof value]).toEqual([parameter.name, 'string']);
      expect([parameter.name, check(value, parameter.schema as Json)]).toEqual([parameter.name, []]);
    }
    // One signature per secret in each signature header.
    expect(String(delivery!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(String(delivery!.headers['latchkey-signature']).split(' ')).toHaveLength(2);
  });
});
