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
import { FEATURE_NAMES, NUM_FEATURES } from './feature-names.js';
import { extractFeatures, type TaskInfo } from './features.js';
import model from './model.json' with { type: 'json' };
import { setVocabulary, vocabularyWeight } from './scan.js';

export { FEATURE_NAMES } from './feature-names.js';

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

/** The parts of a model file the product reads (see model.json and `tierflow train`). */
export interface ModelFile {
  name: string;
  format: number;
  version: string;
  features: string[];
  weights: number[];
  intercept: number;
  calibration: { center: number; scale: number };
  reference: number[];
  /** Learned word -> difficulty weights (the vocabulary_difficulty feature); shipped model only. */
  vocabulary?: Record<string, number>;
  /**
   * A router fitted to a user's outcomes (`tierflow train`) names the shipped model it was fitted
   * on: it reuses that model's vocabulary, so it only loads next to the same shipped version.
   */
  base?: { name: string; version: string };
}

/** Number of reasons reported by classify(). */
const MAX_REASONS = 3;
/** A feature must move the logit at least this much to be named as a reason. */
const MIN_REASON = 0.02;

// Scratch buffer: classify() is synchronous, so reusing it is safe (shared by all classifiers).
const xs = new Float64Array(NUM_FEATURES);

/** A loaded model: the weights that turn the feature vector into a score. */
export class Classifier {
  readonly info: { name: string; version: string };
  /** Identifies these weights (a running threshold learned on another model's scores is reset). */
  readonly id: string;
  readonly #weights: Float64Array;
  readonly #mean: Float64Array;
  readonly #intercept: number;
  readonly #center: number;
  readonly #scale: number;

  /** Validates `m` (throws an Error that says what is wrong) and builds the classifier. */
  constructor(m: ModelFile, shipped?: { name: string; version: string }) {
    if (!m || typeof m !== 'object') throw new Error('classifier model: not a JSON object');
    if (m.format !== 2) throw new Error(`classifier model: unsupported format ${String(m.format)}`);
    const names = m.features;
    if (
      !Array.isArray(names) ||
      names.length !== NUM_FEATURES ||
      names.some((n, i) => n !== FEATURE_NAMES[i])
    ) {
      throw new Error(
        'classifier model: feature list does not match the code; retrain (scripts/train-classifier.ts or tierflow train)',
      );
    }
    if (
      !Array.isArray(m.weights) ||
      !Array.isArray(m.reference) ||
      m.weights.length !== NUM_FEATURES ||
      m.reference.length !== NUM_FEATURES
    ) {
      throw new Error('classifier model: weights and reference must have one entry per feature');
    }
    const c = m.calibration ?? { center: NaN, scale: NaN };
    const all = [...m.weights, ...m.reference, m.intercept, c.center, c.scale];
    if (!all.every((v) => typeof v === 'number' && Number.isFinite(v)) || !(c.scale > 0)) {
      throw new Error('classifier model: non-finite weights or calibration');
    }
    if (shipped && m.base && (m.base.name !== shipped.name || m.base.version !== shipped.version)) {
      throw new Error(
        `classifier model: fitted on ${m.base.name} ${m.base.version}, but this TierFlow ships ${shipped.name} ${shipped.version}; refit it with tierflow train`,
      );
    }
    this.info = { name: String(m.name), version: String(m.version) };
    this.id = `${this.info.name}@${this.info.version}:${m.intercept}:${c.center}:${c.scale}`;
    this.#weights = Float64Array.from(m.weights);
    this.#mean = Float64Array.from(m.reference);
    this.#intercept = m.intercept;
    this.#center = c.center;
    this.#scale = c.scale;
  }

  #calibrate(z: number): number {
    const s = 1 / (1 + Math.exp(-(z - this.#center) / this.#scale));
    // Keep it strictly inside [0,1] and finite whatever the input.
    return s >= 0 && s <= 1 ? s : z > this.#center ? 1 : 0;
  }

  /** Reference point of each feature for contributions (see ModelFile.reference). */
  reference(): number[] {
    return Array.from(this.#mean);
  }

  /** The logit of a feature vector (before calibration). */
  logit(x: Float64Array): number {
    const w = this.#weights;
    let z = this.#intercept;
    for (let j = 0; j < NUM_FEATURES; j++) z += w[j]! * x[j]!;
    return z;
  }

  /** Called by the router on every request of a policy with tiers. */
  classify(req: ChatCompletionRequest): Classification {
    extractFeatures(req, xs);
    const w = this.#weights;
    const mean = this.#mean;
    const z = this.logit(xs);
    const score = this.#calibrate(z);
    // Reasons: the features that pushed the score the way it went, strongest first.
    const sign = z >= this.#center ? 1 : -1;
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
  explain(req: ChatCompletionRequest): ClassificationDetail {
    const { score, reasons } = this.classify(req);
    const task: TaskInfo = { message: -1, start: 0, examples: 0 };
    const x = extractFeatures(req, new Float64Array(NUM_FEATURES), task);
    const z = this.logit(x);
    const features: FeatureContribution[] = [];
    for (let j = 0; j < NUM_FEATURES; j++) {
      const weight = this.#weights[j]!;
      features.push({
        name: FEATURE_NAMES[j]!,
        value: x[j]!,
        weight,
        contribution: weight * (x[j]! - this.#mean[j]!),
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
      model: this.info,
    };
  }
}

function loadShipped(m: ModelFile): Classifier {
  if (!m.vocabulary || typeof m.vocabulary !== 'object') {
    throw new Error('classifier model: vocabulary must be an object of word -> weight');
  }
  try {
    setVocabulary(m.vocabulary);
  } catch (err) {
    throw new Error(`classifier model: ${(err as Error).message}`, { cause: err });
  }
  return new Classifier(m);
}

/** The model shipped in the package (src/core/classifier/model.json). */
export const SHIPPED: Classifier = loadShipped(model as ModelFile);
export const MODEL_INFO: { name: string; version: string } = SHIPPED.info;

/**
 * A classifier from a model file written by `tierflow train` (already parsed from JSON). Throws
 * an Error naming what is wrong when the file does not fit this version of TierFlow.
 */
export function loadClassifier(m: unknown): Classifier {
  const file = m as ModelFile;
  if (file && typeof file === 'object' && file.vocabulary !== undefined) {
    throw new Error(
      'classifier model: a custom model reuses the shipped vocabulary and must not carry its own',
    );
  }
  return new Classifier(file, SHIPPED.info);
}

/** The shipped classifier: called by the router on every request of a policy with tiers. */
export function classify(req: ChatCompletionRequest): Classification {
  return SHIPPED.classify(req);
}

/** The shipped classifier's full breakdown of one request (see Classifier.explain). */
export function explainClassification(req: ChatCompletionRequest): ClassificationDetail {
  return SHIPPED.explain(req);
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
