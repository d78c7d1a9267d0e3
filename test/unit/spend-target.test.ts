// Spend-targeted routing on simulated traffic streams (src/core/spend-target.ts, Router).
import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { periodBounds, SpendTarget } from '../../src/core/spend-target.js';
import { compile, sampleFile } from '../helpers/config.js';
import { seededRandom } from '../helpers/prng.js';

const DAY0 = Date.UTC(2026, 11, 2);
const FLAGSHIP_USD = 0.01;
const LIGHT_USD = 0.001;

interface Run {
  spent: number;
  /** Threshold in use at each simulated hour (undefined during warm-up). */
  hourly: Array<number | undefined>;
  target: SpendTarget;
}

/**
 * One simulated day: requests with uniform scores at `perSecond(t)` a second, each served by the
 * flagship when its score is above the target's threshold (else the configured maxScore), at a
 * fixed cost per side (with +-50% noise).
 */
function simulate(usd: number, perSecond: (hour: number) => number, max = 0.9, seed = 1): Run {
  const r = seededRandom(seed);
  const target = new SpendTarget({ usd, period: 'day', min: 0, max });
  const hourly: Array<number | undefined> = [];
  let spent = 0;
  let now = DAY0;
  while (now < DAY0 + 86_400_000) {
    const hour = Math.floor((now - DAY0) / 3_600_000);
    if (hourly.length === hour) hourly.push(target.threshold());
    const score = r();
    const flagship = score > (target.threshold() ?? max);
    target.observe(score, now);
    const cost = (flagship ? FLAGSHIP_USD : LIGHT_USD) * (0.5 + r());
    target.recordCost(cost, flagship, now);
    spent += cost;
    now += 1000 / perSecond(hour);
  }
  return { spent, hourly, target };
}

describe('SpendTarget on a simulated day', () => {
  it('lands the day on target and settles the threshold where the arithmetic says', () => {
    // 86,400 requests at $0.001 or $0.01: $300 allows a flagship share of (300/86400 - 0.001) / 0.009 = 27.5%.
    const run = simulate(300, () => 1);
    expect(run.spent).toBeGreaterThan(300 * 0.95);
    expect(run.spent).toBeLessThan(300 * 1.05);
    const late = run.hourly.slice(6) as number[];
    for (const t of late) expect(Math.abs(t - 0.725)).toBeLessThan(0.06);
    // Warm-up (200 scores, 20 costs of each side) takes minutes, then the configured maxScore stops applying.
    expect(run.hourly[0]).toBeUndefined();
    expect(run.hourly[1]).toBeDefined();
  });

  it('never goes above the quality floor: an unreachable target pins maxScore and the projection says so', () => {
    // Even sending only the top 10% up costs about $164 a day.
    const run = simulate(50, () => 1);
    expect(run.hourly.slice(1).every((t) => t === 0.9)).toBe(true);
    const status = run.target.status(DAY0 + 86_399_000);
    expect(status.projectedUsd).toBeGreaterThan(150);
    expect(status.targetUsd).toBe(50);
    expect(status.threshold).toBe(0.9);
  });

  it('reacts to a traffic surge within the hour and still meets the day', () => {
    // Traffic doubles at noon: the rest of the day must send fewer requests to the flagship.
    const run = simulate(450, (h) => (h < 12 ? 1 : 2));
    const before = run.hourly[11]!;
    expect(run.hourly[13]!).toBeGreaterThan(before + 0.05);
    expect(run.spent).toBeGreaterThan(450 * 0.93);
    expect(run.spent).toBeLessThan(450 * 1.07);
  });

  it('starts a new period at the UTC boundary', () => {
    expect(periodBounds(DAY0 + 5, 'day')).toEqual([DAY0, DAY0 + 86_400_000]);
    expect(periodBounds(DAY0 + 3_600_000 + 5, 'hour')).toEqual([DAY0 + 3_600_000, DAY0 + 7_200_000]);
    expect(periodBounds(DAY0, 'month')).toEqual([Date.UTC(2026, 11, 1), Date.UTC(2027, 0, 1)]);
    const run = simulate(300, () => 1);
    expect(run.target.status(DAY0 + 86_400_000 + 1).spentUsd).toBe(0);
  });
});

describe('Router with a spendTarget policy', () => {
  it('routes by the moving threshold, reports target vs projection, and keeps maxScore as the bound', () => {
    const file = sampleFile();
    file.policies[0] = {
      ...file.policies[0]!,
      tiers: [{ name: 'lightweight', maxScore: 0.8 }, { name: 'flagship' }],
      spendTarget: { usd: 5, period: 'day' },
    };
    const config = compile(file);
    const r = seededRandom(9);
    let score = 0;
    let wall = DAY0 + 6 * 3_600_000;
    const router = new Router({
      config,
      health: new HealthRegistry(),
      classify: () => ({ score, reasons: [] }),
      wallClock: () => wall,
    });
    const body = JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] });
    let flagship = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) {
      score = r();
      wall += 5000; // one request every 5 s: 17,280 a day
      const plan = router.plan({ body: body });
      const served = plan.candidates[0]!;
      if (plan.tier === 'flagship') flagship++;
      router.recordCost(plan, served, plan.tier === 'flagship' ? FLAGSHIP_USD : LIGHT_USD);
    }
    // $5 a day over ~17,280 requests allows (5/17280 - 0.001) / 0.009 = 2% to the flagship, below
    // the floor of maxScore 0.8 (20%): the threshold stays at the bound.
    const [status] = router.spendStatus();
    expect(status!.policy).toBe('default');
    expect(status!.targetUsd).toBe(5);
    expect(status!.threshold).toBe(0.8);
    expect(flagship / n).toBeGreaterThan(0.17);
    expect(status!.projectedUsd).toBeGreaterThan(5);

    // A generous target lowers the threshold below maxScore: more flagship calls.
    file.policies[0]!.spendTarget = { usd: 100, period: 'day' };
    router.setConfig(compile(file));
    flagship = 0;
    for (let i = 0; i < n; i++) {
      score = r();
      wall += 5000;
      const plan = router.plan({ body: body });
      if (plan.tier === 'flagship') flagship++;
      router.recordCost(plan, plan.candidates[0]!, plan.tier === 'flagship' ? FLAGSHIP_USD : LIGHT_USD);
    }
    const [after] = router.spendStatus();
    expect(after!.threshold).toBeLessThan(0.8);
    expect(flagship / n).toBeGreaterThan(0.3);
  });

  it('is a config error together with flagshipShare or with a single tier', () => {
    const file = sampleFile();
    file.policies[0] = { ...file.policies[0]!, flagshipShare: 0.3, spendTarget: { usd: 5, period: 'day' } };
    expect(() => compile(file)).toThrow(/either spendTarget or flagshipShare/);
    file.policies[0] = { ...file.policies[0]!, flagshipShare: undefined, tiers: [{ name: 'flagship' }] };
    expect(() => compile(file)).toThrow(/spendTarget needs at least two tiers/);
  });
});
