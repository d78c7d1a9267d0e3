// Spend-targeted routing: a policy states what it wants to spend per period (`spendTarget:
// {usd: 200, period: day}`), and the threshold of the tier below the flagship moves so that the
// projected spend of the period meets it.
//
// Model. Per period, spend = spent so far + (requests still to come) x (cost per request), and
// the cost per request is lightweight cost + share x (flagship cost - lightweight cost), where
// `share` is the share of requests sent to the flagship. From what the policy has seen:
// - the request rate and the cost per request of each side: exponentially weighted over time
//   (time constant `tauMs`, default 10 minutes), so a change in traffic or prices shows within
//   minutes;
// - the spend of the current period (UTC day, hour or month), exact;
// - the score distribution (a decaying histogram, as for flagshipShare),
// it solves for the share that lands the period on target, and the threshold is the score
// quantile that sends that share up. Near the end of a period the remaining time is floored at
// 1/24 of the period so the last hour cannot swing the threshold wildly.
// Bounds: the threshold never rises above the tier's configured maxScore (requests scoring above
// it always reach the flagship: the quality floor) and never falls below the previous tier's
// maxScore. When even the floor spends more than the target, the projection says so.
// Warm-up: until `warmup` scores and `minCostSamples` costs of each side were seen, the configured
// maxScore applies. State is per process.
import { DecayingQuantile } from './classifier/quantile.js';

export type SpendPeriod = 'hour' | 'day' | 'month';

export interface SpendTargetOptions {
  usd: number;
  period: SpendPeriod;
  /** The threshold's bounds: [previous tier's maxScore (or 0), this tier's maxScore]. */
  min: number;
  max: number;
  /** Time constant of the rate and cost averages. Default 600 000 ms (10 minutes). */
  tauMs?: number;
  warmup?: number;
  minCostSamples?: number;
}

