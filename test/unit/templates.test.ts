import { hostPatternProblem } from '../../src/providers/host-pattern';
import { checkConnectionConfig, readFieldPath } from '../../src/providers/provider-templates';
import { buildProviderRegistry } from '../../src/providers/registry';
import {
  compileHeadersTemplate,
  compileParamsTemplate,
  compileUrlTemplate,
  resolveAuthorizationParams,
  resolveHeaders,
  resolveProviderUrl,
  slotValueProblem,
  TemplateError,
  type UrlTemplate,
} from '../../src/providers/templates';

/** The catalog docs' two templated examples (issue 10, part 9). */
const SUBDOMAIN_API = 'https://{config.subdomain}.example.test/api';
const SITE_API = 'https://api.example.test/t/{metadata.site}/v1';

const url = (template: string, metadata = true): UrlTemplate => compileUrlTemplate(template, { metadata });
const subdomain = (value: string) => resolveProviderUrl(url(SUBDOMAIN_API), { config: { subdomain: value } });
const site = (value: string | number | boolean) => resolveProviderUrl(url(SITE_API), { metadata: { site: value } });

describe('URL templates', () => {
  it('answers a URL without templates exactly as written, whatever the values', () => {
    const plain = url('https://api.videoask.com');
    expect(plain.refs).toEqual([]);
    expect(resolveProviderUrl(plain, {})).toBe('https://api.videoask.com');
    expect(resolveProviderUrl(plain, { config: { subdomain: 'evil.com#' } })).toBe('https://api.videoask.com');
  });

  it('puts a config value in the host label and a metadata value in a path segment', () => {
    expect(subdomain('acme')).toBe('https://acme.example.test/api');
    expect(site('site-42')).toBe('https://api.example.test/t/site-42/v1');
    expect(
      resolveProviderUrl(url('https://{config.region}.api.Example.TEST/{config.tenant}/t/{metadata.site}x'), {
        config: { region: 'EU1', tenant: 'Acme Corp' },
        metadata: { site: 7 },
      }),
    ).toBe('https://eu1.api.example.test/Acme%20Corp/t/7x');
  });

  it('compiles once into literal parts, so resolving is a concatenation', () => {
    const compiled = url(SUBDOMAIN_API);
    expect(compiled).toMatchObject({
      source: SUBDOMAIN_API,
      literals: ['https://', '.example.test/api'],
      refs: [{ source: 'config', name: 'subdomain', key: 'config.subdomain' }],
      kinds: ['host'],
    });
  });

  it.each([
    ['evil.com#', 'must be one host label'],
    ['a.b', 'must be one host label'],
    ['x@y', 'must be one host label'],
    ['../', 'must be one host label'],
    ['%2e%2e', 'must be one host label'],
    ['', 'is empty'],
    ['a'.repeat(64), 'must be one host label'],
    ['1234', 'may not be all digits'],
    ['bücher', 'must be one host label'],
    ['acme:8080', 'must be one host label'],
    ['acme\r\n', 'must be one host label'],
  ])('refuses %j in a host label, without building a URL', (value, reason) => {
    expect(subdomain(value)).toEqual({ invalid: 'config.subdomain', reason: expect.stringContaining(reason) });
  });

  it('accepts a 63-character label and hyphens, lower-cased', () => {
    const label = `A${'b'.repeat(61)}-`;
    expect(subdomain(label)).toBe(`https://${label.toLowerCase()}.example.test/api`);
  });

  it('never lets a host value reach another host, even as an IPv4 number', () => {
    const beforeNumericTld = compileUrlTemplate.bind(null, 'https://{config.a}.1.2.3/', { metadata: false });
    expect(beforeNumericTld).toThrow(TemplateError);
    expect(subdomain('0x7f')).toBe('https://0x7f.example.test/api');
    for (const value of ['evil.com#', 'a.b', 'x@y', '0x7f.0.0.1']) {
      const built = subdomain(value);
      if (typeof built === 'string') expect(new URL(built).hostname.endsWith('.example.test')).toBe(true);
    }
  });

  it('encodes a path value as one segment: a/b becomes a%2Fb, unicode its UTF-8 escapes', () => {
    expect(site('a/b')).toBe('https://api.example.test/t/a%2Fb/v1');
    expect(site('évènement ✓')).toBe('https://api.example.test/t/%C3%A9v%C3%A8nement%20%E2%9C%93/v1');
    expect(site('x@y')).toBe('https://api.example.test/t/x%40y/v1');
    expect(site('evil.com#')).toBe('https://api.example.test/t/evil.com%23/v1');
    expect(site('a?b=c')).toBe('https://api.example.test/t/a%3Fb%3Dc/v1');
    expect(site(true)).toBe('https://api.example.test/t/true/v1');
  });

  it.each([
    ['..', 'dot segment'],
    ['.', 'dot segment'],
    ['../', 'dot segment'],
    ['a/../../admin', 'dot segment'],
    ['a\\..\\b', 'dot segment'],
    ['%2e%2e', 'percent escape'],
    ['%2F', 'percent escape'],
    ['', 'is empty'],
    ['a\r\nb', 'control character'],
    ['a\u0000', 'control character'],
    ['\uff0e\uff0e', 'normalises'],
    ['a\u2215b', 'slash or a backslash'],
    ['\ud800', 'well-formed'],
    ['x'.repeat(1025), 'longer than'],
  ])('refuses %j in a path segment', (value, reason) => {
    expect(site(value)).toEqual({ invalid: 'metadata.site', reason: expect.stringContaining(reason) });
  });

  it('answers { missing } for a value the connection does not have, also for names of Object.prototype', () => {
    expect(resolveProviderUrl(url(SUBDOMAIN_API), {})).toEqual({ missing: 'config.subdomain' });
    expect(resolveProviderUrl(url(SITE_API), { config: { site: 'wrong-bag' } })).toEqual({ missing: 'metadata.site' });
    const proto = url('https://{config.constructor}.example.test/');
    expect(resolveProviderUrl(proto, { config: {} })).toEqual({ missing: 'config.constructor' });
  });

  it.each([
    ['{config.url}', /may not form the whole URL/],
    ['{config.scheme}://api.example.test', /may not form the whole URL or its scheme/],
    ['https://{config.host}/api', /may not form the whole host/],
    ['https://{config.host}.com/api', /"\.com" is not enough/],
    ['https://api.{config.region}/x', /may not form the whole host/],
    ['https://x{config.sub}.example.test', /must be a whole host label/],
    ['https://{metadata.sub}.example.test', /may not choose a host/],
    ['https://api.example.test/?t={config.t}', /may not stand in the query/],
    ['https://api.example.test/#{config.t}', /may not stand in the fragment/],
    ['https://{config.u}:{config.p}@api.example.test/', /may not stand in the user info/],
    ['https://api.example.test/a/{config.t}/../b', /dropped when the URL is normalised/],
    ['http://{config.sub}.example.test', /must be https/],
    ['ftp://api.example.test/{config.t}', /must be https/],
    ['https://api.example.test/{config.t', /is not a template/],
    ['https://api.example.test/{metadata.}', /is not a template/],
  ])('refuses the template %s at start-up', (template, message) => {
    expect(() => url(template)).toThrow(message);
  });

  it('refuses metadata where it is not known yet, and accepts plain http only on loopback', () => {
    expect(() => compileUrlTemplate('https://a.example.test/{metadata.x}', { metadata: false })).toThrow(
      /known only once the connection is made/,
    );
    expect(resolveProviderUrl(url('http://127.0.0.1:4010/t/{metadata.site}'), { metadata: { site: 'a' } })).toBe(
      'http://127.0.0.1:4010/t/a',
    );
    expect(() => url('http://api.example.test/')).toThrow('must be https (plain http is allowed only on loopback)');
    expect(() => url('not a url')).toThrow('must be an absolute URL');
  });
});

