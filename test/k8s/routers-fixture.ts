// Routers for the classifier.configMapRef tests: one fitted by `tierflow train`'s code on
// outcomes where translations need the flagship (the shipped model scores them low), and the same
// router with its weights negated, which sends them the other way.
import { SHIPPED } from '../../src/core/classifier/index.js';
import { fitRouter } from '../../src/core/classifier/fit.js';
import { plantedOutcomes } from '../helpers/outcomes.js';

export const ROUTER_LABELS = { 'tierflow.dev/router': 'true' };
/** Scored low by the shipped model; the planted outcomes teach the fitted router it is hard. */
export const TRANSLATION = 'Translate into Korean: "Please send the tickets by 5 pm."';

export const fitted = fitRouter(plantedOutcomes(240), SHIPPED).model;
/** The file as `tierflow train` writes it (src/cli/train.ts writes result.model the same way). */
export const ROUTER = JSON.stringify(fitted, null, 2) + '\n';
export const INVERTED = JSON.stringify({
  ...fitted,
  weights: fitted.weights.map((w) => -w),
  intercept: -fitted.intercept,
  calibration: { ...fitted.calibration, center: -fitted.calibration.center },
});
