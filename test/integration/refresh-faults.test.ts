import axios from 'axios';
import { createApiClient, type ConnectionClient } from '../../src/client';
import { connectVideoAsk, credentialSourceFor, startHarness, type Harness } from '../helpers/harness';
import { refreshTokensSent, seedConnection, waitUntil } from '../helpers/latchkey-process';

/** SECURITY.md §14, §15 and §19 on the real Redis and the strict-rotation sandbox; state read back through the API. */
describe('refresh faults', () => {
  let h: Harness;
  const http = axios.create();

  beforeAll(async () => {
    h = await startHarness({ sandbox: { rotation: 'strict' }, env: { REFRESH_COOLDOWN_MS: '300' } });
  });
  afterAll(async () => h.close());
  beforeEach(() => {
    h.sandbox.reset();
    h.sandbox.options.expiresInFormat = 'number';
  });

  const clientFor = (connectionId: string): ConnectionClient => {
    const credentials = credentialSourceFor(h);
    return createApiClient({ credentials, http }).forConnection(h.providers.require('videoask'), connectionId);
  };
  const statusOf = async (connectionId: string) =>
    (await h.api().get(`/connections/videoask/${connectionId}`)).body.status as string;
  const expired = (connectionId: string) =>
    seedConnection(h.store, h.sandbox, { connectionId, expiresAt: Date.now() - 1000, now: Date.now() });

  describe('invalid_grant', () => {
    it('marks the connection reauth_required, answers 409 at once after that, and recovers on reconnect', async () => {
      const seeded = await expired('revoked');
      await fetch(`${h.sandboxUrl}/oauth/revoke`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token: seeded.refreshToken,
          client_id: 'sandbox-client',
          client_secret: 'sandbox-secret',
        }),
      });

      const first = await h.api().get('/connections/videoask/revoked/token');
      expect(first.status).toBe(409);
      expect(first.headers['latchkey-error']).toBe('reauth_required');
      expect(await statusOf('revoked')).toBe('reauth_required');
      expect(h.sandbox.stats.tokenRequests).toBe(1);

      expect((await h.api().get('/connections/videoask/revoked/token')).status).toBe(409);
      expect((await h.api().post('/connections/videoask/revoked/refresh')).status).toBe(409);
      await expect(clientFor('revoked').get('/me')).rejects.toMatchObject({ code: 'reauth_required' });
      expect(h.sandbox.stats.tokenRequests).toBe(1);

      const reconnected = await connectVideoAsk(h.browser(), '?connection_id=revoked');
      expect(reconnected.status).toBe(303);
      expect(await statusOf('revoked')).toBe('active');
      expect((await h.api().get('/connections/videoask/revoked/token')).status).toBe(200);
    });
  });

  describe('token endpoint down', () => {
    it('keeps the credentials and the active status, answers 502 with Retry-After, cools down, then recovers', async () => {
      const seeded = await expired('down');
      h.sandbox.failNextTokenRequests(1, 503);

      const failed = await h.api().get('/connections/videoask/down/token');
      expect(failed.status).toBe(502);
      expect(failed.headers['latchkey-error']).toBe('provider_error');
      expect(Number(failed.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(await statusOf('down')).toBe('active');
      expect((await h.store.getConnection('videoask', 'down'))?.credentials.refreshToken).toBe(seeded.refreshToken);

      // Within the cooldown: 502 again without a token request.
      expect((await h.api().get('/connections/videoask/down/token')).status).toBe(502);
      expect(h.sandbox.stats.tokenRequests).toBe(1);

      // After it, the next call tries again and succeeds.
      let recovered = 0;
      await waitUntil(
        async () => (recovered = (await h.api().get('/connections/videoask/down/token')).status) !== 502,
        5000,
        50,
      );
      expect(recovered).toBe(200);
      expect(h.sandbox.stats.tokenRequests).toBe(2);
      expect(refreshTokensSent(h.sandbox)).toEqual([seeded.refreshToken, seeded.refreshToken]);
    });
  });

  describe('provider 401', () => {
    it('refreshes once and retries once when the provider rejects a token Latchkey thought valid', async () => {
      await seedConnection(h.store, h.sandbox, {
        connectionId: 'rejected',
        expiresAt: Date.now() + 3600_000,
        now: Date.now(),
      });
      h.sandbox.expireAllAccessTokens();
      const res = await clientFor('rejected').get<{ user_id: string }>('/me');
      expect(res.status).toBe(200);
      expect(h.sandbox.stats.refreshGrants).toBe(1);
    });

    it('does not refresh a second time when the provider answers 401 right after a refresh', async () => {
      await expired('still-401');
      const res = await clientFor('still-401').get('/status/401', { validateStatus: () => true });
      expect(res.status).toBe(401);
      expect(h.sandbox.stats.refreshGrants).toBe(1);
      expect(await statusOf('still-401')).toBe('active');
      expect((await clientFor('still-401').get('/me')).status).toBe(200);
      expect(h.sandbox.stats.refreshGrants).toBe(1);
    });
  });

  describe('no expires_in', () => {
    it('refreshes on a 401 only, once for many concurrent callers, with no refresh storm', async () => {
      h.sandbox.options.expiresInFormat = 'omit';
      await seedConnection(h.store, h.sandbox, { connectionId: 'no-expiry', expiresAt: null, now: Date.now() });
      const client = clientFor('no-expiry');
      expect((await client.get('/me')).status).toBe(200);
      expect(h.sandbox.stats.tokenRequests).toBe(0);

      h.sandbox.expireAllAccessTokens();
      const answers = await Promise.all(Array.from({ length: 50 }, () => client.get('/me')));
      expect(answers.every((a) => a.status === 200)).toBe(true);
      expect(h.sandbox.stats.refreshGrants).toBe(1);
      expect((await h.store.getConnection('videoask', 'no-expiry'))?.expiresAt).toBeNull();
    });
  });
});
