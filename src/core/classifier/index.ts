// classify: request -> complexity score in [0,1] plus the features that drove it.
//
// The score is a logistic regression over the features of ./features.ts with weights learned
// offline by scripts/train-classifier.ts (see ./model.json for the weights, the training data
// summary and the out-of-fold quality figures). CPU only, no I/O, deterministic; one pass over
// the task text, no allocation beyond the small `reasons` array.
//
// Output scale: the training script calibrates the scale so that on its labelled mix of
// benchmark prompts about 10% score below 0.2, half below 0.5 and 90% below 0.8. Everyday chat
// ("hi", "rewrite this email") lands well below that mix; multi-step math, proofs and demanding code
// writing above it. Thresholds (tier maxScore) and the flagship-share target move along it.
import type { ChatCompletionRequest } from '../openai.js';
import {
  extractFeatures,
  FEATURE_NAMES,
  NUM_FEATURES,
  setVocabulary,
  vocabularyWeight,
  type TaskInfo,
} from './features.js';
import model from './model.json' with { type: 'json' };

export { FEATURE_NAMES } from './features.js';

export interface Classification {
  /** In [0,1]; high when a lightweight model is likely to fail where the flagship succeeds. */
  score: number;
  /** Names of the features that contributed most, strongest first (for headers and `explain`). */
  reasons: string[];
}

export interface FeatureContribution {
  name: string;
  /** Feature value for this request. */
  value: number;
  /** Learned weight (per unit of the feature). */
  weight: number;
  /** weight * (value - reference): how far this feature moved the logit (reference: 0, or the training mean for size features). */
  contribution: number;
}

export interface ClassificationDetail extends Classification {
  /** The raw logit before calibration. */
  logit: number;
  /** All features, largest |contribution| first. */
  features: FeatureContribution[];
  /** Where the task (the text that was analysed) is: message index, offset, worked examples. */
  task: TaskInfo & { excerpt: string };
  /** The task's words that have a learned vocabulary weight, largest |weight| first (at most 12). */
  vocabulary: Array<{ word: string; weight: number }>;
  model: { name: string; version: string };
}

interface ModelFile {
  name: string;
  format: number;
  version: string;
  features: string[];
  weights: number[];
  intercept: number;
  calibration: { center: number; scale: number };
  reference: number[];
  /** Learned word -> difficulty weights (the vocabulary_difficulty feature). */
  vocabulary: Record<string, number>;
}

/** Number of reasons reported by classify(). */
const MAX_REASONS = 3;
/** A feature must move the logit at least this much to be named as a reason. */
const MIN_REASON = 0.02;

function loadModel(m: ModelFile): {
  weights: Float64Array;
  mean: Float64Array;
  intercept: number;
  center: number;
  scale: number;
} {
  if (m.format !== 2) throw new Error(`classifier model: unsupported format ${String(m.format)}`);
  const names = m.features;
  if (names.length !== NUM_FEATURES || names.some((n, i) => n !== FEATURE_NAMES[i])) {
    throw new Error(
      'classifier model: feature list does not match the code; retrain (scripts/train-classifier.ts)',
    );
  }
  if (m.weights.length !== NUM_FEATURES || m.reference.length !== NUM_FEATURES) {
    throw new Error('classifier model: weights and reference must have one entry per feature');
  }
  const all = [...m.weights, ...m.reference, m.intercept, m.calibration.center, m.calibration.scale];
  if (!all.every(Number.isFinite) || !(m.calibration.scale > 0)) {
    throw new Error('classifier model: non-finite weights or calibration');
  }
  if (!m.vocabulary || typeof m.vocabulary !== 'object') {
    throw new Error('classifier model: vocabulary must be an object of word -> weight');
  }
  try {
    setVocabulary(m.vocabulary);
  } catch (err) {
    throw new Error(`classifier model: ${(err as Error).message}`, { cause: err });
  }
  return {
    weights: Float64Array.from(m.weights),
    mean: Float64Array.from(m.reference),
    intercept: m.intercept,
    center: m.calibration.center,
    scale: m.calibration.scale,
  };
}

const M = loadModel(model as ModelFile);
export const MODEL_INFO: { name: string; version: string } = { name: model.name, version: model.version };

