import request from 'supertest';
import { buildProviderRegistry } from '../../src/providers/registry';
import { isLoopbackHost } from '../../src/providers/schema';
import { demoProviderSources } from '../../src/sandbox/provider-entry';
import { createSandbox, SANDBOX_API_KEY, type Sandbox } from '../../src/sandbox/sandbox';

describe('the sandbox’s API-key stand-ins', () => {
  let sandbox: Sandbox;
  beforeEach(() => {
    sandbox = createSandbox();
  });

  it('when WebinarGeek’s /account is asked with the demo key in Api-Token, then it answers the account', async () => {
    const res = await request(sandbox.app).get('/webinargeek/account').set('Api-Token', SANDBOX_API_KEY);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: expect.any(Number), email: 'sandbox.user@example.com' });
    expect(sandbox.stats.apiKeyRequests).toBe(1);
  });

  it('when the key is missing or wrong, then it answers 401 as WebinarGeek does, and counts the request', async () => {
    for (const key of [undefined, 'wrong', `Bearer ${SANDBOX_API_KEY}`]) {
      const req = request(sandbox.app).get('/webinargeek/webinars');
      const res = key === undefined ? await req : await req.set('Api-Token', key);
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ code: 'unauthorized', message: 'Key is not provided or does not exists' });
    }
    expect(sandbox.stats.apiKeyRequests).toBe(3);
    expect(sandbox.stats.apiRequests).toBe(0);
  });

  it('when Livestorm’s /me is asked with the token raw in Authorization, then it answers JSON:API', async () => {
    const ok = await request(sandbox.app).get('/livestorm/me').set('Authorization', SANDBOX_API_KEY);
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toMatch(/^application\/vnd\.api\+json/);
    expect(JSON.parse(ok.text)).toMatchObject({ data: { type: 'users' } });
    const bearer = await request(sandbox.app).get('/livestorm/me').set('Authorization', `Bearer ${SANDBOX_API_KEY}`);
    expect(bearer.status).toBe(401);
  });

  it('when keys are set through the options or /_sandbox/config, then those are the ones accepted', async () => {
    sandbox.options.apiKeys.push('added-key');
    expect((await request(sandbox.app).get('/webinargeek/account').set('Api-Token', 'added-key')).status).toBe(200);
    await request(sandbox.app)
      .post('/_sandbox/config')
      .send({ apiKeys: ['only-key'] })
      .expect(200);
    expect((await request(sandbox.app).get('/webinargeek/account').set('Api-Token', 'added-key')).status).toBe(401);
    expect((await request(sandbox.app).get('/webinargeek/account').set('Api-Token', 'only-key')).status).toBe(200);
  });

  it('when failures are injected, then the next requests fail as asked, counted, then it answers again', async () => {
    await request(sandbox.app).post('/_sandbox/fail-api-key').send({ n: 1, status: 503 }).expect(200);
    const failed = await request(sandbox.app).get('/webinargeek/account').set('Api-Token', SANDBOX_API_KEY);
    expect(failed.status).toBe(503);
    sandbox.failNextApiKeyRequests(1, 'drop');
    await expect(request(sandbox.app).get('/webinargeek/account').set('Api-Token', SANDBOX_API_KEY)).rejects.toThrow(
      /socket hang up|ECONNRESET/,
    );
    expect((await request(sandbox.app).get('/webinargeek/account').set('Api-Token', SANDBOX_API_KEY)).status).toBe(200);
    expect(sandbox.stats.apiKeyRequests).toBe(3);
    sandbox.reset();
    expect(sandbox.stats.apiKeyRequests).toBe(0);
  });
});

describe('the demo’s providers', () => {
  it('never send a pasted key to a real service: every api_key provider with a check goes to the sandbox', () => {
    const registry = buildProviderRegistry({}, demoProviderSources('http://127.0.0.1:4010'));
    const apiKeyProviders = registry.list().filter((p) => p.authMode === 'api_key' && !p.switchedOff);
    expect(apiKeyProviders.map((p) => p.id).sort()).toEqual(['livestorm-token', 'webinargeek']);
    for (const p of apiKeyProviders) {
      expect({ id: p.id, loopback: isLoopbackHost(new URL(p.apiBaseUrl).hostname) }).toEqual({
        id: p.id,
        loopback: true,
      });
    }
    expect(registry.require('webinargeek').apiBaseUrl).toBe('http://127.0.0.1:4010/webinargeek');
    expect(registry.require('livestorm-token').apiBaseUrl).toBe('http://127.0.0.1:4010/livestorm');
  });
});
