import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RequestHistogram } from './request-histogram';

/**
 * The contract's metrics, on a registry of the app's own (no global state shared between apps in
 * tests). The two observed on every request are {@link RequestHistogram}s, cheap on the hot path.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'latchkey_' });
  return {
    registry,
    httpDuration: new RequestHistogram({
      name: 'latchkey_http_request_duration_seconds',
      help: 'Duration of HTTP requests, by route pattern, method and status',
      labelNames: ['route', 'method', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    upstreamDuration: new RequestHistogram({
      name: 'latchkey_proxy_upstream_duration_seconds',
      help: 'Time until the provider answered a proxied call, by provider and status',
      labelNames: ['provider', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    refreshes: new Counter({
      name: 'latchkey_token_refreshes_total',
      help: 'Token refreshes, by provider and result (success, invalid_grant, provider_error, lost_race)',
      labelNames: ['provider', 'result'] as const,
      registers: [registry],
    }),
    degradedAnswers: new Counter({
      name: 'latchkey_proxy_degraded_answers_total',
      help: 'Proxied calls served from a cached credential while the store did not answer (DEGRADED_MODE), by provider',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: 'latchkey_webhook_deliveries_total',
      help: 'Webhook delivery attempts by result: delivered (2xx), failed (retried later), dead (given up after WEBHOOK_MAX_AGE_HOURS)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    keepAliveSweeps: new Counter({
      name: 'latchkey_keepalive_sweeps_total',
      help: 'Looks of the keep-alive sweep at the index of due connections (KEEPALIVE)',
      registers: [registry],
    }),
    keepAliveRefreshes: new Counter({
      name: 'latchkey_keepalive_refreshes_total',
      help: 'Connections the keep-alive sweep took, by provider and result: refreshed, reauth_required (invalid_grant), failed (tried again later), skipped (gone, not refreshable, or refreshed meanwhile)',
      labelNames: ['provider', 'result'] as const,
      registers: [registry],
    }),
    lockWaits: new Histogram({
      name: 'latchkey_refresh_lock_wait_seconds',
      help: "Time callers waited for another holder of a connection's refresh lock",
      labelNames: ['provider'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
