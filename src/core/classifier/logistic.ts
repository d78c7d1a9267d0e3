// Penalised logistic regression fitted by Newton's method: the one fitting loop behind both
// `tierflow train` (./fit.ts) and the shipped model's training script (scripts/train-classifier.ts).
//
// Parameters: `q` weights of dense columns (each row's `x`, already standardised by the caller),
// then one intercept per group (each row belongs to exactly one). Each weight is pulled towards
// its prior with its own strength (L2); the group intercepts get a small ridge so a group without
// both outcomes stays finite. Rows may carry a weight and a fixed logit offset.
// Self-contained (no imports) so the training script runs it directly with Node's type stripping.

export interface LogisticProblem {
  /** Dense columns of each row (length q). */
  x: readonly Float64Array[];
  /** Target of each row, in [0, 1]. */
  t: readonly number[];
  /** Group of each row (index of its intercept, 0 .. groups - 1). */
  group: readonly number[];
  groups: number;
  /** Weight of each row (default 1). */
  w?: readonly number[];
  /** Fixed logit added to each row (default 0). */
  offset?: readonly number[];
  /** Prior mean of each column weight (also where Newton starts). */
  prior: Float64Array;
  /** L2 strength pulling each column weight towards its prior. */
  strength: Float64Array;
  /** Ridge on the group intercepts. */
  groupPenalty: number;
  maxIterations: number;
  /** Stop when no parameter moves by more than this. */
  tolerance: number;
}

/** The fitted parameters: the q column weights, then the group intercepts. */
export function fitLogistic(p: LogisticProblem): Float64Array {
  const q = p.prior.length;
  const dim = q + p.groups;
  const theta = new Float64Array(dim);
  theta.set(p.prior, 0);
  for (let iter = 0; iter < p.maxIterations; iter++) {
    const grad = new Float64Array(dim);
    const hess = new Float64Array(dim * dim);
    for (let k = 0; k < p.x.length; k++) {
      const si = p.x[k]!;
      const g = q + p.group[k]!;
      let z = theta[g]! + (p.offset?.[k] ?? 0);
      for (let j = 0; j < q; j++) z += theta[j]! * si[j]!;
      const mu = 1 / (1 + Math.exp(-z));
      const w = p.w?.[k] ?? 1;
      const e = w * (mu - p.t[k]!);
      const h = w * Math.max(mu * (1 - mu), 1e-9);
      for (let a = 0; a < q; a++) {
        grad[a]! += e * si[a]!;
        const hs = h * si[a]!;
        for (let b = 0; b <= a; b++) hess[a * dim + b]! += hs * si[b]!;
        hess[g * dim + a]! += hs;
      }
      grad[g]! += e;
      hess[g * dim + g]! += h;
    }
    for (let a = 0; a < q; a++) {
      grad[a]! += p.strength[a]! * (theta[a]! - p.prior[a]!);
      hess[a * dim + a]! += p.strength[a]!;
    }
    for (let g = q; g < dim; g++) {
      grad[g]! += p.groupPenalty * theta[g]!;
      hess[g * dim + g]! += p.groupPenalty;
    }
    // (only the lower triangle is filled; the Cholesky solver reads nothing else)
    const step = solveSpd(hess, grad, dim);
    let maxStep = 0;
    for (let a = 0; a < dim; a++) {
      theta[a]! -= step[a]!;
      maxStep = Math.max(maxStep, Math.abs(step[a]!));
    }
    if (maxStep < p.tolerance) break;
  }
  return theta;
}

/** Cholesky solve of a symmetric positive definite n x n system (row-major; the lower triangle of `a` is read). */
export function solveSpd(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      if (i === j) l[i * n + i] = Math.sqrt(Math.max(s, 1e-12));
      else l[i * n + j] = s / l[j * n + j]!;
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i * n + k]! * y[k]!;
    y[i] = s / l[i * n + i]!;
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * x[k]!;
    x[i] = s / l[i * n + i]!;
  }
  return x;
}
