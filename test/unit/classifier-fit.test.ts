// Routers fitted to a user's own outcomes (src/core/classifier/fit.ts, `tierflow train`).
import { describe, expect, it } from 'vitest';
import { fitRouter, routeMetrics } from '../../src/core/classifier/fit.js';
import { loadClassifier, SHIPPED } from '../../src/core/classifier/index.js';
import { plantedOutcomes, user } from '../helpers/outcomes.js';

describe('fitRouter', () => {
  const rows = plantedOutcomes(300);
  const { model, report } = fitRouter(rows, SHIPPED);

  it('learns what the shipped model gets wrong on this traffic, by nested cross-validation', () => {
    expect(report.rows).toBe(300);
    expect(report.mode).toBe('shipped'); // too few rows for a from-scratch fit
    expect(report.shipped.APGR).toBeLessThan(0.5);
    expect(report.crossValidated.APGR).toBeGreaterThan(0.7);
    expect(report.crossValidated.APGR).toBeGreaterThan(report.promptLength.APGR);
    expect(report.crossValidated.CPT50).toBeLessThan(report.shipped.CPT50);
  });

  it('writes a model the product loads, which ranks this traffic the new way', () => {
    const custom = loadClassifier(JSON.parse(JSON.stringify(model)));
    const translation = user('Translate into Finnish: "The meeting starts at 9 tomorrow."');
    const math = user(
      'Ana has 12 cups and buys 3 more each day for 4 days. How many cups does Ana have in total?',
    );
    expect(SHIPPED.classify(translation).score).toBeLessThan(SHIPPED.classify(math).score);
    expect(custom.classify(translation).score).toBeGreaterThan(custom.classify(math).score);
    expect(custom.info.version).toBe(`${SHIPPED.info.version}+custom`);
    expect(model.vocabulary).toBeUndefined();
  });

  it('gives thresholds for wanted flagship shares from its own score distribution', () => {
    const t = report.thresholds;
    expect(t.map((x) => x.share)).toEqual([0.1, 0.2, 0.3, 0.4, 0.5]);
    for (let i = 1; i < t.length; i++) {
      expect(t[i]!.maxScore).toBeLessThan(t[i - 1]!.maxScore);
      expect(t[i]!.gapRecovered).toBeGreaterThanOrEqual(t[i - 1]!.gapRecovered);
    }
    // About a third of this traffic is where the flagship helps: sending the top third recovers most of it.
    const custom = loadClassifier(model);
    const scores = rows.map((row) => custom.classify(row.request).score);
    const third = fitRouter(rows, SHIPPED, { shares: [1 / 3] }).report.thresholds[0]!;
    const above = scores.filter((s) => s > third.maxScore).length / scores.length;
    expect(above).toBeGreaterThan(0.28);
    expect(above).toBeLessThan(0.38);
    expect(third.gapRecovered).toBeGreaterThan(0.7);
  });

  it('refuses what it cannot fit honestly', () => {
    expect(() => fitRouter(rows.slice(0, 20), SHIPPED)).toThrow(/at least 50/);
    expect(() => fitRouter(rows, SHIPPED, { mode: 'scratch' })).toThrow(/at least 2000/);
    const noGap = rows.map((r) => ({ ...r, flagship: r.lightweight }));
    expect(() => fitRouter(noGap, SHIPPED)).toThrow(/nothing to route for/);
  });
});

describe('loadClassifier', () => {
  const { model } = fitRouter(plantedOutcomes(120, 3), SHIPPED);

  it('rejects files that do not fit this TierFlow', () => {
    expect(() => loadClassifier({ ...model, base: { ...model.base!, version: '0.0.1' } })).toThrow(
      /fitted on .* 0\.0\.1.*refit it with tierflow train/,
    );
    expect(() => loadClassifier({ ...model, vocabulary: { hard: 0.1 } })).toThrow(/shipped vocabulary/);
    expect(() => loadClassifier({ ...model, weights: model.weights.slice(1) })).toThrow(
      /one entry per feature/,
    );
    expect(() => loadClassifier({ ...model, calibration: { center: 0, scale: 0 } })).toThrow(/calibration/);
    expect(() => loadClassifier('nope')).toThrow();
  });
});

describe('routeMetrics', () => {
  it('computes APGR and CPT50 as the shared evaluation tool does', () => {
    // Two requests where only the flagship is right, two where both are: a perfect ranking
    // recovers the gap within the first half.
    const flagship = [1, 1, 1, 1];
    const light = [0, 0, 1, 1];
    const perfect = routeMetrics([4, 3, 2, 1], flagship, light);
    expect(perfect.CPT50).toBeCloseTo(0.25, 9);
    expect(perfect.APGR).toBeCloseTo(0.75, 9);
    const inverted = routeMetrics([1, 2, 3, 4], flagship, light);
    expect(inverted.APGR).toBeCloseTo(0.25, 9);
    expect(routeMetrics([1, 1, 1, 1], flagship, light).APGR).toBeCloseTo(0.5, 9); // ties move together
  });
});
