import axios from 'axios';
import { createServer, type AddressInfo } from 'node:net';
import nock from 'nock';
import { basicAuthorization, exchangeCode, refreshTokenGrant, TokenEndpointError } from '../../src/oauth/token-client';
import { parseTokenResponse } from '../../src/oauth/token-response';
import type { OAuth2Provider } from '../../src/providers/registry';
import { useStrictNock } from '../helpers/strict-nock';

/** What token-client reads of a provider (the registry's compiled templates play no part here). */
const provider = (over: Partial<OAuth2Provider> = {}): OAuth2Provider =>
  ({
    id: 'acme',
    displayName: 'Acme',
    authMode: 'oauth2',
    authorizationUrl: 'https://auth.acme.test/authorize',
    tokenUrl: 'https://auth.acme.test/oauth/token',
    revocationUrl: null,
    scopes: ['read'],
    scopeSeparator: ' ',
    authorizationParams: {},
    pkce: false,
    tokenRequest: { bodyFormat: 'form', clientAuth: 'body' },
    issuer: null,
    apiBaseUrl: 'https://api.acme.test',
    apiHeaders: {},
    refreshMarginSeconds: 300,
    verified: true,
    accountInfo: null,
    clientId: 'client id',
    clientSecret: 'se+cr/et=',
    enabled: true,
    ...over,
  }) as OAuth2Provider;

const deps = { http: axios.create(), timeoutMs: 2000, now: () => 1_000_000 };

/** A loopback port nobody listens on: a server takes it, then closes, so a connection to it is refused. */
function closedLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

useStrictNock();

