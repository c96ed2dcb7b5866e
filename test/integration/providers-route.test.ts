import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import supertest from 'supertest';
import { startHarness, type Harness } from '../helpers/harness';
import { seedApiKeyConnection } from '../helpers/seed';

/** A PROVIDERS_FILE-style provider of its own, with a subdomain each connection supplies. */
const ZEN = {
  id: 'zen',
  displayName: 'Zen Desk',
  authMode: 'oauth2',
  authorizationUrl: 'https://{config.subdomain}.zendesk.example/oauth/authorizations/new',
  tokenUrl: 'https://{config.subdomain}.zendesk.example/oauth/tokens',
  apiBaseUrl: 'https://{config.subdomain}.zendesk.example/api/v2',
  connectionConfig: {
    subdomain: { label: 'Zendesk subdomain', pattern: '[a-z0-9][a-z0-9-]{0,62}' },
    locale: { label: 'Locale', pattern: '[a-z]{2}', required: false },
  },
};

describe('GET /providers', () => {
  let h: Harness;
  let dir: string;
  const reader = 'providers-reader-key-0123456789';
  const webinarOnly = 'providers-webinar-key-0123456789';
  const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-providers-route-'));
    const keys = join(dir, 'api-keys.json');
    writeFileSync(
      keys,
      JSON.stringify([
        { name: 'reader', sha256: sha256(reader), access: 'read' },
        { name: 'webinar-only', sha256: sha256(webinarOnly), access: 'read', providers: ['webinargeek'] },
      ]),
    );
    h = await startHarness({
      env: { API_KEYS_FILE: keys, LIVESTORM_TOKEN_ENABLED: 'false' },
      providerSources: () => [
        { source: 'test', entries: [ZEN, { id: 'interact', enabled: false }, { id: 'webinargeek', verified: true }] },
      ],
    });
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists every provider that is not switched off, with what a host app needs to draw its buttons', async () => {
    const res = await h.api().get('/providers');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      providers: [
        {
          id: 'videoask',
          display_name: 'VideoAsk',
          auth_mode: 'oauth2',
          configured: true,
          verified: true,
          connection_config: [],
        },
        {
          id: 'livestorm',
          display_name: 'Livestorm',
          auth_mode: 'oauth2',
          configured: false,
          verified: true,
          connection_config: [],
        },
        {
          id: 'webinargeek',
          display_name: 'WebinarGeek',
          auth_mode: 'api_key',
          configured: true,
          verified: true,
          connection_config: [],
        },
        {
          id: 'zen',
          display_name: 'Zen Desk',
          auth_mode: 'oauth2',
          configured: false,
          verified: false,
          connection_config: [
            { name: 'subdomain', label: 'Zendesk subdomain', pattern: '[a-z0-9][a-z0-9-]{0,62}', required: true },
            { name: 'locale', label: 'Locale', pattern: '[a-z]{2}', required: false },
          ],
        },
      ],
    });
  });

  it('needs an API key; read access is enough; a key limited to providers sees only those', async () => {
    const none = await supertest(h.app).get('/providers');
    expect(none.status).toBe(401);
    expect(none.headers['latchkey-error']).toBe('unauthorized');
    const read = await supertest(h.app).get('/providers').set('Authorization', `Bearer ${reader}`);
    expect(read.status).toBe(200);
    expect(read.body.providers.map((p: { id: string }) => p.id)).toEqual([
      'videoask',
      'livestorm',
      'webinargeek',
      'zen',
    ]);
    const limited = await supertest(h.app).get('/providers').set('Authorization', `Bearer ${webinarOnly}`);
    expect(limited.body.providers.map((p: { id: string }) => p.id)).toEqual(['webinargeek']);
  });
});

describe('a provider switched off', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  /** WebinarGeek switched off in a provider source, Livestorm (API token) with its environment variable. */
  const startSwitchedOff = () =>
    startHarness({
      env: { LIVESTORM_TOKEN_ENABLED: 'false' },
      providerSources: () => [{ source: 'test', entries: [{ id: 'webinargeek', enabled: false }] }],
    });

  it('is gone from the Connect page, which still offers the others', async () => {
    h = await startHarness();
    const before = await h.browser().get('/');
    expect(before.text).toContain('data-provider="webinargeek">Connect WebinarGeek</a>');
    expect(before.text).toContain('data-provider="livestorm-token">Connect Livestorm</a>');
    await h.close();

    h = await startSwitchedOff();
    const page = await h.browser().get('/');
    expect(page.status).toBe(200);
    expect(page.text).toContain('Connect VideoAsk');
    expect(page.text).not.toContain('WebinarGeek');
    expect(page.text).not.toContain('livestorm-token');
  });

  it('answers 404 provider_not_enabled on its service routes, the proxy and its connect route', async () => {
    h = await startSwitchedOff();
    await seedApiKeyConnection(h.store, 'webinargeek', 'w1', 'wg-key-of-the-user');
    const api = h.api();
    const answers = {
      get: await api.get('/connections/webinargeek/w1'),
      list: await api.get('/connections?provider=webinargeek'),
      token: await api.get('/connections/webinargeek/w1/token'),
      refresh: await api.post('/connections/webinargeek/w1/refresh'),
      session: await api.post('/connect-sessions').send({ provider: 'webinargeek', connection_id: 'w2' }),
      proxy: await api.get('/proxy/webinargeek/webinars').set('Connection-Id', 'w1'),
      connect: await h.browser().get('/auth/webinargeek?connection_id=w2'),
      otherConnect: await h.browser().get('/auth/livestorm-token?connection_id=w2'),
    };
    for (const [route, res] of Object.entries(answers)) {
      expect({ route, status: res.status, code: res.headers['latchkey-error'] }).toEqual({
        route,
        status: 404,
        code: 'provider_not_enabled',
      });
    }
    expect(answers.get.body.error.message).toMatch(/switched off/);
    // Nothing reached the provider's stand-in.
    expect(h.sandbox.stats.apiKeyRequests).toBe(0);
  });

  it('can still have its stored connections deleted', async () => {
    h = await startSwitchedOff();
    await seedApiKeyConnection(h.store, 'webinargeek', 'w1', 'wg-key-of-the-user');
    const res = await h.api().delete('/connections/webinargeek/w1');
    expect(res.status).toBe(204);
    expect(await h.store.getConnection('webinargeek', 'w1')).toBeNull();
    expect((await h.api().delete('/connections/nope/w1')).headers['latchkey-error']).toBe('unknown_provider');
  });
});
