import { randomBytes } from 'node:crypto';

/**
 * The demo's configuration, and where each value came from.
 *
 * Precedence, for every variable: the process environment, then `.env`, then the demo's default;
 * an empty value counts as unset everywhere. Three groups of values are the demo's own, because
 * taking them from a `.env` written for a real deployment (or copied from `.env.example`) would
 * break the demo or point it at real data:
 *
 * - `PUBLIC_URL` is derived from the port the demo listens on (`http://localhost:<PORT>`). A
 *   `PUBLIC_URL` is used instead only when it is consistent with that port (a loopback URL on
 *   it), or when it comes from the environment and is not a loopback URL (a tunnel in front of
 *   the demo). Otherwise it is ignored, and the banner says so.
 * - The store is in memory unless `REDIS_URL`, `REDIS_CLUSTER_NODES` or `REDIS_SENTINELS` is set
 *   in the **environment**; the Redis a `.env` names is never used. On Redis the demo writes under
 *   `latchkey-demo:` unless `REDIS_KEY_PREFIX` is set in the environment, so it never mixes with
 *   a real Latchkey on the same Redis.
 * - `NODE_ENV` is `development`, and VideoAsk's client id and secret are the sandbox's.
 *
 * `SANDBOX_PORT` and `SANDBOX_ACCESS_TOKEN_TTL` (seconds; default 3600) are the sandbox's, as
 * for `npm run sandbox`, and follow the general rule. `CONNECTOR_API_KEYS` follows it too; the
 * demo's key `demo-api-key-change-me` is used (and printed) only when no key is set anywhere.
 * `SESSION_SECRET` and `TOKEN_ENCRYPTION_KEYS` default to random values for the run.
 */

export const DEMO_API_KEY = 'demo-api-key-change-me';
export const DEMO_REDIS_KEY_PREFIX = 'latchkey-demo:';
export const DEMO_PORT = 3000;
/** The demo never listens beyond loopback, whatever HOST says. */
export const DEMO_HOST = '127.0.0.1';
export const DEMO_SANDBOX_PORT = 4010;
/** The sandbox's access-token lifetime unless SANDBOX_ACCESS_TOKEN_TTL says otherwise (as `npm run sandbox`). */
export const DEMO_ACCESS_TOKEN_TTL_SECONDS = 3600;

export type Source = 'environment' | '.env' | 'demo default' | 'demo';

export interface Setting {
  name: string;
  /** What the banner shows: the value, or a description for secrets. */
  shown: string;
  source: Source;
  note?: string;
}

export interface Ignored {
  name: string;
  source: 'environment' | '.env';
  /** Shown for values that are no secret. */
  value?: string;
  why: string;
}

export interface DemoEnv {
  /** The environment Latchkey is started with. */
  env: Record<string, string>;
  port: number;
  sandboxPort: number;
  /** SANDBOX_ACCESS_TOKEN_TTL: how long the sandbox's access tokens live, in seconds (fractions allowed). */
  sandboxAccessTokenTtlSeconds: number;
  publicUrl: string;
  /** The service API key to print, or undefined when the keys are the user's own. */
  printableApiKey?: string;
  apiKeyCount: number;
  apiKeySource: Source;
  settings: Setting[];
  ignored: Ignored[];
  /** Other variables Latchkey reads, by where they came from (names only). */
  passedThrough: { environment: string[]; dotenv: string[] };
}

export interface DemoEnvInput {
  environment: Record<string, string | undefined>;
  /** The parsed `.env` (empty when there is none). */
  dotenv: Record<string, string>;
  /** When PORT resolves to 0: the free port to use instead. */
  freePort?: number;
  random?: (bytes: number) => Buffer;
}

