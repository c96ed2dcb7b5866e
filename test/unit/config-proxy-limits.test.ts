import { ConfigError, parseConfig } from '../../src/config';

describe('PROXY_MAX_CONCURRENCY_PER_KEY, PROXY_MAX_SOCKETS_PER_ORIGIN, PROXY_CALLER_STALL_MS', () => {
  it('default to 64 calls per key, 128 sockets per origin, and a stall bound equal to the upstream timeout', () => {
    const { config } = parseConfig({});
    expect(config.proxyMaxConcurrencyPerKey).toBe(64);
    expect(config.proxyMaxSocketsPerOrigin).toBe(128);
    expect(config.proxyCallerStallMs).toBe(config.upstreamTimeoutMs);
    expect(parseConfig({ UPSTREAM_TIMEOUT_MS: '5000', PROXY_CALLER_STALL_MS: '' }).config.proxyCallerStallMs).toBe(
      5000,
    );
  });

  it('read explicit values, 0 switching the per-key cap off', () => {
    const { config } = parseConfig({
      PROXY_MAX_CONCURRENCY_PER_KEY: '0',
      PROXY_MAX_SOCKETS_PER_ORIGIN: '16',
      PROXY_CALLER_STALL_MS: '2500',
    });
    expect(config.proxyMaxConcurrencyPerKey).toBe(0);
    expect(config.proxyMaxSocketsPerOrigin).toBe(16);
    expect(config.proxyCallerStallMs).toBe(2500);
  });

  it('warns at start-up when one key may hold every socket of an origin', () => {
    const warned = (env: Record<string, string>) =>
      parseConfig(env).warnings.some((w) => w.startsWith('PROXY_MAX_CONCURRENCY_PER_KEY'));
    expect(warned({})).toBe(false);
    expect(warned({ PROXY_MAX_CONCURRENCY_PER_KEY: '127' })).toBe(false);
    expect(warned({ PROXY_MAX_CONCURRENCY_PER_KEY: '128' })).toBe(true);
    expect(warned({ PROXY_MAX_CONCURRENCY_PER_KEY: '0' })).toBe(true);
    expect(warned({ PROXY_MAX_SOCKETS_PER_ORIGIN: '32' })).toBe(true);
  });

  it('refuses values out of range, naming every variable at once', () => {
    let problems: string[] = [];
    try {
      parseConfig({
        PROXY_MAX_CONCURRENCY_PER_KEY: '-1',
        PROXY_MAX_SOCKETS_PER_ORIGIN: '0',
        PROXY_CALLER_STALL_MS: 'soon',
      });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    for (const name of ['PROXY_MAX_CONCURRENCY_PER_KEY', 'PROXY_MAX_SOCKETS_PER_ORIGIN', 'PROXY_CALLER_STALL_MS']) {
      expect(problems.some((p) => p.startsWith(name))).toBe(true);
    }
  });
});