export interface SpendStatus {
  targetUsd: number;
  period: SpendPeriod;
  /** Spent in the current period, as recorded by this process. */
  spentUsd: number;
  /** Spend at the end of the period if traffic continues as now at the current threshold. */
  projectedUsd: number;
  /** Share of requests the threshold sends to the flagship (recent scores). */
  flagshipShare: number;
  /** Threshold in use; undefined during warm-up (the configured maxScore applies). */
  threshold: number | undefined;
  warm: boolean;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Start and end (ms) of the UTC period containing `now`. */
export function periodBounds(now: number, period: SpendPeriod): [number, number] {
  if (period === 'hour') {
    const start = Math.floor(now / HOUR) * HOUR;
    return [start, start + HOUR];
  }
  if (period === 'day') {
    const start = Math.floor(now / DAY) * DAY;
    return [start, start + DAY];
  }
  const d = new Date(now);
  return [
    Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
    Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
  ];
}

/** An exponentially weighted mean over time. */
class TimeAverage {
  #sum = 0;
  #weight = 0;
  #at = NaN;
  readonly tauMs: number;
  constructor(tauMs: number) {
    this.tauMs = tauMs;
  }
  add(value: number, now: number): void {
    this.#decay(now);
    this.#sum += value;
    this.#weight += 1;
  }
  #decay(now: number): void {
    if (Number.isFinite(this.#at) && now > this.#at) {
      const f = Math.exp(-(now - this.#at) / this.tauMs);
      this.#sum *= f;
      this.#weight *= f;
    }
    if (!(now < this.#at)) this.#at = now;
  }
  mean(): number {
    return this.#weight > 0 ? this.#sum / this.#weight : NaN;
  }
  /** Decayed count per ms (a rate), measured since `since`. */
  rate(now: number, since: number): number {
    this.#decay(now);
    const span = this.tauMs * (1 - Math.exp(-Math.max(0, now - since) / this.tauMs));
    return span > 0 ? this.#weight / span : NaN;
  }
}

export class SpendTarget {
  readonly usd: number;
  readonly period: SpendPeriod;
  readonly #min: number;
  readonly #max: number;
  readonly #scores = new DecayingQuantile({ bins: 1024, halfLife: 5000 });
  readonly #requests: TimeAverage;
  readonly #flagshipCost: TimeAverage;
  readonly #otherCost: TimeAverage;
  readonly #warmup: number;
  readonly #minCostSamples: number;
  #flagshipSamples = 0;
  #otherSamples = 0;
  #firstAt = NaN;
  #periodStart = NaN;
  #spent = 0;
  #threshold: number | undefined;
  #sinceRefresh = 0;

  constructor(o: SpendTargetOptions) {
    if (!(o.usd >= 0) || !(o.min <= o.max)) throw new RangeError('spend target: usd >= 0 and min <= max');
    this.usd = o.usd;
    this.period = o.period;
    this.#min = o.min;
    this.#max = o.max;
    const tau = o.tauMs ?? 600_000;
    this.#requests = new TimeAverage(tau);
    this.#flagshipCost = new TimeAverage(tau);
    this.#otherCost = new TimeAverage(tau);
    this.#warmup = o.warmup ?? 200;
    this.#minCostSamples = o.minCostSamples ?? 20;
  }

  get warm(): boolean {
    return (
      this.#scores.count >= this.#warmup &&
      this.#flagshipSamples >= this.#minCostSamples &&
      this.#otherSamples >= this.#minCostSamples
    );
  }

  /** Every classified request of the policy. */
  observe(score: number, now: number): void {
    if (Number.isNaN(this.#firstAt)) this.#firstAt = now;
    this.#scores.observe(score);
    this.#requests.add(1, now);
    if (++this.#sinceRefresh >= 16) this.#refresh(now);
  }

  /** What a served request cost, and whether the flagship tier served it. */
  recordCost(usd: number, flagship: boolean, now: number): void {
    if (!(usd >= 0)) return;
    this.#rollPeriod(now);
    this.#spent += usd;
    if (flagship) {
      this.#flagshipCost.add(usd, now);
      this.#flagshipSamples++;
    } else {
      this.#otherCost.add(usd, now);
      this.#otherSamples++;
    }
  }

  /** Scores above this go to the flagship; undefined during warm-up (use the configured maxScore). */
  threshold(): number | undefined {
    return this.warm ? this.#threshold : undefined;
  }

  status(now: number): SpendStatus {
    this.#rollPeriod(now);
    const t = this.threshold();
    const share = this.#scores.count > 0 ? this.#scores.shareAbove(t ?? this.#max) : NaN;
    return {
      targetUsd: this.usd,
      period: this.period,
      spentUsd: this.#spent,
      projectedUsd: this.#spent + this.#remainingRequests(now, false) * this.#costPerRequest(share),
      flagshipShare: share,
      threshold: t,
      warm: this.warm,
    };
  }

  #rollPeriod(now: number): void {
    const [start] = periodBounds(now, this.period);
    if (start !== this.#periodStart) {
      this.#periodStart = start;
      this.#spent = 0;
    }
  }

  #costPerRequest(share: number): number {
    const f = this.#flagshipCost.mean();
    const o = this.#otherCost.mean();
    return o + share * (f - o);
  }

  /** Requests expected in the rest of the period at the current rate. */
  #remainingRequests(now: number, floored: boolean): number {
    const [start, end] = periodBounds(now, this.period);
    const left = floored ? Math.max(end - now, (end - start) / 24) : Math.max(0, end - now);
    const rate = this.#requests.rate(now, this.#firstAt);
    return Number.isFinite(rate) ? rate * left : 0;
  }

  #refresh(now: number): void {
    this.#sinceRefresh = 0;
    if (!this.warm) return;
    this.#rollPeriod(now);
    const f = this.#flagshipCost.mean();
    const o = this.#otherCost.mean();
    const requests = this.#remainingRequests(now, true);
    let share: number;
    if (!(requests > 0)) share = 0;
    else if (!(f > o))
      share = 1; // the flagship costs no more: nothing to save
    else share = ((this.usd - this.#spent) / requests - o) / (f - o);
    share = Math.min(1, Math.max(0, share));
    const q = share >= 1 ? this.#min : share <= 0 ? this.#max : this.#scores.quantile(1 - share);
    const t = Number.isFinite(q) ? q : this.#max;
    this.#threshold = Math.min(this.#max, Math.max(this.#min, t));
  }
}
