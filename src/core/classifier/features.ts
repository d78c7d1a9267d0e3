// Feature extraction for the complexity classifier: request -> fixed-order vector of numbers.
//
// Design (hot path, runs on every `model: "auto"` request):
// - The *task* is the last user turn's final item. Worked examples (few-shot "...Answer: B" blocks)
//   before it are detected while scanning and only counted (`worked_examples`), so the features
//   describe the question that must be answered, not the demonstrations.
// Modules: ./feature-names.ts (the vector's schema), ./keywords.ts (the word lists, data only),
// ./scan.ts (the lookup table, the counters and the scanner), and this file (request -> vector).
//
// - One forward pass over the task text (./scan.ts): a hand-written tokenizer (no regexes) hashes each
//   lower-cased word (FNV-1a) and looks it up in an open-addressing table of keyword categories;
//   a few two-word phrases ("at least", "how many") are found through a bigram key. The same
//   table slot carries the word's learned vocabulary weight (setVocabulary), so the
//   `vocabulary_difficulty` feature costs one more load per word.
// - Messages over 4 KB are scanned as a 1 KB head plus a 3 KB tail window (SCAN_*): the task of
//   a few-shot prompt sits at the end, and the skipped middle is only searched for worked examples
//   with a native substring search; count features are scaled up to the task's full length. The
//   cost stays flat above 4 KB (about 25 us on the development machine, 8 KB or 200 KB alike).
// - Per-word counters avoid data-dependent branches where they can: on real, varied text the
//   loop's cost is dominated by branch mispredictions, not by the arithmetic.
// - Other messages (system prompt, earlier turns, tool results) contribute only cheap
//   structural features (lengths, turn counts, code fences), never a full scan.
//
// These modules import only each other (and types), so the offline training script can run them
// directly with Node's type stripping; they must stay free of I/O and of non-erasable syntax.
import type { ChatCompletionRequest, ChatMessage } from '../openai.js';
import { FEATURE_NAMES, type FeatureName, NUM_FEATURES } from './feature-names.js';
import { CATEGORY, COUNTER, scanTask, VOCAB_SCALE } from './scan.js';
const F = Object.fromEntries(FEATURE_NAMES.map((n, i) => [n, i])) as Record<FeatureName, number>;

function messageText(m: ChatMessage): string {
  const c = m.content;
  if (typeof c === 'string') return c;
  if (!Array.isArray(c)) return '';
  let s = '';
  for (const p of c) {
    if (p && p.type === 'text' && typeof (p as { text?: unknown }).text === 'string') {
      s = s.length ? s + '\n' + (p as { text: string }).text : (p as { text: string }).text;
    }
  }
  return s;
}

function imageParts(m: ChatMessage): number {
  const c = m.content;
  if (!Array.isArray(c)) return 0;
  let n = 0;
  for (const p of c) if (p && (p.type === 'image_url' || p.type === 'input_image' || p.type === 'image')) n++;
  return n;
}

export interface TaskInfo {
  /** Index of the message holding the task (the last user turn), -1 when there is none. */
  message: number;
  /** Characters of that message before the task (the few-shot block). */
  start: number;
  /** Worked examples found. */
  examples: number;
}

/**
 * Compute the feature vector of a request into `out` (allocated when omitted). Deterministic:
 * the same request always gives the same numbers. `task` (optional) receives where the task is.
 */
