/** Whatever a proxied call is waiting on when its deadline passes (a queue slot, an attempt). */
export interface DeadlineWatcher {
  onDeadline(): void;
}

/**
 * The wait of one proxied call for the provider's response headers, bounded from the moment the
 * call arrived at Latchkey (SECURITY.md 23): reading the caller's body, resolving the credential,
 * queueing for one of the origin's sockets, every `Latchkey-Retries` wait and every attempt all
 * spend the same budget. One timer per call, set once; when it fires, the current watcher is told
 * (it aborts its dispatch and the caller gets 504 `upstream_timeout`), and anything started
 * later sees `expired`.
 */
export class CallDeadline {
  /** `performance.now()` milliseconds. */
  readonly at: number;
  expired = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private watcher: DeadlineWatcher | null = null;

  constructor(arrivedAt: number, timeoutMs: number) {
    this.at = arrivedAt + timeoutMs;
    const left = this.at - performance.now();
    if (left <= 0) this.expired = true;
    // Whole milliseconds: Node keeps one timer list per duration, so calls share a handful of lists.
    else this.timer = setTimeout(CallDeadline.expire, Math.ceil(left), this);
  }

  /** Milliseconds left (negative once passed). */
  remaining(): number {
    return this.at - performance.now();
  }

  /** `watcher` is told when the deadline passes, until it is replaced or {@link unwatch}ed. */
  watch(watcher: DeadlineWatcher): void {
    this.watcher = watcher;
  }

  unwatch(watcher: DeadlineWatcher): void {
    if (this.watcher === watcher) this.watcher = null;
  }

  /** The provider's headers arrived for the last time (or the call is over): stop the timer. */
  clear(): void {
    clearTimeout(this.timer);
    this.watcher = null;
  }

  /** The timer's callback: a static function and an argument, not a closure per call. */
  private static expire(deadline: CallDeadline): void {
    deadline.expired = true;
    deadline.watcher?.onDeadline();
  }
}
