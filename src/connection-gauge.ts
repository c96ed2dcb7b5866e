import { Gauge, type Registry } from 'prom-client';
import type { Store } from './store';

/**
 * `latchkey_connections{provider,status}` (CONTRACT "Additions": metrics): read on each scrape from
 * the counts the store keeps as connections change (one hash read, never a scan), so every
 * instance reports the same figures. A scrape while the store is down reports nothing for it
 * rather than failing the whole page.
 */
export function registerConnectionGauge(registry: Registry, store: Pick<Store, 'connectionCounts'>): void {
  // Apps sharing one registry (tests) report one store's counts: the first registered.
  if (registry.getSingleMetric('latchkey_connections')) return;
  new Gauge({
    name: 'latchkey_connections',
    help: 'Stored connections, by provider and status (counts kept in the store)',
    labelNames: ['provider', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const counts = await store.connectionCounts().catch(() => []);
      for (const c of counts) this.set({ provider: c.provider, status: c.status }, c.count);
    },
  });
}
