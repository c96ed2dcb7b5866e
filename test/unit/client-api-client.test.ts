import { Readable } from 'node:stream';
import axios, { AxiosError } from 'axios';
import nock from 'nock';
import { createApiClient, resolveApiUrl, type CredentialSource, type ResolvedCredential } from '../../src/client';
import { buildProviderRegistry, type Provider } from '../../src/providers/registry';
import type { Connection } from '../../src/store';
import { freePort } from '../helpers/latchkey-process';
import { useStrictNock } from '../helpers/strict-nock';

const API = 'https://api.provider.test';

/** A credential source that hands out `at-1`, and `at-2` after a refresh; it counts both. */
function fakeCredentials(options: { refreshable?: boolean } = {}) {
  let current = 'at-1';
  const calls = { get: 0, refresh: 0, rejected: [] as string[] };
  const resolved = (provider: Provider, token: string): ResolvedCredential => ({
    connection: { credentials: { accessToken: token } } as Connection,
    header:
      provider.authMode === 'api_key'
        ? { name: provider.apiKey.header, value: provider.apiKey.format.replace('{key}', token) }
        : { name: 'Authorization', value: `Bearer ${token}` },
  });
  const source: CredentialSource = {
    async getCredential(provider) {
      calls.get += 1;
      return resolved(provider, current);
    },
    async refreshAfterUnauthorized(provider, _id, rejected) {
      calls.refresh += 1;
      calls.rejected.push(rejected.header.value);
      if (options.refreshable === false) return null;
      current = 'at-2';
      return resolved(provider, current);
    },
    forceRefresh: async () => {
      throw new Error('not used');
    },
    invalidate: () => {},
  };
  return { source, calls };
}

