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
