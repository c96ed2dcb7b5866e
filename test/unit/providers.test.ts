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
  type ProviderSource,
} from '../../src/providers/registry';

/** The contract's "Provider definition" JSON example, verbatim. */
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
  apiHeaders: {},
  refreshMarginSeconds: 300,
};

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

  it('has videoask, livestorm, webinargeek and interact', () => {
    expect(
      registry
        .list()
        .map((p) => p.id)
        .sort(),
    ).toEqual(['interact', 'livestorm', 'videoask', 'webinargeek']);
  });

  it("describes VideoAsk exactly as the contract's JSON example", () => {
    const videoask = registry.require('videoask') as unknown as Record<string, unknown>;
    for (const [field, value] of Object.entries(CONTRACT_VIDEOASK)) {
      expect({ field, value: videoask[field] }).toEqual({ field, value });
    }
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

  it('describes WebinarGeek as an API key sent in Api-Token, enabled without credentials', () => {
    const webinargeek = registry.requireEnabled('webinargeek') as ApiKeyProvider;
    expect(webinargeek).toMatchObject({
      authMode: 'api_key',
      apiKey: { header: 'Api-Token', format: '{key}' },
      apiBaseUrl: 'https://app.webinargeek.com/api/v2',
      enabled: true,
    });
  });

  it('marks Interact as unverified, and the documented ones as verified', () => {
    expect(registry.require('interact').verified).toBe(false);
    expect(registry.require('videoask').verified).toBe(true);
    expect(registry.require('livestorm').verified).toBe(true);
  });

  it('accepts the contract example itself as a PROVIDERS_FILE entry', () => {
    const videoask = fromFile([CONTRACT_VIDEOASK]).require('videoask') as unknown as Record<string, unknown>;
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
  it('adds a provider, with the defaults of the definition', () => {
    const registry = fromFile([CRM]);
    expect(registry.list()).toHaveLength(5);
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
      verified: true,
    });
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
    expect(videoask).toMatchObject(untouched);
    expect(registry.list()).toHaveLength(4);
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
    ).toEqual(['videoask', 'webinargeek']);
  });
});
