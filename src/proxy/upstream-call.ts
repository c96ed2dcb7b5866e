import { STATUS_CODES, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Logger } from '../logger';
import { markBrokenByUpstream } from '../wire/access-log';
import type { CallDeadline, DeadlineWatcher } from './deadline';
import { CallerGoneError, DeadlineError, MalformedAnswerError } from './proxy-error';
import { filterResponseHeaders } from './proxy-headers';
import type { RetryBudget } from './retries';
import type { OriginEntrant, OriginWaiter, UpstreamOrigin } from './upstream-agents';

/** A provider answer held back so that the call can be retried; replayed as is when it cannot. */
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
  /** The provider answered what `retries` retries after `waitMs`: held, nothing was sent to the caller yet. */
  | { kind: 'retryable'; held: HeldResponse; waitMs: number }
  /** The answer's status and headers went to the caller, then it broke off: the caller's connection was cut. */
  | { kind: 'broken'; error: Error }
  /** The call failed before any byte went to the caller: the caller still gets an answer. */
  | { kind: 'failed'; error: Error };

/** A held body is small (a 401, a 429, a 5xx page); one that is not is cut short rather than held in memory. */
const MAX_HELD_BYTES = 64 * 1024;

/**
 * A reason phrase Node can write (RFC 9112 §4: HTAB, SP, VCHAR, obs-text). undici decodes the
 * status line as UTF-8, so a stray byte shows up here as U+FFFD and is refused as well.
 */
const VALID_REASON = /^[\t\x20-\x7e\x80-\xff]*$/;

export interface UpstreamCall {
  upstream: UpstreamOrigin;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: Buffer | null;
  /** The call's deadline for the response headers, from its arrival; shared by its attempts. */
  deadline: CallDeadline;
  /** UPSTREAM_TIMEOUT_MS: undici's bound on each silence in the provider's body. */
  timeoutMs: number;
  /** How long the caller may leave the answer unread (its socket full) before it is cut off. */
  stallMs: number;
  /** Hold a 401 back instead of relaying it (the first attempt of a call that may be refreshed). */
  holdUnauthorized: boolean;
  /** Hold an answer these retries would retry instead of relaying it. */
  retries: RetryBudget;
  /** Called once per attempt, when the response headers arrive. */
  onHeaders?: (statusCode: number) => void;
  /** For the line that says a caller was cut off for not reading. */
  logger: Logger;
  provider: string;
  /** The call's request id: it goes out as `X-Request-Id` with the relayed answer. */
  reqId: string;
}

/**
 * Sends one request upstream and relays the answer to `res` as it arrives: status, headers less
 * the hop-by-hop ones, and the body chunk by chunk with backpressure (undici is paused while the
 * caller's socket is full, so a huge answer never piles up in memory — SECURITY.md §12). This is a
 * raw undici dispatch handler, the cheapest way through undici: no stream objects per call.
 * Redirects are relayed, never followed.
 *
 * Bounds (SECURITY.md 23): the call waits for one of the origin's sockets in the origin's own
 * queue, and the queue wait, the attempt and its response headers all fall within `deadline`
 * (then 504, nothing sent yet); each silence in the body is bounded by `timeoutMs`; a caller that
 * leaves the answer unread for `stallMs` is cut off and the provider's answer aborted, so the
 * pooled socket is freed. An answer that is not valid HTTP, or that Node could not relay as it
 * came, fails before a byte goes to the caller (`failed` with a {@link MalformedAnswerError}).
 */
export function callUpstream(call: UpstreamCall, res: ServerResponse): Promise<CallOutcome> {
  return new Promise((resolve) => new RelayHandler(call, res, resolve).start());
}

