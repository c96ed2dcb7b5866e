import type { InjectedApiKeyFailures } from './api-key-routes';
import type { SandboxOptions, SandboxStats } from './sandbox';
import type { TokenStore } from './token-store';

/** Failures injected into the next token requests by `failNextTokenRequests`. */
export interface InjectedTokenFailures {
  remaining: number;
  status: number;
}

/** Shared state the sandbox route modules work with. `options` is read live so runtime changes apply at once. */
export interface SandboxContext {
  readonly options: SandboxOptions;
  readonly stats: SandboxStats;
  readonly store: TokenStore;
  readonly tokenFailures: InjectedTokenFailures;
  readonly apiKeyFailures: InjectedApiKeyFailures;
}

/** Consumes one injected token-endpoint failure; returns its status, or undefined when none is pending. */
export function takeInjectedTokenFailure(ctx: SandboxContext): number | undefined {
  if (ctx.tokenFailures.remaining <= 0) return undefined;
  ctx.tokenFailures.remaining -= 1;
  return ctx.tokenFailures.status;
}

/** Resolves after `ms` milliseconds without keeping the process alive on its own. */
export function delay(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