const STORE_VARIABLES = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS', 'REDIS_SENTINEL_NAME'];
/** Values the demo decides itself; the general rule does not apply to them. */
const OWN = new Set([
  'HOST',
  'PORT',
  'SANDBOX_PORT',
  'SANDBOX_ACCESS_TOKEN_TTL',
  'PUBLIC_URL',
  'NODE_ENV',
  'REDIS_KEY_PREFIX',
  'VIDEOASK_CLIENT_ID',
  'VIDEOASK_CLIENT_SECRET',
  'SESSION_SECRET',
  'TOKEN_ENCRYPTION_KEYS',
  'CONNECTOR_API_KEYS',
  ...STORE_VARIABLES,
]);
/** The variables of the contract and of .env.example, to name the ones passed through from the environment. */
const LATCHKEY_VARIABLE =
  /^(HOST|ALLOW_ANONYMOUS_CONNECT|ALLOWED_RETURN_ORIGINS|TRUST_PROXY|PROVIDERS_FILE|WEBHOOK_[A-Z_]+|LOG_LEVEL|API_KEYS_FILE|ADMIN_API_KEYS|METRICS_TOKEN|KEEPALIVE|DEGRADED_MODE|PROXY_[A-Z_]+|UPSTREAM_TIMEOUT_MS|TOKEN_REQUEST_TIMEOUT_MS|RATE_LIMIT_PER_MINUTE|SERVICE_RATE_LIMIT_PER_MINUTE|SHUTDOWN_TIMEOUT_MS|REFRESH_[A-Z_]+|[A-Z0-9_]+_(CLIENT_ID|CLIENT_SECRET|SCOPES|ENABLED))$/;

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Resolves the demo's environment from the process environment and `.env`; see the file comment. */
export function resolveDemoEnv(input: DemoEnvInput): DemoEnv {
  const random = input.random ?? randomBytes;
  const fromEnv = nonEmpty(input.environment);
  const fromFile = nonEmpty(input.dotenv);
  const pick = (name: string): { value: string; source: 'environment' | '.env' } | undefined =>
    fromEnv[name] !== undefined
      ? { value: fromEnv[name]!, source: 'environment' }
      : fromFile[name] !== undefined
        ? { value: fromFile[name]!, source: '.env' }
        : undefined;

  const settings: Setting[] = [];
  const ignored: Ignored[] = [];
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...fromFile, ...fromEnv })) if (!OWN.has(name)) env[name] = value;

  // Ports, and the public URL derived from the port.
  const portPick = pick('PORT');
  let port = portPick ? Number(portPick.value) : DEMO_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT=${portPick!.value} (${portPick!.source}) is not a port number`);
  }
  let portNote: string | undefined;
  if (port === 0) {
    if (!input.freePort) throw new Error('PORT=0: no free port was given');
    port = input.freePort;
    portNote = 'PORT=0: a free port';
  }
  settings.push({ name: 'PORT', shown: String(port), source: portPick?.source ?? 'demo default', note: portNote });
  const sandboxPick = pick('SANDBOX_PORT');
  const sandboxPort = sandboxPick ? Number(sandboxPick.value) : DEMO_SANDBOX_PORT;
  if (!Number.isInteger(sandboxPort) || sandboxPort < 0 || sandboxPort > 65535) {
    throw new Error(`SANDBOX_PORT=${sandboxPick!.value} (${sandboxPick!.source}) is not a port number`);
  }
  settings.push({ name: 'SANDBOX_PORT', shown: String(sandboxPort), source: sandboxPick?.source ?? 'demo default' });
  const ttl = resolveAccessTokenTtl(pick('SANDBOX_ACCESS_TOKEN_TTL'));
  settings.push(ttl.setting);

  const derived = `http://localhost:${port}`;
  let publicUrl = derived;
  let publicUrlSource: Source = 'demo';
  const urlPick = pick('PUBLIC_URL');
  if (urlPick) {
    const verdict = judgePublicUrl(urlPick.value, urlPick.source, port);
    if (verdict.use) {
      publicUrl = urlPick.value.replace(/\/+$/, '');
      publicUrlSource = urlPick.source;
    } else {
      ignored.push({ name: 'PUBLIC_URL', source: urlPick.source, value: urlPick.value, why: verdict.why });
    }
  }
  env.PORT = String(port);
  env.PUBLIC_URL = publicUrl;
  settings.push({
    name: 'PUBLIC_URL',
    shown: publicUrl,
    source: publicUrlSource,
    note: publicUrlSource === 'demo' ? 'derived from PORT' : undefined,
  });

  // The store: Redis only when the environment names one.
  const redisInEnv = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'].some((n) => fromEnv[n] !== undefined);
  for (const name of [...STORE_VARIABLES, 'REDIS_KEY_PREFIX']) {
    if (fromFile[name] !== undefined && fromEnv[name] === undefined) {
      ignored.push({
        name,
        source: '.env',
        why: redisInEnv
          ? 'the demo takes its Redis settings from the environment only'
          : 'the demo never uses the Redis a .env names; set REDIS_URL in the environment to run it on Redis',
      });
    }
  }
  if (redisInEnv) {
    for (const name of STORE_VARIABLES) if (fromEnv[name] !== undefined) env[name] = fromEnv[name]!;
    env.REDIS_KEY_PREFIX = fromEnv.REDIS_KEY_PREFIX ?? DEMO_REDIS_KEY_PREFIX;
    const where = STORE_VARIABLES.filter((n) => fromEnv[n] !== undefined).join(', ');
    settings.push({ name: 'store', shown: `Redis (${where})`, source: 'environment' });
    settings.push({
      name: 'REDIS_KEY_PREFIX',
      shown: env.REDIS_KEY_PREFIX,
      source: fromEnv.REDIS_KEY_PREFIX !== undefined ? 'environment' : 'demo default',
    });
  } else {
    settings.push({ name: 'store', shown: 'in memory (lost when the demo stops)', source: 'demo default' });
  }

  // Fixed by the demo.
  // Loopback only (SECURITY.md 25): the demo has a published API key and anonymous connect on.
  env.HOST = DEMO_HOST;
  const host = pick('HOST');
  if (host && host.value !== DEMO_HOST) {
    ignored.push({ name: 'HOST', source: host.source, value: host.value, why: 'the demo listens on loopback only' });
  }
  settings.push({ name: 'HOST', shown: DEMO_HOST, source: 'demo' });
  env.NODE_ENV = 'development';
  const nodeEnv = pick('NODE_ENV');
  if (nodeEnv && nodeEnv.value !== 'development') {
    ignored.push({
      name: 'NODE_ENV',
      source: nodeEnv.source,
      value: nodeEnv.value,
      why: 'the demo always runs in development',
    });
  }
  settings.push({ name: 'NODE_ENV', shown: 'development', source: 'demo' });
  env.VIDEOASK_CLIENT_ID = 'sandbox-client';
  env.VIDEOASK_CLIENT_SECRET = 'sandbox-secret';
  for (const name of ['VIDEOASK_CLIENT_ID', 'VIDEOASK_CLIENT_SECRET']) {
    const given = pick(name);
    if (given) ignored.push({ name, source: given.source, why: 'VideoAsk is the sandbox in the demo' });
  }
  settings.push({ name: 'VIDEOASK_CLIENT_ID/SECRET', shown: "the sandbox's", source: 'demo' });

  // Secrets: the user's when given, otherwise fresh for this run.
  for (const name of ['SESSION_SECRET', 'TOKEN_ENCRYPTION_KEYS'] as const) {
    const given = pick(name);
    if (given) {
      env[name] = given.value;
      settings.push({ name, shown: 'set', source: given.source });
    } else {
      env[name] =
        name === 'SESSION_SECRET' ? random(32).toString('base64url') : `demo:${random(32).toString('base64')}`;
      settings.push({ name, shown: 'random for this run', source: 'demo default' });
    }
  }
  const keys = pick('CONNECTOR_API_KEYS');
  env.CONNECTOR_API_KEYS = keys?.value ?? DEMO_API_KEY;
  const apiKeyCount = env.CONNECTOR_API_KEYS.split(',').filter((k) => k.trim()).length;
  settings.push({
    name: 'CONNECTOR_API_KEYS',
    shown: keys ? `${apiKeyCount} key${apiKeyCount === 1 ? '' : 's'} of your own` : DEMO_API_KEY,
    source: keys?.source ?? 'demo default',
  });

  return {
    env,
    port,
    sandboxPort,
    sandboxAccessTokenTtlSeconds: ttl.seconds,
    publicUrl,
    printableApiKey: keys ? undefined : DEMO_API_KEY,
    apiKeyCount,
    apiKeySource: keys?.source ?? 'demo default',
    settings,
    ignored,
    passedThrough: {
      environment: Object.keys(fromEnv)
        .filter((n) => !OWN.has(n) && (LATCHKEY_VARIABLE.test(n) || fromFile[n] !== undefined))
        .sort(),
      dotenv: Object.keys(fromFile)
        .filter((n) => !OWN.has(n) && fromEnv[n] === undefined)
        .sort(),
    },
  };
}

