import axios from 'axios';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import nock from 'nock';
import { checkApiKey } from '../../src/connect/api-key-check';
import { buildProviderRegistry, type ApiKeyProvider } from '../../src/providers/registry';
import { useStrictNock } from '../helpers/strict-nock';

const API = 'https://app.webinargeek.com';
const http = axios.create();

function provider(entries: Record<string, unknown>[] = [], id = 'webinargeek'): ApiKeyProvider {
  return buildProviderRegistry({}, [{ source: 'test', entries }]).require(id) as ApiKeyProvider;
}

describe('checkApiKey', () => {
  useStrictNock();
  const webinargeek = provider();

  it('tries the key once on the provider’s check path, in its header, without a body read', async () => {
    const scope = nock(API)
      .get('/api/v2/account')
      .matchHeader('api-token', 'wg-right-key')
      .matchHeader('accept', 'application/json')
      .reply(200, { id: 1 });
    await expect(checkApiKey(webinargeek, 'wg-right-key', { http })).resolves.toEqual({
      outcome: 'accepted',
      status: 200,
    });
    expect(scope.isDone()).toBe(true);
  });

  it.each([401, 403])('refuses the key when the provider answers %i, as invalid_request', async (status) => {
    nock(API).get('/api/v2/account').once().reply(status, { code: 'unauthorized' });
    const checked = await checkApiKey(webinargeek, 'wg-wrong-key', { http });
    expect(checked).toMatchObject({ outcome: 'refused', status });
    if (checked.outcome !== 'refused') throw new Error('not refused');
    expect(checked.error).toMatchObject({ code: 'invalid_request', status: 400 });
    expect(checked.error.message).toBe(`WebinarGeek did not accept this API key (it answered ${status})`);
  });

  it.each([500, 503, 404, 429, 302])(
    'is no verdict on the key when the provider answers %i: provider_error, after one request',
    async (status) => {
      let calls = 0;
      nock(API)
        .get('/api/v2/account')
        .times(2)
        .reply(() => {
          calls += 1;
          return [status, {}, { Location: 'https://elsewhere.example/' }];
        });
      const checked = await checkApiKey(webinargeek, 'wg-key', { http });
      expect(checked).toMatchObject({ outcome: 'failed', error: { code: 'provider_error', status: 502 } });
      expect(calls).toBe(1);
      nock.cleanAll();
    },
  );

  it.each([
    ['closes the connection without an answer', (socket: Socket) => socket.destroy()],
    ['answers something that is not HTTP', (socket: Socket) => socket.end('SSH-2.0-OpenSSH\r\n')],
  ])('is no verdict on the key when the provider %s: provider_error', async (_what, answer) => {
    const hostile: Server = createServer(answer);
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = hostile.address() as AddressInfo;
      const local = provider([{ id: 'webinargeek', apiBaseUrl: `http://127.0.0.1:${port}/api/v2` }]);
      const checked = await checkApiKey(local, 'wg-key-canary', { http });
      expect(checked).toMatchObject({ outcome: 'failed', error: { code: 'provider_error', status: 502 } });
      if (checked.outcome !== 'failed') throw new Error('not failed');
      expect(checked.error.message).toBe('WebinarGeek could not be reached to check the key');
      expect(JSON.stringify({ ...checked.error, cause: checked.error.cause })).not.toContain('wg-key-canary');
    } finally {
      hostile.close();
    }
  });

  it('is no verdict on the key when nothing listens: provider_error', async () => {
    const closed: Server = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const local = provider([{ id: 'webinargeek', apiBaseUrl: `http://127.0.0.1:${port}/api/v2` }]);
    await expect(checkApiKey(local, 'wg-key', { http })).resolves.toMatchObject({
      outcome: 'failed',
      error: { code: 'provider_error', cause: { code: 'ECONNREFUSED' } },
    });
  });

  it('gives up after its timeout, as upstream_timeout', async () => {
    // A server that accepts the connection and never answers.
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const local = provider([{ id: 'webinargeek', apiBaseUrl: `http://127.0.0.1:${port}/api/v2` }]);
      const checked = await checkApiKey(local, 'wg-key', { http, timeoutMs: 150 });
      expect(checked).toMatchObject({ outcome: 'failed', error: { code: 'upstream_timeout', status: 504 } });
    } finally {
      silent.close();
    }
  });

  it("sends the key in the provider’s format, also a key holding $& or $'", async () => {
    const livestorm = provider([], 'livestorm-token');
    nock('https://api.livestorm.co')
      .get('/v1/me')
      .matchHeader('authorization', "ls$&tok$'en")
      .matchHeader('accept', 'application/vnd.api+json')
      .reply(200, {});
    await expect(checkApiKey(livestorm, "ls$&tok$'en", { http })).resolves.toMatchObject({ outcome: 'accepted' });
    const bearer = provider(
      [
        {
          id: 'key-api',
          displayName: 'Key API',
          authMode: 'api_key',
          apiKey: { header: 'Authorization', format: 'Bearer {key}', check: { method: 'HEAD', path: '/whoami' } },
          apiBaseUrl: 'https://keys.example.com/v2/',
        },
      ],
      'key-api',
    );
    nock('https://keys.example.com').head('/v2/whoami').matchHeader('authorization', 'Bearer k-1').reply(204);
    await expect(checkApiKey(bearer, 'k-1', { http })).resolves.toEqual({ outcome: 'accepted', status: 204 });
  });

  it('goes to a templated apiBaseUrl with the connection’s config, and refuses without it', async () => {
    const tenant = provider(
      [
        {
          id: 'tenant-api',
          displayName: 'Tenant API',
          authMode: 'api_key',
          apiKey: { header: 'X-Api-Key', check: { path: '/me' } },
          apiBaseUrl: 'https://{config.subdomain}.tenant.example/api',
          connectionConfig: { subdomain: { label: 'Subdomain', pattern: '[a-z]{1,20}' } },
        },
      ],
      'tenant-api',
    );
    nock('https://acme.tenant.example').get('/api/me').matchHeader('x-api-key', 'k').reply(200, {});
    await expect(checkApiKey(tenant, 'k', { http, config: { subdomain: 'acme' } })).resolves.toMatchObject({
      outcome: 'accepted',
    });
    await expect(checkApiKey(tenant, 'k', { http })).resolves.toMatchObject({
      outcome: 'failed',
      error: { code: 'invalid_request', message: 'The key cannot be checked: config.subdomain is missing' },
    });
  });

  it('is unchecked for a provider without apiKey.check, and asks nothing', async () => {
    const unchecked = provider([{ id: 'webinargeek', apiKey: { check: null } }]);
    await expect(checkApiKey(unchecked, 'anything', { http })).resolves.toEqual({ outcome: 'unchecked' });
    expect(nock.pendingMocks()).toEqual([]);
  });
});
