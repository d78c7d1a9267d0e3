// Live latency statistics: an EWMA that follows the trend and a windowed p95 that shows the tail.

/** Exponentially weighted moving average; `undefined` until the first sample. */
export class Ewma {
  #value: number | undefined;
  constructor(private readonly alpha = 0.2) {}
  add(x: number): void {
    this.#value = this.#value === undefined ? x : this.#value + this.alpha * (x - this.#value);
  }
  get value(): number | undefined {
    return this.#value;
  }
}

/**
 * Quantile over the last `size` samples. Keeps the window both in arrival order (to evict) and
 * sorted (to read a quantile in O(1)); an insert costs two binary searches and a short memmove
 * within typed arrays (no allocation: it runs several times per request).
 */
export class WindowedQuantile {
  readonly #ring: Float64Array;
  /** The window's samples sorted, in its first #count slots. */
  readonly #sorted: Float64Array;
  #next = 0;
  #count = 0;

  constructor(readonly size = 128) {
    this.#ring = new Float64Array(size);
    this.#sorted = new Float64Array(size);
  }

  add(x: number): void {
    const sorted = this.#sorted;
    let n = this.#count;
    if (n === this.size) {
      const evicted = this.#ring[this.#next]!;
      const i = lowerBound(sorted, n, evicted);
      sorted.copyWithin(i, i + 1, n);
      n--;
    }
    this.#ring[this.#next] = x;
    this.#next = (this.#next + 1) % this.size;
    const j = lowerBound(sorted, n, x);
    sorted.copyWithin(j + 1, j, n);
    sorted[j] = x;
    this.#count = n + 1;
  }

  quantile(q: number): number | undefined {
    if (this.#count === 0) return undefined;
    return this.#sorted[Math.min(this.#count - 1, Math.floor(q * this.#count))];
  }

  get count(): number {
    return this.#count;
  }
}

/** First index in a[0, n) whose value is not below x. */
function lowerBound(a: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** EWMA plus windowed p95 for one measure. */
export class LatencySeries {
  readonly ewma = new Ewma();
  readonly window = new WindowedQuantile();
  add(x: number): void {
    this.ewma.add(x);
    this.window.add(x);
  }
  get p95(): number | undefined {
    return this.window.quantile(0.95);
  }
}

/** Per (provider, model): time to first byte, to first token, total, and output tokens per second. */
export class ModelLatency {
  readonly ttfbMs = new LatencySeries();
  readonly ttftMs = new LatencySeries();
  readonly totalMs = new LatencySeries();
  readonly tokensPerSecond = new LatencySeries();
}
