import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import {
  isLoopbackHost,
  looksLikePlaceholder,
  parseListenHost,
  parseReturnOrigin,
  parseTrustProxy,
  schemeOf,
  shown,
} from './config-checks';
import { connectorApiKeyEntries } from './guards/api-keys';
import { readApiKeysFile } from './guards/api-keys-file';
import {
  buildProviderRegistry,
  ProviderConfigError,
  providerEnvPrefix,
  readProvidersFile,
  type ProviderRegistry,
} from './providers/registry';

/**
 * The environment of `../shared/CONTRACT.md`, parsed once at start-up. Every problem is
 * collected, so an operator fixes them all in one go instead of one restart per mistake.
 */

export interface EncryptionKey {
  id: string;
  key: Buffer;
}

/** Where Latchkey listens unless HOST says otherwise: loopback only (SECURITY.md 25). */
export const DEFAULT_HOST = '127.0.0.1';

export interface Config {
  port: number;
  /** The address the server listens on (HOST): loopback unless configured otherwise, never guessed. */
  host: string;
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
  /** Scoped, hashed service API keys (API_KEYS_FILE), read at start and on SIGHUP. */
  apiKeysFile?: string;
  /** Failed API-key attempts allowed per client address per minute; then 429 until the minute ends. */
  apiKeyFailuresPerMinute: number;
  /** Keys that sign in to the operator console at /admin (ADMIN_API_KEYS); none: the console is off. Reloaded on SIGHUP. */
  adminApiKeys: string[];
  allowAnonymousConnect: boolean;
  allowedReturnOrigins: string[];
  trustProxy: false | number | string;
  providersFile?: string;
  webhookUrl?: string;
  webhookSecret?: string;
  /** How long a webhook delivery is retried before it is dead (WEBHOOK_MAX_AGE_HOURS, default 24). */
  webhookMaxAgeHours: number;
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
  /** KEEPALIVE (default true): this instance runs the background keep-alive sweep (issue 11 part 3). */
  keepAlive: boolean;
  /** METRICS_TOKEN: when set, `/metrics` needs `Authorization: Bearer <token>`. */
  metricsToken?: string;
  /**
   * The environment, for the per-provider `<ID>_CLIENT_ID` / `_CLIENT_SECRET` / `_SCOPES`; empty
   * values are left out (an empty value is an unset one, everywhere).
   */
  env: Readonly<Record<string, string | undefined>>;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const emptyToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/**
 * The words of the report for a check. Every check below carries its own, starting with
 * "must": zod's own wording ("Invalid input: expected number, received NaN") never reaches an
 * operator. {@link parseEnv} puts the variable's name in front and, for a value that is not a
 * secret, what was found after it.
 */
const must = (text: `must ${string}`) => ({ error: text });

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
    .preprocess(
      (v) => {
        const u = emptyToUndefined(v);
        return typeof u === 'string' ? u.trim().toLowerCase() : u;
      },
      z.enum(['true', 'false', '1', '0'], must('must be true or false')).optional(),
    )
    .transform((v) => (v === undefined ? fallback : v === 'true' || v === '1'));
const wholeNumber = (min: number, max: number) => {
  const words = must(`must be a whole number from ${min} to ${max}`);
  return z
    .string(words)
    .trim()
    .regex(/^\d+$/, words)
    .transform(Number)
    .pipe(z.number(words).min(min, words).max(max, words));
};
const intWithin = (min: number, max: number, fallback: number) =>
  z.preprocess(emptyToUndefined, wholeNumber(min, max).default(fallback));
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, must(`must be one of ${values.join(', ')}`));

/**
 * An absolute URL with one of `schemes` (`['http:', 'https:']`). A wrong scheme is named as
 * such; `secret`: the value may hold a password and is never shown, not even when it does not
 * parse.
 */
