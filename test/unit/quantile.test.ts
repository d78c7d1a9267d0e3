import { describe, expect, it } from 'vitest';
import { DecayingQuantile, TargetThreshold } from '../../src/core/classifier/quantile.js';
import { seededRandom } from '../helpers/prng.js';

const distributions: Record<string, (r: () => number) => number> = {
  uniform: (r) => r(),
  'skewed low (u^3)': (r) => r() ** 3,
  'narrow around 0.4': (r) => 0.38 + 0.04 * r(),
  bimodal: (r) => (r() < 0.8 ? 0.1 + 0.1 * r() : 0.85 + 0.1 * r()),
  'logistic of a normal': (r) => {
    const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    return 1 / (1 + Math.exp(-1.5 * z));
  },
};

/** Share of `n` fresh draws routed to the flagship (score above the threshold, decided online). */
function routedShare(t: TargetThreshold, draw: () => number, n: number): number {
  let above = 0;
  for (let i = 0; i < n; i++) {
    const s = draw();
    if (s > (t.threshold() ?? 0.5)) above++;
    t.observe(s);
  }
  return above / n;
}

describe('DecayingQuantile', () => {
  it('estimates quantiles of a uniform stream within the bin resolution', () => {
    const q = new DecayingQuantile({ bins: 1000, halfLife: Infinity });
    const r = seededRandom(1);
    for (let i = 0; i < 100_000; i++) q.observe(r());
    for (const p of [0.1, 0.5, 0.7, 0.9, 0.99]) expect(Math.abs(q.quantile(p) - p)).toBeLessThan(0.01);
    expect(q.count).toBe(100_000);
  });

  it('ignores non-finite scores, clamps out-of-range ones, and is NaN while empty', () => {
    const q = new DecayingQuantile();
    expect(q.quantile(0.5)).toBeNaN();
    q.observe(Number.NaN);
    q.observe(Number.POSITIVE_INFINITY);
    expect(q.count).toBe(0);
    q.observe(-3);
    q.observe(7);
    expect(q.count).toBe(2);
    expect(q.quantile(0)).toBeGreaterThanOrEqual(0);
    expect(q.quantile(1)).toBeLessThanOrEqual(1);
  });

  it('forgets old observations: after a shift the median moves to the new distribution', () => {
    const q = new DecayingQuantile({ halfLife: 1000 });
    const r = seededRandom(2);
    for (let i = 0; i < 20_000; i++) q.observe(0.2 * r());
    expect(q.quantile(0.5)).toBeLessThan(0.2);
    for (let i = 0; i < 10_000; i++) q.observe(0.8 + 0.2 * r());
    expect(q.quantile(0.5)).toBeGreaterThan(0.8);
  });

  it('survives many half-lives (internal rescaling) without losing precision', () => {
    const q = new DecayingQuantile({ halfLife: 10 });
    const r = seededRandom(3);
    for (let i = 0; i < 50_000; i++) q.observe(0.5 + 0.1 * r());
    const m = q.quantile(0.5);
    expect(m).toBeGreaterThan(0.5);
    expect(m).toBeLessThan(0.6);
  });

  it('is deterministic', () => {
    const a = new DecayingQuantile({ halfLife: 300 });
    const b = new DecayingQuantile({ halfLife: 300 });
    const r1 = seededRandom(9);
    const r2 = seededRandom(9);
    for (let i = 0; i < 5000; i++) {
      a.observe(r1());
      b.observe(r2());
    }
    expect(a.quantile(0.73)).toBe(b.quantile(0.73));
  });
});

describe('TargetThreshold', () => {
  it('uses the configured maxScore during warm-up', () => {
    const t = new TargetThreshold({ share: 0.3, fallback: 0.62, warmup: 100 });
    for (let i = 0; i < 99; i++) expect(t.update(0.01)).toBe(0.62);
    expect(t.warm).toBe(false);
    t.observe(0.01);
    expect(t.warm).toBe(true);
    expect(t.threshold()).not.toBe(0.62);
  });

  for (const [name, draw] of Object.entries(distributions)) {
    for (const share of [0.1, 0.3, 0.5]) {
      it(`holds a ${share * 100}% flagship share on a ${name} score distribution`, () => {
        const r = seededRandom(42);
        const t = new TargetThreshold({ share, fallback: 0.5, halfLife: 3000 });
        routedShare(t, () => draw(r), 10_000); // settle
        const got = routedShare(t, () => draw(r), 20_000);
        expect(Math.abs(got - share)).toBeLessThan(0.02);
      });
    }
  }

  it('follows a shift of the score distribution', () => {
    const r = seededRandom(7);
    const t = new TargetThreshold({ share: 0.3, fallback: 0.5, halfLife: 2000 });
    routedShare(t, () => r() ** 3, 20_000);
    const before = t.threshold()!;
    // traffic gets harder: scores move up
    const harder = (): number => 0.5 + 0.5 * r();
    routedShare(t, harder, 10_000); // a few half-lives to adapt
    const got = routedShare(t, harder, 20_000);
    expect(t.threshold()).toBeGreaterThan(before);
    expect(Math.abs(got - 0.3)).toBeLessThan(0.02);
  });

  it('a fixed threshold would not hold the share after the shift (the test can fail)', () => {
    const r = seededRandom(8);
    const fixed = 0.5;
    let above = 0;
    for (let i = 0; i < 10_000; i++) if (0.5 + 0.5 * r() > fixed) above++;
    expect(above / 10_000).toBeGreaterThan(0.9);
  });

  it('without a fallback, is undefined during warm-up (the router then uses maxScore)', () => {
    const t = new TargetThreshold({ share: 0.2, warmup: 10 });
    for (let i = 0; i < 9; i++) expect(t.update(i / 10)).toBeUndefined();
    expect(t.update(0.95)).toBeTypeOf('number');
  });

  it('rejects invalid options', () => {
    expect(() => new TargetThreshold({ share: 0, fallback: 0.5 })).toThrow(RangeError);
    expect(() => new TargetThreshold({ share: 1.5, fallback: 0.5 })).toThrow(RangeError);
    expect(() => new TargetThreshold({ share: 0.3, fallback: 2 })).toThrow(RangeError);
    expect(() => new DecayingQuantile({ bins: 1 })).toThrow(RangeError);
  });
});
