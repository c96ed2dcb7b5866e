import type { IncomingMessage, ServerResponse } from 'node:http';
import { CONNECTION_ID_PATTERN } from '../connect/authorization-flow';
import type { ResolvedCredential } from '../client/types';
import { AppError, toAppError } from '../errors';
import { authorize } from '../guards/access';
import type { ApiKeyGuard } from '../guards/api-keys';
import { serviceRateKey, type RateLimiter } from '../guards/rate-limit';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Provider, ProviderRegistry } from '../providers/registry';
import { pathWithQueryNames, REQUEST_ID_HEADER, type AccessLog, type AccessLogSide } from '../wire/access-log';
import { reportError } from '../wire/error-report';
import { writeError } from '../wire/error-response';
import { KeyConcurrency } from './concurrency';
import type { CredentialCache } from '../client/credential-cache';
import { requireTarget, resolveConnectionTarget } from '../client/connection-target';
import { CallDeadline } from './deadline';
import { brokenAnswer, upstreamFailure } from './proxy-error';
import { buildUpstreamHeaders, filterResponseHeaders } from './proxy-headers';
import { CallerAbortedError, readRequestBody } from './request-body';
import { retriesFor, RETRIES_HEADER, sendWithRetries } from './retries';
import { parseApiBase, resolveTargetPath, type ApiBase } from '../providers/api-target';
import type { UpstreamAgents } from './upstream-agents';
import { callUpstream, type CallOutcome, type HeldResponse } from './upstream-call';

export interface ProxyHandlerDeps {
  /** The API-key check of the service API (a plain function of the request, shared with Express). */
  authenticate: ApiKeyGuard;
  /** The service rate limit, counted per API key name. */
  limiter: RateLimiter;
  /** The one access log, shared with the Express side. */
  accessLog: AccessLog;
  providers: ProviderRegistry;
  credentials: CredentialCache;
  agents: UpstreamAgents;
  /** For `upstreamDuration`; the request itself is counted by the access log. */
  metrics: Metrics;
  logger: Logger;
  /** Largest request body accepted (and buffered for the retry after a 401). */
  bodyLimitBytes: number;
  /**
   * The call's deadline for the provider's response headers, counted from its arrival (queueing
   * for a socket and `Latchkey-Retries` waits included), and the bound on each silence in its body.
   */
  upstreamTimeoutMs: number;
  /** How long a caller may leave an answer unread before it is cut off (PROXY_CALLER_STALL_MS). */
  callerStallMs: number;
  /** Proxied calls in flight per API key (PROXY_MAX_CONCURRENCY_PER_KEY); 0: no cap. */
  maxConcurrencyPerKey: number;
}