describe('token requests', () => {
  it('sends a form body with client_secret_post', async () => {
    nock('https://auth.acme.test')
      .post(
        '/oauth/token',
        'grant_type=authorization_code&code=c1&redirect_uri=https%3A%2F%2Flk.test%2Fcallback&client_id=client+id&client_secret=se%2Bcr%2Fet%3D',
      )
      .matchHeader('content-type', 'application/x-www-form-urlencoded')
      .reply(200, {
        access_token: 'at',
        token_type: 'bearer',
        expires_in: 60,
        refresh_token: 'rt',
        scope: 'read write',
      });
    const tokens = await exchangeCode(provider(), { code: 'c1', redirectUri: 'https://lk.test/callback' }, deps);
    expect(tokens).toEqual({
      accessToken: 'at',
      tokenType: 'Bearer',
      expiresAt: 1_060_000,
      refreshToken: 'rt',
      scopes: ['read', 'write'],
      idToken: undefined,
    });
  });

  it('sends a JSON body with HTTP Basic, the id and secret form-encoded before base64 (RFC 6749 §2.3.1)', async () => {
    const expected = `Basic ${Buffer.from('client+id:se%2Bcr%2Fet%3D').toString('base64')}`;
    expect(basicAuthorization('client id', 'se+cr/et=')).toBe(expected);
    nock('https://auth.acme.test')
      .post('/oauth/token', { grant_type: 'refresh_token', refresh_token: 'rt-1' })
      .matchHeader('authorization', expected)
      .matchHeader('content-type', 'application/json')
      .reply(200, { access_token: 'at2' });
    const tokens = await refreshTokenGrant(
      provider({ tokenRequest: { bodyFormat: 'json', clientAuth: 'basic' } }),
      'rt-1',
      deps,
    );
    expect(tokens.accessToken).toBe('at2');
    expect(tokens.expiresAt).toBeNull();
    expect(tokens.refreshToken).toBeUndefined();
  });

  it('sends the PKCE verifier with the code', async () => {
    nock('https://auth.acme.test')
      .post('/oauth/token', (body) => body.code_verifier === 'v'.repeat(43))
      .reply(200, { access_token: 'at' });
    await exchangeCode(
      provider(),
      { code: 'c', redirectUri: 'https://lk.test/callback', codeVerifier: 'v'.repeat(43) },
      deps,
    );
  });

  it('turns an OAuth error answer into a TokenEndpointError keeping error and description', async () => {
    nock('https://auth.acme.test')
      .post('/oauth/token')
      .reply(400, { error: 'invalid_grant', error_description: 'Unknown refresh token' });
    const err = await refreshTokenGrant(provider(), 'rt', deps).catch((e) => e);
    expect(err).toBeInstanceOf(TokenEndpointError);
    expect(err.oauthError).toBe('invalid_grant');
    expect(err.code).toBe('provider_error');
    expect(err.provider).toEqual({ error: 'invalid_grant', description: 'Unknown refresh token', status: 400 });
  });

  it('answers provider_error with Retry-After on a 5xx, and never leaks the secret in the error', async () => {
    nock('https://auth.acme.test').post('/oauth/token').reply(503, 'down', { 'Retry-After': '7' });
    const err = await refreshTokenGrant(provider(), 'rt-secret', deps).catch((e) => e);
    expect(err.code).toBe('provider_error');
    expect(err.retryAfter).toBe(7);
    expect(JSON.stringify(err)).not.toContain('se+cr');
    expect(String(err.message)).not.toContain('rt-secret');
  });

  it('answers provider_error on a network failure, with a cause stripped of the request config', async () => {
    // An Error, not a plain object: nock 14 emits only an Error on the socket, and a plain object
    // left the request hanging until the 2 s timeout, so this case used to test the timeout path.
    nock('https://auth.acme.test')
      .post('/oauth/token')
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    const err = await refreshTokenGrant(
      provider({ tokenRequest: { bodyFormat: 'form', clientAuth: 'basic' } }),
      'rt',
      deps,
    ).catch((e) => e);
    expect(err.code).toBe('provider_error');
    expect(err.message).toBe("The provider's token endpoint is unreachable");
    expect(err.retryAfter).toBe(5);
    // The socket's error, not axios's ECONNABORTED of a timeout.
    expect(err.cause).toMatchObject({ code: 'ECONNRESET', message: 'socket hang up' });
    expect(Object.keys(err.cause)).not.toContain('config');
    expect(JSON.stringify(err.cause ?? {})).not.toContain('Basic');
  });

  it('answers provider_error on a refused connection at once, not after the timeout', async () => {
    const refusing = await closedLoopbackPort();
    const err = await refreshTokenGrant(provider({ tokenUrl: `http://127.0.0.1:${refusing}/oauth/token` }), 'rt', {
      ...deps,
      timeoutMs: 60_000,
    }).catch((e) => e);
    expect(err.code).toBe('provider_error');
    expect(err.message).toBe("The provider's token endpoint is unreachable");
    expect(err.cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses a 200 that is not JSON', async () => {
    nock('https://auth.acme.test').post('/oauth/token').reply(200, '<html>');
    await expect(refreshTokenGrant(provider(), 'rt', deps)).rejects.toMatchObject({ code: 'provider_error' });
  });
});

describe('token response parsing', () => {
  it('coerces expires_in given as a string', () => {
    expect(parseTokenResponse({ access_token: 'a', expires_in: '3600' }, 0).expiresAt).toBe(3_600_000);
  });

  it('treats a missing or null expires_in as unknown expiry', () => {
    expect(parseTokenResponse({ access_token: 'a' }, 0).expiresAt).toBeNull();
    expect(parseTokenResponse({ access_token: 'a', expires_in: null }, 0).expiresAt).toBeNull();
  });

  it.each([
    [{}, 'access_token'],
    [{ access_token: '' }, 'access_token'],
    [{ access_token: 'a', expires_in: 'soon' }, 'expires_in'],
    [{ access_token: 'a', expires_in: -5 }, 'expires_in'],
    ['a string', 'body'],
  ])('fails with provider_error naming the field for %j', (body, field) => {
    expect(() => parseTokenResponse(body, 0)).toThrow(
      expect.objectContaining({ code: 'provider_error', message: expect.stringContaining(field) }),
    );
  });

  it('never puts token values into the parse error', () => {
    try {
      parseTokenResponse({ access_token: 'secret-at-123', expires_in: 'x' }, 0);
      throw new Error('should have thrown');
    } catch (err) {
      expect((err as Error).message).not.toContain('secret-at-123');
    }
  });
});