class RelayHandler implements Dispatcher.DispatchHandler, DeadlineWatcher, OriginEntrant {
  private controller: Dispatcher.DispatchController | null = null;
  /** This call's place in the origin's queue, while it waits for a socket. */
  private waiter: OriginWaiter | null = null;
  /** Whether this call holds one of the origin's socket slots (given back once undici is done with it). */
  private holdsSlot = false;
  private held: HeldResponse | null = null;
  /** ≥ 0: the held answer is one to retry after this many ms; -1: a held 401. */
  private heldWait = -1;
  private heldChunks: Buffer[] = [];
  private heldSize = 0;
  private relaying = false;
  private callerGone = false;
  private settled = false;
  private stallTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly call: UpstreamCall,
    private readonly res: ServerResponse,
    private readonly resolve: (outcome: CallOutcome) => void,
  ) {}

  start(): void {
    const { call, res } = this;
    if (res.destroyed) return this.finish({ kind: 'relayed', statusCode: 499 });
    if (call.deadline.expired) return this.finish({ kind: 'failed', error: new DeadlineError('before_dispatch') });
    // `on`: 'close' comes once, and finish() removes the listener.
    res.on('close', this.onCallerClose);
    call.deadline.watch(this);
    if (call.upstream.tryEnter()) this.dispatch();
    else this.waiter = call.upstream.wait(this);
  }

  /** A socket slot came free for this queued call. */
  admit(): void {
    this.waiter = null;
    this.dispatch();
  }

  private dispatch(): void {
    const { call } = this;
    this.holdsSlot = true;
    call.upstream.pool.dispatch(
      {
        method: call.method,
        path: call.path,
        headers: call.headers,
        body: call.body,
        // The deadline fires first; undici's own bound stays, as a constant (cheap for its timer).
        headersTimeout: call.timeoutMs,
        bodyTimeout: call.timeoutMs,
      },
      this,
    );
  }

  onDeadline(): void {
    if (this.settled || this.relaying) return;
    if (this.waiter) {
      this.call.upstream.cancel(this.waiter);
      this.waiter = null;
      this.finish({ kind: 'failed', error: new DeadlineError('queued') });
      return;
    }
    const error = new DeadlineError('in_flight');
    // Not on a socket yet: undici asks onRequestStart first, which then aborts it.
    if (this.controller) this.controller.abort(error);
    else this.finish({ kind: 'failed', error });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.settled) controller.abort(new CallerGoneError('The call was over before it was sent'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return;
    if (this.settled) return controller.abort(new CallerGoneError('The call was over before its answer came'));
    const { call, res } = this;
    call.onHeaders?.(statusCode);
    if (statusCode === 401 && call.holdUnauthorized) return this.hold(statusCode, headers, statusMessage, -1);
    const wait =
      call.retries.left > 0 ? call.retries.waitForAnswer(statusCode, headers, call.deadline.remaining()) : -1;
    if (wait >= 0) return this.hold(statusCode, headers, statusMessage, wait);

    // The standard phrase is the one Node writes anyway: only another one is checked and written.
    const ownPhrase = statusMessage && statusMessage !== STATUS_CODES[statusCode] ? statusMessage : undefined;
    const malformed = malformedAnswer(statusCode, headers, ownPhrase);
    if (malformed) return controller.abort(new MalformedAnswerError(malformed));
    if (res.destroyed) return;
    const relayed = filterResponseHeaders(headers, call.reqId);
    try {
      if (ownPhrase) res.writeHead(statusCode, ownPhrase, relayed);
      else res.writeHead(statusCode, relayed);
    } catch (err) {
      // Nothing went out: take back what writeHead set, so the caller's 502 carries none of it.
      resetResponse(res, relayed);
      return controller.abort(new MalformedAnswerError((err as Error).message));
    }
    this.relaying = true;
    call.deadline.clear();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.held) {
      if (this.heldSize + chunk.length <= MAX_HELD_BYTES) this.heldChunks.push(chunk);
      this.heldSize += chunk.length;
      return;
    }
    if (this.relaying && !this.res.write(chunk)) {
      controller.pause();
      // Listened for from the first pause on: most answers never fill the caller's socket.
      if (!this.stallTimer) this.res.on('drain', this.onDrain);
      this.watchStall();
    }
  }

  onResponseEnd(): void {
    this.releaseSlot();
    if (this.held) {
      this.held.body = Buffer.concat(this.heldChunks);
      this.finish(
        this.heldWait >= 0
          ? { kind: 'retryable', held: this.held, waitMs: this.heldWait }
          : { kind: 'unauthorized', held: this.held },
      );
      return;
    }
    if (this.relaying) this.res.end();
    this.finish({ kind: 'relayed', statusCode: this.res.statusCode });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.releaseSlot();
    if (this.callerGone || this.res.destroyed) {
      this.finish({ kind: 'relayed', statusCode: 499 });
      return;
    }
    if (this.relaying) {
      // Headers are gone already: the only honest signal left is a cut connection. The access log
      // counts it as the provider's failure (502), not as a caller that went away (499).
      markBrokenByUpstream(this.res);
      this.res.destroy();
      this.finish({ kind: 'broken', error });
      return;
    }
    this.finish({ kind: 'failed', error });
  }

  private hold(statusCode: number, headers: IncomingHttpHeaders, statusMessage: string | undefined, wait: number) {
    this.held = { statusCode, statusMessage, headers, body: Buffer.alloc(0) };
    this.heldWait = wait;
  }

  /**
   * The caller's socket is full and undici is paused: unless it drains within `stallMs` (from the
   * start of this pause), the caller is cut off. One timer, made on the first pause and re-armed
   * on the next ones: most answers never pause.
   */
  private watchStall(): void {
    if (this.stallTimer) this.stallTimer.refresh();
    else (this.stallTimer = setTimeout(RelayHandler.onStall, this.call.stallMs, this)).unref();
  }

  private static onStall(handler: RelayHandler): void {
    const { res, call } = handler;
    // Drained since, or over: nothing to cut.
    if (!isStalled(res)) return;
    // Named here: this timer runs in the context of whichever call opened the upstream socket.
    call.logger.warn(
      { reqId: call.reqId, provider: call.provider, stallMs: call.stallMs },
      'The caller stopped reading the answer: its connection is cut and the provider’s answer aborted',
    );
    // 'close' follows, and aborts the provider's answer if it is still coming.
    res.destroy();
  }

  private readonly onDrain = () => this.controller?.resume();

  private readonly onCallerClose = () => {
    this.callerGone = true;
    if (this.settled) return;
    if (this.waiter) {
      this.call.upstream.cancel(this.waiter);
      this.waiter = null;
      this.finish({ kind: 'relayed', statusCode: 499 });
    } else if (this.controller) {
      this.controller.abort(new CallerGoneError());
    } else {
      this.finish({ kind: 'relayed', statusCode: 499 });
    }
  };

  private releaseSlot(): void {
    if (!this.holdsSlot) return;
    this.holdsSlot = false;
    this.call.upstream.leave();
  }

  private finish(outcome: CallOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.call.deadline.unwatch(this);
    this.res.off('close', this.onCallerClose);
    if (this.stallTimer) this.res.off('drain', this.onDrain);
    // A caller still not reading the last of the answer stays watched until its stall bound.
    if (this.stallTimer && !isStalled(this.res)) clearTimeout(this.stallTimer);
    this.resolve(outcome);
  }
}

