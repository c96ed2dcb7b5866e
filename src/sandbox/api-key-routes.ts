import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';

import type { SandboxContext } from './context';
import { SANDBOX_USER } from './api-routes';

/**
 * The documented demo key of the sandbox's API-key providers: `npm run demo` points WebinarGeek
 * and Livestorm (API token) at the sandbox, and this is the key their forms accept there.
 */
export const SANDBOX_API_KEY = 'sbx-demo-api-key';

/** Failures injected into the next API-key requests by `failNextApiKeyRequests`. */
export interface InjectedApiKeyFailures {
  remaining: number;
  /** An HTTP status to answer, or `drop` to close the connection without an answer. */
  mode: number | 'drop';
}

/** How each stand-in reads the key and says no, as the real API does. */
interface KeyStyle {
  readKey(req: Request): string | undefined;
  refuse(res: Response): void;
}

/**
 * WebinarGeek (API v2): the key in `Api-Token`; a missing or wrong one answers 401
 * `{"code":"unauthorized","message":"Key is not provided or does not exists"}`.
 */
const webinargeek: KeyStyle = {
  readKey: (req) => req.get('api-token'),
  refuse: (res) => res.status(401).json({ code: 'unauthorized', message: 'Key is not provided or does not exists' }),
};

/** Livestorm (personal API token): the token raw in `Authorization`, JSON:API errors. */
const livestorm: KeyStyle = {
  readKey: (req) => req.get('authorization'),
  refuse: (res) =>
    res
      .status(401)
      .type('application/vnd.api+json')
      .send(JSON.stringify({ errors: [{ title: 'Unauthorized', detail: 'Invalid API token', status: '401' }] })),
};

function requireKey(ctx: SandboxContext, style: KeyStyle): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    ctx.stats.apiKeyRequests += 1;
    const failures = ctx.apiKeyFailures;
    if (failures.remaining > 0) {
      failures.remaining -= 1;
      if (failures.mode === 'drop') {
        req.socket.destroy();
        return;
      }
      res.status(failures.mode).json({ message: 'injected failure' });
      return;
    }
    const key = style.readKey(req);
    if (key === undefined || !ctx.options.apiKeys.includes(key)) return style.refuse(res);
    next();
  };
}

const json =
  (body: unknown): RequestHandler =>
  (_req, res) =>
    res.json(body);

/**
 * Stand-ins for the API-key providers, under `/webinargeek` and `/livestorm`, so that the demo
 * and the tests check a pasted key against a provider that really says yes or no, and count
 * how often they were asked: `GET /webinargeek/account` (WebinarGeek's `apiKey.check`),
 * `GET /webinargeek/webinars`, `GET /livestorm/me` (Livestorm's) and `GET /livestorm/events`.
 * Every request under them is counted in `stats.apiKeyRequests`, also refused ones.
 */
export function createApiKeyRouter(ctx: SandboxContext): Router {
  const router = express.Router();

  const wg = express.Router();
  wg.use(requireKey(ctx, webinargeek));
  wg.get('/account', json({ id: 7001, company_name: 'Sandbox Webinars', email: SANDBOX_USER.email }));
  wg.get('/webinars', json({ webinars: [{ id: 7101, name: 'Sandbox product tour' }], pages: { total_pages: 1 } }));
  router.use('/webinargeek', wg);

  const ls = express.Router();
  ls.use(requireKey(ctx, livestorm));
  ls.get('/me', (_req, res) => {
    res.type('application/vnd.api+json').send(
      JSON.stringify({
        data: {
          id: '5b5f5d1c-0000-4000-8000-000000000001',
          type: 'users',
          attributes: { email: SANDBOX_USER.email, first_name: 'Sandbox', last_name: 'User' },
        },
      }),
    );
  });
  ls.get('/events', (_req, res) => {
    res.type('application/vnd.api+json').send(JSON.stringify({ data: [], meta: { record_count: 0 } }));
  });
  router.use('/livestorm', ls);
  return router;
}
