import type { Metric, Registry } from 'prom-client';

interface Series {
  labels: Record<string, string>;
  /** Observations per bucket, not yet cumulative (that is done on a scrape). */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** One label's values, each leading to the next label's level, or on the last label to its series. */
type LabelLevel = Map<string, LabelLevel | Series>;

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
 * (`_bucket` with `le`, `_sum`, `_count`) on the same registry. Its `observe` is a Map lookup per
 * label and a bucket search: prom-client's validates every label, builds a closure and a hash string per
 * observation, which a proxied call paid twice (issue 13's profile). Scrapes do the rest.
 */
export class RequestHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly L[];
  private readonly bounds: readonly number[];
  /** The series by their label values, one Map level per label name (no key string built per observation). */
  private readonly tree: LabelLevel = new Map();
  /** Every series, in the order first observed. */
  private readonly series: Series[] = [];

  constructor(options: RequestHistogramOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    if (options.labelNames.length === 0) throw new Error(`${options.name}: a request histogram has at least one label`);
    this.labelNames = options.labelNames;
    this.bounds = [...options.buckets].sort((a, b) => a - b);
    // The registry formats whatever has `get()`; its types list only prom-client's own classes.
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  observe(labels: Record<L, string>, value: number): void {
    if (!Number.isFinite(value)) return;
    const { labelNames } = this;
    let level = this.tree;
    const last = labelNames.length - 1;
    for (let i = 0; i < last; i++) {
      const v = String(labels[labelNames[i]!]);
      let next = level.get(v) as LabelLevel | undefined;
      if (!next) level.set(v, (next = new Map()));
      level = next;
    }
    const leaf = String(labels[labelNames[last]!]);
    let series = level.get(leaf) as Series | undefined;
    if (!series) {
      const own: Record<string, string> = {};
      for (const name of labelNames) own[name] = String(labels[name]);
      series = { labels: own, counts: new Float64Array(this.bounds.length), sum: 0, count: 0 };
      level.set(leaf, series);
      this.series.push(series);
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
    for (const { labels, counts, sum, count } of this.series) {
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
    this.tree.clear();
    this.series.length = 0;
  }
}

/** The first bucket whose bound holds `value`, or -1 above the last (counted in `+Inf` only). */
function bucketOf(bounds: readonly number[], value: number): number {
  for (let i = 0; i < bounds.length; i++) if (value <= bounds[i]!) return i;
  return -1;
}
