import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../../src/errors';
import {
  buildProviderRegistry,
  ProviderConfigError,
  providerEnvPrefix,
  readProvidersFile,
  type OAuth2Provider,
  type ApiKeyProvider,
  type Provider,
  type ProviderSource,
} from '../../src/providers/registry';

/**
 * The contract's "Provider definition" JSON example, verbatim, with the second release's
 * additions for VideoAsk: `GET /organizations` after connecting, its first organisation sent as
 * `organization-id`.
 */
const CONTRACT_VIDEOASK = {
  id: 'videoask',
  displayName: 'VideoAsk',
  authMode: 'oauth2',
  authorizationUrl: 'https://auth.videoask.com/authorize',
  tokenUrl: 'https://auth.videoask.com/oauth/token',
  revocationUrl: null,
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  scopeSeparator: ' ',
  authorizationParams: { audience: 'https://api.videoask.com/' },
  pkce: false,
  tokenRequest: { bodyFormat: 'form', clientAuth: 'body' },
  issuer: null,
  apiBaseUrl: 'https://api.videoask.com',
  apiHeaders: { 'organization-id': '{metadata.organizationId}' },
  refreshMarginSeconds: 300,
  postConnect: [{ method: 'GET', path: '/organizations', capture: { organizationId: 'results.0.organization_id' } }],
};

/** A built provider's fields as its definition declares them (templated headers included). */
const declared = (p: Provider) =>
  ({ ...p, apiHeaders: p.templates.apiHeaders.declared }) as unknown as Record<string, unknown>;

