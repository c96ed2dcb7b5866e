import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import express, { type ErrorRequestHandler, type Express, type Request, type Response } from 'express';

import { createApiKeyRouter, SANDBOX_API_KEY, type InjectedApiKeyFailures } from './api-key-routes';
import { createApiRouter } from './api-routes';
import type { InjectedTokenFailures, SandboxContext } from './context';
import { createControlRouter } from './control-routes';
import { createOAuthRouter } from './oauth-routes';
import { RequestLog } from './request-log';
import { issueTokenFamily } from './grants';
import { TokenStore } from './token-store';

/** Behaviour of the sandbox provider. Every field can be changed at runtime through `sandbox.options`. */
export interface SandboxOptions {
  /** The only registered client. Default `sandbox-client`. */
  clientId: string;
  /** Its secret. Default `sandbox-secret`. */
  clientSecret: string;
  /**
   * Client authentication accepted by the token and revocation endpoints (RFC 6749 §2.3.1):
   * `body` = `client_secret_post`, `basic` = HTTP Basic, `any` = either. Default `any`.
   */
  clientAuth: 'body' | 'basic' | 'any';
  /** Lifetime of issued access tokens. Default 3600. */
  accessTokenTtlSeconds: number;
  /** How `expires_in` (RFC 6749 §5.1) is written: a number, a numeric string, or left out. Default `number`. */
  expiresInFormat: 'number' | 'string' | 'omit';
  /**
   * Refresh token rotation (RFC 6749 §6, §10.4). `strict` (default): each refresh returns a new refresh token
   * and retires the old one; replaying a retired one is `invalid_grant` and revokes the whole token family.
   * `none`: no new refresh token is returned and the old one stays valid.
   */
  rotation: 'strict' | 'none';
  /** Delay before the token endpoint answers, in ms. Default 0. */
  tokenDelayMs: number;
  /**
   * When true, `/authorize` refuses requests without an S256 `code_challenge` (RFC 7636 §4.4.1). Whenever a
   * challenge was given the token request must carry a matching `code_verifier`. Default false.
   */
  requirePkce: boolean;
  /** When set, authorization responses carry `iss` (RFC 9207). Default null. */
  issuer: string | null;
  /** Time source in ms since the epoch, for codes, consent requests and access token expiry. Default `Date.now`. */
  clock: { now(): number };
  /**
   * Keys the API-key stand-ins (`/webinargeek`, `/livestorm`) accept; any other is refused with
   * 401. Default `[SANDBOX_API_KEY]` (`sbx-demo-api-key`), the demo's documented key.
   */
  apiKeys: string[];
  /**
   * Fields added to every token response besides those of RFC 6749 §5.1 (as Salesforce adds
   * `instance_url`), for `tokenResponseMetadata`. Default `{}`.
   */
  tokenResponseExtras: Record<string, string | number | boolean>;
}

/** Counters and a log of what the sandbox received. */
export interface SandboxStats {
  /** Every `POST /oauth/token`, including failed and injected-failure ones. */
  tokenRequests: number;
  /** Token requests with `grant_type=authorization_code`, whatever their outcome. */
  authorizationCodeGrants: number;
  /** Token requests with `grant_type=refresh_token`, whatever their outcome. */
  refreshGrants: number;
  /** Every `POST /oauth/revoke`. */
  revocations: number;
  /** Every call to an API route (`/me`, `/organizations`, `/forms`, `/echo`, `/big`, `/slow`, `/status`). */
  apiRequests: number;
  /** Every call to the API-key stand-ins (`/webinargeek/*`, `/livestorm/*`), refused and failed ones included. */
  apiKeyRequests: number;
  /** Every request except the `/_sandbox` control routes, newest last, capped at the last 5000. */
  requests: Array<{
    method: string;
    /** Path without the query string. */
    path: string;
    /** Path with the query string, as received. */
    url: string;
    headers: Record<string, string | string[] | undefined>;
    /** The parsed body (object for form/JSON, text for `/echo`), when there was one. */
    body?: unknown;
    /** `clock.now()` when the request arrived. */
    at: number;
  }>;
}

/** A running-or-not sandbox OAuth provider behaving like VideoAsk (Auth0-style). */
export interface Sandbox {
  app: Express;
  /** Live options; changes take effect on the next request. */
  options: SandboxOptions;
  /** Live stats; the object stays the same across `reset()`. */
  stats: SandboxStats;
  /** Starts an HTTP server for the app. Default port 0 (any free port) on 127.0.0.1. */
  listen(port?: number, host?: string): Promise<{ url: string; port: number; close(): Promise<void> }>;
  /** Forgets all consent requests, codes and tokens, cancels injected failures and zeroes the stats. */
  reset(): void;
  /** The next `n` token requests answer `status` (default 500) with `{"error":"server_error"}`. */
  failNextTokenRequests(n: number, status?: number): void;
  /**
   * The next `n` requests to the API-key stand-ins answer `status`, or, with `drop`, have their
   * connection closed without an answer (a network failure, as the caller sees it).
   */
  failNextApiKeyRequests(n: number, mode?: number | 'drop'): void;
  /** Every issued access token becomes expired now. */
  expireAllAccessTokens(): void;
  /** Seeds a token family without the browser step, as if an authorization code had just been exchanged. */
  issueTokensDirectly(opts?: { scope?: string }): {
    access_token: string;
    refresh_token: string;
    expires_in: number;
  };
}

