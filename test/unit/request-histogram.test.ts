import { Histogram, Registry } from 'prom-client';
import { RequestHistogram } from '../../src/request-histogram';

const BUCKETS = [0.001, 0.01, 0.1, 1];

/** The exposition lines of one metric, sorted: label order within a line may differ, the set may not. */
async function lines(registry: Registry): Promise<string[]> {
  const text = await registry.metrics();
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)(?:\{(.*)\})? (.+)$/.exec(l)!;
      const labels = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
      return `${m[1]}{${labels}} ${m[3]}`;
    })
    .sort();
}

describe('RequestHistogram', () => {
  it("exposes the same series, buckets, sums and counts as prom-client's Histogram for the same observations", async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const options = { name: 'x_seconds', help: 'x', labelNames: ['route', 'status'] as const, buckets: BUCKETS };
    const reference = new Histogram({ ...options, registers: [theirs] });
    const fast = new RequestHistogram({ ...options, registers: [ours] });
    const observations: Array<[Record<'route' | 'status', string>, number]> = [
      [{ route: '/a', status: '200' }, 0.0005],
      [{ route: '/a', status: '200' }, 0.001],
      [{ route: '/a', status: '200' }, 0.05],
      [{ route: '/a', status: '500' }, 2],
      [{ route: '/b "q"', status: '200' }, 0.2],
    ];
    for (const [labels, value] of observations) {
      reference.observe(labels, value);
      fast.observe(labels, value);
    }
    expect(await lines(ours)).toEqual(await lines(theirs));
    const text = await ours.metrics();
    expect(text).toContain('# TYPE x_seconds histogram');
    expect(text).toMatch(/x_seconds_bucket\{route="\/a",status="200",le="0.001"\} 2/);
    expect(text).toMatch(/x_seconds_count\{route="\/a",status="500"\} 1/);
  });

  it('keeps series apart whose label values would run together, and ignores values that are not numbers', async () => {
    const registry = new Registry();
    const h = new RequestHistogram({
      name: 'y',
      help: 'y',
      labelNames: ['a', 'b'],
      buckets: BUCKETS,
      registers: [registry],
    });
    h.observe({ a: 'x', b: 'yz' }, 0.5);
    h.observe({ a: 'xy', b: 'z' }, 0.5);
    h.observe({ a: 'x', b: 'yz' }, Number.NaN);
    const counts = (await h.get()).values.filter((v) => v.metricName === 'y_count');
    expect(counts.map((v) => [v.labels, v.value])).toEqual([
      [{ a: 'x', b: 'yz' }, 1],
      [{ a: 'xy', b: 'z' }, 1],
    ]);
    h.reset();
    expect((await h.get()).values).toEqual([]);
  });
});
