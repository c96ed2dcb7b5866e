import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { AppError } from '../errors';

export interface ErrorResponseOptions {
  /** An HTML page to send instead of the JSON body (browser routes); the code stays in `Latchkey-Error`. */
  html?: string;
  /** Ask for the connection to be closed afterwards (a caller whose unread body is still arriving). */
  close?: boolean;
}

/**
 * The one writer of Latchkey's own errors on the wire (CONTRACT "Errors"): the status of the
 * code, `Latchkey-Error: <code>`, `Cache-Control: no-store`, `Retry-After` when the error has one,
 * and the body `{ "error": { "code", "message" } }` — or, on a browser route, an HTML page with
 * `Referrer-Policy: no-referrer`. Express routes, the proxy and the draining answer all call it,
 * so the same failure reads byte for byte the same on every path. Works on a raw
 * `ServerResponse`; once headers are out, the only honest signal left is a cut connection.
 */
export function writeError(res: ServerResponse, error: AppError, options: ErrorResponseOptions = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const html = options.html !== undefined;
  const body = html ? options.html! : JSON.stringify(error.toJSON());
  res.statusCode = error.status;
  res.setHeader('Content-Type', html ? 'text/html; charset=utf-8' : 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Latchkey-Error', error.code);
  res.setHeader('Cache-Control', 'no-store');
  if (error.retryAfter !== undefined) res.setHeader('Retry-After', String(error.retryAfter));
  if (html) res.setHeader('Referrer-Policy', 'no-referrer');
  if (options.close) res.setHeader('Connection', 'close');
  res.end(body);
}

/**
 * The same answer written as raw bytes on a socket that has no `ServerResponse` (Node's
 * `clientError`: a request it could not parse or that took too long), with the status Node
 * would have used — 400, 408, 413 or 431 — and `Connection: close`.
 */
export function rawErrorResponse(status: number, error: AppError): string {
  const body = JSON.stringify(error.toJSON());
  return [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `Latchkey-Error: ${error.code}`,
    'Cache-Control: no-store',
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}
