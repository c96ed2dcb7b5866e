import { effectiveMarginMs, isDueForRefresh } from '../../src/client/refresh-policy';
import { resolveRefreshSettings } from '../../src/client/refresh-settings';
import { nextRetryDelay, retryAfterMs, DEFAULT_RETRY } from '../../src/client/retry-policy';
import { createSingleFlight } from '../../src/client/single-flight';
import { parseConfig } from '../../src/config';
import { buildProviderRegistry, type Provider } from '../../src/providers/registry';
import type { Connection } from '../../src/store';

const NOW = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

describe('refresh policy', () => {
  const registry = buildProviderRegistry({ VIDEOASK_CLIENT_ID: 'id', VIDEOASK_CLIENT_SECRET: 'secret' });
  const videoask = registry.require('videoask') as Provider; // refreshMarginSeconds 300
  const webinargeek = registry.require('webinargeek') as Provider; // api_key
  const connection = (over: Partial<Connection>): Connection => ({
    provider: 'videoask',
    connectionId: 'c',
    authMode: 'oauth2',
    status: 'active',
    config: {},
    metadata: {},
    scopes: [],
    expiresAt: NOW + 60 * MINUTE,
    createdAt: NOW - 60 * MINUTE,
    updatedAt: NOW - 60 * MINUTE,
    lastRefreshedAt: null,
    account: null,
    version: 1,
    credentials: { accessToken: 'at', refreshToken: 'rt' },
    ...over,
  });

  it('is due within the margin, or without an access token, and not before', () => {
    expect(isDueForRefresh(videoask, connection({ expiresAt: NOW + 6 * MINUTE }), NOW)).toBe(false);
    expect(isDueForRefresh(videoask, connection({ expiresAt: NOW + 5 * MINUTE }), NOW)).toBe(true);
    expect(isDueForRefresh(videoask, connection({ credentials: { refreshToken: 'rt' } }), NOW)).toBe(true);
  });

  it('never refreshes a token without expires_in by time, nor an api_key credential', () => {
    expect(isDueForRefresh(videoask, connection({ expiresAt: null, updatedAt: 0 }), NOW + 1e12)).toBe(false);
    expect(isDueForRefresh(webinargeek, connection({ authMode: 'api_key', credentials: { apiKey: 'k' } }), NOW)).toBe(
      false,
    );
  });

  it('caps the margin at half the lifetime of a short-lived token', () => {
    const shortLived = connection({ lastRefreshedAt: NOW, expiresAt: NOW + 2 * MINUTE });
    expect(effectiveMarginMs(videoask, shortLived)).toBe(MINUTE);
    expect(isDueForRefresh(videoask, shortLived, NOW)).toBe(false);
    expect(isDueForRefresh(videoask, shortLived, NOW + MINUTE)).toBe(true);
  });
});

describe('refresh settings', () => {
  const config = (env: Record<string, string> = {}) =>
    parseConfig({ NODE_ENV: 'test', TOKEN_REQUEST_TIMEOUT_MS: '10000', ...env }).config;

  it('keeps the lock alive longer than a token request by default, and waits longer than both', () => {
    const s = resolveRefreshSettings(config());
    expect(s.lockTtlMs).toBeGreaterThan(s.tokenRequestTimeoutMs);
    expect(s.lockWaitMs).toBeGreaterThan(s.tokenRequestTimeoutMs + s.lockTtlMs);
  });

  it('takes REFRESH_LOCK_TTL_MS and REFRESH_COOLDOWN_MS, and explicit overrides over both', () => {
    const s = resolveRefreshSettings(config({ REFRESH_LOCK_TTL_MS: '700', REFRESH_COOLDOWN_MS: '250' }));
    expect(s).toMatchObject({ lockTtlMs: 700, cooldownMs: 250 });
    expect(resolveRefreshSettings(config({ REFRESH_LOCK_TTL_MS: '700' }), { lockTtlMs: 90 }).lockTtlMs).toBe(90);
  });
});

