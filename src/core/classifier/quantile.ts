// Streaming quantiles of complexity scores, and thresholds that follow a target flagship share.
//
// API
//   const q = new DecayingQuantile({ bins: 2048, halfLife: 5000 });
//   q.observe(score);          // O(1); scores are clamped to [0,1], non-finite ones are ignored
//   q.quantile(0.7);           // O(bins): the 0.7 quantile of recent scores (NaN while empty)
//   q.count;                   // observations so far (not decayed)
//
//   const t = new TargetThreshold({ share: 0.3, fallback: 0.6 });
//   t.observe(score);          // every classified request of the policy, O(1) amortised
//   t.threshold();             // current maxScore of the tier below the flagship tier:
//                              // requests scoring above it go to the flagship
//   t.update(score);           // observe + threshold in one call
//
//   TargetThreshold satisfies the router's ShareThreshold interface (src/core/router.ts):
//     new Router({ ..., shareThreshold: (share) => new TargetThreshold({ share }) })
//   Without `fallback`, threshold() is undefined during warm-up and the router applies the
//   policy's configured maxScore itself.
//
// Semantics. A policy with `flagshipShare: s` sends about a share s of its requests to the last
// (flagship) tier: the threshold is the (1 - s) quantile of recent scores, so the scores above it
// are the top s. Tier thresholds are inclusive ("at or below maxScore uses this tier").
// - "Recent": a histogram over [0,1] whose counts decay exponentially with the number of
//   observations (not with time: no timers, deterministic, testable); an observation's weight
//   halves every `halfLife` observations, so the threshold follows a drifting distribution and
//   settles within a few half-lives after a shift.
// - Warm-up: until `warmup` observations have been seen, threshold() returns `fallback` (the
//   policy's configured maxScore, or undefined = "use it"), so a fresh process does not route on
//   a handful of scores.
// - The threshold is recomputed every `refreshEvery` observations (scan of the bins), so the
//   per-request cost stays O(1) amortised.
// - Resolution is 1/bins (linear interpolation inside a bin). When many requests share exactly
//   the same score, the share above the threshold can only move in steps of that mass.
// - Not thread-safe, but Node is single-threaded; keep one instance per policy.

export interface DecayingQuantileOptions {
  /** Number of equal-width bins over [0,1]. Default 2048. */
  bins?: number;
  /** Observations after which an observation's weight has halved. Default 5000; Infinity = no decay. */
  halfLife?: number;
}

export class DecayingQuantile {
  private readonly bins: Float64Array;
  private readonly n: number;
  private readonly growth: number;
  /** Weight of the next observation (grows instead of decaying every bin). */
  private weight = 1;
  private total = 0;
  /** Observations seen (not decayed). */
  count = 0;

  constructor(opts: DecayingQuantileOptions = {}) {
    const bins = opts.bins ?? 2048;
    const halfLife = opts.halfLife ?? 5000;
    if (!Number.isInteger(bins) || bins < 2) throw new RangeError('bins must be an integer >= 2');
    if (!(halfLife > 0)) throw new RangeError('halfLife must be > 0');
    this.n = bins;
    this.bins = new Float64Array(bins);
    this.growth = Number.isFinite(halfLife) ? Math.pow(2, 1 / halfLife) : 1;
  }

  observe(score: number): void {
    if (!Number.isFinite(score)) return;
    const x = score < 0 ? 0 : score > 1 ? 1 : score;
    const i = Math.min(this.n - 1, Math.floor(x * this.n));
    this.bins[i]! += this.weight;
    this.total += this.weight;
    this.count++;
    this.weight *= this.growth;
    if (this.weight > 1e200) this.rescale();
  }

  /** The q-quantile (0 <= q <= 1) of the decayed distribution; NaN before any observation. */
  quantile(q: number): number {
    if (this.total <= 0) return NaN;
    const p = q <= 0 ? 0 : q >= 1 ? 1 : q;
    const target = p * this.total;
    let acc = 0;
    for (let i = 0; i < this.n; i++) {
      const m = this.bins[i]!;
      if (m > 0 && acc + m >= target) {
        const frac = (target - acc) / m;
        return (i + Math.min(1, Math.max(0, frac))) / this.n;
      }
      acc += m;
    }
    // rounding: the target is at the top of the last non-empty bin
    for (let i = this.n - 1; i >= 0; i--) if (this.bins[i]! > 0) return (i + 1) / this.n;
    return NaN;
  }

  /** Decayed share of observations strictly above x (for tests and metrics). */
  shareAbove(x: number): number {
    if (this.total <= 0) return NaN;
    const pos = Math.max(0, Math.min(1, x)) * this.n;
    const i = Math.min(this.n - 1, Math.floor(pos));
    let above = this.bins[i]! * (1 - (pos - i));
    for (let k = i + 1; k < this.n; k++) above += this.bins[k]!;
    return above / this.total;
  }

  private rescale(): void {
    const f = 1 / this.weight;
    for (let i = 0; i < this.n; i++) this.bins[i] = this.bins[i]! * f;
    this.total *= f;
    this.weight = 1;
  }
}

export interface TargetThresholdOptions extends DecayingQuantileOptions {
  /** Target share of requests above the threshold (sent to the flagship), in (0, 1]. */
  share: number;
  /** Threshold during warm-up: the policy's configured maxScore (undefined: threshold() is undefined). */
  fallback?: number;
  /** Observations before the threshold follows the distribution. Default 200. */
  warmup?: number;
  /** Recompute the threshold every this many observations. Default 16. */
  refreshEvery?: number;
}

export class TargetThreshold {
  readonly share: number;
  readonly fallback: number | undefined;
  private readonly q: DecayingQuantile;
  private readonly warmup: number;
  private readonly refreshEvery: number;
  private sinceRefresh = 0;
  private current: number | undefined;

  constructor(opts: TargetThresholdOptions) {
    if (!(opts.share > 0 && opts.share <= 1)) throw new RangeError('share must be in (0, 1]');
    if (opts.fallback !== undefined && !(opts.fallback >= 0 && opts.fallback <= 1)) {
      throw new RangeError('fallback must be in [0, 1]');
    }
    this.share = opts.share;
    this.fallback = opts.fallback;
    this.warmup = opts.warmup ?? 200;
    this.refreshEvery = Math.max(1, opts.refreshEvery ?? 16);
    this.q = new DecayingQuantile(opts);
    this.current = opts.fallback;
  }

  /** Observations so far. */
  get count(): number {
    return this.q.count;
  }

  /** True once the threshold follows the observed scores (warm-up is over). */
  get warm(): boolean {
    return this.q.count >= this.warmup;
  }

  observe(score: number): void {
    this.q.observe(score);
    if (++this.sinceRefresh >= this.refreshEvery || this.q.count === this.warmup) this.refresh();
  }

  /** Scores above this go to the flagship tier (the fallback, possibly undefined, during warm-up). */
  threshold(): number | undefined {
    return this.warm ? this.current : this.fallback;
  }

  /** observe(score), then threshold(). */
  update(score: number): number | undefined {
    this.observe(score);
    return this.threshold();
  }

  private refresh(): void {
    this.sinceRefresh = 0;
    if (!this.warm) return;
    const t = this.q.quantile(1 - this.share);
    if (Number.isFinite(t)) this.current = t;
  }
}
