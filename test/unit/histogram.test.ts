import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastHistogram } from '../../src/observe/histogram.js';

const BUCKETS = [0.005, 0.01, 0.1, 1, 10];
const OBSERVED: Array<[{ provider: string; model: string }, number]> = [
  [{ provider: 'a', model: 'm"1' }, 0.003],
  [{ provider: 'a', model: 'm"1' }, 0.01], // on a bound: counted in that bucket (le)
  [{ provider: 'b', model: 'm2' }, 0.5],
  [{ provider: 'a', model: 'm"1' }, 42], // above every bound: +Inf only
  [{ provider: 'b', model: 'm2' }, 0],
];

function both() {
  const fastRegistry = new Registry();
  const promRegistry = new Registry();
  const config = { name: 'x_seconds', help: 'Help \\ text', labelNames: ['provider', 'model'] as const };
  const fast = new FastHistogram({ ...config, buckets: BUCKETS, registers: [fastRegistry] });
  const prom = new Histogram({
    ...config,
    labelNames: [...config.labelNames],
    buckets: BUCKETS,
    registers: [promRegistry],
  });
  return { fast, prom, fastRegistry, promRegistry };
}

describe('FastHistogram', () => {
  it('exposes exactly what a prom-client Histogram exposes for the same observations', async () => {
    const { fast, prom, fastRegistry, promRegistry } = both();
    for (const [labels, v] of OBSERVED) {
      fast.labels(labels).observe(v);
      prom.labels(labels).observe(v);
    }
    const text = await fastRegistry.metrics();
    expect(text).toBe(await promRegistry.metrics());
    expect(text).toContain('x_seconds_bucket{le="0.01",provider="a",model="m\\"1"} 2');
    expect(text).toContain('x_seconds_bucket{le="+Inf",provider="a",model="m\\"1"} 3');
    expect(await fast.get()).toEqual(await prom.get());
  });

  it('exports a series only once it has an observation; reset empties it', async () => {
    const { fast, fastRegistry } = both();
    const series = fast.labels({ provider: 'a', model: 'b' });
    expect(await fastRegistry.metrics()).not.toContain('x_seconds_count');
    series.observe(2);
    expect(await fastRegistry.metrics()).toContain('x_seconds_count{provider="a",model="b"} 1');
    fast.reset();
    expect(await fastRegistry.metrics()).not.toContain('x_seconds_count');
  });

  it('observes without labels, refuses unknown labels and non-numbers', async () => {
    const registry = new Registry();
    const plain = new FastHistogram({ name: 'y', help: 'h', buckets: [1], registers: [registry] });
    plain.observe(0.5);
    plain.observe(3);
    expect(await registry.metrics()).toContain(
      'y_bucket{le="1"} 1\ny_bucket{le="+Inf"} 2\ny_sum 3.5\ny_count 2',
    );
    const { fast } = both();
    expect(() => fast.labels({ provider: 'a', other: 'x' } as never)).toThrow(/other/);
    expect(() => plain.observe(NaN)).toThrow(TypeError);
  });
});
