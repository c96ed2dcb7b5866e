import type { IncomingMessage } from 'node:http';
import express, { type RequestHandler } from 'express';
import { AppError } from '../errors';

/**
 * The body parsers of Latchkey's routes. Each one first refuses a body of another media type
 * with a 400 `invalid_request` that says what to send (body-parser would skip it silently and
 * leave the route to guess), then parses with body-parser. body-parser's own failures (too
 * large, too many fields, not JSON, a refused charset or encoding, an aborted body) reach the
 * error middleware, where `toAppError` maps them by status and the cause sanitiser drops the
 * body they carry (SECURITY.md 21).
 */

/** How deep a JSON body may nest: Latchkey's bodies are flat objects with flat maps in them. */
export const MAX_JSON_DEPTH = 32;

/** The media type of the request, lower-case, without parameters. */
function mediaTypeOf(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Whether the request has a body to parse (an empty `Content-Length: 0` body is none). */
function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = Number(req.headers['content-length']);
  return Number.isFinite(length) && length > 0;
}

const isJson = (req: IncomingMessage) => {
  const type = mediaTypeOf(req);
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
};
const isForm = (req: IncomingMessage) => mediaTypeOf(req) === 'application/x-www-form-urlencoded';

function requireMediaType(accepts: (req: IncomingMessage) => boolean, message: string): RequestHandler {
  return (req, _res, next) =>
    next(hasBody(req) && !accepts(req) ? new AppError('invalid_request', message) : undefined);
}

/** The depth of a parsed JSON value, counted without recursion (a deep value must not blow the stack). */
function depthExceeds(value: unknown, max: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length) {
    const { value: v, depth } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Object.values(v as object)) stack.push({ value: child, depth: depth + 1 });
  }
  return false;
}

/** Runs `handlers` one after the other, as one middleware (so a route takes it like any parser). */
function inSequence(handlers: RequestHandler[]): RequestHandler {
  return (req, res, next) => {
    const run = (i: number, err?: unknown): void => {
      if (err !== undefined || i === handlers.length) return next(err);
      void handlers[i]!(req, res, (e?: unknown) => run(i + 1, e));
    };
    run(0);
  };
}

/** A JSON body of at most `limit`, nested at most {@link MAX_JSON_DEPTH} deep. */
export function jsonBody(options: { limit: string | number }): RequestHandler {
  return inSequence([
    requireMediaType(isJson, 'This route takes JSON: send the body as application/json'),
    express.json({ limit: options.limit, type: isJson }),
    (req, _res, next) =>
      next(
        depthExceeds(req.body, MAX_JSON_DEPTH)
          ? new AppError('invalid_request', `The JSON body is nested more than ${MAX_JSON_DEPTH} levels deep`)
          : undefined,
      ),
  ]);
}

/** A form body (`application/x-www-form-urlencoded`, flat) of at most `limit` and `parameterLimit` fields. */
export function formBody(options: { limit: string | number; parameterLimit: number }): RequestHandler {
  return inSequence([
    requireMediaType(isForm, 'This form must be sent as application/x-www-form-urlencoded'),
    express.urlencoded({
      extended: false,
      limit: options.limit,
      parameterLimit: options.parameterLimit,
      type: isForm,
    }),
  ]);
}

/**
 * Refuses a query that gives any parameter more than once (the `simple` query parser makes it
 * an array): `?provider=a&provider=b` is ambiguous, and reading only one of them would let a
 * request mean two things to two readers.
 */
export const singleValuedQuery: RequestHandler = (req, _res, next) => {
  const repeated = Object.entries(req.query).find(([, v]) => Array.isArray(v));
  next(
    repeated
      ? new AppError(
          'invalid_request',
          `The query parameter ${JSON.stringify(repeated[0].slice(0, 64))} is given more than once`,
        )
      : undefined,
  );
};
