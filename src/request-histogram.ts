import type { Metric, Registry } from 'prom-client';

interface Series {
  labels: Record<string, string>;
  /** Observations per bucket, not yet cumulative (that is done on a scrape). */
  counts: Float64Array;
  sum: number;
  count: number;
}

export interface RequestHistogramOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  /** Upper bounds, ascending; `+Inf` is implied. */
  buckets: readonly number[];
  registers: Registry[];
}

interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/**
 * A Prometheus histogram for the per-request metrics, exposed exactly as prom-client's own
 * (`_bucket` with `le`, `_sum`, `_count`) on the same registry. Its `observe` is a Map lookup and
 * a bucket search: prom-client's validates every label, builds a closure and a hash string per
 * observation, which a proxied call paid twice (issue 13's profile). Scrapes do the rest.
 */
export class RequestHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly L[];
  private readonly bounds: readonly number[];
  private readonly series = new Map<string, Series>();

  constructor(options: RequestHistogramOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.bounds = [...options.buckets].sort((a, b) => a - b);
    // The registry formats whatever has `get()`; its types list only prom-client's own classes.
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  observe(labels: Record<L, string>, value: number): void {
    if (!Number.isFinite(value)) return;
    let key = '';
    for (const name of this.labelNames) key += `${labels[name]}\u0000`;
    let series = this.series.get(key);
    if (!series) {
      const own: Record<string, string> = {};
      for (const name of this.labelNames) own[name] = String(labels[name]);
      series = { labels: own, counts: new Float64Array(this.bounds.length), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    series.sum += value;
    series.count += 1;
    const i = bucketOf(this.bounds, value);
    if (i >= 0) series.counts[i]! += 1;
  }

  /** What a scrape reads: prom-client's shape for a histogram. */
  async get() {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, counts, sum, count } of this.series.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += counts[i]!;
        values.push({ labels: { ...labels, le }, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: count, metricName: bucket });
      values.push({ labels, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }
}

/** The first bucket whose bound holds `value`, or -1 above the last (counted in `+Inf` only). */
function bucketOf(bounds: readonly number[], value: number): number {
  for (let i = 0; i < bounds.length; i++) if (value <= bounds[i]!) return i;
  return -1;
}