export function extractFeatures(
  req: ChatCompletionRequest,
  out: Float64Array = new Float64Array(NUM_FEATURES),
  task?: TaskInfo,
): Float64Array {
  const msgs = Array.isArray(req.messages) ? req.messages : [];
  // The task lives in the last user message (or, failing that, the last message with text).
  let ti = -1;
  for (let k = msgs.length - 1; k >= 0; k--) {
    if (msgs[k]?.role === 'user') {
      ti = k;
      break;
    }
  }
  if (ti < 0) ti = msgs.length - 1;

  let systemChars = 0;
  let contextChars = 0;
  let userTurns = 0;
  let shortAnswers = 0;
  let images = 0;
  let contextFences = 0;
  for (let k = 0; k < msgs.length; k++) {
    const m = msgs[k]!;
    if (!m || typeof m !== 'object') continue;
    images += imageParts(m);
    if (k === ti) continue;
    const text = messageText(m);
    contextChars += text.length;
    if (m.role === 'system' || m.role === 'developer') systemChars += text.length;
    else if (m.role === 'user' && k < ti) userTurns++;
    else if (m.role === 'assistant' && k < ti) {
      // few-shot in chat form: short assistant answers to earlier questions
      const trimmed = text.trim();
      if (trimmed.length > 0 && trimmed.length <= 24) shortAnswers++;
    }
    if (text.length > 0 && m.role !== 'system' && m.role !== 'developer' && text.includes('```'))
      contextFences++;
  }

  const t = ti >= 0 && msgs[ti] ? messageText(msgs[ti]!) : '';
  const { counters: acc, start, chars: taskChars, scale, examples: closed } = scanTask(t);
  const examples = closed + shortAnswers;
  if (task) {
    task.message = ti;
    task.start = start;
    task.examples = examples;
  }

  const words = acc[COUNTER.WORDS]!;
  const lg = (counter: number): number => Math.log1p(acc[counter]! * scale);
  const lc = (bit: number): number => Math.log1p(acc[COUNTER.CAT0 + 31 - Math.clz32(bit)]! * scale);
  const catCount = (bit: number): number => acc[COUNTER.CAT0 + 31 - Math.clz32(bit)]!;

  out[F.task_length] = Math.log1p(taskChars);
  out[F.avg_word_length] = words > 0 ? Math.min(12, acc[COUNTER.LETTERS]! / words) : 0;
  out[F.long_word_share] = words > 0 ? acc[COUNTER.LONG]! / words : 0;
  out[F.sentences] = lg(COUNTER.SENT);
  out[F.questions] = lg(COUNTER.QMARK);
  out[F.multi_part] = Math.log1p(
    (acc[COUNTER.LIST]! + Math.max(0, acc[COUNTER.QMARK]! - 1) + catCount(CATEGORY.MULTI)) * scale,
  );
  out[F.answer_options] = lg(COUNTER.OPTIONS);
  const nOpt = acc[COUNTER.OPTIONS]!;
  const optMean = nOpt > 0 ? acc[COUNTER.OPTION_CHARS]! / nOpt : 0;
  // Option features describe multiple-choice questions only: 0 when there are no options, and
  // centred on a typical question otherwise, so they do not shift other kinds of request.
  out[F.option_length] = nOpt > 0 ? Math.log1p(optMean) - 3 : 0;
  out[F.option_spread] =
    nOpt > 1 && optMean > 0
      ? Math.min(2, Math.sqrt(Math.max(0, acc[COUNTER.OPTION_SQ]! / nOpt - optMean * optMean)) / optMean) -
        0.3
      : 0;
  out[F.numeric_options] = nOpt > 0 ? acc[COUNTER.OPTION_NUM]! / nOpt : 0;
  out[F.measurements] = lg(COUNTER.MEASURE);
  out[F.numbers] = lg(COUNTER.NUMBERS);
  out[F.arithmetic] = lg(COUNTER.ARITH);
  out[F.formal_notation] = lg(COUNTER.FORMAL);
  out[F.math_terms] = lc(CATEGORY.MATH);
  out[F.quantity_terms] = lc(CATEGORY.QUANT);
  out[F.reasoning_terms] = lc(CATEGORY.REASON);
  out[F.proof_demand] = lc(CATEGORY.PROOF);
  out[F.logic_connectives] = lc(CATEGORY.LOGIC);
  out[F.negation] = lc(CATEGORY.NEG);
  out[F.comparison] = lc(CATEGORY.COMPARE);
  out[F.step_terms] = lc(CATEGORY.STEPS);
  out[F.why_how] = lc(CATEGORY.WHYHOW);
  out[F.factoid_question] = lc(CATEGORY.FACTOID);
  out[F.code_syntax] = Math.log1p((acc[COUNTER.CODESYN]! + 3 * acc[COUNTER.FENCES]!) * scale);
  out[F.code_terms] = lc(CATEGORY.CODE);
  out[F.code_request] =
    catCount(CATEGORY.WRITE) > 0 &&
    catCount(CATEGORY.CODEOBJ) + catCount(CATEGORY.LANG) + acc[COUNTER.FENCES]! > 0
      ? 1
      : 0;
  out[F.language_names] = lc(CATEGORY.LANG);
  out[F.data_structures] = lc(CATEGORY.DS);
  out[F.algorithm_terms] = lc(CATEGORY.ALGO);
  out[F.constraints] = lc(CATEGORY.CONSTRAINT);
  out[F.output_format] = lc(CATEGORY.FORMAT);
  out[F.inline_examples] = lc(CATEGORY.EXAMPLE);
  out[F.creative_writing] = lc(CATEGORY.CREATIVE);
  out[F.transform_task] = lc(CATEGORY.TRANSFORM);
  out[F.small_talk] = lc(CATEGORY.SMALLTALK);
  out[F.expert_terms] = lc(CATEGORY.EXPERT);
  out[F.technical_morphology] = lg(COUNTER.MORPH);
  out[F.scientific_method] = lc(CATEGORY.SCIENCE);
  out[F.proper_nouns] = lg(COUNTER.PROPER);
  out[F.pronouns] = lc(CATEGORY.PRONOUN);
  out[F.quoted_text] = lg(COUNTER.QUOTES);
  out[F.non_latin_share] =
    acc[COUNTER.NONLATIN]! / Math.max(1, acc[COUNTER.NONLATIN]! + acc[COUNTER.LETTERS]!);
  out[F.vocabulary_difficulty] = words > 0 ? acc[COUNTER.VOCAB]! / VOCAB_SCALE / Math.sqrt(words) : 0;

  out[F.worked_examples] = Math.log1p(examples);
  out[F.context_length] = Math.log1p(contextChars + start);
  out[F.turns] = Math.log1p(userTurns);
  out[F.system_prompt] = Math.log1p(systemChars);
  out[F.tools] = Math.log1p(Array.isArray(req.tools) ? req.tools.length : 0);
  const rf = req.response_format?.type;
  out[F.structured_output] = rf === 'json_schema' ? 1 : rf === 'json_object' ? 0.5 : 0;
  out[F.images] = Math.log1p(images);
  out[F.code_in_context] = contextFences > 0 ? 1 : 0;
  return out;
}