describe('header templates', () => {
  const headers = compileHeadersTemplate({
    Accept: 'application/json',
    'organization-id': '{metadata.organizationId}',
    'X-Tenant': 'tenant={config.tenant}; v=1',
  });

  it('fills templated headers and keeps the fixed ones', () => {
    expect(resolveHeaders(headers, { config: { tenant: 'acme' }, metadata: { organizationId: 'org_1' } })).toEqual({
      headers: { Accept: 'application/json', 'organization-id': 'org_1', 'X-Tenant': 'tenant=acme; v=1' },
      leftOut: [],
    });
  });

  it('leaves out a header whose value is missing, and says which', () => {
    expect(resolveHeaders(headers, { config: { tenant: 'acme' } })).toEqual({
      headers: { Accept: 'application/json', 'X-Tenant': 'tenant=acme; v=1' },
      leftOut: [{ header: 'organization-id', value: 'metadata.organizationId', problem: 'missing' }],
    });
  });

  it.each([
    ['a\r\nX-Injected: 1', 'control character'],
    ['a\nb', 'control character'],
    ['tab\there', 'control character'],
    ['caf\u00e9', undefined],
    ['\u2713', 'beyond Latin-1'],
    ['', 'is empty'],
  ])('checks %j as a header value', (value, reason) => {
    const resolved = resolveHeaders(headers, { config: { tenant: 'acme' }, metadata: { organizationId: value } });
    if (reason === undefined) {
      expect(resolved.headers['organization-id']).toBe(value);
      return;
    }
    expect(resolved.headers).not.toHaveProperty('organization-id');
    expect(resolved.leftOut).toEqual([
      { header: 'organization-id', value: 'metadata.organizationId', problem: 'invalid', reason: expect.any(String) },
    ]);
    expect(resolved.leftOut[0]?.reason).toContain(reason);
  });

  it('answers a fresh object each time, so a caller may add to it', () => {
    const a = resolveHeaders(headers, {}).headers;
    a.Authorization = 'Bearer x';
    expect(resolveHeaders(headers, {}).headers).toEqual({ Accept: 'application/json' });
  });
});

