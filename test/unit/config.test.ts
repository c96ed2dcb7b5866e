import { randomBytes } from 'node:crypto';
import { ConfigError, parseConfig, type ParsedConfig } from '../../src/config';

const key32 = () => randomBytes(32).toString('base64');

/** A complete, valid production environment; tests remove or spoil single variables. */
function productionEnv(): Record<string, string | undefined> {
  return {
    NODE_ENV: 'production',
    PUBLIC_URL: 'https://connect.example.com',
    REDIS_URL: 'redis://redis.internal:6379',
    SESSION_SECRET: 'a-session-secret-of-32-characters',
    TOKEN_ENCRYPTION_KEYS: `k1:${key32()}`,
    CONNECTOR_API_KEYS: 'an-api-key-of-at-least-16-chars',
  };
}

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    parseConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('parseConfig accepted an invalid environment');
}

/** The problems that mention one variable. */
const about = (err: ConfigError, name: string) => err.problems.filter((p) => p.startsWith(name));

describe('parseConfig defaults', () => {
  let parsed: ParsedConfig;
  beforeAll(() => {
    parsed = parseConfig({});
  });

  it('listens on port 3000 behind http://localhost:3000', () => {
    expect(parsed.config.port).toBe(3000);
    expect(parsed.config.publicUrl).toBe('http://localhost:3000');
    expect(parsed.config.publicOrigin).toBe('http://localhost:3000');
  });

  it('derives redirectUri as PUBLIC_URL + "/callback"', () => {
    expect(parsed.config.redirectUri).toBe('http://localhost:3000/callback');
    const custom = parseConfig({ PUBLIC_URL: 'https://connect.example.com/latchkey/' }).config;
    expect(custom.publicUrl).toBe('https://connect.example.com/latchkey');
    expect(custom.redirectUri).toBe('https://connect.example.com/latchkey/callback');
  });

  it('prefixes keys with "latchkey:"', () => {
    expect(parsed.config.redisKeyPrefix).toBe('latchkey:');
  });

  it('runs as development, with anonymous connect allowed', () => {
    expect(parsed.config.nodeEnv).toBe('development');
    expect(parsed.config.isProduction).toBe(false);
    expect(parsed.config.allowAnonymousConnect).toBe(true);
  });

  it('refuses anonymous connect by default in production', () => {
    expect(parseConfig(productionEnv()).config.allowAnonymousConnect).toBe(false);
    expect(parseConfig({ ...productionEnv(), ALLOW_ANONYMOUS_CONNECT: 'true' }).config.allowAnonymousConnect).toBe(
      true,
    );
    expect(parseConfig({ ALLOW_ANONYMOUS_CONNECT: 'false' }).config.allowAnonymousConnect).toBe(false);
  });

  it("allows only PUBLIC_URL's origin as a return origin", () => {
    expect(parsed.config.allowedReturnOrigins).toEqual(['http://localhost:3000']);
    const custom = parseConfig({ PUBLIC_URL: 'https://connect.example.com/base/' }).config;
    expect(custom.allowedReturnOrigins).toEqual(['https://connect.example.com']);
  });

  it('trusts no proxy, has no webhook and no API keys', () => {
    expect(parsed.config.trustProxy).toBe(false);
    expect(parsed.config.webhookUrl).toBeUndefined();
    expect(parsed.config.connectorApiKeys).toEqual([]);
    expect(parsed.config.logLevel).toBe('info');
  });

  it('treats empty variables as unset', () => {
    const { config } = parseConfig({ PORT: '', PUBLIC_URL: ' ', REDIS_KEY_PREFIX: '', NODE_ENV: '' });
    expect(config.port).toBe(3000);
    expect(config.publicUrl).toBe('http://localhost:3000');
    expect(config.redisKeyPrefix).toBe('latchkey:');
    expect(config.nodeEnv).toBe('development');
  });

  it('accepts a complete production environment without warnings', () => {
    const env = productionEnv();
    const { config, warnings } = parseConfig(env);
    expect(warnings).toEqual([]);
    expect(config.isProduction).toBe(true);
    expect(config.redisUrl).toBe('redis://redis.internal:6379');
    expect(config.sessionSecrets).toEqual(['a-session-secret-of-32-characters']);
    expect(config.connectorApiKeys).toEqual(['an-api-key-of-at-least-16-chars']);
    expect(config.tokenEncryptionKeys).toHaveLength(1);
    expect(config.tokenEncryptionKeys[0]!.id).toBe('k1');
    expect(config.tokenEncryptionKeys[0]!.key).toHaveLength(32);
  });
});

