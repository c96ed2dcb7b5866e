import type { NextFunction, Request, RequestHandler, Response } from 'express';

import type { SandboxStats } from './sandbox';

/** Most requests kept in `stats.requests`; older ones are dropped first. */
export const REQUEST_LOG_LIMIT = 5000;

/** One entry of the sandbox request log. */
export type RequestLogEntry = SandboxStats['requests'][number];

/** Paths that drive the sandbox itself and are therefore kept out of the log. */
function isControlPath(path: string): boolean {
  return path === '/_sandbox' || path.startsWith('/_sandbox/');
}

/** Records every request the sandbox receives, with its parsed body once a body parser has run. */
export class RequestLog {
  private readonly entries = new WeakMap<Request, RequestLogEntry>();

  constructor(
    private readonly stats: SandboxStats,
    private readonly now: () => number,
  ) {}

  /** Middleware appending the request to `stats.requests` (capped at {@link REQUEST_LOG_LIMIT}). */
  readonly record: RequestHandler = (req: Request, _res: Response, next: NextFunction) => {
    if (!isControlPath(req.path)) {
      const entry: RequestLogEntry = {
        method: req.method,
        path: req.path,
        url: req.originalUrl,
        headers: { ...req.headers },
        at: this.now(),
      };
      this.entries.set(req, entry);
      this.stats.requests.push(entry);
      if (this.stats.requests.length > REQUEST_LOG_LIMIT) this.stats.requests.shift();
    }
    next();
  };

  /** Middleware, placed after a body parser, copying the parsed body into the request's log entry. */
  readonly attachBody: RequestHandler = (req: Request, _res: Response, next: NextFunction) => {
    const entry = this.entries.get(req);
    if (entry && req.body !== undefined) entry.body = req.body as unknown;
    next();
  };
}
