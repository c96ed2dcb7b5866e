import type { IncomingMessage } from 'node:http';
import { AppError } from '../errors';

/** The caller went away before its body arrived: there is no one to answer. */
export class CallerAbortedError extends Error {
  constructor() {
    super('The caller closed the connection before its request body arrived');
    this.name = 'CallerAbortedError';
  }
}

function tooLarge(limit: number): AppError {
  return new AppError('payload_too_large', `The request body is larger than the proxy's limit of ${limit} bytes`);
}

/** True when the request announces a body (RFC 9112 §6.1, §6.2): a length above zero, or a transfer coding. */
function announcesBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Reads the caller's body into memory, up to `limit` bytes. The whole body is kept because a
 * call the provider answers with 401 is retried once with a refreshed credential, and a body
 * already streamed upstream could not be sent again (CONTRACT: "buffer bodies up to a limit").
 * A declared `Content-Length` over the limit is refused before a byte is read; a chunked body
 * is counted as it arrives and refused as soon as it passes the limit.
 *
 * @returns null, at once, when the request announces no body (most proxied calls: nothing to
 *   wait for); otherwise the body, which rejects with AppError `payload_too_large` (413) or
 *   {@link CallerAbortedError}
 */
export function readRequestBody(req: IncomingMessage, limit: number): Promise<Buffer> | null {
  if (!announcesBody(req)) return null;
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(limit));

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onAbort = () => {
      cleanup();
      reject(new CallerAbortedError());
    };
    const onClose = () => {
      if (!req.complete) onAbort();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}