describe('parseConfig problems', () => {
  it('lists every problem at once', () => {
    const err = configError({
      PORT: 'not-a-port',
      PUBLIC_URL: 'not a url',
      TOKEN_ENCRYPTION_KEYS: [
        `short:${randomBytes(16).toString('base64')}`,
        key32(),
        `dup:${key32()}`,
        `dup:${key32()}`,
      ].join(','),
      CONNECTOR_API_KEYS: 'short-key',
      WEBHOOK_URL: 'https://hooks.example.com/latchkey',
      TRUST_PROXY: 'true',
      ALLOWED_RETURN_ORIGINS: 'https://app.example.com,not an origin',
    });
    expect(about(err, 'PORT')).toHaveLength(1);
    expect(about(err, 'PUBLIC_URL')).toHaveLength(1);
    const keyProblems = about(err, 'TOKEN_ENCRYPTION_KEYS');
    expect(keyProblems).toEqual([
      expect.stringMatching(/item 1\).*32 bytes/),
      expect.stringMatching(/item 2\).*keyId/),
      expect.stringMatching(/item 4\).*"dup".*twice/),
    ]);
    expect(about(err, 'CONNECTOR_API_KEYS')).toEqual([expect.stringMatching(/item 1\).*16 characters/)]);
    expect(about(err, 'WEBHOOK_SECRET')).toEqual([expect.stringContaining('required when WEBHOOK_URL is set')]);
    expect(about(err, 'TRUST_PROXY')).toHaveLength(1);
    expect(about(err, 'ALLOWED_RETURN_ORIGINS')).toEqual([expect.stringMatching(/item 2\)/)]);
    expect(err.problems).toHaveLength(9);
    for (const problem of err.problems) expect(err.message).toContain(problem);
  });

  it('refuses TRUST_PROXY=true but accepts a hop count or a list', () => {
    expect(about(configError({ TRUST_PROXY: 'true' }), 'TRUST_PROXY')).toEqual([expect.stringContaining('hop count')]);
    expect(parseConfig({ TRUST_PROXY: '2' }).config.trustProxy).toBe(2);
    expect(parseConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }).config.trustProxy).toBe('loopback, 10.0.0.0/8');
    expect(parseConfig({ TRUST_PROXY: 'false' }).config.trustProxy).toBe(false);
  });

  it('refuses a PUBLIC_URL that is not http(s)', () => {
    expect(about(configError({ PUBLIC_URL: 'ftp://connect.example.com' }), 'PUBLIC_URL')).toHaveLength(1);
  });

  it('refuses a port out of range', () => {
    expect(about(configError({ PORT: '70000' }), 'PORT')).toHaveLength(1);
    expect(about(configError({ PORT: '80.5' }), 'PORT')).toHaveLength(1);
  });

  it('refuses in production every missing secret and the in-memory store, all together', () => {
    const env = productionEnv();
    delete env.SESSION_SECRET;
    delete env.TOKEN_ENCRYPTION_KEYS;
    delete env.CONNECTOR_API_KEYS;
    delete env.REDIS_URL;
    const err = configError(env);
    expect(err.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^SESSION_SECRET: required in production/),
        expect.stringMatching(/^TOKEN_ENCRYPTION_KEYS: required in production/),
        expect.stringMatching(/^CONNECTOR_API_KEYS: required in production/),
        expect.stringMatching(/^REDIS_URL: required in production/),
      ]),
    );
    expect(err.problems).toHaveLength(4);
  });

  it('accepts a Redis Cluster or Sentinels as the production store', () => {
    const env = productionEnv();
    delete env.REDIS_URL;
    expect(() => parseConfig({ ...env, REDIS_CLUSTER_NODES: 'r1:7000' })).not.toThrow();
    expect(() => parseConfig({ ...env, REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'mymaster' })).not.toThrow();
  });

  it('lists problems found by the schema together with the later checks', () => {
    const env: Record<string, string | undefined> = {
      ...productionEnv(),
      PORT: 'eighty',
      SESSION_SECRET: 'too-short',
      TRUST_PROXY: 'true',
    };
    delete env.CONNECTOR_API_KEYS;
    const err = configError(env);
    expect(about(err, 'PORT')).toHaveLength(1);
    expect(about(err, 'SESSION_SECRET')).toEqual([expect.stringContaining('16 characters')]);
    expect(about(err, 'TRUST_PROXY')).toHaveLength(1);
    expect(about(err, 'CONNECTOR_API_KEYS')).toEqual([expect.stringContaining('required in production')]);
    expect(err.problems).toHaveLength(4);
  });

  it('refuses a REDIS_URL that is not redis:// or rediss://', () => {
    expect(about(configError({ REDIS_URL: 'http://redis.internal:6379' }), 'REDIS_URL')).toHaveLength(1);
    expect(parseConfig({ REDIS_URL: 'rediss://redis.internal:6380' }).config.redisUrl).toBe(
      'rediss://redis.internal:6380',
    );
  });
});

