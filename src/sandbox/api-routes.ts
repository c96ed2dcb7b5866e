import { STATUS_CODES } from 'node:http';

import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { z } from 'zod';

import type { SandboxContext } from './context';
import type { RequestLog } from './request-log';

/** The single user every sandbox token belongs to. */
export const SANDBOX_USER = {
  user_id: 'usr_sandbox_0001',
  email: 'sandbox.user@example.com',
  name: 'Sandbox User',
} as const;

/** Organizations of the sandbox user, and the forms each one holds. */
export const SANDBOX_ORGANIZATIONS = [
  {
    organization_id: 'org_sandbox_0001',
    name: 'Sandbox Org',
    forms: [
      { form_id: 'form_sandbox_0001', title: 'Customer feedback' },
      { form_id: 'form_sandbox_0002', title: 'Job application' },
      { form_id: 'form_sandbox_0003', title: 'Product demo request' },
    ],
  },
  {
    organization_id: 'org_sandbox_0002',
    name: 'Sandbox Agency',
    forms: [{ form_id: 'form_sandbox_0101', title: 'Client onboarding' }],
  },
] as const;

const MAX_BIG_KB = 50 * 1024;
const MAX_SLOW_MS = 120_000;

const BigQuerySchema = z.object({ kb: z.coerce.number().int().min(0).max(MAX_BIG_KB).default(1) });
const SlowQuerySchema = z.object({ ms: z.coerce.number().int().min(0).max(MAX_SLOW_MS).default(0) });
const StatusParamsSchema = z.object({ code: z.coerce.number().int().min(200).max(599) });

/** Statuses whose responses must not carry a body (RFC 9110 §15.3.5, §15.3.6, §15.4.5). */
const BODYLESS_STATUSES = new Set([204, 205, 304]);

/** Extracts the token of an `Authorization: Bearer` header (RFC 6750 §2.1); the scheme is case-insensitive. */
function readBearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

function sendUnauthorized(res: Response, detail: string, challenge: string): void {
  res.status(401).set('WWW-Authenticate', challenge).json({ detail });
}

/**
 * Requires a valid Bearer access token (RFC 6750 §2.1, §3.1). Answers like VideoAsk: 401 with
 * `{"detail":"Token has expired."}` or `{"detail":"Invalid token."}`.
 */
function requireAccessToken(ctx: SandboxContext): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const token = readBearerToken(req.headers.authorization);
    if (token === undefined) {
      return sendUnauthorized(res, 'Authentication credentials were not provided.', 'Bearer realm="sandbox"');
    }
    const check = ctx.store.checkAccessToken(token);
    if (check.status === 'expired') {
      return sendUnauthorized(res, 'Token has expired.', 'Bearer error="invalid_token", error_description="expired"');
    }
    if (check.status === 'invalid') return sendUnauthorized(res, 'Invalid token.', 'Bearer error="invalid_token"');
    next();
  };
}

function sendBadRequest(res: Response, error: z.ZodError): void {
  res.status(400).json({ detail: error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ') });
}

function handleMe(_req: Request, res: Response): void {
  res.json(SANDBOX_USER);
}

function handleOrganizations(_req: Request, res: Response): void {
  const results = SANDBOX_ORGANIZATIONS.map(({ organization_id, name }) => ({ organization_id, name }));
  res.json({ count: results.length, results });
}

/** `GET /forms`: the forms of the organization named by the `organization-id` header (empty when unknown). */
function handleForms(req: Request, res: Response): void {
  const organizationId = req.get('organization-id');
  if (!organizationId) {
    res.status(400).json({ detail: 'organization-id header required' });
    return;
  }
  const organization = SANDBOX_ORGANIZATIONS.find((org) => org.organization_id === organizationId);
  const results = organization ? [...organization.forms] : [];
  res.json({ count: results.length, results });
}

/** `ANY /echo/*`: echoes method, path, query, headers and the raw body text back as JSON. */
function handleEcho(req: Request, res: Response): void {
  const body: unknown = req.body;
  res.json({
    method: req.method,
    path: req.path,
    query: req.query,
    headers: req.headers,
    body: typeof body === 'string' ? body : '',
  });
}

/** Builds a JSON document of exactly `kb` kilobytes (when `kb` is large enough to hold the envelope). */
export function buildBigPayload(kb: number): string {
  const envelope = JSON.stringify({ kb, padding: '' });
  return JSON.stringify({ kb, padding: 'x'.repeat(Math.max(0, kb * 1024 - envelope.length)) });
}

/** `GET /big?kb=N`: N kilobytes of JSON, for proxy streaming and size-limit tests. */
function handleBig(req: Request, res: Response): void {
  const parsed = BigQuerySchema.safeParse(req.query);
  if (!parsed.success) return sendBadRequest(res, parsed.error);
  res.type('json').send(buildBigPayload(parsed.data.kb));
}

/** `GET /slow?ms=N`: answers after N ms; the timer is dropped if the client goes away first. */
function handleSlow(req: Request, res: Response): void {
  const parsed = SlowQuerySchema.safeParse(req.query);
  if (!parsed.success) return sendBadRequest(res, parsed.error);
  const waited = parsed.data.ms;
  const timer = setTimeout(() => res.json({ waited_ms: waited }), waited);
  res.on('close', () => clearTimeout(timer));
}

/** `GET /status/:code`: answers the given status with a small JSON body (none for 204/205/304). */
function handleStatus(req: Request, res: Response): void {
  const parsed = StatusParamsSchema.safeParse(req.params);
  if (!parsed.success) return sendBadRequest(res, parsed.error);
  const status = parsed.data.code;
  if (BODYLESS_STATUSES.has(status)) {
    res.status(status).end();
    return;
  }
  res.status(status).json({ status, message: STATUS_CODES[status] ?? 'Unknown status' });
}

/** The Bearer-protected VideoAsk-like API plus the proxy-test helpers (`/echo`, `/big`, `/slow`, `/status`). */
export function createApiRouter(ctx: SandboxContext, log: RequestLog): Router {
  const router = express.Router();
  const countApiRequest: RequestHandler = (_req, _res, next) => {
    ctx.stats.apiRequests += 1;
    next();
  };
  const parseAnyBodyAsText = express.text({ type: () => true, limit: '20mb' });
  const protect = [countApiRequest, requireAccessToken(ctx)];

  router.get('/me', ...protect, handleMe);
  router.get('/organizations', ...protect, handleOrganizations);
  router.get('/forms', ...protect, handleForms);
  router.all('/echo{/*path}', countApiRequest, parseAnyBodyAsText, log.attachBody, requireAccessToken(ctx), handleEcho);
  router.get('/big', ...protect, handleBig);
  router.get('/slow', ...protect, handleSlow);
  router.get('/status/:code', ...protect, handleStatus);
  return router;
}
