// Trains the complexity classifier offline and writes src/core/classifier/model.json.
//
//   node_modules/.bin/node scripts/train-classifier.ts [options]
//
//   --data FILE       labelled prompts, JSONL {id, source, category?, messages, strong_score,
//                     weak_score, all_scores?}; repeat for several files (default
//                     ../shared/data/routing/dev.jsonl and train-extra.jsonl)
//   --groups G        task (default): one training intercept per source and task category
//                     (llmrouter's and mmlu_pro's `category`); source: one per source
//   --aux FILE        optional extra difficulty signal, JSONL {id, prompt, mean_score_7models}
//                     (default ../shared/data/routing/arc-difficulty.jsonl if present)
//   --no-aux          do not use the aux file
//   --no-vocabulary   leave the learned vocabulary out (the vocabulary_difficulty feature is 0)
//   --out FILE        model file to write (default src/core/classifier/model.json)
//   --folds K         k of an in-distribution k-fold evaluation (default 0: off; model choices
//                     are made on leave-one-source-out, which always runs)
//   --oof FILE        write the k-fold out-of-fold scores as JSONL {id, score}
//   --loso FILE       write leave-one-source-out scores as JSONL {id, score}
//   --target T        difficulty (default) | gain | mixW (see below)
//   --lambda L        L2 strength in standardised units (default 30)
//   --aux-weight W    weight of one aux row relative to one labelled row (default 0.5)
//   --balance         weight every source equally (default: every row equally)
//   --seed S          fold assignment seed (default 1)
//   --repeats R       also repeat the k-fold evaluation with R fold assignments (seeds S..S+R-1) and
//                     log each source's mean and standard deviation (default 1: off). On dev.jsonl
//                     the fold assignment alone moves APGR by sd 0.005 (arc, winograde, macro) to
//                     0.013 (mbpp), as much as most single-feature changes: compare changes on the
//                     repeated mean. Logged only; the model file keeps the single-seed figures (so
//                     --check is unaffected).
//   --bootstrap B     also resample each source's rows B times (seeded by --seed) and log the
//                     spread of the leave-one-source-out APGR and of its lead over prompt length
//                     on the same resamples: sd and the share of resamples where the model loses.
//                     On the default data one source's APGR moves by sd 0.007 (mmlu_pro) to 0.06-
//                     0.07 (llmrouter, mbpp: a small net gap between the two models), the macro
//                     by 0.016. Logged only (default 0: off).
//   --against FILE    with --bootstrap: also compare with an earlier run's --loso scores on the
//                     same resamples. Paired, the difference between two models is far less noisy
//                     than either figure: judge a modelling change by it.
//   --check           train, compare with the existing --out file, exit 1 if it differs
//   --skip-eval       skip the evaluations and keep the figures recorded in the --out file (the
//                     weights, vocabulary and calibration are still trained; with --check this
//                     verifies the model in a fraction of the time, as the CI test does)
//   --quiet           only errors
//
// Evaluate the out-of-fold scores with the shared tool:
//   node ../shared/tools/routing-eval.mjs --data ../shared/data/routing/dev.jsonl --scores oof.jsonl
//
// Model: logistic regression on the features of src/core/classifier/features.ts, fitted by Newton's
// method (deterministic; no randomness except the seeded fold assignment; no timestamp in the output).
// - Target "difficulty": the share of the panel of models in all_scores (11 LLMs, flagship and
//   lightweight included) that got the prompt wrong, as a soft label. It ranks prompts by how
//   hard they are for LLMs in general, which is far less noisy than the single flagship-vs-
//   lightweight outcome and, out of fold, routes better on every source. "gain" is
//   (strong - weak + 1) / 2 (1 when only the flagship is right); "mixW" blends the two (W = share
//   of difficulty).
// - One intercept per source and task during training (fixed effects): the weights learn what
//   separates hard from easy requests *within* a benchmark, not which benchmark a prompt came from.
// - Model choices (features, priors, groups, lambda, target) are made on leave-one-source-out:
//   each source is scored by a model, vocabulary included, that saw neither it nor the same
//   benchmark inside another source (FAMILY), and prompt length is reported beside it.
// - L2 penalty pulling each weight towards a prior mean (PRIORS, raw feature units), scaled by the
//   feature's within-source spread. Features that mark the kind of request (FIXED) or hardly vary
//   within any source keep their prior; demands the data barely covers (STRONG_PRIOR) are held
//   more firmly. This is how weights for traffic the data set does not contain (chat, tools,
//   proofs, math word problems) stay sensible.
// - Stage 2 (fitLevels): the source intercepts are explained by request-kind features (few-shot
//   examples, answer options, code writing, context) with a small ridge regression, which sets how
//   whole kinds of request compare with each other; the shipped intercept comes from it.
// - Calibration: score = sigmoid((z - center) / scale) so that on the labelled mix (sources
//   weighted equally) the 10th / 50th / 90th percentiles are near 0.2 / 0.5 / 0.8.
// - Aux rows (ARC questions with the mean accuracy of 7 small models): soft target 1 - mean
//   accuracy, own intercept, reduced weight. Questions that also occur in --data are dropped from
//   the aux set so the out-of-fold figures stay honest.
import './run-from-source.ts';
import type { ChatCompletionRequest } from '../src/core/openai.js';
import { seededRandom } from '../test/helpers/prng.ts';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { extractFeatures } = await import('../src/core/classifier/features.js');
const { fitLogistic, solveSpd } = await import('../src/core/classifier/logistic.js');
const { promptLength, routeMetrics } = await import('../src/core/classifier/fit.js');
const { FEATURE_NAMES, NUM_FEATURES } = await import('../src/core/classifier/feature-names.js');
const { MAX_VOCABULARY, setVocabulary } = await import('../src/core/classifier/scan.js');
type Feature = (typeof FEATURE_NAMES)[number];

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Prior means of the weights, raw feature units (a feature is mostly log1p(count) or a 0..1 share).
 * Domain knowledge about what makes a lightweight model fail where a flagship succeeds: math,
 * multi-step reasoning, code writing, constraints and long structured context push up; chit-chat,
 * rewriting and creative writing push down. The data moves these where it has evidence.
 */