// Scratch buffers: classify() is synchronous, so reusing them is safe.
const xs = new Float64Array(NUM_FEATURES);

const calibrate = (z: number): number => {
  const s = 1 / (1 + Math.exp(-(z - M.center) / M.scale));
  // Keep it strictly inside [0,1] and finite whatever the input.
  return s >= 0 && s <= 1 ? s : z > M.center ? 1 : 0;
};

/** The production classifier: called by the router on every request of a policy with tiers. */
export function classify(req: ChatCompletionRequest): Classification {
  extractFeatures(req, xs);
  const w = M.weights;
  const mean = M.mean;
  let z = M.intercept;
  for (let j = 0; j < NUM_FEATURES; j++) z += w[j]! * xs[j]!;
  const score = calibrate(z);
  // Reasons: the features that pushed the score the way it went, strongest first.
  const sign = z >= M.center ? 1 : -1;
  let i1 = -1;
  let i2 = -1;
  let i3 = -1;
  let c1 = MIN_REASON;
  let c2 = MIN_REASON;
  let c3 = MIN_REASON;
  for (let j = 0; j < NUM_FEATURES; j++) {
    const c = sign * w[j]! * (xs[j]! - mean[j]!);
    if (c <= c3) continue;
    if (c > c1) {
      i3 = i2;
      c3 = c2;
      i2 = i1;
      c2 = c1;
      i1 = j;
      c1 = c;
    } else if (c > c2) {
      i3 = i2;
      c3 = c2;
      i2 = j;
      c2 = c;
    } else {
      i3 = j;
      c3 = c;
    }
  }
  const reasons: string[] = [];
  if (i1 >= 0) reasons.push(FEATURE_NAMES[i1]!);
  if (i2 >= 0) reasons.push(FEATURE_NAMES[i2]!);
  if (i3 >= 0 && reasons.length < MAX_REASONS) reasons.push(FEATURE_NAMES[i3]!);
  return { score, reasons };
}

/**
 * The same score as classify() plus the full breakdown (every feature's value, weight and
 * contribution, and where the analysed task is). For `tierflow explain` and debugging; not for
 * the hot path.
 */
export function explainClassification(req: ChatCompletionRequest): ClassificationDetail {
  const { score, reasons } = classify(req);
  const task: TaskInfo = { message: -1, start: 0, examples: 0 };
  const x = extractFeatures(req, new Float64Array(NUM_FEATURES), task);
  let z = M.intercept;
  const features: FeatureContribution[] = [];
  for (let j = 0; j < NUM_FEATURES; j++) {
    const weight = M.weights[j]!;
    z += weight * x[j]!;
    features.push({
      name: FEATURE_NAMES[j]!,
      value: x[j]!,
      weight,
      contribution: weight * (x[j]! - M.mean[j]!),
    });
  }
  features.sort(
    (a, b) => Math.abs(b.contribution) - Math.abs(a.contribution) || a.name.localeCompare(b.name),
  );
  const msg = task.message >= 0 ? req.messages[task.message] : undefined;
  const text =
    typeof msg?.content === 'string'
      ? msg.content
      : Array.isArray(msg?.content)
        ? msg.content.map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('\n')
        : '';
  const body = text.slice(task.start).trim();
  const excerpt = body.length > 240 ? `${body.slice(0, 160)} … ${body.slice(-60)}` : body;
  return {
    score,
    reasons,
    logit: z,
    features,
    task: { ...task, excerpt },
    vocabulary: vocabularyOf(body),
    model: MODEL_INFO,
  };
}

const MAX_VOCABULARY_SHOWN = 12;

/** The words of `text` that carry a vocabulary weight, each once, largest |weight| first. */
function vocabularyOf(text: string): Array<{ word: string; weight: number }> {
  const words = new Set(
    text
      .toLowerCase()
      .replace(/\u2019/g, "'")
      .match(/[a-z]+(?:'[a-z]+)?/g) ?? [],
  );
  return [...words]
    .map((word) => ({ word, weight: vocabularyWeight(word) }))
    .filter((v) => v.weight !== 0)
    .sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight) || a.word.localeCompare(b.word))
    .slice(0, MAX_VOCABULARY_SHOWN);
}
