import supertest from 'supertest';
import { startHarness, type Harness } from '../helpers/harness';
import { seedConnection } from '../helpers/latchkey-process';
import { seedApiKeyConnection } from '../helpers/seed';

describe('token routes', () => {
  let h: Harness;
  const HOUR = 3600_000;

  beforeAll(async () => {
    h = await startHarness({ sandbox: { rotation: 'strict' } });
  });
  afterAll(async () => h.close());
  beforeEach(() => h.sandbox.reset());

  describe('GET /connections/:provider/:connectionId/token', () => {
    it('answers the stored access token, uncached, without a token request while it is outside the margin', async () => {
      const seeded = await seedConnection(h.store, h.sandbox, {
        connectionId: 'fresh',
        expiresAt: Date.now() + HOUR,
        now: Date.now(),
      });
      const res = await h.api().get('/connections/videoask/fresh/token');
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toEqual({
        access_token: seeded.accessToken,
        token_type: 'Bearer',
        expires_at: new Date(seeded.connection.expiresAt!).toISOString(),
      });
      expect(h.sandbox.stats.tokenRequests).toBe(0);
    });

    it('refreshes first when the token is within the refresh margin', async () => {
      const seeded = await seedConnection(h.store, h.sandbox, {
        connectionId: 'due',
        expiresAt: Date.now() + 60_000,
        now: Date.now() - HOUR,
      });
      const res = await h.api().get('/connections/videoask/due/token');
      expect(res.status).toBe(200);
      expect(res.body.access_token).not.toBe(seeded.accessToken);
      expect(Date.parse(res.body.expires_at)).toBeGreaterThan(Date.now() + 30 * 60_000);
      expect(h.sandbox.stats.refreshGrants).toBe(1);
      expect(
        (await fetch(`${h.sandboxUrl}/me`, { headers: { Authorization: `Bearer ${res.body.access_token}` } })).status,
      ).toBe(200);
    });

    it('answers an api_key connection with its key', async () => {
      await seedApiKeyConnection(h.store, 'webinargeek', 'keyed', 'wg-key-123');
      const res = await h.api().get('/connections/webinargeek/keyed/token');
      expect(res.body).toEqual({ access_token: 'wg-key-123', token_type: 'api_key', expires_at: null });
    });
  });

  describe('POST /connections/:provider/:connectionId/refresh', () => {
    it('forces a refresh and answers the Connection, without any token in it', async () => {
      const seeded = await seedConnection(h.store, h.sandbox, {
        connectionId: 'forced',
        expiresAt: Date.now() + HOUR,
        now: Date.now(),
      });
      const res = await h.api().post('/connections/videoask/forced/refresh');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ provider: 'videoask', connection_id: 'forced', status: 'active' });
      expect(Date.parse(res.body.last_refreshed_at)).toBeGreaterThan(Date.now() - 60_000);
      const stored = await h.store.getConnection('videoask', 'forced');
      expect(stored?.credentials.refreshToken).not.toBe(seeded.refreshToken);
      for (const secret of [
        seeded.accessToken,
        seeded.refreshToken,
        stored!.credentials.accessToken!,
        stored!.credentials.refreshToken!,
      ]) {
        expect(res.text).not.toContain(secret);
      }
      expect(h.sandbox.stats.refreshGrants).toBe(1);
    });
  });

  describe('errors', () => {
    it('answers 404 unknown_provider and connection_not_found, and 400 on a malformed connection id', async () => {
      const unknown = await h.api().get('/connections/nope/x/token');
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('unknown_provider');
      const missing = await h.api().post('/connections/videoask/absent/refresh');
      expect(missing.status).toBe(404);
      expect(missing.headers['latchkey-error']).toBe('connection_not_found');
      expect((await h.api().get('/connections/videoask/bad%20id/token')).status).toBe(400);
    });

    it('answers 409 reauth_required for a connection that must be reconnected', async () => {
      const seeded = await seedConnection(h.store, h.sandbox, {
        connectionId: 'stale',
        expiresAt: Date.now() + HOUR,
        now: Date.now(),
      });
      await h.store.updateConnection({ ...seeded.connection, status: 'reauth_required' }, seeded.connection.version);
      const res = await h.api().get('/connections/videoask/stale/token');
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('reauth_required');
      expect(res.text).not.toContain(seeded.accessToken);
    });

    it('answers 502 provider_error with Retry-After when the token endpoint fails', async () => {
      await seedConnection(h.store, h.sandbox, { connectionId: 'down', expiresAt: Date.now() - 1, now: Date.now() });
      h.sandbox.failNextTokenRequests(1, 500);
      const res = await h.api().post('/connections/videoask/down/refresh');
      expect(res.status).toBe(502);
      expect(res.body.error.code).toBe('provider_error');
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
    });

    it('needs the API key', async () => {
      const res = await supertest(h.app).get('/connections/videoask/fresh/token');
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('unauthorized');
    });
  });
});