const url = (schemes: readonly string[], options: { secret?: boolean; base?: boolean } = {}) => {
  const expected = schemes.map((s) => `${s}//`).join(' or ');
  return z.string().superRefine((raw, ctx) => {
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: options.secret
          ? `must be an absolute ${expected} URL (the value is not shown: it may hold a password)`
          : `must be an absolute ${expected} URL, got ${shown(raw)}`,
      });
      return;
    }
    if (!schemes.includes(parsed.protocol)) {
      ctx.addIssue({ code: 'custom', message: `must be ${expected}, got ${schemeOf(parsed)}` });
    } else if (
      options.base &&
      (parsed.search || parsed.hash || /[?#]/.test(raw) || parsed.username || parsed.password)
    ) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a base URL (scheme, host, port and an optional path) without a query, fragment or user name, got ${shown(raw)}`,
      });
    }
  });
};
const HTTP = ['http:', 'https:'];

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, must('must be host:port, such as redis-1:6379'));
const listenHost = z.string().superRefine((raw, ctx) => {
  if (parseListenHost(raw) === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `must be an address to listen on, such as 127.0.0.1 (loopback only) or 0.0.0.0 (every interface), got ${shown(raw)}`,
    });
  }
});

const envSchema = z.object({
  PORT: intWithin(0, 65535, 3000),
  HOST: z.preprocess(emptyToUndefined, listenHost.default(DEFAULT_HOST)),
  PUBLIC_URL: z.preprocess(emptyToUndefined, url(HTTP, { base: true }).default('http://localhost:3000')),
  NODE_ENV: z.preprocess(emptyToUndefined, oneOf(['development', 'production', 'test']).default('development')),
  REDIS_URL: z.preprocess(emptyToUndefined, url(['redis:', 'rediss:'], { secret: true }).optional()),
  REDIS_CLUSTER_NODES: list.pipe(z.array(hostPort)),
  REDIS_SENTINELS: list.pipe(z.array(hostPort)),
  REDIS_SENTINEL_NAME: optionalString,
  REDIS_KEY_PREFIX: z.preprocess(
    emptyToUndefined,
    z.string().max(64, must('must be at most 64 characters')).default('latchkey:'),
  ),
  SESSION_SECRET: list.pipe(z.array(z.string().min(16, must('must have at least 16 characters')))),
  TOKEN_ENCRYPTION_KEYS: list,
  CONNECTOR_API_KEYS: list.pipe(z.array(z.string().min(16, must('must have at least 16 characters')))),
  API_KEYS_FILE: optionalString,
  API_KEY_FAILURES_PER_MINUTE: intWithin(0, 1_000_000, 60),
  ADMIN_API_KEYS: list.pipe(z.array(z.string().min(16, must('must have at least 16 characters')))),
  ALLOW_ANONYMOUS_CONNECT: bool(),
  ALLOWED_RETURN_ORIGINS: list,
  TRUST_PROXY: optionalString,
  PROVIDERS_FILE: optionalString,
  WEBHOOK_URL: z.preprocess(emptyToUndefined, url(HTTP).optional()),
  WEBHOOK_SECRET: optionalString,
  WEBHOOK_MAX_AGE_HOURS: intWithin(1, 24 * 30, 24),
  LOG_LEVEL: z.preprocess(
    emptyToUndefined,
    oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  PROXY_BODY_LIMIT_BYTES: intWithin(1, 1024 * 1024 * 1024, 10 * 1024 * 1024),
  UPSTREAM_TIMEOUT_MS: intWithin(1, 600_000, 30_000),
  PROXY_CALLER_STALL_MS: z.preprocess(emptyToUndefined, wholeNumber(1, 600_000).optional()),
  // Below the sockets per origin, so one key's stalled calls leave room on any origin for the others.
  PROXY_MAX_CONCURRENCY_PER_KEY: intWithin(0, 1_000_000, 64),
  PROXY_MAX_SOCKETS_PER_ORIGIN: intWithin(1, 100_000, 128),
  TOKEN_REQUEST_TIMEOUT_MS: intWithin(100, 120_000, 10_000),
  RATE_LIMIT_PER_MINUTE: intWithin(0, 10_000_000, 600),
  SERVICE_RATE_LIMIT_PER_MINUTE: intWithin(0, 100_000_000, 60_000),
  SHUTDOWN_TIMEOUT_MS: intWithin(0, 600_000, 10_000),
  REFRESH_LOCK_TTL_MS: z.preprocess(emptyToUndefined, wholeNumber(50, 600_000).optional()),
  REFRESH_COOLDOWN_MS: intWithin(0, 600_000, 5000),
  DEGRADED_MODE: bool(true),
  KEEPALIVE: bool(true),
  METRICS_TOKEN: z.preprocess(
    emptyToUndefined,
    z.string().trim().min(16, must('must have at least 16 characters')).optional(),
  ),
});

/** Variables whose values are never shown in a problem (secrets, and URLs that may carry a password). */
const SECRET_VARIABLE = /SECRET|PASSWORD|_KEYS$|_TOKEN$|^REDIS_URL$/;

export interface ParsedConfig {
  config: Readonly<Config>;
  warnings: string[];
}

/**
 * Parses the environment; throws a {@link ConfigError} listing every problem at once: the
 * variables, PROVIDERS_FILE and API_KEYS_FILE (read here to be checked; server start-up reads
 * them again to use them), the per-provider credentials, and in production the values that are
 * not fit for it (placeholders, a plain-http PUBLIC_URL).
 */
export function parseConfig(env: Record<string, string | undefined>): ParsedConfig {
  const problems: string[] = [];
  const warnings: string[] = [];
  const { e, invalid } = parseEnv(env, problems);
  const isProduction = e.NODE_ENV === 'production';
  const publicUrl = e.PUBLIC_URL.replace(/\/+$/, '');
  const publicOrigin = new URL(publicUrl).origin;
  if (isProduction && !invalid.has('PUBLIC_URL')) checkProductionUrl(publicUrl, problems);

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
      // An id of its own per start: values sealed by an earlier start then name a key that is not
      // configured (409 credential_unreadable, and the start-up warning), not a failed decryption.
      tokenEncryptionKeys = [{ id: `dev-${randomBytes(4).toString('hex')}`, key: randomBytes(32) }];
    }
  }

  const hasKeys = e.CONNECTOR_API_KEYS.length || e.API_KEYS_FILE || invalid.has('CONNECTOR_API_KEYS');
  if (isProduction && !hasKeys) {
    problems.push(
      'CONNECTOR_API_KEYS: required in production (or API_KEYS_FILE): without a key the service API is closed',
    );
  }
  if ((e.WEBHOOK_URL || invalid.has('WEBHOOK_URL')) && !e.WEBHOOK_SECRET)
    problems.push('WEBHOOK_SECRET: required when WEBHOOK_URL is set');
  if (e.WEBHOOK_SECRET && !e.WEBHOOK_URL && !invalid.has('WEBHOOK_URL'))
    problems.push('WEBHOOK_URL: required when WEBHOOK_SECRET is set (no event is sent without it)');
  if (isProduction && e.WEBHOOK_SECRET && e.WEBHOOK_SECRET.length < 16) {
    problems.push('WEBHOOK_SECRET: needs at least 16 characters');
  }

  // PUBLIC_URL's own origin is always allowed: return_to may be a path on it (the Connect page).
  const allowedReturnOrigins = [publicOrigin];
  for (const [i, raw] of e.ALLOWED_RETURN_ORIGINS.entries()) {
    const parsed = parseReturnOrigin(raw);
    if ('problem' in parsed) problems.push(`ALLOWED_RETURN_ORIGINS (item ${i + 1}) ${parsed.problem}`);
    else if (!allowedReturnOrigins.includes(parsed.origin)) allowedReturnOrigins.push(parsed.origin);
  }
  const trustProxy = parseTrustProxy(e.TRUST_PROXY, problems);

  const providers = checkProviders(env, e.PROVIDERS_FILE, problems);
  if (e.API_KEYS_FILE) {
    const file = readApiKeysFile(e.API_KEYS_FILE, {
      knownProvider: providers ? (id) => providers.get(id) !== undefined : undefined,
      taken: connectorApiKeyEntries(e.CONNECTOR_API_KEYS),
    });
    problems.push(...file.problems);
  }
  if (isProduction) checkPlaceholders(env, invalid, providers, problems);
  const perKey = e.PROXY_MAX_CONCURRENCY_PER_KEY;
  if (perKey === 0 || perKey >= e.PROXY_MAX_SOCKETS_PER_ORIGIN) {
    warnings.push(
      `PROXY_MAX_CONCURRENCY_PER_KEY (${perKey === 0 ? 'off' : perKey}) is not below PROXY_MAX_SOCKETS_PER_ORIGIN (${e.PROXY_MAX_SOCKETS_PER_ORIGIN}): one API key's stalled calls can hold every socket to a provider`,
    );
  }

  if (problems.length) throw new ConfigError(problems);

  const config: Config = {
    port: e.PORT,
    host: parseListenHost(e.HOST)!,
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
    apiKeysFile: e.API_KEYS_FILE,
    apiKeyFailuresPerMinute: e.API_KEY_FAILURES_PER_MINUTE,
    adminApiKeys: e.ADMIN_API_KEYS,
    allowAnonymousConnect: e.ALLOW_ANONYMOUS_CONNECT ?? !isProduction,
    allowedReturnOrigins,
    trustProxy,
    providersFile: e.PROVIDERS_FILE,
    webhookUrl: e.WEBHOOK_URL,
    webhookSecret: e.WEBHOOK_SECRET,
    webhookMaxAgeHours: e.WEBHOOK_MAX_AGE_HOURS,
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
    keepAlive: e.KEEPALIVE ?? true,
    metricsToken: e.METRICS_TOKEN,
    env: Object.freeze(withoutEmptyValues(env)),
  };
  return { config: Object.freeze(config), warnings };
}

