import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { filterResponseHeaders } from './proxy-headers';

/** A provider 401 held back so that the call can be retried; replayed as is when it cannot. */
export interface HeldResponse {
  statusCode: number;
  statusMessage?: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type CallOutcome =
  /** The provider's answer went to the caller, or the caller went away. */
  | { kind: 'relayed'; statusCode: number }
  /** The provider answered 401 and `holdUnauthorized` was set: nothing was sent to the caller yet. */
  | { kind: 'unauthorized'; held: HeldResponse }
  /** The call failed before any byte went to the caller: the caller still gets an answer. */
  | { kind: 'failed'; error: Error };

/** A 401 body is small; one that is not is cut short rather than held in memory. */
const MAX_HELD_BYTES = 64 * 1024;

export interface UpstreamCall {
  pool: Dispatcher;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: Buffer | null;
  timeoutMs: number;
  /** Hold a 401 back instead of relaying it (the first attempt of a call that may be retried). */
  holdUnauthorized: boolean;
  /** Called once, when the response headers arrive. */
  onHeaders?: (statusCode: number) => void;
}

/**
 * Sends one request upstream and relays the answer to `res` as it arrives: status, headers less
 * the hop-by-hop ones, and the body chunk by chunk with backpressure (undici is paused while the
 * caller's socket is full, so a huge answer never piles up in memory — SECURITY.md §12). This is a
 * raw undici dispatch handler, the cheapest way through undici: no stream objects per call.
 * Redirects are relayed, never followed. `timeoutMs` bounds the wait for the response headers
 * and each silence in the body.
 */
export function callUpstream(call: UpstreamCall, res: ServerResponse): Promise<CallOutcome> {
  return new Promise((resolve) => {
    call.pool.dispatch(
      {
        method: call.method,
        path: call.path,
        headers: call.headers,
        body: call.body,
        headersTimeout: call.timeoutMs,
        bodyTimeout: call.timeoutMs,
      },
      new RelayHandler(call, res, resolve),
    );
  });
}

class RelayHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private held: HeldResponse | null = null;
  private heldChunks: Buffer[] = [];
  private heldSize = 0;
  private relaying = false;
  private settled = false;

  constructor(
    private readonly call: UpstreamCall,
    private readonly res: ServerResponse,
    private readonly resolve: (outcome: CallOutcome) => void,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    const first = this.controller === null;
    this.controller = controller;
    if (this.res.destroyed) {
      controller.abort(new Error('The caller went away'));
      return;
    }
    if (first) this.res.once('close', this.onCallerClose);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return;
    this.call.onHeaders?.(statusCode);
    if (statusCode === 401 && this.call.holdUnauthorized) {
      this.held = { statusCode, statusMessage, headers, body: Buffer.alloc(0) };
      return;
    }
    const { res } = this;
    if (res.destroyed) return;
    this.relaying = true;
    if (statusMessage) res.writeHead(statusCode, statusMessage, filterResponseHeaders(headers));
    else res.writeHead(statusCode, filterResponseHeaders(headers));
    res.on('drain', this.onDrain);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.held) {
      if (this.heldSize + chunk.length <= MAX_HELD_BYTES) this.heldChunks.push(chunk);
      this.heldSize += chunk.length;
      return;
    }
    if (this.relaying && !this.res.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    if (this.held) {
      this.held.body = Buffer.concat(this.heldChunks);
      this.finish({ kind: 'unauthorized', held: this.held });
      return;
    }
    if (this.relaying) this.res.end();
    this.finish({ kind: 'relayed', statusCode: this.res.statusCode });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.relaying) {
      // Headers are gone already: the only honest signal left is a cut connection.
      this.res.destroy(error);
      this.finish({ kind: 'relayed', statusCode: this.res.statusCode });
      return;
    }
    this.finish(this.res.destroyed ? { kind: 'relayed', statusCode: 499 } : { kind: 'failed', error });
  }

  private readonly onDrain = () => this.controller?.resume();

  private readonly onCallerClose = () => {
    if (!this.settled) this.controller?.abort(new Error('The caller went away'));
  };

  private finish(outcome: CallOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.res.off('close', this.onCallerClose);
    this.res.off('drain', this.onDrain);
    this.resolve(outcome);
  }
}