const PRIORS: Partial<Record<Feature, number>> = {
  // size and structure
  task_length: 0.1,
  multi_part: 0.15,
  // math and formal notation
  numbers: 0.1,
  measurements: 0.1,
  numeric_options: 0.3,
  arithmetic: 0.15,
  formal_notation: 0.3,
  math_terms: 0.25,
  quantity_terms: 0.1,
  // reasoning
  reasoning_terms: 0.3,
  proof_demand: 0.6,
  step_terms: 0.05,
  // code: asking for code is not by itself hard ("reverse a string" is what lightweight models do
  // well); what the code must do (algorithms, constraints, size) carries the difficulty.
  code_request: 0.15,
  code_syntax: 0.1,
  code_terms: 0.1,
  algorithm_terms: 0.3,
  language_names: 0.1,
  // demands on the output
  constraints: 0.15,
  output_format: 0.05,
  // kind of task
  expert_terms: 0.1,
  creative_writing: -0.3,
  transform_task: -0.3,
  small_talk: -0.5,
  // context
  worked_examples: 0,
  context_length: 0.05,
  turns: 0.1,
  system_prompt: 0.02,
  tools: 0.3,
  structured_output: 0.2,
  images: 0.1,
  code_in_context: 0.2,
};

/**
 * Features whose weight is set by its prior, not fitted: they mark the *kind* of request (code
 * writing, chat, tools, few-shot context...) and are constant, or nearly so, inside each training
 * source, so the data cannot say what they are worth; a weight fitted on a handful of exceptions
 * would decide how whole categories of traffic are routed. Any other feature that is non-typical
 * in fewer than MIN_SUPPORT of the labelled rows of every source is also left at its prior.
 * `expert_terms` is here too: in the training data its words are grade-school science (cell,
 * energy, orbit...), where a familiar topic means an easy question, so a fitted weight turns
 * negative; on knowledge questions across professional subjects, the traffic it exists for, domain
 * vocabulary means the opposite. Held at its prior it also routes better out of fold on every
 * source (macro APGR 0.572 -> 0.582, leave-one-source-out 0.575 -> 0.587).
 */
const FIXED = new Set<Feature>([
  'expert_terms',
  'reasoning_terms',
  'algorithm_terms',
  'constraints',
  'answer_options',
  'code_request',
  'code_terms',
  'language_names',
  'creative_writing',
  'transform_task',
  'small_talk',
  'non_latin_share',
  'worked_examples',
  'context_length',
  'turns',
  'system_prompt',
  'tools',
  'structured_output',
  'images',
  'code_in_context',
]);
const MIN_SUPPORT = 0.03;
/**
 * Demands the training sources barely contain (explicit reasoning, formal math, algorithms,
 * multi-part and constrained asks) but that separate requests a lightweight model fails on in
 * other traffic (math word problems, proofs, open-ended chat): their prior is held more firmly
 * (STRONG_PRIOR_FACTOR x lambda), so a few incidental uses in the data cannot erase it.
 */
const STRONG_PRIOR = new Set<Feature>([
  'reasoning_terms',
  'proof_demand',
  'math_terms',
  'formal_notation',
  'algorithm_terms',
  'multi_part',
  'constraints',
  'output_format',
  'step_terms',
]);
const STRONG_PRIOR_FACTOR = 5;
/**
 * Reference point of a feature for explanations (contribution = weight * (value - reference)):
 * "absent" (0) for counts and shares, the training mean for these size features.
 */
const MEAN_REFERENCE = new Set<Feature>(['task_length', 'avg_word_length']);
/**
 * Stage 2 (fitLevels): request-kind features that may explain why whole sources are harder or
 * easier than others, and the ridge strength of that fit (standardised by their spread over sources).
 * `code_request` is not among them: every prompt of the code benchmarks asks for code and the
 * flagship wins those benchmarks, so a level fit turned "asks for code" into +0.8 on the logit
 * and sent "Write a Python function that reverses a string." to the flagship.
 */
const LEVEL_FEATURES = new Set<Feature>(['worked_examples', 'context_length', 'answer_options']);
const LEVEL_KAPPA = 0.5;

interface Row {
  id: string;
  /** The data set the row comes from (evaluation and leave-one-source-out unit). */
  source: string;
  /** Intercept group during training: the source, or the source's task category (--groups task). */
  group: string;
  /** Benchmark family: leaving a source out also leaves out rows of the same benchmark in other sources. */
  family: string;
  /** The request, to recompute the vocabulary feature under another vocabulary. */
  req: { model: string; messages: unknown[] };
  /** Vocabulary words of the task (lower-case, as in the model's vocabulary), each once. */
  words: string[];
  x: Float64Array;
  t: number;
  w: number;
  /** For evaluation: flagship and lightweight correctness (labelled rows only). */
  strong?: number;
  weak?: number;
}

const fail = (msg: string): never => {
  process.stderr.write(`train-classifier: ${msg}\n`);
  process.exit(1);
};

function readJsonl(path: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.forEach((line, k) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch (err) {
      fail(`${path}:${k + 1}: ${(err as Error).message}`);
    }
  });
  return out;
}

/** Normalised question text for de-duplicating aux rows against labelled rows. */
function questionKey(text: string): string {
  return text
    .replace(/^Question:\s*/i, '')
    .split('\n')[0]!
    .trim()
    .toLowerCase()
    .replace(/\s+/g, ' ');
}

/**
 * Benchmarks that occur under more than one source (llmrouter's `category` names the benchmark
 * of each of its rows): leaving arc_challenge out must also leave out llmrouter's ARC rows.
 */
const FAMILY: Record<string, string> = {
  arc_challenge: 'arc',
  'llmrouter/arc_challenge': 'arc',
  aux: 'arc',
  mbpp: 'mbpp',
  'llmrouter/mbpp': 'mbpp',
  math_l5: 'math',
  'llmrouter/math': 'math',
};