/** The environment less its empty values: `X=` is the same as no `X` at all. */
function withoutEmptyValues(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined && value.trim() !== '') out[name] = value;
  return out;
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
    const item = issue.path.length > 1 ? Number(issue.path[1]) : undefined;
    problems.push(describeIssue(name, item, issue.message, env[name]));
    invalid.add(name);
  }
  const fallback = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([name]) => !invalid.has(name))));
  if (!fallback.success) throw new ConfigError(problems);
  return { e: fallback.data, invalid };
}

/**
 * `NAME (item N) must …, got "…"`. A message that is not one of ours (a check added without
 * words of its own) is replaced rather than passed through in zod's wording.
 */
function describeIssue(name: string, item: number | undefined, message: string, raw: string | undefined): string {
  const where = item === undefined ? name : `${name} (item ${item + 1})`;
  if (!message.startsWith('must ')) return `${where} has a value Latchkey cannot use`;
  if (message.includes(', got ') || SECRET_VARIABLE.test(name) || raw === undefined) return `${where} ${message}`;
  const value =
    item === undefined
      ? raw.trim()
      : (raw
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)[item] ?? '');
  return `${where} ${message}, got ${shown(value)}`;
}

/** Production refuses a PUBLIC_URL in plain http beyond loopback: cookies and codes would travel in clear. */
function checkProductionUrl(publicUrl: string, problems: string[]): void {
  const parsed = new URL(publicUrl);
  if (parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname)) {
    problems.push(
      `PUBLIC_URL must be https:// in production (http:// is accepted on loopback only), got ${schemeOf(parsed)}//${parsed.host}`,
    );
  }
}

