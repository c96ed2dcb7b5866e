import { sanitizeCause, type AppError } from '../errors';
import type { Logger } from '../logger';

/** Where an error happened, as it may be logged: a loggable path, never a query or a body. */
export interface ErrorContext {
  /** The request's id (see `requestIdOfAnswer`), so the line joins its access-log line. */
  reqId?: string;
  method?: string;
  /** Absent when the request could not even be parsed (Node's `clientError`). */
  path?: string;
  provider?: string;
  /** The name of the API key that called, when it is known (never the key). */
  apiKey?: string;
}

const MAX_LOGGED_PATH = 200;

/**
 * The one reporter of errors that Latchkey answers with: a 5xx is Latchkey's own failure and is
 * logged at error with its cause, sanitised (an error that carries a request or response body,
 * headers or a request config keeps only its name, code, status and type); anything else —
 * body-parser's failures included — is the caller's mistake, logged at info without a stack or
 * a cause.
 */
export function reportError(logger: Logger, error: AppError, context: ErrorContext): void {
  const fields = {
    reqId: context.reqId,
    code: error.code,
    status: error.status,
    method: context.method,
    path: context.path?.slice(0, MAX_LOGGED_PATH),
    provider: context.provider,
    apiKey: context.apiKey,
  };
  if (error.status >= 500) logger.error({ ...fields, err: sanitizeCause(error.cause ?? error) }, error.message);
  else if (logger.isLevelEnabled('info')) logger.info(fields, error.message);
}
