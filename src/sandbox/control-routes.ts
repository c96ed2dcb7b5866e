import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';

import { DEFAULT_SEEDED_SCOPE, type Sandbox, type SandboxOptions } from './sandbox';

/** A JSON patch of the sandbox options (everything but the clock). Unknown keys are refused. */
export const OptionsPatchSchema = z
  .strictObject({
    clientId: z.string().min(1),
    clientSecret: z.string(),
    clientAuth: z.enum(['body', 'basic', 'any']),
    accessTokenTtlSeconds: z.number().min(0),
    expiresInFormat: z.enum(['number', 'string', 'omit']),
    rotation: z.enum(['strict', 'none']),
    tokenDelayMs: z.number().min(0),
    requirePkce: z.boolean(),
    issuer: z.string().nullable(),
    apiKeys: z.array(z.string().min(1)).max(100),
  })
  .partial();

const FailTokenSchema = z.strictObject({
  n: z.number().int().min(0),
  status: z.number().int().min(100).max(599).optional(),
});

const FailApiKeySchema = z.strictObject({
  n: z.number().int().min(0),
  status: z.number().int().min(100).max(599).optional(),
  drop: z.boolean().optional(),
});

/** `as: "import"` answers the body of Latchkey's `PUT /connections/…` (README: the demo without a browser). */
const IssueTokensSchema = z.strictObject({ scope: z.string().optional(), as: z.literal('import').optional() });

/** The options as JSON: everything but the clock. */
export function describeOptions(options: SandboxOptions): Omit<SandboxOptions, 'clock'> {
  return Object.fromEntries(Object.entries(options).filter(([key]) => key !== 'clock')) as Omit<
    SandboxOptions,
    'clock'
  >;
}

/** A seeded token pair as Latchkey's import takes it: an expiry time instead of a lifetime, scopes as a list. */
function asImport(
  tokens: ReturnType<Sandbox['issueTokensDirectly']>,
  scope: string | undefined,
  now: number,
): { access_token: string; refresh_token: string; expires_at: string; scopes: string[] } {
  return {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    expires_at: new Date(now + tokens.expires_in * 1000).toISOString(),
    scopes: (scope ?? DEFAULT_SEEDED_SCOPE).split(' ').filter(Boolean),
  };
}

function sendInvalid(res: Response, error: z.ZodError): void {
  res.status(400).json({ error: 'invalid_request', issues: error.issues });
}

/**
 * Test-control routes under `/_sandbox`, so a test in another process can drive the sandbox.
 * They are neither counted as API requests nor written to the request log.
 */
export function createControlRouter(sandbox: Sandbox): Router {
  const router = express.Router();
  router.use(express.json());

  router.get('/stats', (req: Request, res: Response) => {
    const { requests, ...counters } = sandbox.stats;
    res.set('Cache-Control', 'no-store').json(req.query['log'] === '1' ? { ...counters, requests } : counters);
  });

  router.post('/config', (req: Request, res: Response) => {
    const parsed = OptionsPatchSchema.safeParse(req.body ?? {});
    if (!parsed.success) return sendInvalid(res, parsed.error);
    Object.assign(sandbox.options, parsed.data);
    res.json(describeOptions(sandbox.options));
  });

  router.post('/reset', (_req: Request, res: Response) => {
    sandbox.reset();
    res.json({ ok: true });
  });

  router.post('/fail-token', (req: Request, res: Response) => {
    const parsed = FailTokenSchema.safeParse(req.body ?? {});
    if (!parsed.success) return sendInvalid(res, parsed.error);
    sandbox.failNextTokenRequests(parsed.data.n, parsed.data.status);
    res.json({ ok: true });
  });

  router.post('/fail-api-key', (req: Request, res: Response) => {
    const parsed = FailApiKeySchema.safeParse(req.body ?? {});
    if (!parsed.success) return sendInvalid(res, parsed.error);
    sandbox.failNextApiKeyRequests(parsed.data.n, parsed.data.drop ? 'drop' : parsed.data.status);
    res.json({ ok: true });
  });

  router.post('/expire-access-tokens', (_req: Request, res: Response) => {
    sandbox.expireAllAccessTokens();
    res.json({ ok: true });
  });

  router.post('/issue-tokens', (req: Request, res: Response) => {
    const parsed = IssueTokensSchema.safeParse(req.body ?? {});
    if (!parsed.success) return sendInvalid(res, parsed.error);
    const tokens = sandbox.issueTokensDirectly({ scope: parsed.data.scope });
    const body =
      parsed.data.as === 'import' ? asImport(tokens, parsed.data.scope, sandbox.options.clock.now()) : tokens;
    res.set('Cache-Control', 'no-store').json(body);
  });

  return router;
}
