import { randomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * The environment of `../shared/CONTRACT.md`, parsed once at start-up. Every problem is
 * collected, so an operator fixes them all in one go instead of one restart per mistake.
 */

export interface EncryptionKey {
  id: string;
  key: Buffer;
}

export interface Config {
  port: number;
  publicUrl: string;
  publicOrigin: string;
  redirectUri: string;
  nodeEnv: 'development' | 'production' | 'test';
  isProduction: boolean;
  redisUrl?: string;
  redisClusterNodes?: Array<{ host: string; port: number }>;
  redisSentinels?: Array<{ host: string; port: number }>;
  redisSentinelName?: string;
  redisKeyPrefix: string;
  sessionSecrets: string[];
  tokenEncryptionKeys: EncryptionKey[];
  connectorApiKeys: string[];
  allowAnonymousConnect: boolean;
  allowedReturnOrigins: string[];
  trustProxy: false | number | string;
  providersFile?: string;
  webhookUrl?: string;
  webhookSecret?: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Largest request body the proxy accepts (and buffers for a retry after a 401). */
  proxyBodyLimitBytes: number;
  /**
   * Time the proxy waits for the provider's response headers, counted from the call's arrival
   * (queueing for a socket and `Latchkey-Retries` waits included), and for each silence in its body.
   */
  upstreamTimeoutMs: number;
  /**
   * A caller that leaves a proxied answer unread this long (its socket full) is cut off and the
   * provider's answer aborted, freeing the pooled socket. Default: the upstream timeout.
   */
  proxyCallerStallMs: number;
  /** Proxied calls in flight per API key on one instance; over it, 429. 0: no cap. */
  proxyMaxConcurrencyPerKey: number;
  /** Sockets per provider origin on one instance; calls beyond wait within their deadline. */
  proxyMaxSocketsPerOrigin: number;
  /** Timeout of a token request; the refresh lock lives longer than this. */
  tokenRequestTimeoutMs: number;
  /** Requests per minute per client IP on /auth and /callback. */
  rateLimitPerMinute: number;
  /** Requests per minute per API key on the service API (the proxy included). */
  serviceRateLimitPerMinute: number;
  /** Bound on the graceful shutdown. */
  shutdownTimeoutMs: number;
  /** TTL of a connection's refresh lock; unset: the token request timeout + 5 s. */
  refreshLockTtlMs?: number;
  /** After a failed token request, calls answer 502 at once for this long. */
  refreshCooldownMs: number;
  /**
   * While the store is unreachable, the proxy keeps serving credentials it holds in memory that
   * have not expired (no refresh, nothing written, the rate limit counted locally); false: 503.
   */
  degradedMode: boolean;
  /** Raw environment, for the per-provider `<ID>_CLIENT_ID` / `_CLIENT_SECRET` / `_SCOPES`. */
  env: Readonly<Record<string, string | undefined>>;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const emptyToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optionalString = z.preprocess(emptyToUndefined, z.string().optional());
const list = z.preprocess(
  emptyToUndefined,
  z
    .string()
    .optional()
    .transform((s) =>
      s
        ? s
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean)
        : [],
    ),
);
const bool = (fallback?: boolean) =>
  z
    .preprocess(emptyToUndefined, z.enum(['true', 'false', '1', '0']).optional())
    .transform((v) => (v === undefined ? fallback : v === 'true' || v === '1'));
const intWithin = (min: number, max: number, fallback: number) =>
  z.preprocess(emptyToUndefined, z.coerce.number().int().min(min).max(max).default(fallback));

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port');

const envSchema = z.object({
  PORT: intWithin(0, 65535, 3000),
  PUBLIC_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/ }).default('http://localhost:3000')),
  NODE_ENV: z.preprocess(emptyToUndefined, z.enum(['development', 'production', 'test']).default('development')),
  REDIS_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^rediss?$/ }).optional()),
  REDIS_CLUSTER_NODES: list.pipe(z.array(hostPort)),
  REDIS_SENTINELS: list.pipe(z.array(hostPort)),
  REDIS_SENTINEL_NAME: optionalString,
  REDIS_KEY_PREFIX: z.preprocess(emptyToUndefined, z.string().max(64).default('latchkey:')),
  SESSION_SECRET: list.pipe(z.array(z.string().min(16, 'each secret needs at least 16 characters'))),
  TOKEN_ENCRYPTION_KEYS: list,
  CONNECTOR_API_KEYS: list.pipe(z.array(z.string().min(16, 'each API key needs at least 16 characters'))),
  ALLOW_ANONYMOUS_CONNECT: bool(),
  ALLOWED_RETURN_ORIGINS: list,
  TRUST_PROXY: optionalString,
  PROVIDERS_FILE: optionalString,
  WEBHOOK_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/ }).optional()),
  WEBHOOK_SECRET: optionalString,
  LOG_LEVEL: z.preprocess(
    emptyToUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  PROXY_BODY_LIMIT_BYTES: intWithin(1, 1024 * 1024 * 1024, 10 * 1024 * 1024),
  UPSTREAM_TIMEOUT_MS: intWithin(1, 600_000, 30_000),
  PROXY_CALLER_STALL_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(1).max(600_000).optional()),
  // Below the sockets per origin, so one key's stalled calls leave room on any origin for the others.
  PROXY_MAX_CONCURRENCY_PER_KEY: intWithin(0, 1_000_000, 64),
  PROXY_MAX_SOCKETS_PER_ORIGIN: intWithin(1, 100_000, 128),
  TOKEN_REQUEST_TIMEOUT_MS: intWithin(100, 120_000, 10_000),
  RATE_LIMIT_PER_MINUTE: intWithin(0, 10_000_000, 600),
  SERVICE_RATE_LIMIT_PER_MINUTE: intWithin(0, 100_000_000, 60_000),
  SHUTDOWN_TIMEOUT_MS: intWithin(0, 600_000, 10_000),
  REFRESH_LOCK_TTL_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(50).max(600_000).optional()),
  REFRESH_COOLDOWN_MS: intWithin(0, 600_000, 5000),
  DEGRADED_MODE: bool(true),
});

