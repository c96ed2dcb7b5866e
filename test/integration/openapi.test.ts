import supertest from 'supertest';
import { OPENAPI_DOCUMENT } from '../../src/http/openapi';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { seedVideoAsk } from '../helpers/proxy-harness';

type Json = Record<string, unknown>;
const doc = OPENAPI_DOCUMENT as unknown as Json & {
  paths: Record<string, Json>;
  components: { schemas: Record<string, Json>; responses: Record<string, Json> };
};
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

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

/**
 * The OpenAPI document is the truth about the service API: every documented operation exists
 * and, called with the document's own examples, answers a status the document lists, with a
 * body of the documented shape and, for Latchkey's errors, a documented code.
 */
describe('OpenAPI document', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h.close());

  it('is served at /openapi.json without an API key, as OpenAPI 3.1', async () => {
    const res = await supertest(h.app).get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual(JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)));
    expect(res.body.openapi).toBe('3.1.0');
  });

  it('documents every route of the contract’s service API and operations', () => {
    const documented = operations().map((o) => `${o.method.toUpperCase()} ${o.path}`);
    expect(documented).toEqual(
      expect.arrayContaining([
        'POST /connect-sessions',
        'GET /connections',
        'GET /connections/{provider}/{connectionId}',
        'DELETE /connections/{provider}/{connectionId}',
        'POST /connections/{provider}/{connectionId}/refresh',
        'GET /connections/{provider}/{connectionId}/token',
        'GET /proxy/{provider}/{path}',
        'POST /proxy/{provider}/{path}',
        'GET /healthz',
        'GET /readyz',
        'GET /metrics',
      ]),
    );
  });

  it.each(operations().map((o) => [`${o.method.toUpperCase()} ${o.path}`, o] as const))(
    '%s exists and answers as documented',
    async (_name, { path, method, op, parameters }) => {
      h.sandbox.reset();
      await seedVideoAsk(h, 'default');
      let url = path;
      const query: Record<string, string> = {};
      const headers: Record<string, string> = {};
      for (const p of parameters.map((x) => resolve(x))) {
        const example = String(p.example);
        if (p.in === 'path') url = url.replace(`{${String(p.name)}}`, example);
        else if (p.in === 'query') query[String(p.name)] = example;
        else if (p.in === 'header') headers[String(p.name)] = example;
      }
      const needsKey = op.security === undefined || op.security.length > 0;
      let req = supertest(h.app)[method](url).query(query).set(headers);
      if (needsKey) req = req.set('Authorization', `Bearer ${TEST_API_KEY}`);
      const example = ((op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined)?.[
        'application/json'
      ]?.example;
      const res = await (example === undefined ? req : req.send(example as object));

      const latchkeyError = res.headers['latchkey-error'] as string | undefined;
      expect(latchkeyError).not.toBe('not_found');
      // The examples describe a valid call: it succeeds (a proxied call gets the provider's own answer).
      expect([res.status, latchkeyError]).toEqual([res.status, undefined]);
      if (!path.startsWith('/proxy/')) expect(res.status).toBeLessThan(300);
      // Without Latchkey-Error the answer is the provider's (proxy) or a success: never one of Latchkey's error responses.
      const listed = op.responses[String(res.status)];
      const isErrorResponse = typeof listed?.$ref === 'string' && listed.$ref.startsWith('#/components/responses/E');
      const documented = latchkeyError
        ? isErrorResponse
          ? listed
          : undefined
        : isErrorResponse
          ? op.responses.default
          : (listed ?? op.responses.default);
      expect([res.status, documented ? 'documented' : 'undocumented']).toEqual([res.status, 'documented']);
      const response = resolve(documented!);
      if (latchkeyError) {
        const allowed =
          (((response.headers as Record<string, Json>)['Latchkey-Error']!.schema as Json).enum as string[]) ?? [];
        expect(allowed).toContain(latchkeyError);
      }
      const schema = ((response.content as Record<string, Json> | undefined)?.['application/json'] as Json | undefined)
        ?.schema as Json | undefined;
      if (schema) expect(check(res.body, schema)).toEqual([]);
      if (needsKey) {
        const anonymous = await supertest(h.app)[method](url).query(query).set(headers);
        expect(anonymous.status).toBe(401);
        expect(op.responses['401']).toBeDefined();
      }
    },
  );
});
