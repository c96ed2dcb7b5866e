import { AUTHORIZATION_ERROR_CODES, authorizationErrorCode } from '../../src/connect/flow-errors';
import { ERROR_STATUS } from '../../src/errors';
import { errorTextFor, renderConnectPage, renderErrorPage } from '../../src/public/pages';
import type { Provider } from '../../src/providers/registry';

describe("a provider's error value on its way back to the host application", () => {
  it.each(AUTHORIZATION_ERROR_CODES.map((c) => [c]))('keeps RFC 6749 §4.1.2.1 code %s as it is', (code) => {
    expect(authorizationErrorCode(code)).toBe(code);
  });

  it.each([
    'login_required',
    'interaction_required',
    'invalid_grant',
    'ACCESS_DENIED',
    ' server_error',
    'server_error\n',
    'access_denied%20',
    'toString',
    '__proto__',
    'constructor',
    '',
    '"><script>',
  ])('makes %j server_error', (raw) => {
    expect(authorizationErrorCode(raw)).toBe('server_error');
  });
});

describe('what a person reads about a link that cannot be used', () => {
  it('link_expired is 410', () => {
    expect(ERROR_STATUS.link_expired).toBe(410);
  });

  it('tells an expired link, a used one, no link and a link for another service apart', () => {
    const titles = [
      errorTextFor('link_expired').title,
      errorTextFor('link_expired', 'expired').title,
      errorTextFor('link_expired', 'used').title,
      errorTextFor('invalid_request', 'missing').title,
      errorTextFor('invalid_request', 'other_provider').title,
    ];
    expect(titles).toEqual([
      'This connect link has expired',
      'This connect link has expired',
      'This connect link was already used',
      'Connect from your application',
      'This connect link is for another service',
    ]);
  });

  it('ignores a reason that does not belong to the code', () => {
    expect(errorTextFor('provider_error', 'used')).toEqual(errorTextFor('provider_error'));
    expect(errorTextFor('invalid_request', 'toString')).toEqual(errorTextFor('invalid_request'));
  });

  it('never calls a connect link problem an API-key problem', () => {
    expect(errorTextFor('link_expired').title).not.toMatch(/API key/);
    expect(errorTextFor('unauthorized').title).not.toMatch(/link/);
  });

  it('renders the reason on the page, with the code', () => {
    const html = renderErrorPage('link_expired', 'This connect link was already used.', '', { reason: 'used' });
    expect(html).toContain('<h1 id="error-title">This connect link was already used</h1>');
    expect(html).toContain('<code class="code" id="error-code">link_expired</code>');
  });
});

describe('the Connect page', () => {
  const providers = [
    { id: 'videoask', displayName: 'VideoAsk', authMode: 'oauth2' },
    { id: 'webinargeek', displayName: 'WebinarGeek', authMode: 'api_key' },
  ] as unknown as Provider[];
  const model = { providers, connections: [], basePath: '/lk', now: Date.now() };

  it('without anonymous connect has no button or link that starts a flow', () => {
    const html = renderConnectPage({ ...model, anonymousConnect: false });
    expect(html).not.toContain('/auth/');
    expect(html).not.toContain('class="button');
    expect(html).toContain('VideoAsk');
    expect(html).toContain('WebinarGeek');
    expect(html).toContain('Connections are started from your application');
  });

  it('with anonymous connect has one button per provider', () => {
    const html = renderConnectPage({ ...model, anonymousConnect: true });
    expect(html).toContain('href="/lk/auth/videoask"');
    expect(html).toContain('href="/lk/auth/webinargeek"');
    expect(html).not.toContain('Connections are started from your application');
  });
});