describe('parseConfig in development', () => {
  it('generates random secrets, each with a warning', () => {
    const first = parseConfig({});
    const second = parseConfig({});
    expect(first.config.sessionSecrets).toHaveLength(1);
    expect(first.config.sessionSecrets[0]!.length).toBeGreaterThanOrEqual(32);
    expect(first.config.tokenEncryptionKeys).toHaveLength(1);
    expect(first.config.tokenEncryptionKeys[0]!.key).toHaveLength(32);
    expect(first.config.sessionSecrets[0]).not.toBe(second.config.sessionSecrets[0]);
    expect(first.config.tokenEncryptionKeys[0]!.key.equals(second.config.tokenEncryptionKeys[0]!.key)).toBe(false);
    expect(first.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^SESSION_SECRET is not set/),
        expect.stringMatching(/^TOKEN_ENCRYPTION_KEYS is not set/),
      ]),
    );
  });

  it('warns that the in-memory store loses credentials on restart', () => {
    expect(parseConfig({}).warnings).toEqual(
      expect.arrayContaining([expect.stringMatching(/in-memory store.*lost on restart/)]),
    );
    const withRedis = parseConfig({ REDIS_URL: 'redis://localhost:6379' });
    expect(withRedis.warnings.some((w) => w.includes('in-memory'))).toBe(false);
  });

  it('keeps configured secrets without warning about them', () => {
    const { config, warnings } = parseConfig({
      SESSION_SECRET: 'first-secret-signs-cookies, second-secret-still-verifies',
      TOKEN_ENCRYPTION_KEYS: `new:${key32()},old:${key32()}`,
    });
    expect(config.sessionSecrets).toEqual(['first-secret-signs-cookies', 'second-secret-still-verifies']);
    expect(config.tokenEncryptionKeys.map((k) => k.id)).toEqual(['new', 'old']);
    expect(warnings.some((w) => w.startsWith('SESSION_SECRET') || w.startsWith('TOKEN_ENCRYPTION_KEYS'))).toBe(false);
  });
});

describe('parseConfig secrecy', () => {
  const CANARY = 'CANARY7f3e9a';

  it('never echoes a secret value into the error message', () => {
    const env = {
      ...productionEnv(),
      SESSION_SECRET: `${CANARY}s`,
      CONNECTOR_API_KEYS: `${CANARY}-api-key-long-enough,${CANARY}k`,
      // no keyId, then a key that is not 32 bytes, then keyId and key swapped
      TOKEN_ENCRYPTION_KEYS: [
        Buffer.from(`${CANARY}${CANARY}${CANARY}`).toString('base64'),
        `k1:${Buffer.from(CANARY).toString('base64')}${CANARY}`,
        `${Buffer.from(`${CANARY}-0123456789abcdefghij`).toString('base64')}:k2`,
      ].join(','),
      WEBHOOK_URL: 'https://hooks.example.com/latchkey',
      WEBHOOK_SECRET: CANARY,
      REDIS_URL: `http://:${CANARY}@redis.internal:6379`,
    };
    const err = configError(env);
    expect(about(err, 'SESSION_SECRET')).toHaveLength(1);
    expect(about(err, 'CONNECTOR_API_KEYS')).toHaveLength(1);
    expect(about(err, 'TOKEN_ENCRYPTION_KEYS')).toHaveLength(3);
    expect(about(err, 'WEBHOOK_SECRET')).toHaveLength(1);
    expect(about(err, 'REDIS_URL')).toHaveLength(1);
    const encoded = Buffer.from(CANARY).toString('base64').slice(0, 12);
    expect(err.message).not.toContain(CANARY);
    expect(err.message).not.toContain(encoded);
    expect(err.problems.join('\n')).not.toContain(CANARY);
  });
});

