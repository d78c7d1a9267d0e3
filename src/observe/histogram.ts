// A Prometheus histogram for the per-request path. prom-client's Histogram, even through a child
// from labels(), validates and hashes the label set, converts each bound to a property name and
// allocates on every observe (1.6% of the gateway's CPU under load, before its garbage). Here a
// child is one series: observe() finds the bucket and adds to a Float64Array. The registry reads
// it through get()/getForPromString() in the shape prom-client's own histograms give, so /metrics
// prints exactly what a prom-client Histogram would.
import type { Registry } from 'prom-client';

export interface HistogramSeries {
  observe(value: number): void;
}

class Series implements HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: Float64Array,
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels: Readonly<Record<string, string>>;
  value: number;
  metricName: string;
  /** null on buckets, absent on _sum and _count (prom-client without exemplars). */
  exemplar?: null;
}

export class FastHistogram<L extends string = never> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #labelNames: readonly L[];
  readonly #upperBounds: readonly number[];
  readonly #bounds: Float64Array;
  /** Series by their label values joined; one is exported once it has an observation, as prom-client does. */
  #series = new Map<string, Series>();
  #unlabelled: Series | undefined;

  constructor(config: {
    name: string;
    help: string;
    labelNames?: readonly L[];
    buckets: readonly number[];
    registers: Registry[];
  }) {
    this.name = config.name;
    this.help = config.help;
    this.#labelNames = config.labelNames ?? [];
    this.#upperBounds = [...config.buckets].sort((a, b) => a - b);
    this.#bounds = Float64Array.from(this.#upperBounds);
    for (const r of config.registers) r.registerMetric(this as never);
  }

  /** The series of one label set: resolve it once and keep it (each call looks it up). */
  labels(labels: Readonly<Record<L, string>>): HistogramSeries {
    for (const k of Object.keys(labels)) {
      if (!this.#labelNames.includes(k as L))
        throw new Error(`Added label "${k}" is not included in initial labelset`);
    }
    const values = this.#labelNames.map((n) => String(labels[n] ?? ''));
    const key = values.join('\u0000');
    let s = this.#series.get(key);
    if (!s) {
      const own: Record<string, string> = {};
      for (const n of this.#labelNames) if (labels[n] !== undefined) own[n] = String(labels[n]);
      s = new Series(own, this.#bounds);
      this.#series.set(key, s);
    }
    return s;
  }

  /** Observe on the series without labels. */
  observe(value: number): void {
    (this.#unlabelled ??= this.labels({} as Record<L, string>) as Series).observe(value);
  }

  reset(): void {
    this.#series = new Map();
    this.#unlabelled = undefined;
  }

  async getForPromString(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    values: ExportedValue[];
    aggregator: string;
  }> {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.#series.values()) {
      if (s.count === 0) continue;
      let acc = 0;
      for (let i = 0; i < this.#upperBounds.length; i++) {
        acc += s.counts[i]!;
        values.push({
          labels: { le: this.#upperBounds[i]! },
          sharedLabels: s.labels,
          value: acc,
          metricName: bucket,
          exemplar: null,
        });
      }
      values.push(
        {
          labels: { le: '+Inf' },
          sharedLabels: s.labels,
          value: s.count,
          metricName: bucket,
          exemplar: null,
        },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The values with every label in `labels` (prom-client's get()). */
  async get() {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ labels, sharedLabels, ...rest }) => ({
        ...rest,
        labels: { ...labels, ...sharedLabels },
      })),
    };
  }
}
