// Fitting a router to a user's own outcomes (`tierflow train`): pure, deterministic, no I/O.
//
// Each outcome row is a request with the score of the lightweight and of the flagship answer.
// The target is the flagship's gain, (flagship - lightweight + 1) / 2 (1: only the flagship got
// it right). Two ways to fit a logistic regression over the classifier's features:
// - "shipped": on top of the shipped model. Its logit is an input with a free coefficient, and the
//   per-feature corrections are pulled towards 0, so with little data the result stays the
//   shipped ranking, and with more it bends it to the user's traffic.
// - "scratch": the features alone, pulled towards 0 (the shipped model only lends its vocabulary).
// The regularisation (and, with "auto", the mode) is chosen by an inner cross-validation inside
// every outer fold, so the reported out-of-fold figures never saw the rows they score.
import type { ChatCompletionRequest } from '../openai.js';
import { FEATURE_NAMES, NUM_FEATURES } from './feature-names.js';
import { extractFeatures } from './features.js';
import { fitLogistic } from './logistic.js';
import type { Classifier, ModelFile } from './index.js';

export interface Outcome {
  id: string;
  request: ChatCompletionRequest;
  /** Score of the flagship's answer, in [0, 1] (1 = right). */
  flagship: number;
  /** Score of the lightweight model's answer, in [0, 1]. */
  lightweight: number;
}

export type FitMode = 'shipped' | 'scratch';

export interface RouteMetrics {
  n: number;
  /** Area under the gap-recovered curve over the share sent to the flagship (0.5 = random). */
  APGR: number;
  /** Smallest flagship share that recovers half the flagship-lightweight quality gap. */
  CPT50: number;
  CPT80: number;
  /** Mean score of the lightweight and the flagship answers. */
  lightweight: number;
  flagship: number;
}

export interface ThresholdRow {
  /** Share of requests sent to the flagship. */
  share: number;
  /** The `maxScore` of the tier below the flagship that gives this share on the training rows. */
  maxScore: number;
  /** Share of the quality gap recovered at this share, out of fold. */
  gapRecovered: number;
}

export interface FitReport {
  rows: number;
  folds: number;
  mode: FitMode;
  lambda: number;
  /** Out-of-fold figures of the fitted router (nested: every choice was made without the scored fold). */
  crossValidated: RouteMetrics;
  shipped: RouteMetrics;
  promptLength: RouteMetrics;
  thresholds: ThresholdRow[];
}

export interface FitOptions {
  /** 'auto' picks by inner cross-validation; 'scratch' needs MIN_SCRATCH_ROWS rows. */
  mode?: FitMode | 'auto';
  folds?: number;
  /** Flagship shares to report thresholds for. */
  shares?: number[];
}

export const MIN_ROWS = 50;
/** Below this many rows a from-scratch fit is not considered: too few to set ~50 weights. */
export const MIN_SCRATCH_ROWS = 2000;
const LAMBDAS = [1, 10, 100, 1000];
const INNER_FOLDS = 3;

interface Prepared {
  x: Float64Array[];
  /** The shipped model's logit per row. */
  z0: number[];
  t: number[];
  length: number[];
}

function prepare(rows: Outcome[], shipped: Classifier): Prepared {
  const x = rows.map((r) => Float64Array.from(extractFeatures(r.request)));
  return {
    x,
    z0: x.map((v) => shipped.logit(v)),
    t: rows.map((r) => (r.flagship - r.lightweight + 1) / 2),
    length: rows.map((r) => promptLength(r.request)),
  };
}