describe('authorization parameter templates', () => {
  const params = compileParamsTemplate({
    audience: 'https://{config.tenant}.example.test/',
    claims: '{"id_token":{"email":null}}',
  });

  it('fills parameters, leaving braces that are not templates alone', () => {
    expect(resolveAuthorizationParams(params, { config: { tenant: 'acme' } })).toEqual({
      audience: 'https://acme.example.test/',
      claims: '{"id_token":{"email":null}}',
    });
  });

  it('fails the whole on a missing or unusable value, as a URL does', () => {
    expect(resolveAuthorizationParams(params, {})).toEqual({ missing: 'config.tenant' });
    expect(resolveAuthorizationParams(params, { config: { tenant: 'a\nb' } })).toEqual({
      invalid: 'config.tenant',
      reason: 'holds a control character',
    });
  });
});

describe('slot value rules', () => {
  it('are the same for every caller: the connect form can check a value before it is stored', () => {
    expect(slotValueProblem('host', 'acme')).toBeUndefined();
    expect(slotValueProblem('host', '007')).toBe('may not be all digits');
    expect(slotValueProblem('path', 'a/b')).toBeUndefined();
    expect(slotValueProblem('header', 'x\u0085')).toBe('holds a control character');
    expect(slotValueProblem('param', 'ü ✓')).toBeUndefined();
  });
});

