import { isAppError } from '../../src/errors';
import { parseApiBase, resolveTargetPath } from '../../src/providers/api-target';

const root = parseApiBase('https://api.videoask.com');
const v1 = parseApiBase('https://api.livestorm.co/v1/');

function refusal(base: ReturnType<typeof parseApiBase>, rest: string): string | undefined {
  try {
    resolveTargetPath(base, rest);
    return undefined;
  } catch (err) {
    return isAppError(err) ? err.code : String(err);
  }
}

describe('resolveTargetPath', () => {
  it('joins the path and query under the base path', () => {
    expect(resolveTargetPath(root, '/forms?limit=10&offset=0')).toBe('/forms?limit=10&offset=0');
    expect(resolveTargetPath(v1, '/events/abc?include=sessions')).toBe('/v1/events/abc?include=sessions');
    expect(resolveTargetPath(v1, '')).toBe('/v1/');
    expect(resolveTargetPath(v1, '?page=2')).toBe('/v1/?page=2');
  });

  it('keeps ordinary encodings and @ past the first segment as they are', () => {
    expect(resolveTargetPath(root, '/search/a%20b%3Fc')).toBe('/search/a%20b%3Fc');
    expect(resolveTargetPath(root, '/users/someone@example.com')).toBe('/users/someone@example.com');
  });

  it.each([
    ['//evil.example', 'a protocol-relative authority'],
    ['//evil.example/forms', 'a protocol-relative authority with a path'],
    ['/forms//x', 'an empty segment'],
    ['/@evil.example', 'userinfo-looking first segment'],
    ['/%40evil.example/x', 'encoded @ in the first segment'],
    ['/..%2fadmin', 'an encoded slash'],
    ['/..%2Fadmin', 'an encoded slash, upper case'],
    ['/%2e%2e/admin', 'encoded dots'],
    ['/%2E%2E/admin', 'encoded dots, upper case'],
    ['/.%2e/admin', 'half-encoded dots'],
    ['/forms/%5c..%5cadmin', 'encoded backslashes'],
    ['/forms/%5C', 'an encoded backslash, upper case'],
    ['/forms\\..\\admin', 'backslashes'],
    ['/../admin', 'a dot-dot segment'],
    ['/forms/../../admin', 'dot-dot segments'],
    ['/./forms', 'a dot segment'],
    ['/forms#frag', 'a fragment'],
    ['http://evil.example/forms', 'an absolute URL'],
    ['https:evil.example', 'a scheme without a leading slash'],
  ])('refuses %s (%s)', (rest) => {
    expect(refusal(root, rest)).toBe('invalid_request');
    expect(refusal(v1, rest)).toBe('invalid_request');
  });

  it('never lets a path under a base path climb out of it', () => {
    expect(refusal(v1, '/../v2/events')).toBe('invalid_request');
    expect(refusal(v1, '/..')).toBe('invalid_request');
  });
});