function loadLabelled(
  raw: Array<Record<string, unknown>>,
  path: string,
  target: string,
  groupBy: string,
): Row[] {
  return raw.map((r, k) => {
    const strong = Number(r.strong_score);
    const weak = Number(r.weak_score);
    if (!Array.isArray(r.messages) || !Number.isFinite(strong) || !Number.isFinite(weak)) {
      fail(`${path}: row ${k + 1} needs messages, strong_score and weak_score`);
    }
    const req = { model: 'auto', messages: r.messages as unknown[] };
    const source = String(r.source ?? 'default');
    const task = typeof r.category === 'string' ? `${source}/${r.category}` : source;
    return {
      id: String(r.id ?? k),
      source,
      group: groupBy === 'task' ? task : source,
      family: FAMILY[task] ?? FAMILY[source] ?? source,
      req,
      words: taskWords(req),
      x: Float64Array.from(extractFeatures(req as never)),
      t: targetOf(r, strong, weak, target),
      w: 1,
      strong,
      weak,
    };
  });
}

/** Training target of a labelled row (see the header). */
function targetOf(r: Record<string, unknown>, strong: number, weak: number, target: string): number {
  const gain = (strong - weak + 1) / 2;
  if (target === 'gain') return gain;
  const scores =
    r.all_scores && typeof r.all_scores === 'object' ? (r.all_scores as Record<string, unknown>) : {};
  const all = Object.entries(scores)
    .filter(([m]) => !(target.endsWith('-x') && m === r.strong_model))
    .map(([, v]) => v);
  const nums = all.map(Number).filter(Number.isFinite);
  const difficulty = nums.length
    ? 1 - nums.reduce((a, v) => a + v, 0) / nums.length
    : 1 - (strong + weak) / 2;
  if (target.startsWith('difficulty')) return difficulty;
  const mix = Number(target.replace(/^mix/, '').replace(/-x$/, '') || '0.5');
  return (1 - mix) * gain + mix * difficulty;
}

