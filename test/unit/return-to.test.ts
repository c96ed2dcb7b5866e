import { allowedOrigin, resolveReturnTo, withResult } from '../../src/connect/return-to';

const policy = {
  publicUrl: 'https://connect.example.com',
  publicOrigin: 'https://connect.example.com',
  allowedReturnOrigins: ['https://connect.example.com', 'https://app.example.com'],
};

describe('return_to', () => {
  it('defaults to the Connect page on PUBLIC_URL', () => {
    expect(resolveReturnTo(undefined, policy)).toBe('https://connect.example.com/');
  });

  it('takes a path on PUBLIC_URL, under its base path when it has one', () => {
    expect(resolveReturnTo('/done?x=1', policy)).toBe('https://connect.example.com/done?x=1');
    const based = { ...policy, publicUrl: 'https://connect.example.com/latchkey' };
    expect(resolveReturnTo('/', based)).toBe('https://connect.example.com/latchkey/');
  });

  it('keeps encoded control characters encoded, so they cannot split a header', () => {
    expect(resolveReturnTo('/%0d%0aSet-Cookie:x', policy)).toBe('https://connect.example.com/%0d%0aSet-Cookie:x');
  });

  it('takes an absolute URL on an allowed origin', () => {
    expect(resolveReturnTo('https://app.example.com/settings', policy)).toBe('https://app.example.com/settings');
  });

  it.each([
    'https://app.example.com.evil.com/',
    'https://evil.com/https://app.example.com',
    '//evil.com',
    '/\\evil.com',
    '\\\\evil.com',
    'javascript:alert(1)',
    'data:text/html,hi',
    'http://app.example.com/',
    'https://user@app.example.com/',
    'https://app.example.com:444/',
    '/ok\nnext',
  ])('refuses %s', (bad) => {
    expect(() => resolveReturnTo(bad, policy)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });

  it('accepts only exact allowed origins for postMessage', () => {
    expect(allowedOrigin('https://app.example.com', policy)).toBe('https://app.example.com');
    expect(allowedOrigin('https://app.example.com/', policy)).toBe('https://app.example.com');
    expect(allowedOrigin('https://app.example.com/path', policy)).toBeUndefined();
    expect(allowedOrigin('*', policy)).toBeUndefined();
    expect(allowedOrigin('https://evil.com', policy)).toBeUndefined();
    expect(allowedOrigin(undefined, policy)).toBeUndefined();
  });

  it('adds the result to return_to and keeps its own query', () => {
    expect(withResult('https://app.example.com/s?tab=2', { status: 'connected', provider: 'videoask' })).toBe(
      'https://app.example.com/s?tab=2&status=connected&provider=videoask',
    );
  });
});
