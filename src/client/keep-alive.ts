import { Gauge, type Registry } from 'prom-client';
import type { Clock } from '../clock';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { OAuth2Provider, ProviderRegistry } from '../providers/registry';
import type { ConnectionInfo, Store } from '../store';
import { keepAliveSince, type KeepAliveBackfillPlan } from '../store/keep-alive-index';
import type { KeepAliveOutcome, KeepAliveRefresher } from './types';

const HOUR = 3600_000;

export interface KeepAliveOptions {
  /**
   * Between two looks at the index while nothing more is due, ±25% so that instances started
   * together drift apart. With the default 5 s, a connection is looked at within about 6 s of
   * falling due while few fall due at once.
   */
  intervalMs?: number;
  /** Refreshes in flight at once on this instance. */
  concurrency?: number;
  /**
   * A claimed connection whose refresh failed (provider down, store blip) or whose instance died
   * mid-way falls due again this long after the claim (at most its `keepAliveHours`).
   */
  retryMs?: number;
  /** Tests pass a fixed one. */
  random?: () => number;
}

export interface KeepAliveDeps {
  store: Store;
  providers: ProviderRegistry;
  refresher: KeepAliveRefresher;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

export interface KeepAliveSweep {
  /**
   * Looks at the index now (besides the timer's looks) and resolves with the number of connections
   * it claimed, once their refreshes are done. For tests and ops.
   */
  sweepNow(): Promise<number>;
  /** Stops: no new claim; the refreshes in flight finish (a token request is never cut off mid-rotation); no timer is left. */
  close(): Promise<void>;
}

/** The providers whose connections are kept alive: usable oauth2 ones with a `keepAliveHours` above 0. */
export function keptAliveProviders(providers: ProviderRegistry): OAuth2Provider[] {
  return providers.listEnabled().filter((p): p is OAuth2Provider => p.authMode === 'oauth2' && p.keepAliveHours > 0);
}

/**
 * The idle keep-alive (issue 11 part 3; CONTRACT `keepAliveHours`, `KEEPALIVE`): connections with a
 * refresh token not refreshed (nor connected) for their provider's `keepAliveHours` are refreshed
 * in the background, so a provider with idle refresh-token expiry does not silently disconnect
 * them, and a revoked grant turns `reauth_required` (with its event and webhook) before a user's
 * call meets it.
 *
 * Driven by the store's index of due times, never a scan: each look claims due connections
 * atomically (a claimed one is not due again for `retryMs`, so no other instance's look takes it),
 * no more than the free refresh slots, and refreshes each through the refresh coordinator, which
 * re-reads it under the connection's refresh lock: a connection refreshed by anyone since it fell
 * due is not refreshed again. While more are due than there are slots, the next look follows as
 * soon as a slot frees; otherwise after `intervalMs`. Nothing is written on the proxy's path: a
 * refresh made there moves the connection's due time as part of its own write.
 */
export function startKeepAlive(deps: KeepAliveDeps, options: KeepAliveOptions = {}): KeepAliveSweep {
  const intervalMs = options.intervalMs ?? 5000;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const retryMs = options.retryMs ?? 30 * 60_000;
  const random = options.random ?? Math.random;
  const { store, clock, logger, metrics } = deps;
  const inFlight = new Set<Promise<void>>();
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  /** The look in progress: its claims, whose refreshes are started (and tracked in `inFlight`). */
  let sweeping: Promise<Array<Promise<void>>> | undefined;
  /** The last look filled every slot: more may be due, so the next one follows a freed slot. */
  let backlog = false;
  /** Where the next look starts among the providers, so that one provider's backlog does not starve the others. */
  let turn = 0;

  const wake = (ms: number) => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void sweep().catch(() => 0), ms);
    timer.unref();
  };
  const nextLook = () => {
    // Every slot busy with more due: the next look waits for a slot to free (start() wakes it).
    if (backlog && inFlight.size >= concurrency) return;
    wake(backlog ? 0 : Math.round(intervalMs * (0.75 + random() / 2)));
  };

  const look = async (provider: OAuth2Provider, connectionId: string, idleSince: number): Promise<void> => {
    const outcome = await deps.refresher.keepAlive(provider, connectionId, idleSince);
    metrics.keepAliveRefreshes.inc({ provider: provider.id, result: outcome.result });
    await settle(provider, connectionId, outcome).catch((err: unknown) =>
      logger.warn({ err, provider: provider.id, connectionId }, 'keep-alive: the due time could not be put back'),
    );
  };

  /** Puts back what a look found without refreshing; a refresh's own write has moved the due time already. */
  const settle = async (provider: OAuth2Provider, connectionId: string, outcome: KeepAliveOutcome) => {
    if (outcome.result === 'failed') {
      logger.warn(
        { provider: provider.id, connectionId, code: outcome.code },
        'keep-alive refresh failed; it is tried again later',
      );
    } else if (outcome.result === 'skipped') {
      if (outcome.connection) await store.keepAlive.indexed(outcome.connection);
      else await store.keepAlive.unschedule(provider.id, connectionId);
    }
  };

  const start = (work: Promise<void>) => {
    const tracked: Promise<void> = work
      .catch((err: unknown) => logger.error({ err }, 'keep-alive: a look failed'))
      .finally(() => {
        inFlight.delete(tracked);
        if (backlog) wake(0);
      });
    inFlight.add(tracked);
    return tracked;
  };

  async function claimAndStart(): Promise<Array<Promise<void>>> {
    const providers = keptAliveProviders(deps.providers);
    const started: Array<Promise<void>> = [];
    backlog = false;
    for (let i = 0; i < providers.length; i++) {
      const free = concurrency - inFlight.size;
      if (free <= 0) {
        backlog = true;
        break;
      }
      const provider = providers[(turn + i) % providers.length]!;
      const keepAliveMs = provider.keepAliveHours * HOUR;
      const idleSince = clock.now() - keepAliveMs;
      const claimedAs = idleSince + Math.min(keepAliveMs, retryMs);
      const ids = await store.keepAlive.claimDue(provider.id, idleSince, claimedAs, free);
      if (ids.length === free) backlog = true;
      for (const id of ids) started.push(start(look(provider, id, idleSince)));
    }
    turn++;
    return started;
  }

  async function claim(): Promise<Array<Promise<void>>> {
    metrics.keepAliveSweeps.inc();
    try {
      return await claimAndStart();
    } catch (err) {
      logger.warn({ err }, 'keep-alive: the index of due times could not be read; looking again later');
      backlog = false;
      return [];
    }
  }

  async function sweep(): Promise<number> {
    if (closed) return 0;
    sweeping ??= claim().finally(() => {
      sweeping = undefined;
      nextLook();
    });
    const started = await sweeping;
    await Promise.all(started);
    return started.length;
  }

  nextLook();
  return {
    sweepNow: () => sweep(),
    async close() {
      closed = true;
      clearTimeout(timer);
      await sweeping;
      await Promise.all([...inFlight]);
    },
  };
}

