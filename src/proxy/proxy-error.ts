import { errors } from 'undici';
import { AppError, isAppError } from '../errors';

/**
 * undici's error codes for a provider that did not answer in time (connect, response headers, a
 * silence in the body), as opposed to one that could not be reached at all.
 */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Where a call was when its deadline passed, for the log and the caller's message. */
export type DeadlinePhase = 'before_dispatch' | 'queued' | 'in_flight';

/** The call's deadline (from its arrival) passed before the provider's response headers came. */
export class DeadlineError extends Error {
  readonly code = 'LATCHKEY_DEADLINE';
  constructor(readonly phase: DeadlinePhase) {
    super(
      phase === 'queued'
        ? "The call's deadline passed while it waited for one of the provider's connections to come free"
        : phase === 'before_dispatch'
          ? "The call's deadline passed before its request could be sent to the provider"
          : "The call's deadline passed before the provider's response headers arrived",
    );
    this.name = 'DeadlineError';
  }
}

/** The caller closed its connection, or was cut off for not reading: there is no one to answer. */
export class CallerGoneError extends Error {
  constructor(message = 'The caller went away') {
    super(message);
    this.name = 'CallerGoneError';
  }
}

/**
 * The provider answered something that is not a valid HTTP response, or one Latchkey cannot
 * relay faithfully (RFC 9110 §15.6.3: a gateway answers 502 to an invalid response). Carries only
 * a description: never the provider's bytes, which may hold its users' data.
 */
export class MalformedAnswerError extends Error {
  readonly code = 'LATCHKEY_MALFORMED_ANSWER';
  constructor(detail: string) {
    super(`The provider's answer is not valid HTTP: ${detail}`);
    this.name = 'MalformedAnswerError';
  }
}

function isMalformed(error: Error, code: string | undefined): boolean {
  return (
    error instanceof MalformedAnswerError ||
    error instanceof errors.HTTPParserError ||
    error instanceof errors.ResponseContentLengthMismatchError ||
    code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
  );
}

/**
 * An upstream failure as the contract's error: 504 `upstream_timeout` when the provider did not
 * answer within the call's deadline, 502 `provider_error` otherwise (unreachable, closed the
 * connection before answering, or answered something that is not HTTP). The cause kept for the
 * log is the error's message and code only: a parser error also carries the bytes it choked on.
 */
export function upstreamFailure(error: Error): AppError {
  if (isAppError(error)) return error;
  const code = (error as { code?: string }).code;
  if (error instanceof DeadlineError || (code && TIMEOUT_CODES.has(code))) {
    return new AppError('upstream_timeout', 'The provider did not answer in time', { cause: error });
  }
  if (isMalformed(error, code)) {
    const cause = Object.assign(new Error(error.message), { name: error.name, code });
    return new AppError('provider_error', "The provider's answer was not valid HTTP", { cause });
  }
  if (code === 'UND_ERR_SOCKET') {
    return new AppError('provider_error', 'The provider closed the connection without answering', {
      cause: error,
      retryAfter: 5,
    });
  }
  return new AppError('provider_error', "The provider's API could not be reached", { cause: error, retryAfter: 5 });
}

/**
 * A provider answer that failed after its status and headers went to the caller: the caller's
 * connection was cut (the only honest signal left), and this is what the log says about it.
 */
export function brokenAnswer(error: Error): AppError {
  const code = (error as { code?: string }).code;
  if (code && TIMEOUT_CODES.has(code)) {
    return new AppError('upstream_timeout', 'The provider went silent in the middle of its answer', { cause: error });
  }
  const cause = isMalformed(error, code) ? Object.assign(new Error(error.message), { name: error.name, code }) : error;
  return new AppError('provider_error', "The provider's answer broke off after its headers were relayed", { cause });
}
