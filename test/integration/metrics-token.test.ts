import supertest from 'supertest';
import { startHarness, type Harness } from '../helpers/harness';

const TOKEN = 'metrics-token-0123456789abcdef';

/** METRICS_TOKEN (CONTRACT "New variables"): `/metrics` sits on the public port, so it can be closed. */
describe('/metrics with METRICS_TOKEN', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ store: 'memory', env: { METRICS_TOKEN: TOKEN } });
  });
  afterAll(async () => h.close());

  it.each([
    ['no Authorization header', undefined],
    ['a wrong token', `Bearer ${TOKEN}x`],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, 10)}`],
    ['the token in another scheme', `Basic ${TOKEN}`],
  ])('refuses %s with 401 unauthorized in the contract format, naming no token', async (_name, authorization) => {
    const req = supertest(h.app).get('/metrics');
    if (authorization) req.set('Authorization', authorization);
    const res = await req;
    expect(res.status).toBe(401);
    expect(res.headers['latchkey-error']).toBe('unauthorized');
    expect(res.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    expect(res.text).not.toContain(TOKEN);
    expect(res.text).not.toContain('latchkey_');
  });

  it('serves the metrics, keep-alive ones included, with the token', async () => {
    const res = await supertest(h.app).get('/metrics').set('Authorization', `Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.text).toContain('latchkey_keepalive_due');
    expect(res.text).toContain('latchkey_keepalive_sweeps_total');
  });

  it('leaves the other ops routes open', async () => {
    expect((await supertest(h.app).get('/healthz')).status).toBe(200);
    expect((await supertest(h.app).get('/readyz')).status).toBe(200);
  });
});

describe('/metrics without METRICS_TOKEN', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ store: 'memory' });
  });
  afterAll(async () => h.close());

  it('answers without any Authorization header, as in the first release', async () => {
    const res = await supertest(h.app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toContain('latchkey_http_request_duration_seconds');
  });
});