/** The prompt-length baseline: characters of all messages' text. */
export function promptLength(req: ChatCompletionRequest): number {
  let n = 0;
  for (const m of req.messages ?? []) {
    const c = m?.content;
    if (typeof c === 'string') n += c.length;
    else if (Array.isArray(c))
      for (const p of c) if (p?.type === 'text' && typeof p.text === 'string') n += p.text.length;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Penalised logistic regression (./logistic.ts), columns standardised on the fitting rows.

interface Linear {
  /** Raw-unit weights per feature (the shipped logit's coefficient is folded in by the caller). */
  w: Float64Array;
  /** Coefficient of the shipped logit (0 for scratch). */
  a: number;
  b: number;
}

function fitLinear(p: Prepared, idx: number[], mode: FitMode, lambda: number): Linear {
  const q = NUM_FEATURES;
  const mean = new Float64Array(q);
  const std = new Float64Array(q);
  for (const i of idx) for (let j = 0; j < q; j++) mean[j]! += p.x[i]![j]!;
  for (let j = 0; j < q; j++) mean[j] = mean[j]! / idx.length;
  for (const i of idx) for (let j = 0; j < q; j++) std[j]! += (p.x[i]![j]! - mean[j]!) ** 2;
  const active: number[] = [];
  for (let j = 0; j < q; j++) {
    std[j] = Math.sqrt(std[j]! / idx.length);
    if (std[j]! > 1e-9) active.push(j);
    std[j] = Math.max(std[j]!, 0.1);
  }
  const useZ = mode === 'shipped';
  // Columns: the active features (standardised), then the shipped logit; one group: the intercept.
  const k = active.length;
  const prior = new Float64Array(k + 1);
  const strength = new Float64Array(k + 1).fill(lambda);
  if (useZ) prior[k] = 1;
  strength[k] = useZ ? 1 : 1e6; // a: free-ish on top of the shipped model, pinned at 0 otherwise
  const theta = fitLogistic({
    x: idx.map((i) => {
      const row = new Float64Array(k + 1);
      active.forEach((j, a) => (row[a] = (p.x[i]![j]! - mean[j]!) / std[j]!));
      row[k] = useZ ? p.z0[i]! : 0;
      return row;
    }),
    t: idx.map((i) => p.t[i]!),
    group: idx.map(() => 0),
    groups: 1,
    prior,
    strength,
    groupPenalty: 1e-6,
    maxIterations: 50,
    tolerance: 1e-9,
  });
  const w = new Float64Array(q);
  let b = theta[k + 1]!;
  active.forEach((j, a) => {
    w[j] = theta[a]! / std[j]!;
    b -= w[j]! * mean[j]!;
  });
  return { w, a: useZ ? theta[k]! : 0, b };
}

function predict(m: Linear, p: Prepared, i: number): number {
  let z = m.b + m.a * p.z0[i]!;
  const x = p.x[i]!;
  for (let j = 0; j < NUM_FEATURES; j++) z += m.w[j]! * x[j]!;
  return z;
}

// ---------------------------------------------------------------------------------------------
// Routing metrics (as ../shared/docs/routing-quality.md defines them: ties move together).

/** Gap-recovered curve: points (share sent to the flagship, share of the gap recovered). */
function curve(scores: number[], flagship: number[], light: number[]): Array<[number, number]> {
  const n = scores.length;
  const order = [...scores.keys()].sort((i, j) => scores[j]! - scores[i]!);
  let gap = 0;
  for (let i = 0; i < n; i++) gap += flagship[i]! - light[i]!;
  const pts: Array<[number, number]> = [[0, 0]];
  let gained = 0;
  for (let k = 0; k < n;) {
    let m = k;
    while (m < n && scores[order[m]!] === scores[order[k]!]) {
      gained += flagship[order[m]!]! - light[order[m]!]!;
      m++;
    }
    pts.push([m / n, gap === 0 ? 0 : gained / gap]);
    k = m;
  }
  return pts;
}

function reach(pts: Array<[number, number]>, target: number): number {
  for (let k = 1; k < pts.length; k++) {
    const [c0, g0] = pts[k - 1]!;
    const [c1, g1] = pts[k]!;
    if (g0 >= target - 1e-12) return c0;
    if (g1 >= target - 1e-12) return c0 + ((target - g0) / (g1 - g0)) * (c1 - c0);
  }
  return NaN;
}

function gapAt(pts: Array<[number, number]>, share: number): number {
  for (let k = 1; k < pts.length; k++) {
    const [c0, g0] = pts[k - 1]!;
    const [c1, g1] = pts[k]!;
    if (share <= c1) return c1 === c0 ? g1 : g0 + ((share - c0) / (c1 - c0)) * (g1 - g0);
  }
  return pts[pts.length - 1]![1];
}

export function routeMetrics(scores: number[], flagship: number[], light: number[]): RouteMetrics {
  const n = scores.length;
  const pts = curve(scores, flagship, light);
  let area = 0;
  for (let k = 1; k < pts.length; k++)
    area += ((pts[k - 1]![1] + pts[k]![1]) / 2) * (pts[k]![0] - pts[k - 1]![0]);
  const mean = (v: number[]): number => v.reduce((a, x) => a + x, 0) / Math.max(1, v.length);
  return {
    n,
    APGR: area,
    CPT50: reach(pts, 0.5),
    CPT80: reach(pts, 0.8),
    lightweight: mean(light),
    flagship: mean(flagship),
  };
}

// ---------------------------------------------------------------------------------------------

/** Deterministic fold of row `i` of `n` (interleaved by a hash of its id). */
function folds(ids: string[], k: number, salt: string): number[] {
  const keyed = ids.map((id, i) => ({ i, h: fnv(`${salt}:${id}`) }));
  keyed.sort((a, b) => a.h - b.h || a.i - b.i);
  const out = new Array<number>(ids.length);
  keyed.forEach((e, r) => (out[e.i] = r % k));
  return out;
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

interface Choice {
  mode: FitMode;
  lambda: number;
}

/** The mode and lambda with the best inner cross-validated APGR on `idx`. */
function choose(p: Prepared, ids: string[], rows: Outcome[], idx: number[], modes: FitMode[]): Choice {
  const f = folds(
    idx.map((i) => ids[i]!),
    INNER_FOLDS,
    'inner',
  );
  let best: Choice & { apgr: number } = { mode: modes[0]!, lambda: LAMBDAS[LAMBDAS.length - 1]!, apgr: -1 };
  for (const mode of modes) {
    for (const lambda of LAMBDAS) {
      const scores = new Array<number>(idx.length);
      for (let g = 0; g < INNER_FOLDS; g++) {
        const train = idx.filter((_, r) => f[r] !== g);
        const m = fitLinear(p, train, mode, lambda);
        idx.forEach((i, r) => {
          if (f[r] === g) scores[r] = predict(m, p, i);
        });
      }
      const apgr = routeMetrics(
        scores,
        idx.map((i) => rows[i]!.flagship),
        idx.map((i) => rows[i]!.lightweight),
      ).APGR;
      if (apgr > best.apgr + 1e-9) best = { mode, lambda, apgr };
    }
  }
  return best;
}

export interface FitResult {
  model: ModelFile;
  report: FitReport;
}

/**
 * Fit a router to `rows` on top of (or beside) the `shipped` classifier, with a nested
 * cross-validated report. Throws an Error for unusable input (too few rows, no quality gap).
 */
export function fitRouter(rows: Outcome[], shipped: Classifier, options: FitOptions = {}): FitResult {
  const n = rows.length;
  if (n < MIN_ROWS) throw new Error(`need at least ${MIN_ROWS} outcomes, got ${n}`);
  const k = options.folds ?? 5;
  if (!Number.isInteger(k) || k < 2 || k > n)
    throw new Error('folds must be an integer from 2 to the row count');
  const requested = options.mode ?? 'auto';
  if (requested === 'scratch' && n < MIN_SCRATCH_ROWS) {
    throw new Error(`a from-scratch fit needs at least ${MIN_SCRATCH_ROWS} outcomes, got ${n}`);
  }
  const modes: FitMode[] =
    requested === 'auto' ? (n >= MIN_SCRATCH_ROWS ? ['shipped', 'scratch'] : ['shipped']) : [requested];
  const flagship = rows.map((r) => r.flagship);
  const light = rows.map((r) => r.lightweight);
  if (flagship.reduce((a, v) => a + v, 0) <= light.reduce((a, v) => a + v, 0)) {
    throw new Error(
      'the flagship does not score higher than the lightweight model on these outcomes: there is nothing to route for',
    );
  }
  const p = prepare(rows, shipped);
  const ids = rows.map((r) => r.id);
  const all = [...Array(n).keys()];

  // Outer cross-validation: every choice inside is made on the outer training rows only.
  const outer = folds(ids, k, 'outer');
  const oof = new Array<number>(n);
  for (let g = 0; g < k; g++) {
    const train = all.filter((i) => outer[i] !== g);
    const c = choose(p, ids, rows, train, modes);
    const m = fitLinear(p, train, c.mode, c.lambda);
    for (const i of all) if (outer[i] === g) oof[i] = predict(m, p, i);
  }
  const final = choose(p, ids, rows, all, modes);
  const m = fitLinear(p, all, final.mode, final.lambda);

  // Fold the shipped logit into the weights: z = a * (b0 + w0.x) + b + w.x
  const base = shippedLinear(shipped);
  const weights = new Array<number>(NUM_FEATURES);
  for (let j = 0; j < NUM_FEATURES; j++) weights[j] = m.a * base.w[j]! + m.w[j]!;
  const intercept = m.a * base.b + m.b;
  const z = all.map((i) => predict(m, p, i));
  const sorted = [...z].sort((a, b) => a - b);
  const q = (f: number): number => sorted[Math.min(n - 1, Math.floor(f * n))]!;
  const center = q(0.5);
  const scale = Math.max(1e-3, (q(0.9) - q(0.1)) / (2 * Math.log(4)));
  const calibrated = z.map((v) => 1 / (1 + Math.exp(-(v - center) / scale)));
  const sortedScores = [...calibrated].sort((a, b) => a - b);
  const oofCurve = curve(oof, flagship, light);
  const shares = options.shares ?? [0.1, 0.2, 0.3, 0.4, 0.5];
  const thresholds = shares.map((share) => ({
    share,
    maxScore: round(sortedScores[Math.min(n - 1, Math.max(0, Math.ceil((1 - share) * n) - 1))]!, 4),
    gapRecovered: round(gapAt(oofCurve, share), 4),
  }));

  const report: FitReport = {
    rows: n,
    folds: k,
    mode: final.mode,
    lambda: final.lambda,
    crossValidated: routeMetrics(oof, flagship, light),
    shipped: routeMetrics(p.z0, flagship, light),
    promptLength: routeMetrics(p.length, flagship, light),
    thresholds,
  };
  const model: ModelFile & { description: string; training: unknown } = {
    name: 'tierflow-complexity-custom',
    format: 2,
    version: `${shipped.info.version}+custom`,
    base: shipped.info,
    description:
      'A router fitted by `tierflow train` to labelled outcomes: logistic regression over the features of the shipped model (whose vocabulary it reuses), calibrated on the training rows.',
    features: [...FEATURE_NAMES],
    weights: weights.map((v) => round(v, 6)),
    intercept: round(intercept, 6),
    calibration: { center: round(center, 6), scale: round(scale, 6) },
    reference: base.reference,
    training: {
      rows: n,
      mode: final.mode,
      lambda: final.lambda,
      crossValidated: roundMetrics(report.crossValidated),
      shipped: roundMetrics(report.shipped),
      promptLength: roundMetrics(report.promptLength),
      thresholds,
    },
  };
  return { model, report };
}

/** The shipped classifier as weights: read back through its logit on unit vectors. */
function shippedLinear(c: Classifier): { w: Float64Array; b: number; reference: number[] } {
  const x = new Float64Array(NUM_FEATURES);
  const b = c.logit(x);
  const w = new Float64Array(NUM_FEATURES);
  for (let j = 0; j < NUM_FEATURES; j++) {
    x[j] = 1;
    w[j] = c.logit(x) - b;
    x[j] = 0;
  }
  return { w, b, reference: c.reference() };
}

const round = (x: number, digits = 4): number => Number(x.toPrecision(digits + 2));
const roundMetrics = (m: RouteMetrics): RouteMetrics => ({
  n: m.n,
  APGR: round(m.APGR),
  CPT50: round(m.CPT50),
  CPT80: round(m.CPT80),
  lightweight: round(m.lightweight),
  flagship: round(m.flagship),
});
