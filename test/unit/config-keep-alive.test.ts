import { ConfigError, parseConfig } from '../../src/config';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    parseConfig({ NODE_ENV: 'test', ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('KEEPALIVE and METRICS_TOKEN', () => {
  it('keeps connections alive by default, and KEEPALIVE=false (or 0) switches it off; empty is unset', () => {
    expect(parseConfig({ NODE_ENV: 'test' }).config.keepAlive).toBe(true);
    expect(parseConfig({ NODE_ENV: 'test', KEEPALIVE: '' }).config.keepAlive).toBe(true);
    expect(parseConfig({ NODE_ENV: 'test', KEEPALIVE: 'false' }).config.keepAlive).toBe(false);
    expect(parseConfig({ NODE_ENV: 'test', KEEPALIVE: '0' }).config.keepAlive).toBe(false);
    expect(problemsOf({ KEEPALIVE: 'sometimes' })).toEqual(['KEEPALIVE must be true or false, got "sometimes"']);
  });

  it('takes a METRICS_TOKEN of 16 characters or more, and never shows a refused one', () => {
    expect(parseConfig({ NODE_ENV: 'test' }).config.metricsToken).toBeUndefined();
    expect(parseConfig({ NODE_ENV: 'test', METRICS_TOKEN: ' ' }).config.metricsToken).toBeUndefined();
    expect(parseConfig({ NODE_ENV: 'test', METRICS_TOKEN: 'scrape-0123456789abcdef' }).config.metricsToken).toBe(
      'scrape-0123456789abcdef',
    );
    const problems = problemsOf({ METRICS_TOKEN: 'short-secret' });
    expect(problems).toEqual(['METRICS_TOKEN must have at least 16 characters']);
  });
});
