import { Writable } from 'node:stream';
import supertest from 'supertest';
import { createApp, type LatchkeyApp } from '../../src/app';
import type { Clock } from '../../src/clock';
import type { Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { startHarness, type Harness, type HarnessOptions } from './harness';

/** The console keys of the tests (two, so a reload can drop one). */
export const ADMIN_KEY = 'admin-console-key-0123456789abcdef';
export const OTHER_ADMIN_KEY = 'other-console-key-0123456789abcdef';

export interface ConsoleHarness {
  h: Harness;
  /** A Latchkey built on the harness's store with a captured log and the test's clock. */
  latchkey: LatchkeyApp;
  /** Every log line, parsed. */
  lines: Array<Record<string, unknown>>;
  /** A browser: keeps its cookies. */
  browser(): ReturnType<typeof supertest.agent>;
  close(): Promise<void>;
}

export interface ConsoleOptions extends HarnessOptions {
  clock?: Clock;
  /** What a SIGHUP reads as ADMIN_API_KEYS. */
  readAdminApiKeys?: () => string | undefined;
  /** Settings of this app only (the harness's own app keeps its config): e.g. a WEBHOOK_URL only it delivers to. */
  config?: Partial<Config>;
}

/** The harness (sandbox, Redis under a fresh prefix) with ADMIN_API_KEYS set, and an app whose log is kept. */
export async function startConsole(options: ConsoleOptions = {}): Promise<ConsoleHarness> {
  const h = await startHarness({ ...options, env: { ADMIN_API_KEYS: ADMIN_KEY, ...options.env } });
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const latchkey = createApp({
    config: { ...h.config, ...options.config },
    store: h.store,
    providers: h.providers,
    clock: options.clock,
    logger: createLogger('info', sink),
    readAdminApiKeys: options.readAdminApiKeys,
  });
  return {
    h,
    latchkey,
    lines,
    browser: () => supertest.agent(latchkey.handler),
    async close() {
      await latchkey.close();
      await h.close();
    },
  };
}

/** The first hidden CSRF field of a page. */
export function csrfOf(html: string): string {
  const token = /name="csrf" value="([^"]*)"/.exec(html)?.[1];
  if (token === undefined) throw new Error(`no CSRF field on the page: ${html.slice(0, 300)}`);
  return token;
}

/** Signs `browser` in with `key` and answers the session's CSRF token (read from the console's first page). */
export async function signIn(browser: ReturnType<typeof supertest.agent>, key = ADMIN_KEY): Promise<string> {
  const form = await browser.get('/admin/sign-in');
  if (form.status !== 200) throw new Error(`/admin/sign-in answered ${form.status}`);
  const posted = await browser
    .post('/admin/sign-in')
    .type('form')
    .send({ csrf: csrfOf(form.text), key });
  if (posted.status !== 303) throw new Error(`sign-in answered ${posted.status}: ${posted.text.slice(0, 300)}`);
  const page = await browser.get('/admin');
  if (page.status !== 200) throw new Error(`/admin answered ${page.status} after sign-in`);
  return csrfOf(page.text);
}