function loadAux(path: string, labelled: Array<Record<string, unknown>>, weight: number): Row[] {
  const seen = new Set<string>();
  const task = { message: 0, start: 0, examples: 0 };
  for (const r of labelled) {
    const msgs = r.messages as Array<{ content?: unknown }>;
    const last = msgs[msgs.length - 1]?.content;
    if (typeof last !== 'string') continue;
    extractFeatures({ model: 'auto', messages: msgs as never }, undefined, task);
    seen.add(questionKey(last.slice(task.start).trim()));
  }
  const rows: Row[] = [];
  for (const r of readJsonl(path)) {
    const mean = Number(r.mean_score_7models);
    if (typeof r.prompt !== 'string' || !Number.isFinite(mean)) continue;
    if (seen.has(questionKey(r.prompt))) continue;
    const req = { model: 'auto', messages: [{ role: 'user', content: r.prompt }] };
    rows.push({
      id: String(r.id),
      source: 'aux',
      group: 'aux',
      family: FAMILY.aux!,
      req,
      words: taskWords(req),
      x: Float64Array.from(extractFeatures(req as never)),
      t: 1 - mean,
      w: weight,
    });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Vocabulary: a learned word -> difficulty table (the `vocabulary_difficulty` feature).
//
// For each word stem, the weighted mean of the rows' targets *centred within their source* (so a
// word learns what separates hard from easy requests inside a benchmark, not which benchmark it
// belongs to), shrunk towards 0 by VOCAB_SHRINK pseudo-rows. Only stems used by at least
// VOCAB_MIN_ROWS different training prompts get a weight, so no single prompt is recorded; the
// weight is emitted for every surface form of the stem seen in the training texts (the hot path
// looks words up as they are written, without stemming). Leaving one source out, the vocabulary
// learned on the others still improves the held-out source (see the LOSO figures): the words carry
// difficulty across kinds of task (quantities, rates, extremes, exceptions...).
//
// The feature is stacked: its value for a training row always comes from a vocabulary fitted
// without that row (VOCAB_FOLDS-fold cross-fitting), so the regression weighs it as it will
// behave on new requests.

const VOCAB_SHRINK = 20;
const VOCAB_MIN_ROWS = 5;
const VOCAB_MIN_WEIGHT = 0.002;
const VOCAB_FOLDS = 5;
const VI = FEATURE_NAMES.indexOf('vocabulary_difficulty');
if (VI < 0) throw new Error('features.ts has no vocabulary_difficulty feature');

/** The task's vocabulary words, each once: what the scanner hashes, restricted to plain words. */
function taskWords(req: { messages: unknown[] }): string[] {
  const task = { message: -1, start: 0, examples: 0 };
  extractFeatures(req as never, undefined, task);
  const msg = req.messages[task.message] as { content?: unknown } | undefined;
  const text =
    typeof msg?.content === 'string'
      ? msg.content
      : Array.isArray(msg?.content)
        ? (msg.content as Array<{ text?: unknown }>)
            .map((p) => (typeof p.text === 'string' ? p.text : ''))
            .join('\n')
        : '';
  const words =
    text
      .slice(task.start)
      .toLowerCase()
      .replace(/\u2019/g, "'")
      .match(/[a-z]+(?:'[a-z]+)?/g) ?? [];
  return [...new Set(words.filter((w) => w.length >= 3))];
}

/** Crude suffix stripping: only groups inflections of a word for the statistics. */
function stemOf(w: string): string {
  for (const suffix of ['ing', 'ed', 'es', 's']) {
    if (w.endsWith(suffix) && !w.endsWith('ss') && w.length - suffix.length >= 3)
      return w.slice(0, -suffix.length);
  }
  return w;
}

function buildVocabulary(rows: Row[]): Record<string, number> {
  const groupMean = new Map<string, { s: number; w: number }>();
  for (const r of rows) {
    const g = groupMean.get(r.group) ?? { s: 0, w: 0 };
    g.s += r.w * r.t;
    g.w += r.w;
    groupMean.set(r.group, g);
  }
  const stats = new Map<string, { s: number; w: number; rows: number; forms: Set<string> }>();
  for (const r of rows) {
    const g = groupMean.get(r.group)!;
    const centred = r.t - g.s / g.w;
    const stems = new Map<string, string[]>();
    for (const word of r.words) {
      const stem = stemOf(word);
      stems.set(stem, [...(stems.get(stem) ?? []), word]);
    }
    for (const [stem, forms] of stems) {
      let e = stats.get(stem);
      if (!e) stats.set(stem, (e = { s: 0, w: 0, rows: 0, forms: new Set() }));
      e.s += r.w * centred;
      e.w += r.w;
      e.rows++;
      for (const f of forms) e.forms.add(f);
    }
  }
  const entries: Array<[string, number]> = [];
  for (const e of stats.values()) {
    if (e.rows < VOCAB_MIN_ROWS) continue;
    const weight = round(e.s / (e.w + VOCAB_SHRINK), 3);
    if (Math.abs(weight) < VOCAB_MIN_WEIGHT) continue;
    for (const f of e.forms) entries.push([f, weight]);
  }
  entries.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]) || (a[0] < b[0] ? -1 : 1));
  return Object.fromEntries(entries.slice(0, MAX_VOCABULARY).sort((a, b) => (a[0] < b[0] ? -1 : 1)));
}

function setVocabularyFeature(rows: Row[], vocabulary: Record<string, number>): void {
  setVocabulary(vocabulary);
  const x = new Float64Array(NUM_FEATURES);
  for (const r of rows) r.x[VI] = extractFeatures(r.req as never, x)[VI]!;
}

/**
 * Vocabulary feature for a training set and its held-out rows: cross-fitted values on `train`,
 * values from a vocabulary fitted on all of `train` on `test`. Returns that vocabulary.
 */
function prepareVocabulary(train: Row[], test: Row[]): Record<string, number> {
  if (!useVocabulary) {
    setVocabularyFeature([...train, ...test], {});
    return {};
  }
  const fold = (r: Row): number =>
    createHash('sha256').update(`vocabulary:${r.id}`).digest().readUInt32BE(0) % VOCAB_FOLDS;
  for (let f = 0; f < VOCAB_FOLDS; f++) {
    setVocabularyFeature(
      train.filter((r) => fold(r) === f),
      buildVocabulary(train.filter((r) => fold(r) !== f)),
    );
  }
  const vocabulary = buildVocabulary(train);
  setVocabularyFeature(test, vocabulary);
  return vocabulary;
}

// ---------------------------------------------------------------------------------------------
// Logistic regression with per-group intercepts and an L2 pull towards prior means (Newton).

interface Fit {
  /** Raw-unit weights and the shipped intercept. */
  weights: number[];
  intercept: number;
  groupIntercepts: Record<string, number>;
  mean: number[];
  std: number[];
}

/** Largest share, over labelled groups, of rows whose value differs from the group's most common value. */
function support(rows: Row[], j: number): number {
  const by = new Map<string, Map<number, number>>();
  for (const r of rows) {
    if (r.group === 'aux') continue;
    let m = by.get(r.group);
    if (!m) by.set(r.group, (m = new Map()));
    m.set(r.x[j]!, (m.get(r.x[j]!) ?? 0) + 1);
  }
  let best = 0;
  for (const m of by.values()) {
    let n = 0;
    let mode = 0;
    for (const c of m.values()) {
      n += c;
      mode = Math.max(mode, c);
    }
    best = Math.max(best, 1 - mode / n);
  }
  return best;
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

function fit(rows: Row[], lambda: number): Fit {
  const p = NUM_FEATURES;
  // Standardise on the labelled rows' statistics (aux rows follow the same transform).
  const mean = new Array<number>(p).fill(0);
  const std = new Array<number>(p).fill(0);
  let wsum = 0;
  for (const r of rows) {
    wsum += r.w;
    for (let j = 0; j < p; j++) mean[j]! += r.w * r.x[j]!;
  }
  for (let j = 0; j < p; j++) mean[j] = mean[j]! / wsum;
  // Scale = pooled *within-group* standard deviation: only variation inside a source can be
  // learned (the group intercepts absorb the rest), so the penalty is measured against it.
  const gMean = new Map<string, { w: number; m: Float64Array }>();
  for (const r of rows) {
    let e = gMean.get(r.group);
    if (!e) gMean.set(r.group, (e = { w: 0, m: new Float64Array(p) }));
    e.w += r.w;
    for (let j = 0; j < p; j++) e.m[j]! += r.w * r.x[j]!;
  }
  for (const e of gMean.values()) for (let j = 0; j < p; j++) e.m[j] = e.m[j]! / e.w;
  for (const r of rows) {
    const gm = gMean.get(r.group)!.m;
    for (let j = 0; j < p; j++) std[j]! += r.w * (r.x[j]! - gm[j]!) ** 2;
  }
  for (let j = 0; j < p; j++) std[j] = Math.sqrt(std[j]! / wsum);
  // Features (almost) constant within every group are not fitted: they keep their prior weight.
  // Rare features get a floor on their scale so a handful of rows cannot give them a huge weight.
  const active = [...Array(p).keys()].filter(
    (j) => !FIXED.has(FEATURE_NAMES[j]!) && std[j]! > 0.01 && support(rows, j) >= MIN_SUPPORT,
  );
  for (const j of active) std[j] = Math.max(std[j]!, 0.1);
  const groups = [...new Set(rows.map((r) => r.group))].sort();
  const q = active.length;
  const gi = new Map(groups.map((g, k) => [g, q + k]));
  const prior = active.map((j) => (PRIORS[FEATURE_NAMES[j]!] ?? 0) * std[j]!);
  const strength = active.map(
    (j) => lambda * (STRONG_PRIOR.has(FEATURE_NAMES[j]!) ? STRONG_PRIOR_FACTOR : 1),
  );
  const s = rows.map((r) => Float64Array.from(active, (j) => (r.x[j]! - mean[j]!) / std[j]!));
  // Fixed (inactive) features contribute a constant per row: z offset = prior * x.
  const offset = rows.map((r) => {
    let o = 0;
    for (let j = 0; j < p; j++)
      if (!active.includes(j)) o += (PRIORS[FEATURE_NAMES[j]!] ?? 0) * (r.x[j]! - mean[j]!);
    return o;
  });
  const theta = fitLogistic({
    x: s,
    t: rows.map((r) => r.t),
    group: rows.map((r) => gi.get(r.group)! - q),
    groups: groups.length,
    w: rows.map((r) => r.w),
    offset,
    prior: Float64Array.from(prior),
    strength: Float64Array.from(strength),
    groupPenalty: 1e-4,
    maxIterations: 100,
    tolerance: 1e-10,
  });
  // Back to raw units.
  const weights = new Array<number>(p).fill(0);
  for (let j = 0; j < p; j++) weights[j] = PRIORS[FEATURE_NAMES[j]!] ?? 0;
  active.forEach((j, a) => (weights[j] = theta[a]! / std[j]!));
  const shift = weights.reduce((acc, w, j) => acc + w * mean[j]!, 0);
  const groupIntercepts: Record<string, number> = {};
  for (const g of groups) groupIntercepts[g] = theta[gi.get(g)!]! - shift;
  const intercept = fitLevels(rows, weights, groupIntercepts, active);
  return { weights, intercept, groupIntercepts, mean, std };
}

/**
 * Stage 2: explain the sources' levels (their intercepts) with the request-kind features that
 * were not fitted in stage 1 (few-shot examples, answer options, code writing...), by ridge
 * regression over the labelled sources, towards the priors. Updates `weights` in place and
 * returns the shipped intercept. Without this, how a kind of request compares with another kind
 * would rest on the priors alone; with it, the panel-of-models difficulty of each source sets it.
 * The aux group is left out (its target is on another scale).
 */
function fitLevels(
  rows: Row[],
  weights: number[],
  groupIntercepts: Record<string, number>,
  active: number[],
): number {
  const groups = Object.keys(groupIntercepts).filter((g) => g !== 'aux');
  if (groups.length === 0) return 0;
  if (groups.length === 1) return groupIntercepts[groups[0]!]!;
  const p = NUM_FEATURES;
  const means = groups.map((g) => {
    const m = new Float64Array(p);
    let n = 0;
    for (const r of rows) {
      if (r.group !== g) continue;
      n++;
      for (let j = 0; j < p; j++) m[j]! += r.x[j]!;
    }
    return m.map((v) => v / n);
  });
  const cand = [...Array(p).keys()].filter(
    (j) => !active.includes(j) && LEVEL_FEATURES.has(FEATURE_NAMES[j]!),
  );
  const spread = cand.map((j) => {
    const vals = means.map((m) => m[j]!);
    const mu = vals.reduce((a, v) => a + v, 0) / vals.length;
    return Math.sqrt(vals.reduce((a, v) => a + (v - mu) ** 2, 0) / vals.length);
  });
  const use = cand.filter((_, k) => spread[k]! > 1e-6);
  const scale = spread.filter((v) => v > 1e-6).map((v) => Math.max(v, 0.25));
  const dim = 1 + use.length;
  const a = new Float64Array(dim * dim);
  const b = new Float64Array(dim);
  groups.forEach((g, k) => {
    const u = [1, ...use.map((j) => means[k]![j]!)];
    for (let r = 0; r < dim; r++) {
      b[r]! += u[r]! * groupIntercepts[g]!;
      for (let c = 0; c <= r; c++) a[r * dim + c]! += u[r]! * u[c]!;
    }
  });
  a[0] = a[0]! + 1e-9;
  use.forEach((_, k) => (a[(k + 1) * dim + k + 1]! += LEVEL_KAPPA * scale[k]! ** 2));
  const sol = solveSpd(a, b, dim);
  use.forEach((j, k) => (weights[j]! += sol[k + 1]!));
  return sol[0]!;
}

function predict(f: Fit, x: Float64Array): number {
  let z = f.intercept;
  for (let j = 0; j < x.length; j++) z += f.weights[j]! * x[j]!;
  return sigmoid(z);
}

// ---------------------------------------------------------------------------------------------
// Evaluation: APGR and CPT as docs/routing.md ("Quality, and retraining") reports them (routers
// with tied scores move together).

interface Metrics {
  n: number;
  APGR: number;
  CPT50: number;
  CPT80: number;
}

function metrics(items: Array<{ score: number; strong: number; weak: number }>): Metrics {
  const m = routeMetrics(
    items.map((d) => d.score),
    items.map((d) => d.strong),
    items.map((d) => d.weak),
  );
  return { n: m.n, APGR: m.APGR, CPT50: m.CPT50, CPT80: m.CPT80 };
}

function report(rows: Row[], scores: Map<string, number>): Record<string, Metrics> {
  const by = new Map<string, Array<{ score: number; strong: number; weak: number }>>();
  for (const r of rows) {
    if (r.strong === undefined || r.weak === undefined) continue;
    if (!by.has(r.source)) by.set(r.source, []);
    by.get(r.source)!.push({ score: scores.get(r.id)!, strong: r.strong, weak: r.weak });
  }
  const out: Record<string, Metrics> = {};
  for (const [g, items] of [...by].sort()) out[g] = metrics(items);
  const vals = Object.values(out);
  const avg = (k: keyof Metrics): number => vals.reduce((a, m) => a + m[k], 0) / vals.length;
  out.macro = {
    n: rows.filter((r) => r.strong !== undefined).length,
    APGR: avg('APGR'),
    CPT50: avg('CPT50'),
    CPT80: avg('CPT80'),
  };
  return out;
}

function formatReport(title: string, rep: Record<string, Metrics>): string {
  const pct = (x: number): string => (Number.isFinite(x) ? (100 * x).toFixed(1) + '%' : '-');
  const lines = [title, '  source           n   APGR   CPT50   CPT80'];
  for (const [g, m] of Object.entries(rep)) {
    lines.push(
      `  ${g.padEnd(14)} ${String(m.n).padStart(5)}  ${m.APGR.toFixed(3)}  ${pct(m.CPT50).padStart(6)}  ${pct(m.CPT80).padStart(6)}`,
    );
  }
  return lines.join('\n');
}

interface Spread {
  /** sd of the model's APGR over the resamples. */
  sd: number;
  /** Mean and sd of (model APGR - baseline APGR) on the same resamples. */
  lead: number;
  leadSd: number;
  /** Share of resamples where the model's APGR is below the baseline's. */
  loses: number;
}

/**
 * Paired bootstrap of `scores` against `baseline` (scores by row id): every source's rows are
 * resampled with replacement `times` times; both routers are measured on the same resample. The
 * macro line resamples every source at once and averages over sources, as the reported macro does.
 */
function bootstrapSpread(
  rows: Row[],
  scores: Map<string, number>,
  baseline: Map<string, number>,
  times: number,
  seedValue: number,
): Record<string, Spread> {
  type Item = { score: number; baseline: number; strong: number; weak: number };
  const by = new Map<string, Item[]>();
  for (const r of rows) {
    if (r.strong === undefined || r.weak === undefined) continue;
    if (!by.has(r.source)) by.set(r.source, []);
    by.get(r.source)!.push({
      score: scores.get(r.id)!,
      baseline: baseline.get(r.id)!,
      strong: r.strong,
      weak: r.weak,
    });
  }
  const random = seededRandom(seedValue);
  const names = [...by.keys()].sort();
  const model: Record<string, number[]> = {};
  const lead: Record<string, number[]> = {};
  for (const g of [...names, 'macro']) {
    model[g] = [];
    lead[g] = [];
  }
  for (let b = 0; b < times; b++) {
    let macroModel = 0;
    let macroLead = 0;
    for (const g of names) {
      const items = by.get(g)!;
      const sample = items.map(() => items[Math.floor(random() * items.length)]!);
      const apgr = (key: 'score' | 'baseline'): number =>
        routeMetrics(
          sample.map((d) => d[key]),
          sample.map((d) => d.strong),
          sample.map((d) => d.weak),
        ).APGR;
      const m = apgr('score');
      const d = m - apgr('baseline');
      model[g]!.push(m);
      lead[g]!.push(d);
      macroModel += m / names.length;
      macroLead += d / names.length;
    }
    model.macro!.push(macroModel);
    lead.macro!.push(macroLead);
  }
  const mean = (v: number[]): number => v.reduce((a, x) => a + x, 0) / v.length;
  const sd = (v: number[]): number => {
    const mu = mean(v);
    return Math.sqrt(v.reduce((a, x) => a + (x - mu) ** 2, 0) / Math.max(1, v.length - 1));
  };
  const out: Record<string, Spread> = {};
  for (const g of [...names, 'macro']) {
    out[g] = {
      sd: sd(model[g]!),
      lead: mean(lead[g]!),
      leadSd: sd(lead[g]!),
      loses: lead[g]!.filter((d) => d < 0).length / times,
    };
  }
  return out;
}

function formatSpread(spread: Record<string, Spread>, times: number, baseline: string): string {
  const lines = [
    `leave-one-source-out against ${baseline}, paired bootstrap over ${times} resamples of each source's rows:`,
    '  source          APGR sd   lead over baseline   sd     loses',
  ];
  for (const [g, s] of Object.entries(spread)) {
    const lead = (s.lead >= 0 ? '+' : '') + s.lead.toFixed(3);
    lines.push(
      `  ${g.padEnd(14)}  ${s.sd.toFixed(3)}     ${lead.padStart(6)}              ${s.leadSd.toFixed(3)}  ${(100 * s.loses).toFixed(0).padStart(4)}%`,
    );
  }
  return lines.join('\n');
}

/** Deterministic fold of a row: rank of hash(seed, id) within its group, modulo k. */
function assignFolds(rows: Row[], k: number, seed: number): Map<string, number> {
  const folds = new Map<string, number>();
  const by = new Map<string, Row[]>();
  for (const r of rows) {
    if (!by.has(r.group)) by.set(r.group, []);
    by.get(r.group)!.push(r);
  }
  for (const group of by.values()) {
    const keyed = group.map((r) => ({ r, h: createHash('sha256').update(`${seed}:${r.id}`).digest('hex') }));
    keyed.sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : 0));
    keyed.forEach((e, i) => folds.set(e.r.id, i % k));
  }
  return folds;
}