/**
 * PROVIDERS_FILE and the per-provider credentials, reported with the rest: a client id without
 * its secret (or a secret without its id) for any oauth2 provider, built in or from the file.
 *
 * @returns the providers as far as they could be read (undefined when PROVIDERS_FILE is broken,
 *   so that checks which depend on the list do not report what is only a consequence)
 */
function checkProviders(
  env: Record<string, string | undefined>,
  providersFile: string | undefined,
  problems: string[],
): ProviderRegistry | undefined {
  let registry: ProviderRegistry | undefined;
  try {
    registry = buildProviderRegistry(env, providersFile ? [readProvidersFile(providersFile)] : []);
  } catch (err) {
    if (!(err instanceof ProviderConfigError)) throw err;
    problems.push(...err.problems);
  }
  const known = registry ?? builtInProviders(env);
  for (const provider of known.list()) {
    if (provider.authMode !== 'oauth2') continue;
    const prefix = providerEnvPrefix(provider.id);
    const id = env[`${prefix}_CLIENT_ID`]?.trim();
    const secret = env[`${prefix}_CLIENT_SECRET`]?.trim();
    if (id && !secret) {
      problems.push(
        `${prefix}_CLIENT_SECRET: required when ${prefix}_CLIENT_ID is set (provider "${provider.id}" needs both)`,
      );
    } else if (secret && !id) {
      problems.push(
        `${prefix}_CLIENT_ID: required when ${prefix}_CLIENT_SECRET is set (provider "${provider.id}" needs both)`,
      );
    }
  }
  return registry;
}

/** Suffixes of the variables each provider reads. */
const PROVIDER_VARIABLES = ['_CLIENT_ID', '_CLIENT_SECRET', '_SCOPES', '_ENABLED'];

/**
 * Production refuses values copied from an example and never filled in (`…`, `change-me`,
 * `<your-secret>`, `TODO`, …) in every variable Latchkey reads. The value is not shown: it may
 * be a half-edited secret.
 */
function checkPlaceholders(
  env: Record<string, string | undefined>,
  invalid: ReadonlySet<string>,
  providers: ProviderRegistry | undefined,
  problems: string[],
): void {
  const names = new Set(Object.keys(envSchema.shape));
  for (const provider of (providers ?? builtInProviders(env)).list()) {
    for (const suffix of PROVIDER_VARIABLES) names.add(`${providerEnvPrefix(provider.id)}${suffix}`);
  }
  // A variable with a problem of its own already is not reported twice.
  const reported = (name: string) => invalid.has(name) || problems.some((p) => new RegExp(`^${name}[ :]`).test(p));
  for (const name of names) {
    const value = env[name];
    if (value === undefined || !looksLikePlaceholder(value) || reported(name)) continue;
    problems.push(
      `${name} looks like a placeholder (such as "…", "change-me", "xxx", "<your-secret>" or "TODO"): set the real value in production`,
    );
  }
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

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/**
 * The built-in catalog, for naming the per-provider variables when the full registry could not
 * be built. A problem in the environment's own provider variables (an invalid `<ID>_ENABLED`) is
 * already in the report; the catalog without them still names every variable.
 */
function builtInProviders(env: Readonly<Record<string, string | undefined>>): ProviderRegistry {
  try {
    return buildProviderRegistry(env, []);
  } catch (err) {
    if (!(err instanceof ProviderConfigError)) throw err;
    return buildProviderRegistry({}, []);
  }
}