export interface KeepAliveBackfillOptions {
  providers: ProviderRegistry;
  clock: Clock;
  /**
   * A connection already overdue when it is first scheduled (idle since before the upgrade) falls
   * due at a random time within this much from now (at most its `keepAliveHours`), so that every
   * old connection does not fall due at once.
   */
  spreadMs?: number;
  random?: () => number;
}

/**
 * How the start-up backfill (issue 11 part 6) schedules a connection written by the first release:
 * active oauth2 connections from their last refresh or connect, the overdue ones jittered over
 * `spreadMs`. Which of them hold a refresh token is only known once decrypted: one without is
 * dropped from the index at its first look.
 */
export function keepAliveBackfillPlan(options: KeepAliveBackfillOptions): KeepAliveBackfillPlan {
  const spreadMs = options.spreadMs ?? HOUR;
  const random = options.random ?? Math.random;
  return (info: ConnectionInfo) => {
    if (info.authMode !== 'oauth2' || info.status !== 'active') return null;
    const since = keepAliveSince(info);
    const provider = options.providers.get(info.provider);
    if (!provider || provider.authMode !== 'oauth2' || provider.keepAliveHours <= 0) return since;
    const keepAliveMs = provider.keepAliveHours * HOUR;
    const idleSince = options.clock.now() - keepAliveMs;
    if (since > idleSince) return since;
    return idleSince + Math.floor(random() * Math.min(spreadMs, keepAliveMs));
  };
}

/**
 * `latchkey_keepalive_due`: connections due for a keep-alive refresh and not yet claimed, read on
 * each scrape (one ZCOUNT per provider). A scrape while the store is down keeps the last value.
 */
export function registerKeepAliveGauge(
  registry: Registry,
  deps: { store: Store; providers: ProviderRegistry; clock: Clock },
): void {
  if (registry.getSingleMetric('latchkey_keepalive_due')) return;
  new Gauge({
    name: 'latchkey_keepalive_due',
    help: 'Connections due for a keep-alive refresh and not yet taken by a sweep (the backlog)',
    registers: [registry],
    async collect() {
      try {
        const counts = await Promise.all(
          keptAliveProviders(deps.providers).map((p) =>
            deps.store.keepAlive.countDue(p.id, deps.clock.now() - p.keepAliveHours * HOUR),
          ),
        );
        this.set(counts.reduce((a, b) => a + b, 0));
      } catch {
        // Keep the last value: a scrape must not fail because the store is down.
      }
    },
  });
}

/** The credential source's keep-alive entry, when it has one (a source a test hands the app may not). */
export function keepAliveRefresherOf(source: object): KeepAliveRefresher | undefined {
  return typeof (source as Partial<KeepAliveRefresher>).keepAlive === 'function'
    ? (source as KeepAliveRefresher)
    : undefined;
}
