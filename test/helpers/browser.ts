import { accessSync, constants, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { delimiter, join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { startHarness, TEST_API_KEY, type Harness, type HarnessOptions } from './harness';

/** Where the browser tests leave their screenshots for a reviewer (git-ignored). */
export const SCREENSHOT_DIR = join(__dirname, '..', '..', 'test-output', 'screenshots');

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/**
 * Debian's chromium (CHROMIUM_PATH, or `chromium` on PATH). Missing is an error, not a skip:
 * CI installs it, and a browser test that silently does not run proves nothing.
 */
export function findChromium(): string {
  const onPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .flatMap((dir) => [join(dir, 'chromium'), join(dir, 'chromium-browser')]);
  for (const candidate of [process.env.CHROMIUM_PATH, ...onPath, '/usr/bin/chromium']) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not this one
    }
  }
  throw new Error(
    "Chromium was not found: the browser tests need Debian's chromium. Install it with `apt-get install -y chromium` (.ci/run does) or set CHROMIUM_PATH.",
  );
}

/**
 * A headless chromium with a fresh profile. Playwright turns the popup blocker off by default;
 * `popupBlocking: true` keeps it on, so that a window.open without a user gesture returns null.
 */
export function launchChromium(options: { popupBlocking?: boolean } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: findChromium(),
    args: CHROMIUM_ARGS,
    ignoreDefaultArgs: options.popupBlocking ? ['--disable-popup-blocking'] : undefined,
    timeout: 20_000,
  });
}

interface LateServer {
  url: string;
  setHandler(handler: RequestListener): void;
  close(): Promise<void>;
}