describe('host patterns', () => {
  it.each([
    ['[a-z0-9-]{1,63}', undefined],
    ['[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?', undefined],
    ['acme|globex', undefined],
    ['\\d{1,5}', undefined],
    ['.+', /it has \./],
    ['[^/]{1,10}', /negated class/],
    ['[a-z]+', /more than 63/],
    ['[a-z]*x', /more than 63/],
    ['[a-z]?', /empty string/],
    ['[A-z]{1,5}', /range beyond/],
    ['[a-z_]{1,5}', /outside a host label/],
    ['(?=a)a', /lookarounds/],
    ['(a)\\1', /\\1/],
    ['\\w{1,9}', /\\w/],
    ['a{0}', /empty string/],
  ])('judges %s', (pattern, problem) => {
    const found = hostPatternProblem(pattern);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toMatch(problem);
  });
});

describe('connection config values', () => {
  const registry = buildProviderRegistry({}, [
    {
      source: 'test',
      entries: [
        {
          id: 'zen',
          displayName: 'Zen',
          authMode: 'oauth2',
          authorizationUrl: 'https://{config.subdomain}.zendesk.example/authorize',
          tokenUrl: 'https://{config.subdomain}.zendesk.example/token',
          apiBaseUrl: 'https://{config.subdomain}.zendesk.example/api/{config.locale}',
          connectionConfig: {
            subdomain: { label: 'Subdomain', pattern: '[a-z0-9-]{1,63}' },
            locale: { label: 'Locale', pattern: '[a-z]{2}(/[a-z]{2})?', required: false },
          },
        },
      ],
    },
  ]);
  const zen = registry.require('zen');

  it('accepts values matching their whole pattern and usable in their slots', () => {
    expect(checkConnectionConfig(zen, { subdomain: 'acme', locale: 'en/gb' })).toEqual({
      config: { subdomain: 'acme', locale: 'en/gb' },
      missing: [],
    });
  });

  it('refuses unknown names, wrong types, partial pattern matches and values a slot refuses, naming the field', () => {
    const result = checkConnectionConfig(zen, { subdomain: 'acme.evil', locale: 'en', colour: 'red' });
    expect(result).toEqual({
      problems: [
        { name: 'subdomain', message: 'Subdomain must match [a-z0-9-]{1,63}' },
        { name: 'colour', message: '"colour" is not a connection config value of this provider' },
      ],
    });
    expect(checkConnectionConfig(zen, { subdomain: 7 })).toEqual({
      problems: [{ name: 'subdomain', message: 'Subdomain must be a string' }],
    });
    expect(checkConnectionConfig(zen, { subdomain: '1234' })).toEqual({
      problems: [{ name: 'subdomain', message: 'Subdomain may not be all digits' }],
    });
    expect(checkConnectionConfig(zen, ['acme'])).toEqual({
      problems: [{ name: '', message: 'connection_config must be an object of strings' }],
    });
  });

  it('says which required values are missing; partial leaves them to the form', () => {
    expect(checkConnectionConfig(zen, {})).toEqual({
      problems: [{ name: 'subdomain', message: 'Subdomain is required' }],
    });
    expect(checkConnectionConfig(zen, { subdomain: '' }, { partial: true })).toEqual({
      config: {},
      missing: ['subdomain'],
    });
  });
});

describe('captured fields', () => {
  it('reads own fields and array indexes, and only scalars', () => {
    const answer = { count: 2, results: [{ organization_id: 'org_1' }, { organization_id: 'org_2' }], ok: true };
    expect(readFieldPath(answer, 'results.0.organization_id')).toBe('org_1');
    expect(readFieldPath(answer, 'results.1.organization_id')).toBe('org_2');
    expect(readFieldPath(answer, 'count')).toBe(2);
    expect(readFieldPath(answer, 'ok')).toBe(true);
    expect(readFieldPath(answer, 'results')).toBeUndefined();
    expect(readFieldPath(answer, 'results.01.organization_id')).toBeUndefined();
    expect(readFieldPath(answer, 'results.0.constructor')).toBeUndefined();
    expect(readFieldPath(answer, 'nope.x')).toBeUndefined();
    expect(readFieldPath(null, 'x')).toBeUndefined();
  });
});
