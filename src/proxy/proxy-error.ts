import type { ServerResponse } from 'node:http';
import { AppError, isAppError } from '../errors';

/**
 * undici's error codes for a provider that did not answer in time (connect or response
 * headers), as opposed to one that could not be reached at all.
 */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** An upstream failure as the contract's error: 504 `upstream_timeout` or 502 `provider_error`. */
export function upstreamFailure(error: Error): AppError {
  if (isAppError(error)) return error;
  const code = (error as { code?: string }).code;
  if (code && TIMEOUT_CODES.has(code)) {
    return new AppError('upstream_timeout', 'The provider did not answer in time', { cause: error });
  }
  return new AppError('provider_error', "The provider's API could not be reached", { cause: error, retryAfter: 5 });
}

/**
 * Writes one of Latchkey's own errors on the raw response, exactly as the app's error middleware
 * does (`{ error: { code, message } }`, `Latchkey-Error`, `Cache-Control: no-store`,
 * `Retry-After`), without going through Express. `close` asks for the connection to be closed
 * afterwards, for a caller whose unread body is still arriving.
 */
export function sendProxyError(res: ServerResponse, error: AppError, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(error.toJSON());
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'latchkey-error': error.code,
    'cache-control': 'no-store',
  };
  if (error.retryAfter !== undefined) headers['retry-after'] = String(error.retryAfter);
  if (close) headers.connection = 'close';
  res.writeHead(error.status, headers);
  res.end(body);
}
