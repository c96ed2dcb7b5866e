import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'dotenv';
import { parseConfig } from '../../src/config';
import { DEMO_API_KEY, resolveDemoEnv, type DemoEnv } from '../../src/demo/demo-env';

const envExample = parse(readFileSync(join(__dirname, '..', '..', '.env.example')));
const sourceOf = (demo: DemoEnv, name: string) => demo.settings.find((s) => s.name === name)?.source;
const ignoredNames = (demo: DemoEnv) => demo.ignored.map((i) => `${i.name} (${i.source})`);

describe("the demo's configuration", () => {
  it('uses its own defaults when nothing is set: port 3000, the memory store, the demo key, random secrets', () => {
    const demo = resolveDemoEnv({ environment: {}, dotenv: {} });
    expect(demo).toMatchObject({ port: 3000, sandboxPort: 4010, publicUrl: 'http://localhost:3000' });
    expect(demo.printableApiKey).toBe(DEMO_API_KEY);
    expect(demo.env).toMatchObject({ NODE_ENV: 'development', CONNECTOR_API_KEYS: DEMO_API_KEY });
    expect(demo.env.REDIS_URL).toBeUndefined();
    expect(demo.ignored).toEqual([]);
    expect(sourceOf(demo, 'SESSION_SECRET')).toBe('demo default');
    // What Latchkey makes of it: no problem, and no warning about random secrets.
    const { config, warnings } = parseConfig(demo.env);
    expect(config.connectorApiKeys).toEqual([DEMO_API_KEY]);
    expect(config.redirectUri).toBe('http://localhost:3000/callback');
    expect(warnings.filter((w) => /SESSION_SECRET|TOKEN_ENCRYPTION_KEYS/.test(w))).toEqual([]);
  });

  it.each([
    ['environment', { HOST: '0.0.0.0' }, {}],
    ['.env', {}, { HOST: '::' }],
  ])(
    'listens on loopback whatever HOST the %s says (SECURITY.md 25), and says it ignored it',
    (source, environment, dotenv) => {
      const demo = resolveDemoEnv({ environment, dotenv });
      expect(demo.env.HOST).toBe('127.0.0.1');
      expect(parseConfig(demo.env).config.host).toBe('127.0.0.1');
      expect(ignoredNames(demo)).toContain(`HOST (${source})`);
      expect(demo.passedThrough.environment ?? []).not.toContain('HOST');
      expect(demo.passedThrough.dotenv ?? []).not.toContain('HOST');
    },
  );

  it('survives a copied .env.example: its empty values count as unset, its PUBLIC_URL and Redis are ignored', () => {
    const demo = resolveDemoEnv({ environment: { PORT: '4567' }, dotenv: envExample });
    expect(demo.publicUrl).toBe('http://localhost:4567');
    expect(sourceOf(demo, 'PUBLIC_URL')).toBe('demo');
    expect(sourceOf(demo, 'PORT')).toBe('environment');
    expect(demo.printableApiKey).toBe(DEMO_API_KEY);
    expect(demo.env.CONNECTOR_API_KEYS).toBe(DEMO_API_KEY);
    expect(demo.env.REDIS_URL).toBeUndefined();
    expect(demo.env.REDIS_KEY_PREFIX).toBeUndefined();
    expect(ignoredNames(demo)).toEqual(
      expect.arrayContaining(['PUBLIC_URL (.env)', 'REDIS_URL (.env)', 'REDIS_KEY_PREFIX (.env)']),
    );
    expect(demo.passedThrough.dotenv).toEqual(expect.arrayContaining(['LOG_LEVEL', 'TRUST_PROXY']));
    expect(parseConfig(demo.env).config.redirectUri).toBe('http://localhost:4567/callback');
  });

  it('takes the environment over .env, and .env over its defaults, with empty values as unset in both', () => {
    const demo = resolveDemoEnv({
      environment: { PORT: '', SANDBOX_PORT: '4999', CONNECTOR_API_KEYS: ' ', LOG_LEVEL: 'debug' },
      dotenv: { PORT: '5000', SANDBOX_PORT: '5001', LOG_LEVEL: 'warn', SESSION_SECRET: 'from-the-dotenv-file-0123' },
    });
    expect(demo.port).toBe(5000);
    expect(sourceOf(demo, 'PORT')).toBe('.env');
    expect(demo.sandboxPort).toBe(4999);
    expect(sourceOf(demo, 'SANDBOX_PORT')).toBe('environment');
    expect(demo.env.LOG_LEVEL).toBe('debug');
    expect(demo.passedThrough.environment).toContain('LOG_LEVEL');
    expect(demo.passedThrough.dotenv).not.toContain('LOG_LEVEL');
    expect(demo.env.SESSION_SECRET).toBe('from-the-dotenv-file-0123');
    expect(sourceOf(demo, 'SESSION_SECRET')).toBe('.env');
    expect(demo.printableApiKey).toBe(DEMO_API_KEY);
  });

  it("keeps a PUBLIC_URL that fits the demo's port, and one from the environment that is not loopback", () => {
    const fits = resolveDemoEnv({ environment: {}, dotenv: { PORT: '5000', PUBLIC_URL: 'http://127.0.0.1:5000/' } });
    expect(fits.publicUrl).toBe('http://127.0.0.1:5000');
    expect(sourceOf(fits, 'PUBLIC_URL')).toBe('.env');

    const tunnel = resolveDemoEnv({ environment: { PUBLIC_URL: 'https://demo.example.net' }, dotenv: {} });
    expect(tunnel.publicUrl).toBe('https://demo.example.net');
    expect(sourceOf(tunnel, 'PUBLIC_URL')).toBe('environment');

    const deployment = resolveDemoEnv({ environment: {}, dotenv: { PUBLIC_URL: 'https://connect.example.com' } });
    expect(deployment.publicUrl).toBe('http://localhost:3000');
    expect(ignoredNames(deployment)).toEqual(['PUBLIC_URL (.env)']);

    const otherPort = resolveDemoEnv({
      environment: { PORT: '4100', PUBLIC_URL: 'http://localhost:3000' },
      dotenv: {},
    });
    expect(otherPort.publicUrl).toBe('http://localhost:4100');
    expect(ignoredNames(otherPort)).toEqual(['PUBLIC_URL (environment)']);
  });

  it('uses Redis only when the environment names one, under its own key prefix', () => {
    const demo = resolveDemoEnv({
      environment: { REDIS_URL: 'redis://127.0.0.1:6379/5' },
      dotenv: { REDIS_KEY_PREFIX: 'latchkey:' },
    });
    expect(demo.env.REDIS_URL).toBe('redis://127.0.0.1:6379/5');
    expect(demo.env.REDIS_KEY_PREFIX).toBe('latchkey-demo:');
    expect(ignoredNames(demo)).toEqual(['REDIS_KEY_PREFIX (.env)']);

    const ownPrefix = resolveDemoEnv({
      environment: { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: 'mine:' },
      dotenv: {},
    });
    expect(ownPrefix.env.REDIS_KEY_PREFIX).toBe('mine:');
  });

  it("runs in development with the sandbox's VideoAsk credentials whatever .env says, and says so", () => {
    const demo = resolveDemoEnv({
      environment: {},
      dotenv: { NODE_ENV: 'production', VIDEOASK_CLIENT_ID: 'real-id', VIDEOASK_CLIENT_SECRET: 'real-secret' },
    });
    expect(demo.env).toMatchObject({
      NODE_ENV: 'development',
      VIDEOASK_CLIENT_ID: 'sandbox-client',
      VIDEOASK_CLIENT_SECRET: 'sandbox-secret',
    });
    expect(ignoredNames(demo)).toEqual([
      'NODE_ENV (.env)',
      'VIDEOASK_CLIENT_ID (.env)',
      'VIDEOASK_CLIENT_SECRET (.env)',
    ]);
    expect(demo.ignored.find((i) => i.name === 'VIDEOASK_CLIENT_SECRET')?.value).toBeUndefined();
  });

  it("prints no key when the keys are the user's own, and does not accept the demo key then", () => {
    const demo = resolveDemoEnv({
      environment: {},
      dotenv: { CONNECTOR_API_KEYS: 'a'.repeat(20) + ',' + 'b'.repeat(20) },
    });
    expect(demo.printableApiKey).toBeUndefined();
    expect(demo.apiKeyCount).toBe(2);
    expect(demo.apiKeySource).toBe('.env');
    expect(demo.env.CONNECTOR_API_KEYS).not.toContain(DEMO_API_KEY);
    expect(JSON.stringify(demo.settings)).not.toContain('a'.repeat(20));
  });

  it('puts PORT=0 on the free port it is given, so the public URL names the real port', () => {
    const demo = resolveDemoEnv({ environment: { PORT: '0' }, dotenv: {}, freePort: 45678 });
    expect(demo.port).toBe(45678);
    expect(demo.publicUrl).toBe('http://localhost:45678');
    expect(() => resolveDemoEnv({ environment: { PORT: 'eighty' }, dotenv: {} })).toThrow(/PORT=eighty/);
  });

  it("gives the sandbox's access tokens the lifetime SANDBOX_ACCESS_TOKEN_TTL names, and says where it came from", () => {
    const byDefault = resolveDemoEnv({ environment: {}, dotenv: {} });
    expect(byDefault.sandboxAccessTokenTtlSeconds).toBe(3600);
    expect(sourceOf(byDefault, 'SANDBOX_ACCESS_TOKEN_TTL')).toBe('demo default');

    const fromEnv = resolveDemoEnv({
      environment: { SANDBOX_ACCESS_TOKEN_TTL: '20' },
      dotenv: { SANDBOX_ACCESS_TOKEN_TTL: '5' },
    });
    expect(fromEnv.sandboxAccessTokenTtlSeconds).toBe(20);
    expect(sourceOf(fromEnv, 'SANDBOX_ACCESS_TOKEN_TTL')).toBe('environment');
    const fromFile = resolveDemoEnv({
      environment: { SANDBOX_ACCESS_TOKEN_TTL: '' },
      dotenv: { SANDBOX_ACCESS_TOKEN_TTL: '5' },
    });
    expect(fromFile.sandboxAccessTokenTtlSeconds).toBe(5);
    expect(sourceOf(fromFile, 'SANDBOX_ACCESS_TOKEN_TTL')).toBe('.env');
    // The sandbox's variable is not Latchkey's: it is not passed on.
    expect(fromEnv.env.SANDBOX_ACCESS_TOKEN_TTL).toBeUndefined();

    for (const bad of ['0', '-1', 'soon'])
      expect(() => resolveDemoEnv({ environment: { SANDBOX_ACCESS_TOKEN_TTL: bad }, dotenv: {} })).toThrow(
        new RegExp(`SANDBOX_ACCESS_TOKEN_TTL=${bad} \\(environment\\)`),
      );
  });
});
