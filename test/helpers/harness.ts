import axios from 'axios';
import supertest from 'supertest';
import { createCredentialSource, type CredentialSource, type RefreshSettings } from '../../src/client';
import { noopEvents } from '../../src/events';
import { createMetrics } from '../../src/metrics';
import type { RequestListener } from 'node:http';
import { createApp, type AppDeps } from '../../src/app';
import { FakeClock, systemClock, type Clock } from '../../src/clock';
import { parseConfig, type Config } from '../../src/config';
import { buildProviderRegistry, type ProviderRegistry, type ProviderSource } from '../../src/providers/registry';
import { apiKeySandboxSource, videoaskSandboxSource } from '../../src/sandbox/provider-entry';
import { createSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/sandbox';
import { openStore, type Store } from '../../src/store';
import { createLogger } from '../../src/logger';
import { deleteUnder, rawRedis, TEST_REDIS_URL, uniquePrefix } from './redis';
import { encryptionKeyEnv, testEncryptionKey } from './keys';

export const TEST_API_KEY = 'test-api-key-0123456789abcdef';
export const PUBLIC_URL = 'http://latchkey.test';

export interface HarnessOptions {
  /** Use the real Redis (default) or the in-memory store. */
  store?: 'redis' | 'memory';
  env?: Record<string, string>;
  sandbox?: Partial<SandboxOptions>;
  /** Extra fields of the videoask override, or more provider sources. */
  videoask?: Record<string, unknown>;
  providerSources?: (sandboxUrl: string) => ProviderSource[];
  clock?: Clock;
  /** How the app reaches providers: its axios and the proxy's socket options (a test resolver, a test CA). */
  app?: Pick<AppDeps, 'http' | 'upstreamConnect'>;
}

export interface Harness {
  /** The app's request listener (proxy and Express), for supertest. */
  app: RequestListener;
  sandbox: Sandbox;
  sandboxUrl: string;
  store: Store;
  config: Config;
  providers: ProviderRegistry;
  prefix: string;
  /** A browser: a supertest agent that keeps its cookies. */
  browser(): ReturnType<typeof supertest.agent>;
  api(): {
    get: (p: string) => supertest.Test;
    post: (p: string) => supertest.Test;
    delete: (p: string) => supertest.Test;
  };
  close(): Promise<void>;
}

/** Latchkey in-process against a sandbox provider on a real port, on real Redis under a fresh prefix. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const sandbox = createSandbox({ clientId: 'sandbox-client', clientSecret: 'sandbox-secret', ...options.sandbox });
  const listening = await sandbox.listen();
  const prefix = uniquePrefix('harness');
  const useRedis = (options.store ?? 'redis') === 'redis';
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    PUBLIC_URL,
    REDIS_KEY_PREFIX: prefix,
    SESSION_SECRET: 'test-session-secret-0123456789',
    TOKEN_ENCRYPTION_KEYS: encryptionKeyEnv(testEncryptionKey()),
    CONNECTOR_API_KEYS: TEST_API_KEY,
    VIDEOASK_CLIENT_ID: 'sandbox-client',
    VIDEOASK_CLIENT_SECRET: 'sandbox-secret',
    LOG_LEVEL: 'silent',
    ...(useRedis ? { REDIS_URL: TEST_REDIS_URL } : {}),
    ...options.env,
  };
  const { config } = parseConfig(env);
  const providers = buildProviderRegistry(env, [
    videoaskSandboxSource(listening.url, options.videoask),
    // WebinarGeek and Livestorm (API token) check pasted keys against the sandbox, never the real service.
    apiKeySandboxSource(listening.url),
    ...(options.providerSources?.(listening.url) ?? []),
  ]);
  const clock = options.clock ?? systemClock;
  const { store, redis } = openStore(config, clock);
  if (redis) await new Promise((r) => (redis.status === 'ready' ? r(null) : redis.once('ready', r)));
  const latchkey = createApp({ config, store, providers, clock, logger: createLogger('silent'), ...options.app });
  const app = latchkey.handler;
  const auth = { Authorization: `Bearer ${TEST_API_KEY}` };
  return {
    app,
    sandbox,
    sandboxUrl: listening.url,
    store,
    config,
    providers,
    prefix,
    browser: () => supertest.agent(app),
    api: () => ({
      get: (p) => supertest(app).get(p).set(auth),
      post: (p) => supertest(app).post(p).set(auth),
      delete: (p) => supertest(app).delete(p).set(auth),
    }),
    async close() {
      await latchkey.close();
      await listening.close();
      if (useRedis) {
        const raw = rawRedis();
        await deleteUnder(raw, prefix);
        raw.disconnect();
      }
      await store.close();
    },
  };
}

/** Follows the sandbox's consent page like a person: opens it and clicks Approve or Deny. */
export async function consent(authorizeUrl: string, decision: 'approve' | 'deny'): Promise<URL> {
  const page = await fetch(authorizeUrl, { redirect: 'manual' });
  const html = await page.text();
  if (page.status !== 200) throw new Error(`consent page answered ${page.status}: ${html.slice(0, 200)}`);
  const requestId = /name="request_id" value="([^"]+)"/.exec(html)?.[1];
  if (!requestId) throw new Error('no request_id on the consent page');
  const action = new URL('/authorize/decision', authorizeUrl);
  const res = await fetch(action, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ request_id: requestId, decision }).toString(),
  });
  const location = res.headers.get('location');
  if (res.status !== 302 || !location) throw new Error(`decision answered ${res.status}`);
  return new URL(location);
}

/** The callback's path and query, to replay against the in-process app. */
export function callbackPath(redirect: URL): string {
  return `${redirect.pathname}${redirect.search}`;
}

/** Runs a whole flow in `browser` and returns the callback response. */
export async function connectVideoAsk(
  browser: ReturnType<typeof supertest.agent>,
  query = '',
  decision: 'approve' | 'deny' = 'approve',
): Promise<supertest.Response> {
  const start = await browser.get(`/auth/videoask${query}`);
  if (start.status !== 302) throw new Error(`/auth answered ${start.status}: ${start.text.slice(0, 300)}`);
  const redirect = await consent(start.headers.location!, decision);
  return browser.get(callbackPath(redirect));
}

export { FakeClock };

/** A credential source of its own on the harness's store: several of them behave like separate instances. */
export function credentialSourceFor(h: Harness, refresh: Partial<RefreshSettings> = {}): CredentialSource {
  return createCredentialSource({
    config: h.config,
    store: h.store,
    clock: { now: () => Date.now() },
    http: axios.create(),
    events: noopEvents,
    logger: createLogger('silent'),
    metrics: createMetrics(),
    refresh,
  });
}