/** A raw Node request handler: no Express on the hot path. */
export type RawHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The proxy's prefix, spelled once. */
export const PROXY_PREFIX = '/proxy/';
const PROXY_ROUTE = `${PROXY_PREFIX}:provider/*`;
/** `/proxy/…` in any case, also in absolute form (`GET http://host/proxy/…`), which the proxy then refuses. */
const PROXY_TARGET = /^(?:[a-z][a-z0-9+.-]*:\/\/[^/?#]*)?\/proxy\//i;

/** True for a request target the proxy answers (case-insensitive, like Express's router). */
export function isProxyTarget(url: string | undefined): boolean {
  return url !== undefined && (url.startsWith(PROXY_PREFIX) || PROXY_TARGET.test(url));
}

/** The proxy's side of the access log: query names only (SECURITY.md 22), one route label. */
const ACCESS_LOG_SIDE: AccessLogSide = {
  urlOf: (req) => pathWithQueryNames(req.url ?? ''),
  routeOf: () => PROXY_ROUTE,
  // Written with each answer's own headers: a relayed answer is then one writeHead, Node's fast path.
  setsIdHeader: false,
};
/** Bounds of the memo of resolved targets, per provider. */
const MEMO_ENTRIES = 1000;
const MEMO_MAX_PATH = 256;
/** TRACE would echo the stored credential back to the caller (RFC 9110 §9.3.8). */
const REFUSED_METHODS = new Set(['TRACE', 'TRACK', 'CONNECT']);

/** The provider id and the raw rest of `/proxy/:provider/<rest>`; origin-form targets only. */
function splitProxyUrl(url: string): { providerId: string; rest: string } {
  if (!url.startsWith(PROXY_PREFIX)) {
    throw new AppError(
      'invalid_request',
      'The proxy takes a request path of the form /proxy/:provider/<path>, never an absolute URL',
    );
  }
  const end = url.slice(PROXY_PREFIX.length).search(/[/?]/);
  const providerId =
    end === -1 ? url.slice(PROXY_PREFIX.length) : url.slice(PROXY_PREFIX.length, PROXY_PREFIX.length + end);
  const rest = end === -1 ? '' : url.slice(PROXY_PREFIX.length + end);
  return { providerId, rest };
}

function readConnectionId(header: string | string[] | undefined): string {
  if (header === undefined) return 'default';
  if (typeof header !== 'string' || !CONNECTION_ID_PATTERN.test(header)) {
    throw new AppError('invalid_request', 'Connection-Id must match ^[A-Za-z0-9._:@-]{1,128}$');
  }
  return header;
}

/** Unread bytes of a refused body that are cheaper to read and drop than to lose the connection over. */
const DRAIN_BYTES = 1024 * 1024;

/**
 * True when the caller's body is still arriving and is not worth reading to keep the connection
 * (unknown length, or well over the limit): the answer then carries `Connection: close`. A small
 * remainder is left to Node, which reads and drops it and keeps the connection alive.
 */
function mustCloseAfter(req: IncomingMessage, bodyLimitBytes: number): boolean {
  if (req.complete) return false;
  const declared = Number(req.headers['content-length'] ?? NaN);
  return !(declared <= bodyLimitBytes + DRAIN_BYTES);
}

/** Sends a held 401 as the provider gave it (its length recomputed: the held body may be cut short). */
function replayHeld(res: ServerResponse, held: HeldResponse, reqId: string): void {
  const headers = filterResponseHeaders(held.headers, reqId);
  headers['content-length'] = held.body.length;
  res.writeHead(held.statusCode, headers);
  res.end(held.body);
}

/**
 * `ALL /proxy/:provider/*` (CONTRACT "Service API"): forwards the method, path, query and body to
 * the provider's `apiBaseUrl` with the stored credential, and streams the answer back with the
 * provider's status. The target is pinned to `apiBaseUrl` (SECURITY.md §10), the caller's
 * credentials and hop-by-hop headers never go upstream (§11), the body is bounded and the wait
 * for the provider too (§12). A provider 401 makes the credential source refresh once and the
 * call is retried once with the new credential; when nothing can be refreshed the 401 passes
 * through. Mounted behind the API-key check.
 */
export function createProxyHandler(deps: ProxyHandlerDeps): RawHandler {
  type BaseEntry = { base: ApiBase; targets: Map<string, string> };
  /** A provider's fixed `apiBaseUrl`, parsed once, with a memo of targets under it. */
  const fixedBases = new WeakMap<Provider, BaseEntry>();
  const fixedBaseOf = (provider: Provider): BaseEntry => {
    let entry = fixedBases.get(provider);
    if (!entry) fixedBases.set(provider, (entry = { base: parseApiBase(provider.apiBaseUrl), targets: new Map() }));
    return entry;
  };
  /** A templated `apiBaseUrl` resolves per connection: a memo per provider, keyed by the resolved base. */
  const resolvedBases = new WeakMap<Provider, Map<string, BaseEntry>>();
  const resolvedBaseOf = (provider: Provider, base: ApiBase): BaseEntry => {
    let byBase = resolvedBases.get(provider);
    if (!byBase) resolvedBases.set(provider, (byBase = new Map()));
    const key = `${base.origin}${base.basePath}`;
    let entry = byBase.get(key);
    if (!entry) {
      if (byBase.size >= MEMO_ENTRIES) byBase.clear();
      byBase.set(key, (entry = { base, targets: new Map() }));
    }
    return entry;
  };
  /** {@link resolveTargetPath}, remembered for the paths callers repeat (a bounded memo: it is a pure function). */
  const targetOf = (entry: BaseEntry, rest: string): string => {
    let target = entry.targets.get(rest);
    if (target === undefined) {
      target = resolveTargetPath(entry.base, rest);
      if (rest.length <= MEMO_MAX_PATH) {
        if (entry.targets.size >= MEMO_ENTRIES) entry.targets.clear();
        entry.targets.set(rest, target);
      }
    }
    return target;
  };

  const fail = (req: IncomingMessage, res: ServerResponse, reqId: string, err: unknown) => {
    if (err instanceof CallerAbortedError) {
      res.destroy();
      return;
    }
    const error = toAppError(err);
    const url = req.url ?? '';
    reportError(deps.logger, error, {
      reqId,
      method: req.method,
      path: url.split('?')[0]!,
      provider: providerOf(url),
      apiKey: deps.authenticate.identityOf(req)?.name,
    });
    if (!res.headersSent) res.setHeader(REQUEST_ID_HEADER, reqId);
    writeError(res, error, { close: mustCloseAfter(req, deps.bodyLimitBytes) });
  };

  const proxy = async (req: IncomingMessage, res: ServerResponse, arrived: number, reqId: string): Promise<void> => {
    const method = req.method ?? 'GET';
    if (REFUSED_METHODS.has(method)) throw new AppError('invalid_request', `The proxy does not forward ${method}`);
    const { providerId, rest } = splitProxyUrl(req.url ?? '');
    const provider = deps.providers.requireEnabled(providerId);
    // A fixed base is checked before anything is read; a templated one once the connection is known.
    const fixed = provider.templates.apiBaseUrl.refs.length === 0 ? fixedBaseOf(provider) : undefined;
    const fixedPath = fixed ? targetOf(fixed, rest) : undefined;
    const connectionId = readConnectionId(req.headers['connection-id']);
    const retries = retriesFor(req.headers[RETRIES_HEADER], method);
    const reading = readRequestBody(req, deps.bodyLimitBytes);
    const body = reading && (await reading);
    const credential =
      deps.credentials.peek(provider, connectionId) ?? (await deps.credentials.get(provider, connectionId, reqId));
    // Resolved with the credential (credential-cache.ts): a lookup here, 409 connection_incomplete when the base cannot be built.
    const target = requireTarget(credential.target ?? resolveConnectionTarget(provider, credential.connection));
    const entry = fixed ?? resolvedBaseOf(provider, target.base);
    const path = fixedPath ?? targetOf(entry, rest);

    const deadline = new CallDeadline(arrived, deps.upstreamTimeoutMs);
    const upstream = deps.agents.forOrigin(entry.base.origin);
    const send = (cred: ResolvedCredential, holdUnauthorized: boolean): Promise<CallOutcome> => {
      const started = performance.now();
      return callUpstream(
        {
          upstream,
          method,
          path,
          headers: buildUpstreamHeaders(
            req.headers,
            (cred.target && 'base' in cred.target ? cred.target : target).headers,
            cred.header,
            body === null ? null : body.length,
            target.callerWins,
          ),
          body,
          deadline,
          timeoutMs: deps.upstreamTimeoutMs,
          stallMs: deps.callerStallMs,
          holdUnauthorized,
          retries,
          logger: deps.logger,
          provider: provider.id,
          reqId,
          onHeaders: (status) =>
            deps.metrics.upstreamDuration.observe(
              { provider: provider.id, status: String(status) },
              (performance.now() - started) / 1000,
            ),
        },
        res,
      );
    };

    try {
      // api_key credentials cannot be refreshed: their 401 goes straight through.
      let outcome = await sendWithRetries(send, credential, provider.authMode === 'oauth2', retries, deadline, res);
      if (outcome.kind === 'unauthorized') {
        const fresh = await deps.credentials.afterUnauthorized(provider, connectionId, credential, reqId);
        if (!fresh) {
          replayHeld(res, outcome.held, reqId);
          return;
        }
        outcome = await sendWithRetries(send, fresh, false, retries, deadline, res);
      }
      // A retry that could not be made in time: the provider's last answer is the caller's.
      if (outcome.kind === 'retryable') replayHeld(res, outcome.held, reqId);
      else if (outcome.kind === 'failed') throw upstreamFailure(outcome.error);
      else if (outcome.kind === 'broken') throw brokenAnswer(outcome.error);
    } finally {
      deadline.clear();
    }
  };

  const concurrency = new KeyConcurrency(deps.maxConcurrencyPerKey);

  return (req, res) => {
    // The call's deadline counts from here (SECURITY.md 23).
    const arrived = performance.now();
    // Passed on to the credential source, so the lines it logs for this call carry the id too.
    const reqId = deps.accessLog(req, res, ACCESS_LOG_SIDE);
    deps
      .authenticate(req)
      .then(async (identity) => {
        // Over its cap, a key is refused here (429), before it costs the store a rate-limit hit.
        concurrency.acquire(identity.name);
        try {
          await deps.limiter.hit(serviceRateKey(identity.name));
          // `proxy` access, and a key limited to providers only on those (a path naming none: refused).
          authorize(identity, { access: 'proxy', provider: providerOf(req.url ?? '') ?? null });
          await proxy(req, res, arrived, reqId);
        } finally {
          concurrency.release(identity.name);
        }
      })
      .catch((err: unknown) => fail(req, res, reqId, err));
  };
}

function providerOf(url: string): string | undefined {
  const m = /^\/proxy\/([a-z][a-z0-9-]{1,40})(?:[/?]|$)/.exec(url);
  return m?.[1];
}