describe('ALLOWED_RETURN_ORIGINS', () => {
  it('normalises each item to its origin, dropping a trailing slash and a default port', () => {
    const { config } = parseConfig({
      PUBLIC_URL: 'https://connect.example.com',
      ALLOWED_RETURN_ORIGINS:
        'https://app.example.com/, HTTPS://Admin.Example.com:8443 ,http://localhost:5173,https://tls.example.com:443',
    });
    expect(config.allowedReturnOrigins).toEqual([
      'https://connect.example.com',
      'https://app.example.com',
      'https://admin.example.com:8443',
      'http://localhost:5173',
      'https://tls.example.com',
    ]);
  });

  it('lists each origin once', () => {
    const { config } = parseConfig({
      PUBLIC_URL: 'https://connect.example.com',
      ALLOWED_RETURN_ORIGINS: 'https://connect.example.com/,https://app.example.com,https://APP.example.com:443/',
    });
    expect(config.allowedReturnOrigins).toEqual(['https://connect.example.com', 'https://app.example.com']);
  });

  it('refuses an origin with a path, a query, a fragment, a user name or trailing junk, naming the item', () => {
    const items = [
      'https://ok.example.com',
      'https://app.example.com/return',
      'https://app.example.com?x=1',
      'https://app.example.com/#top',
      'https://app.example.com#',
      'https://app.example.com?',
      'https://user@app.example.com',
      'https://app.example.com//',
    ];
    const err = configError({ ALLOWED_RETURN_ORIGINS: items.join(',') });
    expect(about(err, 'ALLOWED_RETURN_ORIGINS')).toEqual(
      items
        .slice(1)
        .map((item, i) =>
          expect.stringMatching(
            new RegExp(
              `^ALLOWED_RETURN_ORIGINS \\(item ${i + 2}\\) must be an origin only \\(scheme, host and port\\), without a path, query or fragment, got "${item.replace(/[?.*+/]/g, '\\$&')}"$`,
            ),
          ),
        ),
    );
  });

  it('refuses items that are not http(s) origins, naming the item', () => {
    const err = configError({ ALLOWED_RETURN_ORIGINS: 'https://ok.example.com,javascript:alert(1),app.example.com' });
    expect(about(err, 'ALLOWED_RETURN_ORIGINS')).toEqual([
      expect.stringContaining('(item 2)'),
      expect.stringContaining('(item 3)'),
    ]);
  });
});

describe('Redis topology', () => {
  it('parses REDIS_CLUSTER_NODES into host and port', () => {
    const { config } = parseConfig({ REDIS_CLUSTER_NODES: 'r1.internal:7000, r2.internal:7001,10.0.0.3:7002' });
    expect(config.redisClusterNodes).toEqual([
      { host: 'r1.internal', port: 7000 },
      { host: 'r2.internal', port: 7001 },
      { host: '10.0.0.3', port: 7002 },
    ]);
    expect(config.redisSentinels).toBeUndefined();
  });

  it('parses REDIS_SENTINELS into host and port, with the master name', () => {
    const { config } = parseConfig({ REDIS_SENTINELS: 's1:26379,s2:26380', REDIS_SENTINEL_NAME: 'mymaster' });
    expect(config.redisSentinels).toEqual([
      { host: 's1', port: 26379 },
      { host: 's2', port: 26380 },
    ]);
    expect(config.redisSentinelName).toBe('mymaster');
    expect(config.redisClusterNodes).toBeUndefined();
  });

  it('refuses REDIS_SENTINELS without REDIS_SENTINEL_NAME', () => {
    const err = configError({ REDIS_SENTINELS: 's1:26379' });
    expect(about(err, 'REDIS_SENTINEL_NAME')).toEqual([
      expect.stringContaining('required when REDIS_SENTINELS is set'),
    ]);
  });

  it('refuses items that are not host:port, naming the item', () => {
    const err = configError({
      REDIS_CLUSTER_NODES: 'r1:7000,r2',
      REDIS_SENTINELS: 's1',
      REDIS_SENTINEL_NAME: 'mymaster',
    });
    expect(about(err, 'REDIS_CLUSTER_NODES')).toEqual([expect.stringContaining('(item 2)')]);
    expect(about(err, 'REDIS_SENTINELS')).toEqual([expect.stringContaining('(item 1)')]);
  });

  it('does not warn about the in-memory store when a cluster is configured', () => {
    expect(parseConfig({ REDIS_CLUSTER_NODES: 'r1:7000' }).warnings.some((w) => w.includes('in-memory'))).toBe(false);
  });
});