const CRM = {
  id: 'my-crm',
  displayName: 'My CRM',
  authMode: 'oauth2',
  authorizationUrl: 'https://crm.example.com/oauth/authorize',
  tokenUrl: 'https://crm.example.com/oauth/token',
  scopes: ['contacts.read'],
  apiBaseUrl: 'https://api.crm.example.com/v1',
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-providers-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let fileCount = 0;
/** Writes `content` (JSON-encoded unless a string) to a fresh file and returns its path. */
function writeProvidersFile(content: unknown): string {
  const path = join(dir, `providers-${++fileCount}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const fromFile = (entries: unknown, env: Record<string, string> = {}) =>
  buildProviderRegistry(env, [readProvidersFile(writeProvidersFile(entries))]);

function providerError(build: () => unknown): ProviderConfigError {
  try {
    build();
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderConfigError);
    return err as ProviderConfigError;
  }
  throw new Error('expected a ProviderConfigError');
}

/** The problem a PROVIDERS_FILE entry causes: its message names the file, the entry and the field. */
function fileProblem(entries: unknown): { path: string; err: ProviderConfigError } {
  const path = writeProvidersFile(entries);
  const err = providerError(() => buildProviderRegistry({}, [readProvidersFile(path)]));
  return { path, err };
}

const oauth2 = (p: unknown) => p as OAuth2Provider;

describe('built-in providers', () => {
  const registry = buildProviderRegistry({});

  it('has videoask, livestorm, livestorm-token, webinargeek and interact', () => {
    expect(
      registry
        .list()
        .map((p) => p.id)
        .sort(),
    ).toEqual(['interact', 'livestorm', 'livestorm-token', 'videoask', 'webinargeek']);
  });

  it("describes VideoAsk exactly as the contract's JSON example and its additions", () => {
    const videoask = declared(registry.require('videoask'));
    for (const [field, value] of Object.entries(CONTRACT_VIDEOASK)) {
      expect({ field, value: videoask[field] }).toEqual({ field, value });
    }
  });

  it('sends no templated header before a connection supplies its value', () => {
    const videoask = registry.require('videoask');
    // What a call carries when no connection value is known: organization-id is left out, never sent as text.
    expect(videoask.apiHeaders).toEqual({});
    expect(videoask.templates.apiHeaders.templated.map(([name]) => name)).toEqual(['organization-id']);
  });

  it('describes Livestorm as OAuth2 with PKCE and the JSON:API Accept header', () => {
    const livestorm = oauth2(registry.require('livestorm'));
    expect(livestorm).toMatchObject({
      authMode: 'oauth2',
      authorizationUrl: 'https://app.livestorm.co/oauth/authorize',
      tokenUrl: 'https://app.livestorm.co/oauth/token',
      pkce: true,
      apiBaseUrl: 'https://api.livestorm.co/v1',
      apiHeaders: { Accept: 'application/vnd.api+json' },
    });
  });

  it('describes WebinarGeek as an API key sent in Api-Token, checked on /account, enabled without credentials', () => {
    const webinargeek = registry.requireEnabled('webinargeek') as ApiKeyProvider;
    expect(webinargeek).toMatchObject({
      authMode: 'api_key',
      apiKey: { header: 'Api-Token', format: '{key}', check: { method: 'GET', path: '/account' } },
      apiBaseUrl: 'https://app.webinargeek.com/api/v2',
      enabled: true,
      configured: true,
    });
  });

  it('describes Livestorm (API token) as a raw token in Authorization, checked on /me, beside the OAuth entry', () => {
    expect(registry.requireEnabled('livestorm-token')).toMatchObject({
      authMode: 'api_key',
      apiKey: { header: 'Authorization', format: '{key}', check: { method: 'GET', path: '/me' } },
      apiBaseUrl: 'https://api.livestorm.co/v1',
      apiHeaders: { Accept: 'application/vnd.api+json' },
      displayName: 'Livestorm',
      verified: true,
    });
    expect(registry.require('livestorm').authMode).toBe('oauth2');
  });

  it('gives oauth2 providers a keep-alive of 24 hours unless they say otherwise', () => {
    expect(oauth2(registry.require('videoask')).keepAliveHours).toBe(24);
    const registryWithHalf = fromFile([
      { ...CRM, keepAliveHours: 0.5 },
      { id: 'livestorm', keepAliveHours: 0 },
    ]);
    expect(oauth2(registryWithHalf.require('my-crm')).keepAliveHours).toBe(0.5);
    expect(oauth2(registryWithHalf.require('livestorm')).keepAliveHours).toBe(0);
  });

  it('marks Interact as unverified, and the documented ones as verified', () => {
    expect(registry.require('interact').verified).toBe(false);
    expect(registry.require('videoask').verified).toBe(true);
    expect(registry.require('livestorm').verified).toBe(true);
  });

  it('accepts the contract example itself as a PROVIDERS_FILE entry', () => {
    const videoask = declared(fromFile([CONTRACT_VIDEOASK]).require('videoask'));
    expect(videoask).toMatchObject(CONTRACT_VIDEOASK);
  });
});

describe('credentials from the environment', () => {
  it('enables an oauth2 provider only when both client id and secret are set', () => {
    const sources = (): ProviderSource[] => [readProvidersFile(writeProvidersFile([CRM]))];
    expect(providerEnvPrefix('my-crm')).toBe('MY_CRM');

    const none = buildProviderRegistry({}, sources());
    expect(none.require('my-crm').enabled).toBe(false);
    const idOnly = buildProviderRegistry({ MY_CRM_CLIENT_ID: 'crm-client' }, sources());
    expect(idOnly.require('my-crm').enabled).toBe(false);
    const secretOnly = buildProviderRegistry({ MY_CRM_CLIENT_SECRET: 'crm-secret' }, sources());
    expect(secretOnly.require('my-crm').enabled).toBe(false);
    const dashKept = buildProviderRegistry(
      { 'MY-CRM_CLIENT_ID': 'crm-client', 'MY-CRM_CLIENT_SECRET': 'crm-secret' },
      sources(),
    );
    expect(dashKept.require('my-crm').enabled).toBe(false);

    const both = buildProviderRegistry(
      { MY_CRM_CLIENT_ID: 'crm-client', MY_CRM_CLIENT_SECRET: 'crm-secret' },
      sources(),
    );
    expect(both.require('my-crm')).toMatchObject({ enabled: true, clientId: 'crm-client', clientSecret: 'crm-secret' });
    expect(both.listEnabled().map((p) => p.id)).toEqual(expect.arrayContaining(['my-crm', 'webinargeek']));
    expect(both.listEnabled().map((p) => p.id)).not.toContain('videoask');
  });

  it('treats blank credentials as unset', () => {
    const registry = buildProviderRegistry({ VIDEOASK_CLIENT_ID: 'va-client', VIDEOASK_CLIENT_SECRET: '  ' });
    expect(registry.require('videoask').enabled).toBe(false);
  });

  it('replaces the catalog scopes with <ID>_SCOPES, space separated', () => {
    const registry = fromFile([CRM], {
      MY_CRM_SCOPES: ' contacts.read   deals.write\tnotes ',
      VIDEOASK_SCOPES: 'openid offline_access',
    });
    expect(oauth2(registry.require('my-crm')).scopes).toEqual(['contacts.read', 'deals.write', 'notes']);
    expect(oauth2(registry.require('videoask')).scopes).toEqual(['openid', 'offline_access']);
    expect(oauth2(registry.require('livestorm')).scopes).toEqual(['identity:read', 'events:read']);
  });
});

describe('PROVIDERS_FILE', () => {
  it('adds a provider, with the defaults of the definition, unverified unless it says verified: true', () => {
    const registry = fromFile([CRM, { ...CRM, id: 'vouched-crm', verified: true }]);
    expect(registry.list()).toHaveLength(7);
    expect(oauth2(registry.require('my-crm'))).toMatchObject({
      ...CRM,
      revocationUrl: null,
      scopeSeparator: ' ',
      authorizationParams: {},
      pkce: false,
      tokenRequest: { bodyFormat: 'form', clientAuth: 'body' },
      issuer: null,
      apiHeaders: {},
      refreshMarginSeconds: 300,
      verified: false,
      enabled: false,
      switchedOff: false,
      configured: false,
      connectionConfig: {},
      tokenResponseMetadata: {},
      postConnect: [],
      keepAliveHours: 24,
    });
    expect(registry.require('vouched-crm').verified).toBe(true);
  });

  it('adds an api_key provider', () => {
    const registry = fromFile([
      {
        id: 'key-api',
        displayName: 'Key API',
        authMode: 'api_key',
        apiKey: { header: 'Authorization', format: 'Bearer {key}' },
        apiBaseUrl: 'https://keys.example.com',
      },
    ]);
    expect(registry.requireEnabled('key-api')).toMatchObject({
      authMode: 'api_key',
      apiKey: { header: 'Authorization', format: 'Bearer {key}' },
    });
  });

  it('overrides only the fields a built-in entry names', () => {
    const registry = fromFile([
      { id: 'videoask', tokenUrl: 'https://auth.example.com/oauth/token', tokenRequest: { clientAuth: 'basic' } },
    ]);
    const videoask = oauth2(registry.require('videoask'));
    expect(videoask.tokenUrl).toBe('https://auth.example.com/oauth/token');
    expect(videoask.tokenRequest).toEqual({ bodyFormat: 'form', clientAuth: 'basic' });
    const { tokenUrl: _t, tokenRequest: _r, ...untouched } = CONTRACT_VIDEOASK;
    expect(declared(videoask)).toMatchObject(untouched);
    expect(videoask.verified).toBe(true);
    expect(registry.list()).toHaveLength(5);
  });

  it('points a built-in provider at loopback, as the demo does with the sandbox', () => {
    const registry = fromFile([
      {
        id: 'videoask',
        authorizationUrl: 'http://127.0.0.1:4010/authorize',
        tokenUrl: 'http://localhost:4010/oauth/token',
        apiBaseUrl: 'http://[::1]:4010',
      },
    ]);
    expect(oauth2(registry.require('videoask'))).toMatchObject({
      authorizationUrl: 'http://127.0.0.1:4010/authorize',
      tokenUrl: 'http://localhost:4010/oauth/token',
      apiBaseUrl: 'http://[::1]:4010',
      authorizationParams: { audience: 'https://api.videoask.com/' },
    });
  });

  it('turns a built-in api_key provider into an oauth2 one', () => {
    const registry = fromFile([
      {
        id: 'webinargeek',
        authMode: 'oauth2',
        authorizationUrl: 'https://app.webinargeek.com/oauth/authorize',
        tokenUrl: 'https://app.webinargeek.com/oauth/token',
      },
    ]);
    const webinargeek = registry.require('webinargeek');
    expect(webinargeek).toMatchObject({
      authMode: 'oauth2',
      apiBaseUrl: 'https://app.webinargeek.com/api/v2',
      enabled: false,
    });
    expect(webinargeek).not.toHaveProperty('apiKey');
  });

  it('turns a built-in oauth2 provider into an api_key one', () => {
    const registry = fromFile([{ id: 'interact', authMode: 'api_key', apiKey: { header: 'X-Api-Key' } }]);
    const interact = registry.requireEnabled('interact');
    expect(interact).toMatchObject({
      authMode: 'api_key',
      apiKey: { header: 'X-Api-Key', format: '{key}' },
      verified: false,
    });
    expect(interact).not.toHaveProperty('tokenUrl');
  });

  it('applies several sources in order', () => {
    const registry = buildProviderRegistry({}, [
      { source: 'demo', entries: [{ id: 'videoask', tokenUrl: 'http://127.0.0.1:4010/oauth/token' }] },
      { source: 'PROVIDERS_FILE b.json', entries: [{ id: 'videoask', pkce: true }] },
    ]);
    expect(oauth2(registry.require('videoask'))).toMatchObject({
      tokenUrl: 'http://127.0.0.1:4010/oauth/token',
      pkce: true,
    });
  });
});

describe('PROVIDERS_FILE errors', () => {
  it('refuses unknown fields, naming the file, the entry and the field', () => {
    const { path, err } = fileProblem([{ ...CRM, colour: 'red', tokenRequest: { clientAuth: 'basic', grant: 'x' } }]);
    expect(err.problems).toHaveLength(2);
    expect(err.message).toContain(`${path}: entry 1 ("my-crm"): field "colour": is not a known field`);
    expect(err.message).toContain(`${path}: entry 1 ("my-crm"): field "tokenRequest.grant": is not a known field`);
  });

  it('refuses unknown fields in an override of a built-in', () => {
    const { path, err } = fileProblem([{ id: 'videoask', tokenEndpoint: 'https://auth.example.com/token' }]);
    expect(err.problems).toEqual([
      `PROVIDERS_FILE ${path}: entry 1 ("videoask"): field "tokenEndpoint": is not a known field`,
    ]);
  });

  it('refuses a URL that does not parse', () => {
    const { path, err } = fileProblem([{ ...CRM, tokenUrl: 'crm.example.com/token' }]);
    expect(err.problems).toEqual([
      `PROVIDERS_FILE ${path}: entry 1 ("my-crm"): field "tokenUrl": must be an absolute URL`,
    ]);
  });

  it('refuses plain http outside loopback', () => {
    const { path, err } = fileProblem([
      {
        ...CRM,
        authorizationUrl: 'http://crm.example.com/authorize',
        apiBaseUrl: 'http://localhost.example.com',
        revocationUrl: 'ftp://127.0.0.1/revoke',
      },
    ]);
    expect(err.problems).toHaveLength(3);
    for (const field of ['authorizationUrl', 'apiBaseUrl', 'revocationUrl']) {
      expect(err.problems).toContain(
        `PROVIDERS_FILE ${path}: entry 1 ("my-crm"): field "${field}": must be https (plain http is allowed only on loopback)`,
      );
    }
  });

  it('refuses a bad id', () => {
    const { path, err } = fileProblem([{ ...CRM, id: 'My_CRM' }]);
    expect(err.problems).toEqual([expect.stringContaining(`${path}: entry 1 ("My_CRM"): field "id": must match`)]);
  });

  it('refuses an entry without an id', () => {
    const { id: _id, ...noId } = CRM;
    const { path, err } = fileProblem([noId]);
    expect(err.problems).toEqual([`PROVIDERS_FILE ${path}: entry 1: field "id": is required`]);
  });

  it('refuses an api_key entry without apiKey', () => {
    const { path, err } = fileProblem([
      { id: 'key-api', displayName: 'Key API', authMode: 'api_key', apiBaseUrl: 'https://keys.example.com' },
    ]);
    expect(err.problems).toEqual([expect.stringContaining(`${path}: entry 1 ("key-api"): field "apiKey":`)]);
  });

  it('refuses an apiKey format without {key}', () => {
    const { path, err } = fileProblem([
      {
        id: 'key-api',
        displayName: 'Key API',
        authMode: 'api_key',
        apiKey: { header: 'Api-Token', format: 'Bearer' },
        apiBaseUrl: 'https://keys.example.com',
      },
    ]);
    expect(err.problems).toEqual([
      `PROVIDERS_FILE ${path}: entry 1 ("key-api"): field "apiKey.format": must contain {key}`,
    ]);
  });

  it('refuses an entry without a known authMode', () => {
    const { path, err } = fileProblem([{ ...CRM, authMode: 'saml' }]);
    expect(err.problems).toEqual([expect.stringContaining(`${path}: entry 1 ("my-crm"): field "authMode":`)]);
  });

  it('reports several bad entries at once', () => {
    const { path, err } = fileProblem([
      CRM,
      { ...CRM, id: 'crm-two', tokenUrl: 'http://crm.example.com/token' },
      'not an object',
      { id: 'videoask', colour: 'red' },
      { id: 'key-api', displayName: 'Key API', authMode: 'api_key', apiBaseUrl: 'https://keys.example.com' },
    ]);
    expect(err.problems).toHaveLength(4);
    expect(err.problems).toEqual(
      expect.arrayContaining([
        `PROVIDERS_FILE ${path}: entry 3: must be an object`,
        expect.stringContaining(`${path}: entry 2 ("crm-two"): field "tokenUrl"`),
        expect.stringContaining(`${path}: entry 4 ("videoask"): field "colour"`),
        expect.stringContaining(`${path}: entry 5 ("key-api"): field "apiKey"`),
      ]),
    );
    for (const problem of err.problems) expect(err.message).toContain(problem);
  });

  it('refuses a missing file, naming it', () => {
    const path = join(dir, 'does-not-exist.json');
    const err = providerError(() => readProvidersFile(path));
    expect(err.problems).toEqual([`PROVIDERS_FILE ${path}: cannot be read (ENOENT)`]);
  });

  it('refuses invalid JSON, naming the file', () => {
    const path = writeProvidersFile('[{ "id": "my-crm", }');
    const err = providerError(() => readProvidersFile(path));
    expect(err.problems).toEqual([expect.stringContaining(`PROVIDERS_FILE ${path}: is not valid JSON`)]);
  });

  it('refuses a file that is not an array, naming the file', () => {
    const { path, err } = fileProblem(CRM);
    expect(err.problems).toEqual([`PROVIDERS_FILE ${path}: must be a JSON array of provider definitions`]);
  });
});

describe('lookups', () => {
  const registry = buildProviderRegistry({ VIDEOASK_CLIENT_ID: 'va-client', VIDEOASK_CLIENT_SECRET: 'va-secret' });

  it('answers unknown_provider (404) for an id it does not know', () => {
    expect(registry.get('nope')).toBeUndefined();
    expect(() => registry.require('nope')).toThrow(expect.objectContaining({ code: 'unknown_provider', status: 404 }));
    expect(() => registry.requireEnabled('nope')).toThrow(expect.objectContaining({ code: 'unknown_provider' }));
    expect(() => registry.require('nope')).toThrow(AppError);
  });

  it('answers provider_not_enabled (404) for a provider without credentials', () => {
    expect(() => registry.requireEnabled('livestorm')).toThrow(
      expect.objectContaining({ code: 'provider_not_enabled', status: 404 }),
    );
    expect(() => registry.requireEnabled('livestorm')).toThrow(/LIVESTORM_CLIENT_ID and LIVESTORM_CLIENT_SECRET/);
    expect(registry.require('livestorm').enabled).toBe(false);
  });

  it('returns enabled providers', () => {
    expect(registry.requireEnabled('videoask')).toMatchObject({ id: 'videoask', enabled: true });
    expect(
      registry
        .listEnabled()
        .map((p) => p.id)
        .sort(),
    ).toEqual(['livestorm-token', 'videoask', 'webinargeek']);
  });
});

describe('switching a provider off', () => {
  it('switches off a provider whose definition says enabled: false: gone from the lists, 404 provider_not_enabled', () => {
    const registry = fromFile([{ id: 'webinargeek', enabled: false }]);
    const webinargeek = registry.requireKnown('webinargeek');
    expect(webinargeek).toMatchObject({ switchedOff: true, enabled: false, configured: true });
    expect(() => registry.require('webinargeek')).toThrow(
      expect.objectContaining({ code: 'provider_not_enabled', status: 404 }),
    );
    expect(() => registry.requireEnabled('webinargeek')).toThrow(/switched off.*WEBINARGEEK_ENABLED=false/);
    expect(registry.listEnabled().map((p) => p.id)).not.toContain('webinargeek');
    expect(registry.list().map((p) => p.id)).toContain('webinargeek');
    expect(registry.get('webinargeek')).toBe(webinargeek);
  });

  it('switches off a provider with <ID>_ENABLED=false, also a configured oauth2 one', () => {
    const env = { VIDEOASK_CLIENT_ID: 'va', VIDEOASK_CLIENT_SECRET: 'vs', VIDEOASK_ENABLED: 'false' };
    const registry = buildProviderRegistry(env);
    expect(registry.requireKnown('videoask')).toMatchObject({ switchedOff: true, configured: true, enabled: false });
    expect(() => registry.require('videoask')).toThrow(expect.objectContaining({ code: 'provider_not_enabled' }));
    expect(buildProviderRegistry({ LIVESTORM_TOKEN_ENABLED: '0' }).requireKnown('livestorm-token').switchedOff).toBe(
      true,
    );
  });

  it('reads an empty <ID>_ENABLED as unset, and lets the environment switch a provider back on', () => {
    expect(buildProviderRegistry({ WEBINARGEEK_ENABLED: ' ' }).require('webinargeek').switchedOff).toBe(false);
    const path = writeProvidersFile([{ id: 'webinargeek', enabled: false }]);
    for (const on of ['true', 'TRUE', '1']) {
      const registry = buildProviderRegistry({ WEBINARGEEK_ENABLED: on }, [readProvidersFile(path)]);
      expect(registry.requireEnabled('webinargeek').switchedOff).toBe(false);
    }
  });

  it('refuses an <ID>_ENABLED that is neither true nor false, naming the variable', () => {
    const err = providerError(() => buildProviderRegistry({ WEBINARGEEK_ENABLED: 'maybe' }));
    expect(err.problems).toEqual(['WEBINARGEEK_ENABLED: must be true or false']);
  });

  it('tells an unconfigured provider apart from a switched-off one', () => {
    const registry = buildProviderRegistry({});
    expect(registry.require('livestorm')).toMatchObject({ switchedOff: false, configured: false, enabled: false });
    expect(() => registry.requireEnabled('livestorm')).toThrow(/LIVESTORM_CLIENT_ID and LIVESTORM_CLIENT_SECRET/);
  });
});

/** A provider of its own with a subdomain, for the template checks. */
const ZEN = {
  id: 'zen',
  displayName: 'Zen Desk',
  authMode: 'oauth2',
  authorizationUrl: 'https://{config.subdomain}.zendesk.example/oauth/authorizations/new',
  tokenUrl: 'https://{config.subdomain}.zendesk.example/oauth/tokens',
  apiBaseUrl: 'https://{config.subdomain}.zendesk.example/api/v2',
  connectionConfig: { subdomain: { label: 'Zendesk subdomain', pattern: '[a-z0-9][a-z0-9-]{0,62}' } },
};

describe('connection config, metadata and templates in provider definitions', () => {
  it('accepts a subdomain provider, a path value from the token response and a post-connect capture', () => {
    const registry = fromFile([
      {
        ...ZEN,
        apiBaseUrl: 'https://{config.subdomain}.zendesk.example/api/v2/t/{metadata.site}',
        revocationUrl: 'https://{config.subdomain}.zendesk.example/oauth/revoke/{metadata.site}',
        authorizationParams: { tenant: '{config.subdomain}', claims: '{"id_token":{"email":null}}' },
        apiHeaders: { 'X-Account': 'acct-{metadata.accountId}', Accept: 'application/json' },
        tokenResponseMetadata: { site: 'site.id' },
        postConnect: [{ path: '/me', capture: { accountId: 'user.account_id' } }],
      },
    ]);
    const zen = oauth2(registry.require('zen'));
    expect(zen.connectionConfig).toEqual({
      subdomain: { label: 'Zendesk subdomain', pattern: '[a-z0-9][a-z0-9-]{0,62}', required: true },
    });
    expect(zen.postConnect).toEqual([{ method: 'GET', path: '/me', capture: { accountId: 'user.account_id' } }]);
    expect(zen.apiHeaders).toEqual({ Accept: 'application/json' });
    expect(zen.templates.configSlots.get('subdomain')).toEqual(new Set(['host', 'param']));
    expect(zen.templates.metadataNames).toEqual(new Set(['site', 'accountId']));
  });

  it('accepts apiKey.check and lets an override drop it with check: null', () => {
    const registry = fromFile([{ id: 'webinargeek', apiKey: { check: null } }]);
    expect((registry.require('webinargeek') as ApiKeyProvider).apiKey).toEqual({
      header: 'Api-Token',
      format: '{key}',
      check: null,
    });
  });

  /** Each class of start-up error, naming the file, the entry and the field. */
  const refused: Array<[string, Record<string, unknown>, string, RegExp]> = [
    [
      'an invalid regular expression',
      { ...ZEN, connectionConfig: { subdomain: { label: 'Sub', pattern: '[a-z' } } },
      'connectionConfig.subdomain.pattern',
      /is not a valid regular expression/,
    ],
    [
      'a config name outside the name pattern',
      { ...CRM, connectionConfig: { 'sub-domain': { label: 'Sub', pattern: '[a-z]+' } } },
      'connectionConfig.sub-domain',
      /is not a valid name: names match/,
    ],
    [
      'an unknown config name',
      { ...ZEN, apiBaseUrl: 'https://{config.tenant}.zendesk.example/api' },
      'apiBaseUrl',
      /\{config\.tenant\} is not declared in connectionConfig/,
    ],
    [
      'an unknown metadata name',
      { ...CRM, apiHeaders: { 'X-Site': '{metadata.site}' } },
      'apiHeaders.X-Site',
      /\{metadata\.site\} is captured neither by tokenResponseMetadata nor by a postConnect call/,
    ],
    [
      'a host template from metadata',
      { ...CRM, apiBaseUrl: 'https://{metadata.site}.crm.example.com', tokenResponseMetadata: { site: 'site' } },
      'apiBaseUrl',
      /may not choose a host: a host label comes only from \{config\.\*\}/,
    ],
    [
      'a host pattern that admits a dot',
      { ...ZEN, connectionConfig: { subdomain: { label: 'Sub', pattern: '[a-z.]{1,20}' } } },
      'connectionConfig.subdomain.pattern',
      /is used in a URL host, so it must admit only 1 to 63 letters, digits or hyphens/,
    ],
    [
      'a host pattern without a bound',
      { ...ZEN, connectionConfig: { subdomain: { label: 'Sub', pattern: '[a-z]+' } } },
      'connectionConfig.subdomain.pattern',
      /more than 63 characters/,
    ],
    [
      'a host pattern that admits the empty string',
      { ...ZEN, connectionConfig: { subdomain: { label: 'Sub', pattern: '[a-z]{0,10}' } } },
      'connectionConfig.subdomain.pattern',
      /admits the empty string/,
    ],
    [
      'a host pattern with \\w (which admits _)',
      { ...ZEN, connectionConfig: { subdomain: { label: 'Sub', pattern: '\\w{1,20}' } } },
      'connectionConfig.subdomain.pattern',
      /it has \\w/,
    ],
    [
      'a host template without a dotted literal suffix',
      { ...ZEN, apiBaseUrl: 'https://{config.subdomain}.com/api' },
      'apiBaseUrl',
      /needs a literal suffix that holds a dot after it.*"\.com" is not enough/,
    ],
    [
      'a template forming the whole host',
      { ...ZEN, tokenUrl: 'https://{config.subdomain}/oauth/token' },
      'tokenUrl',
      /may not form the whole host/,
    ],
    [
      'a template in part of a host label',
      { ...ZEN, apiBaseUrl: 'https://x-{config.subdomain}.zendesk.example' },
      'apiBaseUrl',
      /must be a whole host label/,
    ],
    [
      'a template forming the whole URL',
      { ...ZEN, apiBaseUrl: '{config.subdomain}' },
      'apiBaseUrl',
      /may not form the whole URL/,
    ],
    [
      'a template in the query',
      { ...ZEN, authorizationUrl: 'https://auth.zendesk.example/authorize?tenant={config.subdomain}' },
      'authorizationUrl',
      /may not stand in the query/,
    ],
    [
      'a template in the port',
      { ...ZEN, apiBaseUrl: 'https://api.zendesk.example:{config.subdomain}/' },
      'apiBaseUrl',
      /must be an absolute URL, with templates only/,
    ],
    [
      'a template in the user info',
      { ...ZEN, apiBaseUrl: 'https://{config.subdomain}@api.zendesk.example/' },
      'apiBaseUrl',
      /may not stand in the user info/,
    ],
    [
      'metadata in the authorization URL, before it can be known',
      {
        ...CRM,
        authorizationUrl: 'https://crm.example.com/{metadata.site}/authorize',
        tokenResponseMetadata: { site: 'site' },
      },
      'authorizationUrl',
      /metadata is known only once the connection is made/,
    ],
    [
      'metadata in an authorization parameter',
      { ...CRM, authorizationParams: { site: '{metadata.site}' }, tokenResponseMetadata: { site: 'site' } },
      'authorizationParams.site',
      /metadata is known only once the connection is made/,
    ],
    [
      'a template in displayName',
      { ...ZEN, displayName: 'Zen {config.subdomain}' },
      'displayName',
      /may not hold a template/,
    ],
    [
      'a template in a postConnect path',
      { ...ZEN, postConnect: [{ path: '/t/{config.subdomain}', capture: { id: 'id' } }] },
      'postConnect.0.path',
      /may not hold a template/,
    ],
    ['a template in a scope', { ...ZEN, scopes: ['read:{config.subdomain}'] }, 'scopes.0', /may not hold a template/],
    [
      'a broken template',
      { ...ZEN, apiBaseUrl: 'https://{config.subdomain}.zendesk.example/t/{config.sub-domain}' },
      'apiBaseUrl',
      /"\{config\.sub-domain\}" is not a template/,
    ],
    [
      'plain http on a templated host',
      { ...ZEN, apiBaseUrl: 'http://{config.subdomain}.localhost.example/api' },
      'apiBaseUrl',
      /must be https/,
    ],
    [
      'a control character in a header',
      { ...CRM, apiHeaders: { 'X-Note': 'a\r\nInjected: yes' } },
      'apiHeaders.X-Note',
      /holds a control character/,
    ],
    [
      'metadata captured twice',
      {
        ...CRM,
        tokenResponseMetadata: { site: 'site' },
        postConnect: [{ path: '/me', capture: { site: 'site.id' } }],
      },
      'postConnect.0.capture.site',
      /captures metadata "site" again \(tokenResponseMetadata does\)/,
    ],
    [
      'postConnect metadata in the apiBaseUrl its own call goes to',
      {
        ...CRM,
        apiBaseUrl: 'https://api.crm.example.com/t/{metadata.site}',
        postConnect: [{ path: '/me', capture: { site: 'site.id' } }],
      },
      'apiBaseUrl',
      /captured by a postConnect call, which is itself made to apiBaseUrl/,
    ],
    [
      'a postConnect path that leaves the API',
      { ...CRM, postConnect: [{ path: '/a/../../admin', capture: { id: 'id' } }] },
      'postConnect.0.path',
      /The API path is not allowed/,
    ],
    ['a negative keepAliveHours', { ...CRM, keepAliveHours: -1 }, 'keepAliveHours', /must be at least 0|must be/],
  ];

  it.each(refused)('refuses %s, naming the file, the entry and the field', (_what, entry, field, message) => {
    const { path, err } = fileProblem([entry]);
    const prefix = `PROVIDERS_FILE ${path}: entry 1 ("${entry.id as string}"): field "${field}": `;
    const mine = err.problems.filter((p) => p.startsWith(prefix));
    expect({ problems: err.problems, matched: mine.some((p) => message.test(p.slice(prefix.length))) }).toEqual({
      problems: err.problems,
      matched: true,
    });
  });

  it('refuses api_key-only and oauth2-only fields in the other mode', () => {
    const key = {
      id: 'key-api',
      displayName: 'Key API',
      authMode: 'api_key',
      apiKey: { header: 'Api-Token' },
      apiBaseUrl: 'https://keys.example.com',
    };
    const { path, err } = fileProblem([{ ...key, keepAliveHours: 1, tokenResponseMetadata: { a: 'a' } }]);
    expect(err.problems).toEqual([
      `PROVIDERS_FILE ${path}: entry 1 ("key-api"): field "keepAliveHours": is not a known field; field "tokenResponseMetadata": is not a known field`,
    ]);
  });

  it('refuses an apiKey.check that cannot be made before the key is stored', () => {
    const { path, err } = fileProblem([
      {
        id: 'key-api',
        displayName: 'Key API',
        authMode: 'api_key',
        apiKey: { header: 'Api-Token', check: { path: '/me' } },
        apiBaseUrl: 'https://keys.example.com/t/{metadata.team}',
        postConnect: [{ path: '/teams', capture: { team: 'teams.0.id' } }],
      },
    ]);
    expect(err.problems).toContain(
      `PROVIDERS_FILE ${path}: entry 1 ("key-api"): field "apiKey.check": cannot be made before the key is stored: apiBaseUrl names {metadata.team}`,
    );
  });

  it('accepts host patterns that can only ever be one label', () => {
    for (const pattern of [
      '[a-z0-9][a-z0-9-]{0,62}',
      '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?',
      '^(acme|globex|initech)$',
      'eu|us|ap\\d',
      '(?<region>[a-z]{2}\\d{1,2})',
    ]) {
      const registry = fromFile([{ ...ZEN, connectionConfig: { subdomain: { label: 'Sub', pattern } } }]);
      expect(registry.require('zen').connectionConfig.subdomain?.pattern).toBe(pattern);
    }
  });
});