export interface ParsedConfig {
  config: Readonly<Config>;
  warnings: string[];
}

/** Parses the environment; throws a {@link ConfigError} listing every problem at once. */
export function parseConfig(env: Record<string, string | undefined>): ParsedConfig {
  const problems: string[] = [];
  const warnings: string[] = [];
  const { e, invalid } = parseEnv(env, problems);
  const isProduction = e.NODE_ENV === 'production';
  const publicUrl = e.PUBLIC_URL.replace(/\/+$/, '');
  const publicOrigin = new URL(publicUrl).origin;

  // A variable the schema refused is reported already: it is not also "missing" below.
  const hasStore = Boolean(
    e.REDIS_URL ||
    e.REDIS_CLUSTER_NODES.length ||
    e.REDIS_SENTINELS.length ||
    ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'].some((name) => invalid.has(name)),
  );
  if ((e.REDIS_SENTINELS.length || invalid.has('REDIS_SENTINELS')) && !e.REDIS_SENTINEL_NAME) {
    problems.push('REDIS_SENTINEL_NAME: required when REDIS_SENTINELS is set');
  }
  if (isProduction && !hasStore) {
    problems.push('REDIS_URL: required in production (the in-memory store loses every credential on restart)');
  } else if (!hasStore) {
    warnings.push('REDIS_URL is not set: using the in-memory store; credentials are lost on restart');
  }

  let sessionSecrets = e.SESSION_SECRET;
  if (!sessionSecrets.length && !invalid.has('SESSION_SECRET')) {
    if (isProduction) problems.push('SESSION_SECRET: required in production');
    else {
      warnings.push('SESSION_SECRET is not set: using a random one; browser sessions end on restart');
      sessionSecrets = [randomBytes(32).toString('base64url')];
    }
  }

  let tokenEncryptionKeys = parseEncryptionKeys(e.TOKEN_ENCRYPTION_KEYS, problems);
  if (!e.TOKEN_ENCRYPTION_KEYS.length) {
    if (isProduction) problems.push('TOKEN_ENCRYPTION_KEYS: required in production');
    else {
      warnings.push(
        'TOKEN_ENCRYPTION_KEYS is not set: using a random key; stored credentials are unreadable after restart',
      );
      tokenEncryptionKeys = [{ id: 'dev', key: randomBytes(32) }];
    }
  }

  if (isProduction && !e.CONNECTOR_API_KEYS.length && !invalid.has('CONNECTOR_API_KEYS')) {
    problems.push('CONNECTOR_API_KEYS: required in production');
  }
  if ((e.WEBHOOK_URL || invalid.has('WEBHOOK_URL')) && !e.WEBHOOK_SECRET)
    problems.push('WEBHOOK_SECRET: required when WEBHOOK_URL is set');
  if (isProduction && e.WEBHOOK_SECRET && e.WEBHOOK_SECRET.length < 16) {
    problems.push('WEBHOOK_SECRET: needs at least 16 characters');
  }

  // PUBLIC_URL's own origin is always allowed: return_to may be a path on it (the Connect page).
  const allowedReturnOrigins = [publicOrigin];
  for (const [i, raw] of e.ALLOWED_RETURN_ORIGINS.entries()) {
    const origin = parseOrigin(raw);
    if (!origin) problems.push(`ALLOWED_RETURN_ORIGINS (item ${i + 1}): "${raw}" is not an http(s) origin`);
    else if (!allowedReturnOrigins.includes(origin)) allowedReturnOrigins.push(origin);
  }
  const trustProxy = parseTrustProxy(e.TRUST_PROXY, problems);

  if (problems.length) throw new ConfigError(problems);

  const config: Config = {
    port: e.PORT,
    publicUrl,
    publicOrigin,
    redirectUri: `${publicUrl}/callback`,
    nodeEnv: e.NODE_ENV,
    isProduction,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES.length ? e.REDIS_CLUSTER_NODES.map(splitHostPort) : undefined,
    redisSentinels: e.REDIS_SENTINELS.length ? e.REDIS_SENTINELS.map(splitHostPort) : undefined,
    redisSentinelName: e.REDIS_SENTINEL_NAME,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    sessionSecrets,
    tokenEncryptionKeys,
    connectorApiKeys: e.CONNECTOR_API_KEYS,
    allowAnonymousConnect: e.ALLOW_ANONYMOUS_CONNECT ?? !isProduction,
    allowedReturnOrigins,
    trustProxy,
    providersFile: e.PROVIDERS_FILE,
    webhookUrl: e.WEBHOOK_URL,
    webhookSecret: e.WEBHOOK_SECRET,
    logLevel: e.LOG_LEVEL,
    proxyBodyLimitBytes: e.PROXY_BODY_LIMIT_BYTES,
    upstreamTimeoutMs: e.UPSTREAM_TIMEOUT_MS,
    proxyCallerStallMs: e.PROXY_CALLER_STALL_MS ?? e.UPSTREAM_TIMEOUT_MS,
    proxyMaxConcurrencyPerKey: e.PROXY_MAX_CONCURRENCY_PER_KEY,
    proxyMaxSocketsPerOrigin: e.PROXY_MAX_SOCKETS_PER_ORIGIN,
    tokenRequestTimeoutMs: e.TOKEN_REQUEST_TIMEOUT_MS,
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
    serviceRateLimitPerMinute: e.SERVICE_RATE_LIMIT_PER_MINUTE,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    refreshLockTtlMs: e.REFRESH_LOCK_TTL_MS,
    refreshCooldownMs: e.REFRESH_COOLDOWN_MS,
    degradedMode: e.DEGRADED_MODE ?? true,
    env: Object.freeze({ ...env }),
  };
  return { config: Object.freeze(config), warnings };
}