/** A server on 127.0.0.1:0 whose handler comes later: its URL is needed to build the app's config. */
async function listenFirst(): Promise<LateServer> {
  let handler: RequestListener = (_req, res) => res.writeHead(503).end();
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setHandler: (next) => (handler = next),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface BrowserHarness extends Harness {
  /** Latchkey, listening: PUBLIC_URL. */
  latchkeyUrl: string;
  /** A host application on an origin in ALLOWED_RETURN_ORIGINS. */
  hostUrl: string;
  /** The same host application on an origin that is not allowed. */
  strangerUrl: string;
}

/**
 * Latchkey listening on a real port (PUBLIC_URL is that port), the sandbox provider, real Redis
 * under a fresh prefix, and a host application served on two more ports: one allowed in
 * ALLOWED_RETURN_ORIGINS, one not.
 */
export async function startBrowserHarness(options: HarnessOptions = {}): Promise<BrowserHarness> {
  const [latchkey, host, stranger] = await Promise.all([listenFirst(), listenFirst(), listenFirst()]);
  const harness = await startHarness({
    ...options,
    env: { PUBLIC_URL: latchkey.url, ALLOWED_RETURN_ORIGINS: host.url, ...options.env },
  });
  latchkey.setHandler(harness.app);
  const hostApp = hostApplication(latchkey.url);
  host.setHandler(hostApp);
  stranger.setHandler(hostApp);
  return {
    ...harness,
    latchkeyUrl: latchkey.url,
    hostUrl: host.url,
    strangerUrl: stranger.url,
    async close() {
      await Promise.all([latchkey.close(), host.close(), stranger.close()]);
      await harness.close();
    },
  };
}

export interface BrowserSuite {
  /** The chromium launched once for the file. */
  readonly browser: Browser;
  /** This test's harness: a fresh one for every test, closed after it. */
  readonly h: BrowserHarness;
  /** Closes this test's harness and starts another with these options (it is closed after the test too). */
  restartHarness(options: HarnessOptions): Promise<BrowserHarness>;
  /** A fresh profile (on `on`, or the suite's browser) with the suite's viewport, closed after the test. */
  newContext(options?: BrowserContextOptions, on?: Browser): Promise<BrowserContext>;
  /** A page in a fresh context, as newContext. */
  newPage(options?: BrowserContextOptions, on?: Browser): Promise<Page>;
}

export interface BrowserSuiteOptions {
  /** The harness every test starts with (a function: read when each test starts, after the file's beforeAll). */
  harness?: HarnessOptions | (() => HarnessOptions);
  /** The viewport of every context (the screenshots' size). */
  viewport?: { width: number; height: number };
}

/**
 * Registers the set-up every browser test file shares, and returns accessors to it: one chromium
 * for the file (beforeAll/afterAll), a fresh browser harness for each test, and contexts that are
 * closed after each test. Call it at the top of a describe block.
 */
export function useBrowserSuite(options: BrowserSuiteOptions = {}): BrowserSuite {
  const viewport = options.viewport ?? { width: 1000, height: 760 };
  const contexts: BrowserContext[] = [];
  let browser: Browser | undefined;
  let harness: BrowserHarness | undefined;

  beforeAll(async () => {
    browser = await launchChromium();
  });
  beforeEach(async () => {
    harness = await startBrowserHarness(typeof options.harness === 'function' ? options.harness() : options.harness);
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
    await harness?.close();
    harness = undefined;
  });
  afterAll(async () => {
    await browser?.close();
  });

  const suite: BrowserSuite = {
    get browser() {
      if (!browser) throw new Error('the browser suite is used outside a test');
      return browser;
    },
    get h() {
      if (!harness) throw new Error('the browser harness is used outside a test');
      return harness;
    },
    async restartHarness(next) {
      await harness?.close();
      harness = undefined;
      harness = await startBrowserHarness(next);
      return harness;
    },
    async newContext(contextOptions = {}, on = suite.browser) {
      const context = await on.newContext({ viewport, ...contextOptions });
      contexts.push(context);
      return context;
    },
    async newPage(contextOptions, on) {
      return (await suite.newContext(contextOptions, on)).newPage();
    },
  };
  return suite;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * What a host application does: its backend creates a connect session with the API key for the
 * signed-in user (`?user=`), and its page calls `Latchkey.connect` with the token. The page
 * records every message it receives and the outcome, for the test to read.
 * `/spoof?claim=<origin>` is a hostile page that opens the popup claiming another origin.
 */
function hostApplication(latchkeyUrl: string): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://host.invalid');
    const send = (html: string) => res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
    if (url.pathname === '/spoof') return send(spoofPage(latchkeyUrl, url.searchParams.get('claim') ?? ''));
    if (url.pathname !== '/') return void res.writeHead(404).end();
    const provider = url.searchParams.get('provider') ?? 'videoask';
    const user = url.searchParams.get('user');
    createConnectSession(latchkeyUrl, provider, user).then(
      (token) => send(hostPage(latchkeyUrl, provider, token)),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  };
}

async function createConnectSession(latchkeyUrl: string, provider: string, user: string | null): Promise<string> {
  if (!user) return '';
  const res = await fetch(`${latchkeyUrl}/connect-sessions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ provider, connection_id: user }),
  });
  if (res.status !== 201) throw new Error(`POST /connect-sessions answered ${res.status}`);
  return ((await res.json()) as { token: string }).token;
}

const RECORDER = `window.__messages = [];
window.addEventListener('message', function (event) { window.__messages.push({ origin: event.origin, data: event.data }); });
function report(outcome) { window.__outcome = outcome; document.getElementById('result').textContent = JSON.stringify(outcome); }`;

function hostPage(latchkeyUrl: string, provider: string, token: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme CRM: integrations</title>
<script src="${escape(latchkeyUrl)}/connect.js"></script></head>
<body data-provider="${escape(provider)}" data-token="${escape(token)}">
<h1>Acme CRM: integrations</h1>
<button id="connect" type="button">Connect ${escape(provider)}</button>
<output id="result"></output>
<script>
${RECORDER}
function run() {
  var data = document.body.dataset;
  Latchkey.connect({ provider: data.provider, token: data.token || undefined }).then(
    function (result) { report({ resolved: result }); },
    function (error) { report({ rejected: { code: error.code } }); });
}
document.getElementById('connect').addEventListener('click', run);
var query = new URLSearchParams(location.search);
if (query.get('status')) report({ returned: Object.fromEntries(query) });
else if (query.get('auto') === '1') run();
</script>
</body></html>`;
}

function spoofPage(latchkeyUrl: string, claim: string): string {
  const target = `${latchkeyUrl}/auth/videoask?connection_id=victim&popup=1&origin=${encodeURIComponent(claim)}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not the host application</title></head>
<body><button id="connect" type="button">Open Latchkey</button><output id="result"></output>
<script>
${RECORDER}
document.getElementById('connect').addEventListener('click', function () { window.open(${JSON.stringify(target)}, 'spoof', 'popup=yes,width=500,height=700'); });
</script></body></html>`;
}

/** What the host page saw: the outcome of Latchkey.connect and every message it received. */
export interface HostObservations {
  outcome?: {
    resolved?: { provider: string; connectionId: string };
    rejected?: { code: string };
    returned?: Record<string, string>;
  };
  messages: Array<{ origin: string; data: unknown }>;
}

export function observeHost(page: Page): Promise<HostObservations> {
  return page.evaluate(() => {
    const w = window as unknown as {
      __outcome?: HostObservations['outcome'];
      __messages?: HostObservations['messages'];
    };
    return { outcome: w.__outcome, messages: w.__messages ?? [] };
  });
}

/** Waits (bounded) until Latchkey.connect has settled on the host page, and returns what it saw. */
export async function waitForOutcome(page: Page): Promise<HostObservations> {
  await page.waitForFunction(() => (window as unknown as { __outcome?: unknown }).__outcome !== undefined, null, {
    timeout: 10_000,
  });
  return observeHost(page);
}

/**
 * Waits until `page` is back on Latchkey's Connect page (`latchkeyUrl` + `/`). The page arrives as
 * `/?result=…` and page.js then cleans the URL to `/`, which can happen before the load event a
 * URL wait looks at: so the path is what is waited for, with or without its query.
 */
export function waitForConnectPage(page: Page, latchkeyUrl: string): Promise<void> {
  return page.waitForURL((url) => url.origin === latchkeyUrl && url.pathname === '/');
}

/** Saves a full-page screenshot under test-output/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Every URL the context's pages requested, to prove that no third party is ever contacted. */
export function recordRequests(context: BrowserContext): string[] {
  const urls: string[] = [];
  context.on('request', (request) => urls.push(request.url()));
  return urls;
}

export interface ContrastProblem {
  text: string;
  ratio: number;
  required: number;
}

/**
 * Text whose contrast with its (composited) background is under WCAG 2.2 AA (1.4.3): 4.5:1, or
 * 3:1 for large text (24px, or 18.66px bold). Colours are read from the rendered page.
 */
export function findContrastProblems(page: Page): Promise<ContrastProblem[]> {
  return page.evaluate(() => {
    type Rgba = { r: number; g: number; b: number; a: number };
    const parse = (css: string): Rgba | null => {
      const m = /rgba?\(([^)]+)\)/.exec(css);
      if (!m) return null;
      const p = m[1]!
        .split(/[\s,/]+/)
        .filter(Boolean)
        .map(Number);
      return { r: p[0]!, g: p[1]!, b: p[2]!, a: p.length > 3 ? p[3]! : 1 };
    };
    const over = (top: Rgba, bottom: Rgba): Rgba => ({
      r: top.r * top.a + bottom.r * (1 - top.a),
      g: top.g * top.a + bottom.g * (1 - top.a),
      b: top.b * top.a + bottom.b * (1 - top.a),
      a: 1,
    });
    const luminance = (c: Rgba) => {
      const f = (v: number) => (v / 255 <= 0.03928 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
    };
    const backgroundOf = (el: Element): Rgba => {
      const layers: Rgba[] = [];
      for (let n: Element | null = el; n; n = n.parentElement) {
        const c = parse(getComputedStyle(n).backgroundColor);
        if (c && c.a > 0) {
          layers.push(c);
          if (c.a >= 1) break;
        }
      }
      return layers.reduceRight((below, layer) => over(layer, below), { r: 255, g: 255, b: 255, a: 1 });
    };
    const problems: ContrastProblem[] = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const text = (walker.currentNode.textContent ?? '').trim();
      const el = walker.currentNode.parentElement;
      if (!text || !el || el.closest('[hidden], script, style')) continue;
      const rect = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      if (rect.width <= 1 || rect.height <= 1 || style.visibility === 'hidden') continue;
      const bg = backgroundOf(el);
      const fg = over(parse(style.color) ?? { r: 0, g: 0, b: 0, a: 1 }, bg);
      const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a) as [number, number];
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
      const required = large ? 3 : 4.5;
      if (ratio < required) problems.push({ text: text.slice(0, 60), ratio: Math.round(ratio * 100) / 100, required });
    }
    return problems;
  });
}

/** The focused element's accessible text and its focus ring, as rendered. */
export function focusedElement(
  page: Page,
): Promise<{ tag: string; text: string; outlineStyle: string; outlineWidth: number }> {
  return page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    const style = el ? getComputedStyle(el) : null;
    return {
      tag: el?.tagName.toLowerCase() ?? '',
      text: (el?.textContent ?? '').trim(),
      outlineStyle: style?.outlineStyle ?? 'none',
      outlineWidth: parseFloat(style?.outlineWidth ?? '0'),
    };
  });
}
