import type { ErrorRequestHandler, Request, Response } from 'express';
import { AppError, isAppError } from '../errors';
import { renderErrorPage } from '../public/pages';

/** Browser routes render an HTML page with the code visible; everything else gets JSON. */
export function isBrowserRoute(req: Request): boolean {
  const path = req.path;
  return path === '/' || path.startsWith('/auth/') || path === '/callback' || path.startsWith('/callback/');
}

/** Turns body-parser and other library errors into the contract's codes. */
export function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = err as { type?: string; status?: number; statusCode?: number };
  if (e?.type === 'entity.too.large') return new AppError('payload_too_large', 'The request body is too large');
  if (e?.type === 'entity.parse.failed') return new AppError('invalid_request', 'The request body is not valid JSON');
  const status = e?.status ?? e?.statusCode;
  if (status === 400 || status === 415) return new AppError('invalid_request', 'The request is not valid');
  return new AppError('internal_error', 'An unexpected error occurred', { cause: err });
}

export function sendError(req: Request, res: Response, error: AppError, basePath: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(error.status);
  res.setHeader('Latchkey-Error', error.code);
  res.setHeader('Cache-Control', 'no-store');
  if (error.retryAfter !== undefined) res.setHeader('Retry-After', String(error.retryAfter));
  if (isBrowserRoute(req)) {
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.type('html').send(renderErrorPage(error.code, error.message, basePath, { popup: res.locals.popupResult }));
    return;
  }
  res.json(error.toJSON());
}

export interface ErrorReporter {
  (error: AppError, req: Request): void;
}

/** The one error middleware: an AppError becomes `{ error: { code, message } }` plus `Latchkey-Error`. */
export function errorMiddleware(basePath: string, report: ErrorReporter): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const error = toAppError(err);
    report(error, req);
    sendError(req, res, error, basePath);
  };
}