/**
 * Runs the schema, recording its problems. An invalid variable falls back to its unset value
 * (and is named in `invalid`), so the checks that follow still run and every problem is listed.
 */
function parseEnv(
  env: Record<string, string | undefined>,
  problems: string[],
): { e: z.output<typeof envSchema>; invalid: Set<string> } {
  const parsed = envSchema.safeParse(env);
  if (parsed.success) return { e: parsed.data, invalid: new Set() };
  const invalid = new Set<string>();
  for (const issue of parsed.error.issues) {
    const name = String(issue.path[0] ?? 'environment');
    const detail = issue.path.length > 1 ? ` (item ${Number(issue.path[1]) + 1})` : '';
    problems.push(`${name}${detail}: ${issue.message}`);
    invalid.add(name);
  }
  const fallback = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([name]) => !invalid.has(name))));
  if (!fallback.success) throw new ConfigError(problems);
  return { e: fallback.data, invalid };
}

function parseEncryptionKeys(items: string[], problems: string[]): EncryptionKey[] {
  const keys: EncryptionKey[] = [];
  items.forEach((item, i) => {
    const where = `TOKEN_ENCRYPTION_KEYS (item ${i + 1})`;
    const sep = item.indexOf(':');
    const id = sep > 0 ? item.slice(0, sep) : '';
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) {
      problems.push(`${where}: must be keyId:base64(32 bytes), with a keyId of letters, digits, _ or -`);
      return;
    }
    const key = Buffer.from(item.slice(sep + 1), 'base64');
    if (key.length !== 32) {
      problems.push(`${where}: key "${id}" must decode to 32 bytes (got ${key.length})`);
      return;
    }
    if (keys.some((k) => k.id === id)) {
      problems.push(`${where}: key id "${id}" appears twice`);
      return;
    }
    keys.push({ id, key });
  });
  return keys;
}

function parseOrigin(raw: string): string | undefined {
  try {
    const url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

function parseTrustProxy(raw: string | undefined, problems: string[]): false | number | string {
  if (raw === undefined || raw === 'false' || raw === '0') return false;
  if (raw === 'true') {
    problems.push('TRUST_PROXY: "true" trusts every hop and lets clients forge their IP; give a hop count or a list');
    return false;
  }
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw;
}

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}