/** The prompt-length baseline: characters of all messages' text. */
const writeScores = (path: string, rows: Row[], scores: Map<string, number>): void =>
  writeFileSync(
    path,
    rows.map((r) => JSON.stringify({ id: r.id, score: scores.get(r.id) })).join('\n') + '\n',
  );

const round = (x: number, digits = 6): number => Number(x.toPrecision(digits));

// ---------------------------------------------------------------------------------------------

const { values: opt } = parseArgs({
  options: {
    data: {
      type: 'string',
      multiple: true,
      default: ['dev.jsonl', 'train-extra.jsonl'].map((f) => resolve(root, '../shared/data/routing', f)),
    },
    groups: { type: 'string', default: 'task' },
    aux: { type: 'string', default: resolve(root, '../shared/data/routing/arc-difficulty.jsonl') },
    'no-aux': { type: 'boolean', default: false },
    'no-vocabulary': { type: 'boolean', default: false },
    out: { type: 'string', default: resolve(root, 'src/core/classifier/model.json') },
    folds: { type: 'string', default: '0' },
    oof: { type: 'string' },
    loso: { type: 'string' },
    lambda: { type: 'string', default: '30' },
    'aux-weight': { type: 'string', default: '0.5' },
    seed: { type: 'string', default: '1' },
    repeats: { type: 'string', default: '1' },
    bootstrap: { type: 'string', default: '0' },
    against: { type: 'string' },
    target: { type: 'string', default: 'difficulty' },
    balance: { type: 'boolean', default: false },
    check: { type: 'boolean', default: false },
    'skip-eval': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opt.help) {
  const header = readFileSync(fileURLToPath(import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('//'));
  process.stdout.write(header.map((l) => l.slice(3)).join('\n') + '\n');
  process.exit(0);
}
const log = (s: string): void => {
  if (!opt.quiet) process.stderr.write(s + '\n');
};
const k = Number(opt.folds);
const lambda = Number(opt.lambda);
const auxWeight = Number(opt['aux-weight']);
const seed = Number(opt.seed);
const repeats = Number(opt.repeats);
if (!Number.isInteger(k) || k < 0 || k === 1) fail('--folds must be 0 or an integer >= 2');
if (!Number.isInteger(repeats) || repeats < 1) fail('--repeats must be an integer >= 1');
const bootstrap = Number(opt.bootstrap);
if (!Number.isInteger(bootstrap) || bootstrap < 0) fail('--bootstrap must be an integer >= 0');
if (opt.against && bootstrap === 0) fail('--against needs --bootstrap B');
if (!(lambda > 0)) fail('--lambda must be > 0');

const dataPaths = opt.data.map((d) => resolve(d));
for (const path of dataPaths) if (!existsSync(path)) fail(`no data file at ${path}`);
if (opt.groups !== 'source' && opt.groups !== 'task') fail('--groups must be source or task');
const rawLabelled: Array<Record<string, unknown>> = [];
const labelled: Row[] = [];
for (const path of dataPaths) {
  const raw = readJsonl(path);
  rawLabelled.push(...raw);
  labelled.push(...loadLabelled(raw, path, opt.target, opt.groups));
}
if (opt.balance) {
  // every source gets the same total weight as the average source
  const count = new Map<string, number>();
  for (const r of labelled) count.set(r.source, (count.get(r.source) ?? 0) + 1);
  for (const r of labelled) r.w = labelled.length / count.size / count.get(r.source)!;
}
/** With --against: an earlier run's leave-one-source-out scores, one per labelled row. */
const against = ((): Map<string, number> | undefined => {
  if (!opt.against) return undefined;
  const path = resolve(opt.against);
  if (!existsSync(path)) fail(`no scores file at ${path}`);
  const m = new Map(readJsonl(path).map((r) => [String(r.id), Number(r.score)]));
  const missing = labelled.find((r) => !Number.isFinite(m.get(r.id)));
  if (missing) fail(`${opt.against}: no score for row ${missing.id}`);
  return m;
})();
const useVocabulary = !opt['no-vocabulary'];
const useAux = !opt['no-aux'] && existsSync(resolve(opt.aux)) && auxWeight > 0;
const aux = useAux ? loadAux(resolve(opt.aux), rawLabelled, auxWeight) : [];
log(`labelled rows: ${labelled.length}; aux rows: ${aux.length}${useAux ? '' : ' (no aux)'}`);

/** Out-of-fold scores of a k-fold evaluation whose fold assignment comes from `foldSeed`. */
function outOfFold(foldSeed: number): Map<string, number> {
  const folds = assignFolds(labelled, k, foldSeed);
  const scores = new Map<string, number>();
  for (let f = 0; f < k; f++) {
    const train = [...labelled.filter((r) => folds.get(r.id) !== f), ...aux];
    const test = labelled.filter((r) => folds.get(r.id) === f);
    prepareVocabulary(train, test);
    const m = fit(train, lambda);
    for (const r of test) scores.set(r.id, predict(m, r.x));
  }
  return scores;
}

const skipEval = opt['skip-eval'];
/** With --skip-eval: the evaluation figures recorded in the existing --out file, kept as they are. */
const recorded = ((): Record<string, unknown> => {
  if (!skipEval || !existsSync(resolve(opt.out))) return {};
  const t = (JSON.parse(readFileSync(resolve(opt.out), 'utf8')) as { training?: Record<string, unknown> })
    .training;
  return t ?? {};
})();
let oofReport: Record<string, Metrics> | undefined;
if (k >= 2 && !skipEval) {
  const scores = outOfFold(seed);
  oofReport = report(labelled, scores);
  log(formatReport(`${k}-fold out-of-fold:`, oofReport));
  if (opt.oof) writeScores(resolve(opt.oof), labelled, scores);
  if (repeats > 1) {
    const runs = [oofReport];
    for (let s = seed + 1; s < seed + repeats; s++) runs.push(report(labelled, outOfFold(s)));
    const stat = (g: string, key: keyof Metrics): string => {
      const v = runs.map((r) => r[g]![key]);
      const mean = v.reduce((a, x) => a + x, 0) / v.length;
      const sd = Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / Math.max(1, v.length - 1));
      return key === 'APGR'
        ? `${mean.toFixed(3)} ±${sd.toFixed(3)}`
        : `${(100 * mean).toFixed(1)}% ±${(100 * sd).toFixed(1)}`;
    };
    const lines = [
      `${k}-fold out-of-fold, mean ± sd over ${repeats} fold assignments (seeds ${seed}..${seed + repeats - 1}):`,
    ];
    lines.push('  source           APGR          CPT50          CPT80');
    for (const g of Object.keys(oofReport)) {
      lines.push(
        `  ${g.padEnd(14)}  ${stat(g, 'APGR').padEnd(12)}  ${stat(g, 'CPT50').padEnd(13)}  ${stat(g, 'CPT80')}`,
      );
    }
    log(lines.join('\n'));
  }
}
let losoReport: Record<string, Metrics> | undefined;
const sources = [...new Set(labelled.map((r) => r.source))].sort();
let lengthReport: Record<string, Metrics> | undefined;
if (sources.length >= 2 && !skipEval) {
  const scores = new Map<string, number>();
  for (const src of sources) {
    // Leave the source out, and every row of the benchmarks it contains wherever they occur.
    const families = new Set(labelled.filter((r) => r.source === src).map((r) => r.family));
    const train = [...labelled, ...aux].filter((r) => r.source !== src && !families.has(r.family));
    const test = labelled.filter((r) => r.source === src);
    prepareVocabulary(train, test);
    const m = fit(train, lambda);
    for (const r of test) scores.set(r.id, predict(m, r.x));
  }
  losoReport = report(labelled, scores);
  log(formatReport('leave-one-source-out:', losoReport));
  lengthReport = report(
    labelled,
    new Map(labelled.map((r) => [r.id, promptLength(r.req as ChatCompletionRequest)])),
  );
  log(formatReport('prompt length (baseline):', lengthReport));
  if (opt.loso) writeScores(resolve(opt.loso), labelled, scores);
  if (bootstrap > 0) {
    const length = new Map(labelled.map((r) => [r.id, promptLength(r.req as ChatCompletionRequest)]));
    log(formatSpread(bootstrapSpread(labelled, scores, length, bootstrap, seed), bootstrap, 'prompt length'));
    if (against) {
      const name = relative(process.cwd(), resolve(opt.against!));
      log(formatSpread(bootstrapSpread(labelled, scores, against, bootstrap, seed), bootstrap, name));
    }
  }
}

const vocabulary = prepareVocabulary([...labelled, ...aux], []);
const final = fit([...labelled, ...aux], lambda);
// Calibration of the output scale: the logit z is mapped to score = sigmoid((z - center) / scale),
// center = median and scale = (p90 - p10) / (2 ln 4) of the logits of the labelled rows, each
// source weighted equally: on that mix, the 10th/50th/90th percentiles land near 0.2 / 0.5 / 0.8.
// The ranking is unchanged; thresholds in a routing policy get a usable range.
const logit = (x: Float64Array): number =>
  final.weights.reduce((acc, w, j) => acc + w * x[j]!, final.intercept);
const quantileOf = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const sourceRows = new Map<string, number>();
for (const r of labelled) sourceRows.set(r.source, (sourceRows.get(r.source) ?? 0) + 1);
const pooled = labelled
  .map((r) => ({ z: logit(r.x), w: 1 / sourceRows.get(r.source)! }))
  .sort((a, b) => a.z - b.z);
const weightedQuantile = (q: number): number => {
  const total = pooled.reduce((a, e) => a + e.w, 0);
  let acc = 0;
  for (const e of pooled) {
    acc += e.w;
    if (acc >= q * total) return e.z;
  }
  return pooled[pooled.length - 1]!.z;
};
const calCenter = weightedQuantile(0.5);
const calScale = Math.max(1e-3, (weightedQuantile(0.9) - weightedQuantile(0.1)) / (2 * Math.log(4)));
const calibrated = (z: number): number => sigmoid((z - calCenter) / calScale);
const quantiles: Record<string, Record<string, number>> = {};
for (const src of sources) {
  const zs = labelled
    .filter((r) => r.source === src)
    .map((r) => logit(r.x))
    .sort((a, b) => a - b);
  quantiles[src] = Object.fromEntries(
    [0.1, 0.5, 0.9].map((q) => [String(q), round(calibrated(quantileOf(zs, q)), 3)]),
  );
}
const bySource: Record<string, number> = {};
for (const r of labelled) bySource[r.source] = (bySource[r.source] ?? 0) + 1;
const summarise = (rep?: Record<string, Metrics>) =>
  rep &&
  Object.fromEntries(
    Object.entries(rep).map(([g, m]) => [
      g,
      { n: m.n, APGR: round(m.APGR, 4), CPT50: round(m.CPT50, 4), CPT80: round(m.CPT80, 4) },
    ]),
  );

const model = {
  name: 'tierflow-complexity',
  format: 2,
  version: '3.0.0',
  description:
    'Logistic regression over request features (src/core/classifier/features.ts): z = intercept + sum(weights[i] * x[i]); score = 1 / (1 + exp(-(z - calibration.center) / calibration.scale)). The contribution of a feature (reasons, explain) is weights[i] * (x[i] - reference[i]). The vocabulary_difficulty feature is the sum of vocabulary[word] over the words of the task divided by the square root of its word count. Written by scripts/train-classifier.ts; do not edit by hand.',
  features: [...FEATURE_NAMES],
  weights: final.weights.map((w) => round(w)),
  intercept: round(final.intercept),
  calibration: { center: round(calCenter), scale: round(calScale) },
  reference: FEATURE_NAMES.map((f, j) => (MEAN_REFERENCE.has(f) ? round(final.mean[j]!) : 0)),
  featureMean: final.mean.map((m) => round(m)),
  featureScale: final.std.map((s) => round(s)),
  training: {
    data: dataPaths.map((path) => ({
      file: relative(root, path),
      sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
    })),
    rows: bySource,
    auxRows: aux.length,
    auxWeight: useAux ? auxWeight : 0,
    target: opt.target,
    lambda,
    priors: PRIORS,
    groupIntercepts: Object.fromEntries(Object.entries(final.groupIntercepts).map(([g, v]) => [g, round(v)])),
    scoreQuantiles: quantiles,
    outOfFold: skipEval ? recorded.outOfFold : summarise(oofReport),
    folds: k,
    seed,
    leaveOneSourceOut: skipEval ? recorded.leaveOneSourceOut : summarise(losoReport),
    promptLength: skipEval ? recorded.promptLength : summarise(lengthReport),
    vocabulary: useVocabulary
      ? {
          shrink: VOCAB_SHRINK,
          minRows: VOCAB_MIN_ROWS,
          minWeight: VOCAB_MIN_WEIGHT,
          words: Object.keys(vocabulary).length,
        }
      : 'off',
  },
  vocabulary,
};
const outPath = resolve(opt.out);
// Formatted like the rest of the repository (prettier, the repository's settings wherever the
// file goes), so `npm run lint` and --check agree.
const prettier = await import('prettier');
const text = await prettier.format(JSON.stringify(model), {
  ...((await prettier.resolveConfig(resolve(root, 'src/core/classifier/model.json'))) ?? {}),
  parser: 'json',
});
if (opt.check) {
  const same = existsSync(outPath) && readFileSync(outPath, 'utf8') === text;
  log(
    same
      ? `${relative(process.cwd(), outPath)} is up to date`
      : `${relative(process.cwd(), outPath)} differs from a fresh training run`,
  );
  process.exit(same ? 0 : 1);
}
writeFileSync(outPath, text);
log(`wrote ${relative(process.cwd(), outPath)}`);
