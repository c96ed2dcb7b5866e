import { buildAuthorizationUrl } from '../../src/oauth/authorization-url';
import { createPkcePair, s256 } from '../../src/oauth/pkce';
import { buildProviderRegistry, type OAuth2Provider } from '../../src/providers/registry';

const videoask = buildProviderRegistry({ VIDEOASK_CLIENT_ID: 'cid', VIDEOASK_CLIENT_SECRET: 'cs' }).require(
  'videoask',
) as OAuth2Provider;

describe('the authorization URL', () => {
  it('carries the provider parameters, scopes and the exact redirect_uri', () => {
    const url = new URL(
      buildAuthorizationUrl(videoask, { state: 'st', redirectUri: 'https://lk.example.com/callback' }),
    );
    expect(url.origin + url.pathname).toBe('https://auth.videoask.com/authorize');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      audience: 'https://api.videoask.com/',
      response_type: 'code',
      client_id: 'cid',
      redirect_uri: 'https://lk.example.com/callback',
      scope: 'openid profile email offline_access',
      state: 'st',
    });
  });

  it('lets no catalog parameter override a protocol one', () => {
    const sneaky = {
      ...videoask,
      authorizationParams: { redirect_uri: 'https://evil.example/cb', state: 'x', response_type: 'token' },
    };
    const url = new URL(buildAuthorizationUrl(sneaky, { state: 'st', redirectUri: 'https://lk.example.com/callback' }));
    expect(url.searchParams.getAll('redirect_uri')).toEqual(['https://lk.example.com/callback']);
    expect(url.searchParams.getAll('state')).toEqual(['st']);
    expect(url.searchParams.get('response_type')).toBe('code');
  });

  it('sends an S256 challenge, never plain', () => {
    const pkce = createPkcePair();
    const url = new URL(
      buildAuthorizationUrl(videoask, { state: 's', redirectUri: 'https://x/callback', codeChallenge: pkce.challenge }),
    );
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toBe(s256(pkce.verifier));
    expect(pkce.verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('computes S256 as RFC 7636 appendix B does', () => {
    expect(s256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });
});