/** SANDBOX_ACCESS_TOKEN_TTL: a short lifetime lets a user watch a refresh happen (README "See it refresh"). */
function resolveAccessTokenTtl(given: { value: string; source: 'environment' | '.env' } | undefined): {
  seconds: number;
  setting: Setting;
} {
  const seconds = given ? Number(given.value) : DEMO_ACCESS_TOKEN_TTL_SECONDS;
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new Error(`SANDBOX_ACCESS_TOKEN_TTL=${given!.value} (${given!.source}) is not a number of seconds above 0`);
  }
  return {
    seconds,
    setting: {
      name: 'SANDBOX_ACCESS_TOKEN_TTL',
      shown: `${seconds} s`,
      source: given?.source ?? 'demo default',
      note: "how long the sandbox's access tokens live",
    },
  };
}

function judgePublicUrl(
  value: string,
  source: 'environment' | '.env',
  port: number,
): { use: true } | { use: false; why: string } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { use: false, why: 'not a URL' };
  }
  if (LOOPBACK_HOSTS.has(url.hostname)) {
    const urlPort = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    if (url.protocol === 'http:' && urlPort === port) return { use: true };
    return { use: false, why: `the demo listens on http://localhost:${port}, so the callback would miss it` };
  }
  if (source === 'environment') return { use: true };
  return {
    use: false,
    why: 'a .env PUBLIC_URL names a deployment, not this demo; set PUBLIC_URL in the environment to put the demo behind it',
  };
}

function nonEmpty(values: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(values)) if (value !== undefined && value.trim() !== '') out[name] = value;
  return out;
}
