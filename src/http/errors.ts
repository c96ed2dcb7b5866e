import type { ErrorRequestHandler, Request, Response } from 'express';
import { toAppError, type AppError } from '../errors';
import type { Logger } from '../logger';
import { renderErrorPage } from '../public/pages';
import { requestIdOfAnswer } from '../wire/access-log';
import { reportError } from '../wire/error-report';
import { writeError } from '../wire/error-response';

/** Browser routes render an HTML page with the code visible; everything else gets JSON. */
export function isBrowserRoute(req: Request): boolean {
  const path = req.path;
  return path === '/' || path.startsWith('/auth/') || path === '/callback' || path.startsWith('/callback/');
}

/** Answers `error` the contract's way: JSON, or on a browser route the error page. */
export function sendError(req: Request, res: Response, error: AppError, basePath: string): void {
  const html = isBrowserRoute(req) ? renderErrorPage(error.code, error.message, basePath) : undefined;
  writeError(res, error, { html });
}

/** The one error middleware of the Express side: the shared reporter, then the shared writer. */
export function errorMiddleware(basePath: string, logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const error = toAppError(err);
    reportError(logger, error, {
      reqId: requestIdOfAnswer(res),
      method: req.method,
      path: req.path,
      apiKey: res.locals.apiKey?.name,
    });
    sendError(req, res, error, basePath);
  };
}