describe('retry policy', () => {
  const res = (status: number, retryAfter?: string) => ({
    status,
    headers: retryAfter ? { 'retry-after': retryAfter } : {},
  });
  const half = () => 0.5;

  it('backs off exponentially with jitter for idempotent methods', () => {
    expect(nextRetryDelay(res(503), 'GET', { attempt: 1, elapsedMs: 0 }, DEFAULT_RETRY, NOW, () => 1)).toBe(250);
    expect(nextRetryDelay(res(503), 'GET', { attempt: 2, elapsedMs: 0 }, DEFAULT_RETRY, NOW, () => 1)).toBe(500);
    expect(nextRetryDelay(res(429), 'PUT', { attempt: 1, elapsedMs: 0 }, DEFAULT_RETRY, NOW, () => 0)).toBe(125);
  });

  it('never retries a non-idempotent method, a status that will not change, or past the attempts', () => {
    expect(nextRetryDelay(res(503), 'POST', { attempt: 1, elapsedMs: 0 }, DEFAULT_RETRY, NOW, half)).toBeNull();
    expect(nextRetryDelay(res(503), 'PATCH', { attempt: 1, elapsedMs: 0 }, DEFAULT_RETRY, NOW, half)).toBeNull();
    expect(nextRetryDelay(res(501), 'GET', { attempt: 1, elapsedMs: 0 }, DEFAULT_RETRY, NOW, half)).toBeNull();
    expect(nextRetryDelay(res(404), 'GET', { attempt: 1, elapsedMs: 0 }, DEFAULT_RETRY, NOW, half)).toBeNull();
    expect(nextRetryDelay(res(503), 'GET', { attempt: 3, elapsedMs: 0 }, DEFAULT_RETRY, NOW, half)).toBeNull();
  });

  it('honours Retry-After in seconds or as a date, within the bounds', () => {
    expect(nextRetryDelay(res(429, '2'), 'GET', { attempt: 1, elapsedMs: 0 }, DEFAULT_RETRY, NOW, half)).toBe(2000);
    const date = new Date(NOW + 3000).toUTCString();
    expect(nextRetryDelay(res(503, date), 'GET', { attempt: 1, elapsedMs: 0 }, DEFAULT_RETRY, NOW, half)).toBe(3000);
    expect(nextRetryDelay(res(429, '60'), 'GET', { attempt: 1, elapsedMs: 0 }, DEFAULT_RETRY, NOW, half)).toBeNull();
    expect(
      nextRetryDelay(res(429, '2'), 'GET', { attempt: 1, elapsedMs: 14_000 }, DEFAULT_RETRY, NOW, half),
    ).toBeNull();
    expect(retryAfterMs('soon', NOW)).toBeUndefined();
  });
});

describe('single flight', () => {
  it('shares one run between concurrent callers of a key, and starts afresh after it settles', async () => {
    const flight = createSingleFlight<number>();
    let runs = 0;
    let release!: (n: number) => void;
    const work = () => {
      runs += 1;
      return new Promise<number>((resolve) => (release = resolve));
    };
    const a = flight.run('k', work);
    const b = flight.run('k', work);
    const other = flight.run('other', async () => 7);
    expect(flight.inFlight()).toEqual(['k', 'other']);
    release(42);
    expect(await Promise.all([a, b, other])).toEqual([42, 42, 7]);
    expect(runs).toBe(1);
    expect(flight.inFlight()).toEqual([]);
    const c = flight.run('k', work);
    release(43);
    expect(await c).toBe(43);
    expect(runs).toBe(2);
  });

  it('shares a failure too, and forgets it', async () => {
    const flight = createSingleFlight<number>();
    const failing = () => Promise.reject(new Error('boom'));
    await expect(Promise.all([flight.run('k', failing), flight.run('k', failing)])).rejects.toThrow('boom');
    expect(await flight.run('k', async () => 1)).toBe(1);
  });
});
