import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig } from '../../src/config';

/** zod's own wording, which must never reach an operator. */
const ZOD_WORDING =
  /Invalid input|Invalid option|Invalid URL|Invalid string|expected [a-z]+, received|Too (big|small)/i;

const key32 = () => randomBytes(32).toString('base64');
const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

/** A complete, valid production environment; tests spoil single variables. */
function productionEnv(): Record<string, string | undefined> {
  return {
    NODE_ENV: 'production',
    PUBLIC_URL: 'https://connect.example.com',
    REDIS_URL: 'redis://redis.internal:6379',
    SESSION_SECRET: randomBytes(24).toString('base64url'),
    TOKEN_ENCRYPTION_KEYS: `k1:${key32()}`,
    CONNECTOR_API_KEYS: randomBytes(24).toString('hex'),
  };
}

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    parseConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('parseConfig accepted an invalid environment');
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-config-report-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function jsonFile(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

describe('the start-up report', () => {
  it('lists every problem of a deliberately broken environment in one run, each in plain words', () => {
    const providersFile = jsonFile('providers.json', [
      { id: 'videoask', tokenEndpoint: 'https://auth.videoask.com/oauth/token' },
      { id: 'my-crm', authMode: 'oauth2' },
    ]);
    const apiKeysFile = jsonFile('keys.json', [
      { name: 'reports', sha256: 'not-hex', access: 'read' },
      { name: 'ci', sha256: sha256('ci-key-0123456789abcdef'), access: 'admin' },
    ]);
    const problems = problemsOf({
      NODE_ENV: 'production',
      PORT: 'eighty',
      HOST: 'every interface',
      PUBLIC_URL: 'http://connect.example.com',
      REDIS_URL: 'http://:hunter2@redis.internal:6379',
      SESSION_SECRET: 'change-me-change-me',
      TOKEN_ENCRYPTION_KEYS: `k1:${key32()}`,
      CONNECTOR_API_KEYS: '<your-api-key-here>',
      VIDEOASK_CLIENT_ID: 'videoask-client',
      LIVESTORM_CLIENT_ID: '',
      LIVESTORM_CLIENT_SECRET: 'livestorm-secret',
      INTERACT_CLIENT_ID: ' ',
      INTERACT_CLIENT_SECRET: '',
      WEBHOOK_SECRET: 'a-webhook-secret-long-enough',
      ALLOWED_RETURN_ORIGINS: 'https://app.example.com/return',
      TRUST_PROXY: 'true',
      LOG_LEVEL: 'verbose',
      RATE_LIMIT_PER_MINUTE: 'lots',
      PROVIDERS_FILE: providersFile,
      API_KEYS_FILE: apiKeysFile,
    });

    expect(problems).toEqual([
      'PORT must be a whole number from 0 to 65535, got "eighty"',
      'HOST must be an address to listen on, such as 127.0.0.1 (loopback only) or 0.0.0.0 (every interface), got "every interface"',
      'REDIS_URL must be redis:// or rediss://, got http:',
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"',
      'RATE_LIMIT_PER_MINUTE must be a whole number from 0 to 10000000, got "lots"',
      'PUBLIC_URL must be https:// in production (http:// is accepted on loopback only), got http://connect.example.com',
      'WEBHOOK_URL: required when WEBHOOK_SECRET is set (no event is sent without it)',
      'ALLOWED_RETURN_ORIGINS (item 1) must be an origin only (scheme, host and port), without a path, query or fragment, got "https://app.example.com/return"',
      'TRUST_PROXY: "true" trusts every hop and lets clients forge their IP; give a hop count or a list',
      `PROVIDERS_FILE ${providersFile}: entry 1 ("videoask"): field "tokenEndpoint": is not a known field`,
      `PROVIDERS_FILE ${providersFile}: entry 2 ("my-crm"): field "displayName": is required`,
      `PROVIDERS_FILE ${providersFile}: entry 2 ("my-crm"): field "apiBaseUrl": is required`,
      `PROVIDERS_FILE ${providersFile}: entry 2 ("my-crm"): field "authorizationUrl": is required`,
      `PROVIDERS_FILE ${providersFile}: entry 2 ("my-crm"): field "tokenUrl": is required`,
      'VIDEOASK_CLIENT_SECRET: required when VIDEOASK_CLIENT_ID is set (provider "videoask" needs both)',
      'LIVESTORM_CLIENT_ID: required when LIVESTORM_CLIENT_SECRET is set (provider "livestorm" needs both)',
      `API_KEYS_FILE ${apiKeysFile}: entry 1 ("reports"): field "sha256": must be the 64 hex digits of the key's SHA-256 (printf %s "$KEY" | sha256sum)`,
      `API_KEYS_FILE ${apiKeysFile}: entry 2 ("ci"): field "access": must be "read", "proxy" or "full"`,
      'SESSION_SECRET looks like a placeholder (such as "…", "change-me", "xxx", "<your-secret>" or "TODO"): set the real value in production',
      'CONNECTOR_API_KEYS looks like a placeholder (such as "…", "change-me", "xxx", "<your-secret>" or "TODO"): set the real value in production',
    ]);
    const report = problems.join('\n');
    expect(report).not.toMatch(ZOD_WORDING);
    expect(report).not.toContain('hunter2');
    expect(report).not.toContain('livestorm-secret');
    expect(report).not.toContain('a-webhook-secret-long-enough');
  });

  it('keeps every other problem when a provider switch itself is invalid', () => {
    const problems = problemsOf({ ...productionEnv(), PORT: 'x', WEBINARGEEK_ENABLED: 'maybe', LOG_LEVEL: 'loud' });
    expect(problems.some((p) => p.startsWith('PORT '))).toBe(true);
    expect(problems.some((p) => p.startsWith('LOG_LEVEL '))).toBe(true);
    expect(problems.some((p) => /WEBINARGEEK_ENABLED/.test(p))).toBe(true);
  });

  it('prints the whole report in the error message, one problem a line', () => {
    try {
      parseConfig({ PORT: 'x', LOG_LEVEL: 'loud' });
      throw new Error('accepted');
    } catch (err) {
      expect((err as Error).message).toBe(
        [
          'Invalid configuration:',
          '  - PORT must be a whole number from 0 to 65535, got "x"',
          '  - LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
        ].join('\n'),
      );
    }
  });
});

describe('plain words for every variable', () => {
  const bad: Record<string, string> = {
    PORT: '80.5',
    HOST: 'http://0.0.0.0',
    PUBLIC_URL: 'not a url',
    NODE_ENV: 'prod',
    REDIS_URL: 'garbage',
    REDIS_CLUSTER_NODES: 'r1',
    REDIS_SENTINELS: 's1',
    REDIS_SENTINEL_NAME: 'mymaster',
    REDIS_KEY_PREFIX: 'p'.repeat(65),
    SESSION_SECRET: 'short',
    TOKEN_ENCRYPTION_KEYS: 'no-key-id',
    CONNECTOR_API_KEYS: 'short',
    API_KEY_FAILURES_PER_MINUTE: '-1',
    ALLOW_ANONYMOUS_CONNECT: 'maybe',
    ALLOWED_RETURN_ORIGINS: 'app.example.com',
    TRUST_PROXY: 'everyone',
    WEBHOOK_URL: 'hooks.example.com',
    WEBHOOK_SECRET: 'a-webhook-secret-long-enough',
    LOG_LEVEL: 'TRACE!',
    PROXY_BODY_LIMIT_BYTES: '0',
    UPSTREAM_TIMEOUT_MS: 'NaN',
    TOKEN_REQUEST_TIMEOUT_MS: '50',
    RATE_LIMIT_PER_MINUTE: '1e3',
    SERVICE_RATE_LIMIT_PER_MINUTE: 'Infinity',
    SHUTDOWN_TIMEOUT_MS: '-5',
    REFRESH_LOCK_TTL_MS: '10',
    REFRESH_COOLDOWN_MS: 'soon',
    DEGRADED_MODE: 'on',
    PROXY_CALLER_STALL_MS: 'forever',
    PROXY_MAX_CONCURRENCY_PER_KEY: '-3',
    PROXY_MAX_SOCKETS_PER_ORIGIN: '0',
  };

  it('names each variable and says what it expects, never in zod wording', () => {
    const problems = problemsOf(bad);
    for (const problem of problems) expect(problem).not.toMatch(ZOD_WORDING);
    const named = (name: string) => problems.filter((p) => new RegExp(`^${name}[ :]`).test(p));
    for (const name of Object.keys(bad)) {
      if (name === 'REDIS_SENTINEL_NAME' || name === 'WEBHOOK_SECRET') continue; // valid values here
      expect([name, named(name).length]).toEqual([name, 1]);
    }
    expect(named('PORT')).toEqual(['PORT must be a whole number from 0 to 65535, got "80.5"']);
    expect(named('UPSTREAM_TIMEOUT_MS')).toEqual([
      'UPSTREAM_TIMEOUT_MS must be a whole number from 1 to 600000, got "NaN"',
    ]);
    expect(named('DEGRADED_MODE')).toEqual(['DEGRADED_MODE must be true or false, got "on"']);
    expect(named('WEBHOOK_URL')).toEqual([
      'WEBHOOK_URL must be an absolute http:// or https:// URL, got "hooks.example.com"',
    ]);
    // Secrets are described, never shown.
    expect(named('SESSION_SECRET')).toEqual(['SESSION_SECRET (item 1) must have at least 16 characters']);
    expect(named('REDIS_URL')).toEqual([
      'REDIS_URL must be an absolute redis:// or rediss:// URL (the value is not shown: it may hold a password)',
    ]);
  });

  it('names a wrong URL scheme as such', () => {
    expect(problemsOf({ PUBLIC_URL: 'ftp://connect.example.com' })).toEqual([
      'PUBLIC_URL must be http:// or https://, got ftp:',
    ]);
    expect(problemsOf({ WEBHOOK_URL: 'mailto:ops@example.com', WEBHOOK_SECRET: 'x'.repeat(20) })).toEqual([
      'WEBHOOK_URL must be http:// or https://, got mailto:',
    ]);
    expect(problemsOf({ REDIS_URL: 'https://redis.internal' })).toEqual([
      'REDIS_URL must be redis:// or rediss://, got https:',
    ]);
    expect(problemsOf({ ALLOWED_RETURN_ORIGINS: 'javascript:alert(1)' })).toEqual([
      'ALLOWED_RETURN_ORIGINS (item 1) must be http:// or https://, got javascript:',
    ]);
  });

  it('refuses a PUBLIC_URL with a query, a fragment or a user name', () => {
    for (const value of [
      'https://c.example.com/?a=1',
      'https://c.example.com/#x',
      'https://me@c.example.com',
      'https://c.example.com?',
    ]) {
      expect(problemsOf({ PUBLIC_URL: value })).toEqual([
        `PUBLIC_URL must be a base URL (scheme, host, port and an optional path) without a query, fragment or user name, got "${value}"`,
      ]);
    }
  });
});

describe('empty values', () => {
  it('count as unset for every variable', () => {
    const defaults = parseConfig({}).config;
    const names = [
      'PORT',
      'HOST',
      'PUBLIC_URL',
      'NODE_ENV',
      'REDIS_URL',
      'REDIS_CLUSTER_NODES',
      'REDIS_SENTINELS',
      'REDIS_SENTINEL_NAME',
      'REDIS_KEY_PREFIX',
      'SESSION_SECRET',
      'TOKEN_ENCRYPTION_KEYS',
      'CONNECTOR_API_KEYS',
      'API_KEYS_FILE',
      'API_KEY_FAILURES_PER_MINUTE',
      'ALLOW_ANONYMOUS_CONNECT',
      'ALLOWED_RETURN_ORIGINS',
      'TRUST_PROXY',
      'PROVIDERS_FILE',
      'WEBHOOK_URL',
      'WEBHOOK_SECRET',
      'LOG_LEVEL',
      'PROXY_BODY_LIMIT_BYTES',
      'UPSTREAM_TIMEOUT_MS',
      'TOKEN_REQUEST_TIMEOUT_MS',
      'RATE_LIMIT_PER_MINUTE',
      'SERVICE_RATE_LIMIT_PER_MINUTE',
      'SHUTDOWN_TIMEOUT_MS',
      'REFRESH_LOCK_TTL_MS',
      'REFRESH_COOLDOWN_MS',
      'DEGRADED_MODE',
      'VIDEOASK_CLIENT_ID',
      'VIDEOASK_CLIENT_SECRET',
      'VIDEOASK_SCOPES',
    ];
    for (const blank of ['', '  ']) {
      const { config } = parseConfig(Object.fromEntries(names.map((n) => [n, blank])));
      const { sessionSecrets, tokenEncryptionKeys, env, ...rest } = config;
      const { sessionSecrets: _s, tokenEncryptionKeys: _t, env: _e, ...expected } = defaults;
      expect(rest).toEqual(expected);
      expect(sessionSecrets).toHaveLength(1);
      expect(tokenEncryptionKeys).toHaveLength(1);
      expect(Object.keys(env)).toEqual([]);
    }
  });

  it('count as unset in a client id and secret pair', () => {
    expect(problemsOf({ VIDEOASK_CLIENT_ID: '', VIDEOASK_CLIENT_SECRET: 'the-secret' })).toEqual([
      'VIDEOASK_CLIENT_ID: required when VIDEOASK_CLIENT_SECRET is set (provider "videoask" needs both)',
    ]);
    expect(() => parseConfig({ VIDEOASK_CLIENT_ID: ' ', VIDEOASK_CLIENT_SECRET: '' })).not.toThrow();
  });
});

describe('client credentials', () => {
  it('need both halves, for built-in providers and providers from PROVIDERS_FILE', () => {
    const providersFile = jsonFile('crm.json', [
      {
        id: 'my-crm',
        displayName: 'My CRM',
        authMode: 'oauth2',
        authorizationUrl: 'https://crm.example.com/oauth/authorize',
        tokenUrl: 'https://crm.example.com/oauth/token',
        apiBaseUrl: 'https://crm.example.com/api',
      },
    ]);
    expect(problemsOf({ PROVIDERS_FILE: providersFile, MY_CRM_CLIENT_SECRET: 's', INTERACT_CLIENT_ID: 'i' })).toEqual([
      'INTERACT_CLIENT_SECRET: required when INTERACT_CLIENT_ID is set (provider "interact" needs both)',
      'MY_CRM_CLIENT_ID: required when MY_CRM_CLIENT_SECRET is set (provider "my-crm" needs both)',
    ]);
    expect(() =>
      parseConfig({ PROVIDERS_FILE: providersFile, MY_CRM_CLIENT_ID: 'i', MY_CRM_CLIENT_SECRET: 's' }),
    ).not.toThrow();
  });

  it('report PROVIDERS_FILE problems in plain words too', () => {
    const providersFile = jsonFile('plain.json', [
      { id: 'one', authMode: 'bogus' },
      { id: 'two' },
      { id: 'videoask', tokenRequest: { bodyFormat: 'xml' }, scopes: 'openid email', refreshMarginSeconds: -1 },
    ]);
    const at = (n: number, id: string) => `PROVIDERS_FILE ${providersFile}: entry ${n} ("${id}")`;
    expect(problemsOf({ PROVIDERS_FILE: providersFile })).toEqual([
      // Built-in providers come first, in catalog order.
      `${at(3, 'videoask')}: field "scopes": must be an array`,
      `${at(3, 'videoask')}: field "tokenRequest.bodyFormat": must be one of "form", "json"`,
      `${at(3, 'videoask')}: field "refreshMarginSeconds": must be at least 0`,
      `${at(1, 'one')}: field "authMode": must be one of "oauth2", "api_key"`,
      `${at(2, 'two')}: field "authMode": is required: one of "oauth2", "api_key"`,
    ]);
  });

  it('report an unreadable PROVIDERS_FILE with the rest', () => {
    const missing = join(dir, 'missing.json');
    expect(problemsOf({ PROVIDERS_FILE: missing, PORT: 'x' })).toEqual([
      'PORT must be a whole number from 0 to 65535, got "x"',
      `PROVIDERS_FILE ${missing}: cannot be read (ENOENT)`,
    ]);
  });
});

describe('webhooks', () => {
  it('need both WEBHOOK_URL and WEBHOOK_SECRET', () => {
    expect(problemsOf({ WEBHOOK_URL: 'https://hooks.example.com/latchkey' })).toEqual([
      'WEBHOOK_SECRET: required when WEBHOOK_URL is set',
    ]);
    expect(problemsOf({ WEBHOOK_SECRET: 'a-webhook-secret-long-enough' })).toEqual([
      'WEBHOOK_URL: required when WEBHOOK_SECRET is set (no event is sent without it)',
    ]);
  });
});

describe('production', () => {
  it.each(['…', '...', 'change-me', 'changeme', 'xxx', '<your-secret>', 'TODO', 'sk_live_xxxx', 'todo: fill in'])(
    'refuses the placeholder %j in any variable it reads, without showing it',
    (placeholder) => {
      const env = {
        ...productionEnv(),
        // Long enough to pass the length check: the placeholder is what is wrong with it.
        CONNECTOR_API_KEYS: `api-key-${placeholder}-0123456789`,
        VIDEOASK_CLIENT_ID: 'videoask-client',
        VIDEOASK_CLIENT_SECRET: placeholder,
      };
      const problems = problemsOf(env);
      expect(problems).toEqual([
        expect.stringMatching(/^CONNECTOR_API_KEYS looks like a placeholder .*set the real value in production$/),
        expect.stringMatching(/^VIDEOASK_CLIENT_SECRET looks like a placeholder /),
      ]);
      // Development takes them (the demo has a published key).
      expect(() => parseConfig({ ...env, NODE_ENV: 'development' })).not.toThrow();
    },
  );

  it('takes real secrets, however random, as real', () => {
    for (let i = 0; i < 200; i++) {
      expect(() =>
        parseConfig({
          ...productionEnv(),
          SESSION_SECRET: randomBytes(33).toString('base64'),
          WEBHOOK_URL: 'https://h.example.com',
          WEBHOOK_SECRET: randomBytes(24).toString('base64url'),
        }),
      ).not.toThrow();
    }
  });

  it('refuses an http:// PUBLIC_URL beyond loopback, and takes https:// or loopback', () => {
    expect(problemsOf({ ...productionEnv(), PUBLIC_URL: 'http://10.0.0.5:3000' })).toEqual([
      'PUBLIC_URL must be https:// in production (http:// is accepted on loopback only), got http://10.0.0.5:3000',
    ]);
    for (const url of [
      'https://connect.example.com',
      'http://localhost:3000',
      'http://127.0.0.1:8080',
      'http://[::1]:3000',
    ]) {
      expect(parseConfig({ ...productionEnv(), PUBLIC_URL: url }).config.publicUrl).toBe(url);
    }
    // Development takes any http URL.
    expect(parseConfig({ PUBLIC_URL: 'http://10.0.0.5:3000' }).config.publicUrl).toBe('http://10.0.0.5:3000');
  });

  it('asks for CONNECTOR_API_KEYS or API_KEYS_FILE', () => {
    const env = productionEnv();
    delete env.CONNECTOR_API_KEYS;
    expect(problemsOf(env)).toEqual([
      'CONNECTOR_API_KEYS: required in production (or API_KEYS_FILE): without a key the service API is closed',
    ]);
    const file = jsonFile('prod-keys.json', [{ name: 'reports', sha256: sha256('k'.repeat(32)), access: 'read' }]);
    expect(() => parseConfig({ ...env, API_KEYS_FILE: file })).not.toThrow();
  });
});

describe('TRUST_PROXY', () => {
  it.each([
    ['true', 'TRUST_PROXY: "true" trusts every hop and lets clients forge their IP; give a hop count or a list'],
    [
      '11',
      'TRUST_PROXY must be the number of proxies in front of Latchkey (at most 10) or a list of their addresses, got 11',
    ],
    [
      'garbage',
      'TRUST_PROXY (item 1) must be a hop count, loopback, linklocal, uniquelocal, an IP address or a subnet such as 10.0.0.0/8, got "garbage"',
    ],
    [
      '10.0.0.0/33',
      'TRUST_PROXY (item 1) must be a hop count, loopback, linklocal, uniquelocal, an IP address or a subnet such as 10.0.0.0/8, got "10.0.0.0/33"',
    ],
    [
      'loopback, 1.5',
      'TRUST_PROXY (item 2) must be a hop count, loopback, linklocal, uniquelocal, an IP address or a subnet such as 10.0.0.0/8, got "1.5"',
    ],
  ])('refuses %j', (value, problem) => {
    expect(problemsOf({ TRUST_PROXY: value })).toEqual([problem]);
    expect(problemsOf({ ...productionEnv(), TRUST_PROXY: value })).toEqual([problem]);
  });

  it.each([
    ['1', 1],
    ['10', 10],
    ['false', false],
    ['loopback', 'loopback'],
    ['loopback, 10.0.0.0/8, fd00::/8', 'loopback, 10.0.0.0/8, fd00::/8'],
    ['10.0.0.1', '10.0.0.1'],
    ['172.16.0.0/255.240.0.0', '172.16.0.0/255.240.0.0'],
  ])('takes %j', (value, expected) => {
    expect(parseConfig({ TRUST_PROXY: value }).config.trustProxy).toEqual(expected);
  });
});

describe('HOST', () => {
  it('is 127.0.0.1 unless set, whatever the environment looks like', () => {
    expect(parseConfig({}).config.host).toBe('127.0.0.1');
    // Nothing is guessed: a container-looking environment still gets loopback.
    expect(
      parseConfig({ KUBERNETES_SERVICE_HOST: '10.0.0.1', container: 'docker', HOSTNAME: 'abc123' }).config.host,
    ).toBe('127.0.0.1');
    expect(parseConfig({ ...productionEnv() }).config.host).toBe('127.0.0.1');
  });

  it.each([
    ['0.0.0.0', '0.0.0.0'],
    ['::', '::'],
    ['[::1]', '::1'],
    ['localhost', 'localhost'],
    ['10.1.2.3', '10.1.2.3'],
  ])('takes %j', (value, expected) => {
    expect(parseConfig({ HOST: value }).config.host).toBe(expected);
  });

  it.each(['http://0.0.0.0', '0.0.0.0:3000', 'two words', '-bad-'])('refuses %j', (value) => {
    expect(problemsOf({ HOST: value })).toEqual([
      `HOST must be an address to listen on, such as 127.0.0.1 (loopback only) or 0.0.0.0 (every interface), got "${value}"`,
    ]);
  });
});

describe('API_KEYS_FILE', () => {
  it('is reported with the rest, naming the file, the entry and the field', () => {
    const providersFile = jsonFile('crm-for-keys.json', [
      {
        id: 'my-crm',
        displayName: 'My CRM',
        authMode: 'api_key',
        apiKey: { header: 'X-Key', format: '{key}' },
        apiBaseUrl: 'https://crm.example.com/api',
      },
    ]);
    const connectorKey = 'connector-key-0123456789abcdef';
    const file = jsonFile('bad-keys.json', [
      { name: 'reports', sha256: sha256('reports-key-0123456789'), access: 'read', providers: ['videoask', 'my-crm'] },
      { name: 'reports', sha256: sha256('other-key-0123456789'), access: 'proxy' },
      { name: 'copy', sha256: sha256('reports-key-0123456789').toUpperCase(), access: 'full' },
      { name: 'old', sha256: sha256(connectorKey), access: 'full' },
      { name: 'nowhere', sha256: sha256('nowhere-key-0123456789'), access: 'read', providers: ['zendesk'] },
      { name: 'empty', sha256: sha256('empty-key-0123456789'), access: 'read', providers: [] },
      { name: 'has spaces', sha256: sha256('spaces-key-0123456789'), access: 'read', secret: 'x' },
      { sha256: sha256('anonymous-key-0123456789'), access: 'read' },
      'not an object',
    ]);
    const where = (n: number, name?: string) => `API_KEYS_FILE ${file}: entry ${n}${name ? ` ("${name}")` : ''}`;
    expect(
      problemsOf({ API_KEYS_FILE: file, PROVIDERS_FILE: providersFile, CONNECTOR_API_KEYS: connectorKey, PORT: 'x' }),
    ).toEqual([
      'PORT must be a whole number from 0 to 65535, got "x"',
      `${where(2, 'reports')}: field "name": "reports" is already the name of entry 1`,
      `${where(3, 'copy')}: field "sha256": the same key as entry 1 ("reports"); a key has one name and one scope`,
      `${where(4, 'old')}: field "sha256": the same key as a key of CONNECTOR_API_KEYS; a key has one name and one scope`,
      `${where(5, 'nowhere')}: field "providers" (item 1): "zendesk" is not a known provider`,
      `${where(6, 'empty')}: field "providers": must be a non-empty list of provider ids such as ["videoask"], or be left out for every provider`,
      `${where(7, 'has spaces')}: field "name": must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      `${where(7, 'has spaces')}: field "secret": is not a known field (name, sha256, providers, access)`,
      `${where(8)}: field "name": is required: it must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      `${where(9)}: must be an object { name, sha256, providers?, access }`,
    ]);
  });

  it('reports a file that cannot be read or is not JSON', () => {
    const missing = join(dir, 'no-keys.json');
    expect(problemsOf({ API_KEYS_FILE: missing })).toEqual([`API_KEYS_FILE ${missing}: cannot be read (ENOENT)`]);
    const broken = join(dir, 'broken-keys.json');
    writeFileSync(broken, '[{"name": ');
    expect(problemsOf({ API_KEYS_FILE: broken })).toEqual([
      expect.stringMatching(new RegExp(`^API_KEYS_FILE ${broken}: is not valid JSON \\(`)),
    ]);
    expect(problemsOf({ API_KEYS_FILE: jsonFile('object-keys.json', { name: 'x' }) })).toEqual([
      expect.stringMatching(/: must be a JSON array of \{ name, sha256, providers\?, access \}$/),
    ]);
  });
});