/**
 * Why an answer cannot be relayed as it came, or null: a reason phrase with a character HTTP does
 * not allow, a status outside 200–599 (RFC 9110 §15: treat as a 5xx), a 204 that declares a body
 * (RFC 9110 §8.6 and RFC 9112 §6.1 forbid `Content-Length` and `Transfer-Encoding` on it; the
 * bytes after it would otherwise be read as the next answer on that socket).
 */
function malformedAnswer(statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): string | null {
  if (statusMessage && !VALID_REASON.test(statusMessage)) return 'its reason phrase holds a character HTTP forbids';
  if (statusCode > 599) return `status ${statusCode} is outside 100–599`;
  if (
    statusCode === 204 &&
    ((headers['content-length'] !== undefined && headers['content-length'] !== '0') ||
      headers['transfer-encoding'] !== undefined)
  ) {
    return 'a 204 answer declares a body';
  }
  return null;
}

/**
 * True while the caller leaves written bytes unread: Node holds more than its high-water mark
 * for the caller's socket, or the answer is complete but not yet handed to the socket.
 */
function isStalled(res: ServerResponse): boolean {
  return !res.destroyed && (res.writableNeedDrain || (res.writableEnded && !res.writableFinished));
}

/** Undoes a `writeHead` that threw before anything was written: its status and the provider's headers it set. */
function resetResponse(res: ServerResponse, relayed: Record<string, unknown>): void {
  res.statusCode = 200;
  res.statusMessage = '';
  for (const name in relayed) res.removeHeader(name);
}