export { SANDBOX_API_KEY };

/** Scope given to tokens seeded with `issueTokensDirectly` when none is asked for. */
export const DEFAULT_SEEDED_SCOPE = 'openid profile email offline_access';

/** The default options; `clock` reads `Date.now()`. */
export function defaultSandboxOptions(): SandboxOptions {
  return {
    clientId: 'sandbox-client',
    clientSecret: 'sandbox-secret',
    clientAuth: 'any',
    accessTokenTtlSeconds: 3600,
    expiresInFormat: 'number',
    rotation: 'strict',
    tokenDelayMs: 0,
    requirePkce: false,
    issuer: null,
    clock: { now: () => Date.now() },
    apiKeys: [SANDBOX_API_KEY],
    tokenResponseExtras: {},
  };
}

function emptyStats(): SandboxStats {
  return {
    tokenRequests: 0,
    authorizationCodeGrants: 0,
    refreshGrants: 0,
    revocations: 0,
    apiRequests: 0,
    apiKeyRequests: 0,
    requests: [],
  };
}

function zeroStats(stats: SandboxStats): void {
  Object.assign(stats, { ...emptyStats(), requests: stats.requests });
  stats.requests.length = 0;
}

/** Answers malformed bodies with 400 (OAuth style on `/oauth`, VideoAsk style elsewhere) and the rest with 500. */
const handleErrors: ErrorRequestHandler = (err: unknown, req, res, next) => {
  if (res.headersSent) return next(err);
  const status = typeof err === 'object' && err !== null && 'status' in err ? Number(err.status) : 500;
  const clientError = status >= 400 && status < 500;
  const message = clientError && err instanceof Error ? err.message : 'Internal error';
  if (req.path.startsWith('/oauth/')) {
    res
      .status(clientError ? status : 500)
      .json({ error: clientError ? 'invalid_request' : 'server_error', error_description: message });
  } else {
    res.status(clientError ? status : 500).json({ detail: message });
  }
};

function handleNotFound(_req: Request, res: Response): void {
  res.status(404).json({ detail: 'Not found.' });
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Starts an HTTP server for `app` and resolves once it is listening. */
function listenOn(app: Express, port: number, host: string): ReturnType<Sandbox['listen']> {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const { port: actualPort } = server.address() as AddressInfo;
      resolve({
        url: `http://${formatHost(host)}:${actualPort}`,
        port: actualPort,
        close: () => closeServer(server),
      });
    });
  });
}

/**
 * Creates the sandbox provider: an OAuth 2.0 authorization server (RFC 6749 authorization code grant with
 * refresh token rotation, PKCE per RFC 7636, revocation per RFC 7009), a small VideoAsk-like API, and
 * stand-ins for the API-key providers (WebinarGeek, Livestorm's API token) that check a key.
 */
export function createSandbox(options: Partial<SandboxOptions> = {}): Sandbox {
  const app = express();
  const tokenFailures: InjectedTokenFailures = { remaining: 0, status: 500 };
  const apiKeyFailures: InjectedApiKeyFailures = { remaining: 0, mode: 500 };
  const now = (): number => sandbox.options.clock.now();
  const store = new TokenStore(now);

  const sandbox: Sandbox = {
    app,
    options: { ...defaultSandboxOptions(), ...options },
    stats: emptyStats(),
    listen: (port = 0, host = '127.0.0.1') => listenOn(app, port, host),
    reset() {
      store.clear();
      tokenFailures.remaining = 0;
      apiKeyFailures.remaining = 0;
      zeroStats(sandbox.stats);
    },
    failNextTokenRequests(n, status = 500) {
      tokenFailures.remaining = n;
      tokenFailures.status = status;
    },
    failNextApiKeyRequests(n, mode = 500) {
      apiKeyFailures.remaining = n;
      apiKeyFailures.mode = mode;
    },
    expireAllAccessTokens: () => store.expireAllAccessTokens(),
    issueTokensDirectly(opts = {}) {
      const { access_token, refresh_token, expires_in } = issueTokenFamily(ctx, opts.scope ?? DEFAULT_SEEDED_SCOPE);
      return { access_token, refresh_token, expires_in };
    },
  };

  const ctx: SandboxContext = {
    get options() {
      return sandbox.options;
    },
    get stats() {
      return sandbox.stats;
    },
    store,
    tokenFailures,
    apiKeyFailures,
  };
  const log = new RequestLog(sandbox.stats, now);

  app.disable('x-powered-by');
  app.set('etag', false);
  app.use('/_sandbox', createControlRouter(sandbox));
  app.use(log.record);
  app.use(createOAuthRouter(ctx, log));
  app.use(createApiRouter(ctx, log));
  app.use(createApiKeyRouter(ctx));
  app.use(handleNotFound);
  app.use(handleErrors);
  return sandbox;
}