describe('authenticated API client', () => {
  const registry = buildProviderRegistry({}, [
    {
      source: 'test',
      entries: [
        {
          id: 'acme',
          displayName: 'Acme',
          authMode: 'oauth2',
          authorizationUrl: `${API}/authorize`,
          tokenUrl: `${API}/token`,
          apiBaseUrl: `${API}/v1`,
          apiHeaders: { 'Acme-Version': '2024-01' },
        },
      ],
    },
    {
      source: 'test',
      entries: [
        {
          id: 'keyed',
          displayName: 'Keyed',
          authMode: 'api_key',
          apiBaseUrl: API,
          apiKey: { header: 'Api-Token', format: 'Token {key}' },
        },
      ],
    },
  ]);
  const acme = registry.require('acme');
  let sleeps: number[];
  const sleep = async (ms: number) => {
    sleeps.push(ms);
  };

  useStrictNock();
  beforeEach(() => {
    sleeps = [];
  });

  const clientFor = (source: CredentialSource, provider: Provider | string = acme) =>
    createApiClient({ credentials: source, providers: registry, http: axios.create(), sleep }).forConnection(
      provider,
      'c1',
    );

  it('targets apiBaseUrl with the credential and the provider apiHeaders, and blanks the credential in the answer', async () => {
    nock(API, { reqheaders: { authorization: 'Bearer at-1', 'acme-version': '2024-01' } })
      .get('/v1/forms')
      .query({ limit: '2' })
      .reply(200, { ok: true });
    const res = await clientFor(fakeCredentials().source).get('/forms', { params: { limit: 2 } });
    expect(res.data).toEqual({ ok: true });
    expect(res.config.headers.Authorization).toBe('[redacted]');
  });

  it('sends an api_key credential in the provider header format, looking the provider up by id', async () => {
    nock(API, { reqheaders: { 'api-token': 'Token at-1' } })
      .get('/me')
      .reply(200, {});
    expect((await clientFor(fakeCredentials().source, 'keyed').get('me')).status).toBe(200);
  });

  it('overrides a caller-supplied Authorization header with the stored credential', async () => {
    nock(API, { reqheaders: { authorization: 'Bearer at-1' } })
      .get('/v1/me')
      .reply(200, {});
    await clientFor(fakeCredentials().source).get('/me', { headers: { authorization: 'Bearer forged' } });
  });

  it('on a 401 refreshes once and retries once with the new credential, for any method', async () => {
    const { source, calls } = fakeCredentials();
    nock(API)
      .post('/v1/forms', { title: 'x' })
      .matchHeader('authorization', 'Bearer at-1')
      .reply(401, { detail: 'Token has expired.' });
    nock(API).post('/v1/forms', { title: 'x' }).matchHeader('authorization', 'Bearer at-2').reply(201, { id: 1 });
    const res = await clientFor(source).post('/forms', { title: 'x' });
    expect(res.status).toBe(201);
    expect(calls).toMatchObject({ refresh: 1, rejected: ['Bearer at-1'] });
  });

  it('hands back a second 401 without refreshing again', async () => {
    const { source, calls } = fakeCredentials();
    nock(API).get('/v1/me').times(2).reply(401, { detail: 'Invalid token.' });
    const err = (await clientFor(source)
      .get('/me')
      .catch((e: unknown) => e)) as AxiosError;
    expect(err).toBeInstanceOf(AxiosError);
    expect(err.response?.status).toBe(401);
    expect(calls.refresh).toBe(1);
  });

  it('hands back the 401 when nothing can be refreshed', async () => {
    const { source, calls } = fakeCredentials({ refreshable: false });
    nock(API).get('/v1/me').reply(401, {});
    const res = await clientFor(source).get('/me', { validateStatus: () => true });
    expect(res.status).toBe(401);
    expect(calls.refresh).toBe(1);
  });

  it('does not replay a stream body after a 401', async () => {
    const { source, calls } = fakeCredentials();
    nock(API).put('/v1/upload').reply(401, {});
    const res = await clientFor(source).put('/upload', Readable.from(['chunk']), { validateStatus: () => true });
    expect(res.status).toBe(401);
    expect(calls.refresh).toBe(0);
  });

  it('retries a 429 on GET after the Retry-After the provider asked for', async () => {
    nock(API).get('/v1/forms').reply(429, {}, { 'Retry-After': '2' });
    nock(API).get('/v1/forms').reply(200, { ok: true });
    expect((await clientFor(fakeCredentials().source).get('/forms')).status).toBe(200);
    expect(sleeps).toEqual([2000]);
  });

  it('retries 5xx on idempotent methods up to the attempt bound, then hands back the answer with the credential blanked', async () => {
    nock(API).delete('/v1/forms/1').times(3).reply(503, { detail: 'busy' });
    const err = (await clientFor(fakeCredentials().source)
      .delete('/forms/1')
      .catch((e: unknown) => e)) as AxiosError;
    expect(err.response?.status).toBe(503);
    expect(sleeps).toHaveLength(2);
    expect(JSON.stringify(err.config?.headers)).not.toContain('at-1');
    expect(err.request).toBeUndefined();
  });

  it('never retries a non-idempotent method on 5xx or 429', async () => {
    nock(API).post('/v1/forms').reply(503, {});
    nock(API).patch('/v1/forms/1').reply(429, {}, { 'Retry-After': '1' });
    const client = clientFor(fakeCredentials().source);
    expect((await client.post('/forms', {}, { validateStatus: () => true })).status).toBe(503);
    expect((await client.patch('/forms/1', {}, { validateStatus: () => true })).status).toBe(429);
    expect(sleeps).toEqual([]);
  });

  it('does not follow a redirect with the credential', async () => {
    nock(API).get('/v1/moved').reply(302, '', { Location: 'https://elsewhere.test/steal' });
    const res = await clientFor(fakeCredentials().source).get('/moved', { validateStatus: () => true });
    expect(res.status).toBe(302);
  });

  it('blanks the credential from a network error', async () => {
    const closedPort = await freePort();
    const unreachable = buildProviderRegistry({}, [
      {
        source: 'test',
        entries: [
          {
            id: 'down',
            displayName: 'Down',
            authMode: 'api_key',
            apiBaseUrl: `http://127.0.0.1:${closedPort}`,
            apiKey: { header: 'Api-Token' },
          },
        ],
      },
    ]).require('down');
    const err = (await clientFor(fakeCredentials().source, unreachable)
      .get('/me')
      .catch((e: unknown) => e)) as AxiosError;
    expect(err.code).toBe('ECONNREFUSED');
    expect(JSON.stringify(err.config?.headers)).not.toContain('at-1');
  });

  it('refuses a path that would leave apiBaseUrl before anything is sent', async () => {
    const { source, calls } = fakeCredentials();
    const client = clientFor(source);
    for (const path of ['https://evil.test/x', '//evil.test/x', '/../admin', '/%2e%2e/admin', '/a%2fb', '\\evil']) {
      await expect(client.get(path)).rejects.toMatchObject({ code: 'invalid_request' });
    }
    expect(calls.get).toBe(0);
    expect(resolveApiUrl(`${API}/v1`, 'me?x=1')).toBe(`${API}/v1/me?x=1`);
  });

  it('pins paths by the proxy’s rules: a dot segment is refused even when it would stay inside the base', () => {
    // Until the client shared the proxy's pinning (SECURITY.md §27) it normalised this to /v1/me.
    expect(() => resolveApiUrl(`${API}/v1`, '/forms/../me?x=1')).toThrow(
      expect.objectContaining({ code: 'invalid_request' }),
    );
    expect(() => resolveApiUrl(`${API}/v1`, 'https:evil.test')).toThrow(
      expect.objectContaining({ code: 'invalid_request' }),
    );
    expect(resolveApiUrl(`${API}/v1`, '/forms/123?x=1')).toBe(`${API}/v1/forms/123?x=1`);
    expect(resolveApiUrl(`${API}/v1/`, '')).toBe(`${API}/v1/`);
  });
});
