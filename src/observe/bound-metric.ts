// One labelled series of a prom-client Counter, incremented in place on the request path (the
// request-path histograms are FastHistograms, histogram.ts). prom-client resolves the series on
// every inc, even through a `labels()` child: it checks the labels and builds the series key (a
// string) each time, which costs more than the update itself and allocates. A bound counter keeps
// the value object prom-client stores for its labels and adds to it directly. Whenever that
// object is not (or no longer) the one in the counter's map (first use, reset(), remove()), or the
// value is one prom-client would refuse, the inc goes through prom-client's own call, which also
// settles the series again. This relies on prom-client 15 storing a series as {value, labels} in
// `hashMap`; test/unit/bound-metric.test.ts compares the exposition of both ways, so a prom-client
// that stores them differently fails there.
import type { Counter, LabelValues } from 'prom-client';

interface Stored {
  labels: Record<string, unknown>;
  value?: number;
}

interface Internals {
  hashMap?: Record<string, Stored>;
  enableExemplars?: boolean;
}

function sameLabels(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  let n = 0;
  for (const k in a) {
    if (String(a[k]) !== String(b[k])) return false;
    n++;
  }
  for (const k in b) if (b[k] !== undefined) n--;
  return n === 0;
}

/** The key and stored series of `labels` in a metric's map, if prom-client keeps it there. */
function locate(metric: Internals, labels: Record<string, unknown>): [string, Stored] | undefined {
  const map = metric.hashMap;
  if (!map || metric.enableExemplars) return undefined;
  for (const key in map) {
    const stored = map[key]!;
    if (stored && typeof stored === 'object' && sameLabels(stored.labels ?? {}, labels)) return [key, stored];
  }
  return undefined;
}

export class BoundCounter {
  #map: Record<string, Stored> | undefined;
  #key = '';
  #stored: Stored | undefined;

  readonly #counter: Counter<string>;
  readonly #internals: Internals;
  readonly #labels: LabelValues<string>;

  constructor(counter: Counter<string>, labels: LabelValues<string>) {
    this.#counter = counter;
    this.#internals = counter as unknown as Internals;
    this.#labels = labels;
  }

  inc(value = 1): void {
    const stored = this.#live();
    if (stored !== undefined && typeof stored.value === 'number' && value >= 0 && value < Infinity) {
      stored.value += value;
      return;
    }
    this.#counter.inc(this.#labels, value);
    this.#settle();
  }

  /** The stored series when it is still the live one, else undefined. */
  #live(): Stored | undefined {
    const stored = this.#stored;
    const map = this.#internals.hashMap;
    return stored !== undefined && map !== undefined && map === this.#map && map[this.#key] === stored
      ? stored
      : undefined;
  }

  /** After an update through prom-client: find the series it now keeps for these labels. */
  #settle(): void {
    const found = locate(this.#internals, this.#labels);
    this.#map = found ? this.#internals.hashMap : undefined;
    this.#key = found?.[0] ?? '';
    this.#stored = found?.[1];
  }
}
