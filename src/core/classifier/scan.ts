// The scanner (hot path; see the design notes in ./features.ts): the keyword and vocabulary lookup
// table built from ./keywords.ts and the model's vocabulary, the counters, and one forward pass over
// the task text that fills them. Its constants are this module's own, unexported, on purpose: V8
// reads an imported or exported binding through its module cell at every use, which made the scan
// loop measurably slower (bench/classifier.ts); ./features.ts reads the layout through COUNTER
// and CATEGORY instead.
import { type Category, GAP_MARKERS, PHRASES, SUFFIX3, SUFFIX4, WORDS } from './keywords.js';

// ---------------------------------------------------------------------------------------------
// Keyword categories (./keywords.ts names them). One bit each in the lookup table's value.
const K_REASON = 1 << 0;
const K_LOGIC = 1 << 1;
const K_NEG = 1 << 2;
const K_COMPARE = 1 << 3;
const K_MATH = 1 << 4;
const K_QUANT = 1 << 5;
const K_STEPS = 1 << 6;
const K_CODE = 1 << 7;
const K_WRITE = 1 << 8;
const K_LANG = 1 << 9;
const K_DS = 1 << 10;
const K_ALGO = 1 << 11;
const K_CONSTRAINT = 1 << 12;
const K_FORMAT = 1 << 13;
const K_CREATIVE = 1 << 14;
const K_TRANSFORM = 1 << 15;
const K_SMALLTALK = 1 << 16;
const K_EXPERT = 1 << 17;
const K_SCIENCE = 1 << 18;
const K_PRONOUN = 1 << 19;
const K_WHYHOW = 1 << 20;
const K_FACTOID = 1 << 21;
const K_MULTI = 1 << 22;
const K_EXAMPLE = 1 << 23;
const K_UNIT = 1 << 24;
const K_CODEOBJ = 1 << 25;
const K_NUMWORD = 1 << 26;
const K_PROOF = 1 << 27;

/** Internal: word starts a listed two-word phrase (check the bigram table on the next word). */
const K_HEAD = 1 << 29;
/** Internal: word belongs to more than one category (the scanner counts the others too). */
const K_MULTICAT = 1 << 30;
const CATEGORY_MASK = (1 << 28) - 1;
/** Entries that need more than "one counter += 1" when seen. */
const K_SPECIAL = K_HEAD | K_MULTICAT | K_UNIT | K_NUMWORD;

const CATEGORY_NAMES: ReadonlyArray<readonly [number, Category]> = [
  [K_REASON, 'reasoning'],
  [K_LOGIC, 'logic'],
  [K_NEG, 'negation'],
  [K_COMPARE, 'comparison'],
  [K_MATH, 'math'],
  [K_QUANT, 'quantity'],
  [K_STEPS, 'steps'],
  [K_CODE, 'code'],
  [K_WRITE, 'write'],
  [K_LANG, 'language'],
  [K_DS, 'data_structure'],
  [K_ALGO, 'algorithm'],
  [K_CONSTRAINT, 'constraint'],
  [K_FORMAT, 'format'],
  [K_CREATIVE, 'creative'],
  [K_TRANSFORM, 'transform'],
  [K_SMALLTALK, 'small_talk'],
  [K_EXPERT, 'expert'],
  [K_SCIENCE, 'science'],
  [K_PRONOUN, 'pronoun'],
  [K_WHYHOW, 'why_how'],
  [K_FACTOID, 'factoid'],
  [K_MULTI, 'multi_part'],
  [K_EXAMPLE, 'example'],
  [K_UNIT, 'unit'],
  [K_CODEOBJ, 'code_object'],
  [K_NUMWORD, 'number_word'],
  [K_PROOF, 'proof'],
];

/** Category bits of one or more category names. */
function bitsOf(categories: Category | readonly Category[]): number {
  let bits = 0;
  for (const name of typeof categories === 'string' ? [categories] : categories) {
    const entry = CATEGORY_NAMES.find(([, n]) => n === name);
    if (!entry) throw new Error(`unknown keyword category ${name}`);
    bits |= entry[0];
  }
  return bits;
}

// ---------------------------------------------------------------------------------------------
// Open-addressing hash table: FNV-1a hash of the lower-cased word -> category bits.
const TABLE_BITS = 14;
const TABLE_SIZE = 1 << TABLE_BITS;
const TABLE_MASK = TABLE_SIZE - 1;
// One slot = 4 int32 (16 bytes, one cache line holds four): [key (0 = empty), category bits |
// K_HEAD | K_MULTICAT, counter of the first category (C_DUMMY for none), vocabulary weight in
// units of 1 / VOCAB_SCALE]. Keywords and the learned vocabulary share the table, so the scanner
// finds both with one probe.
const table = new Int32Array(TABLE_SIZE * 4);

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

function hashWord(w: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), FNV_PRIME);
  return h === 0 ? 1 : h;
}
function bigramKey(first: number, second: number): number {
  const h = Math.imul(first ^ 0x5bd1e995, FNV_PRIME) ^ Math.imul(second, 0x2c1b3c6d);
  return h === 0 ? 1 : h;
}
function slot(h: number): number {
  return (h ^ (h >>> 15)) & TABLE_MASK;
}
function tableAdd(h: number, bits: number): void {
  let i = slot(h);
  for (;;) {
    const k = table[i * 4];
    if (k === h) {
      table[i * 4 + 1] = table[i * 4 + 1]! | bits;
      return;
    }
    if (k === 0) {
      table[i * 4] = h;
      table[i * 4 + 1] = bits;
      return;
    }
    i = (i + 1) & TABLE_MASK;
  }
}
/** Slot holding `h`, or the empty slot ending its probe chain (value 0, counter C_DUMMY). */
function tableFind(h: number): number {
  let i = slot(h);
  for (;;) {
    const k = table[i * 4];
    if (k === h || k === 0) return i;
    i = (i + 1) & TABLE_MASK;
  }
}
function tableGet(h: number): number {
  return table[tableFind(h) * 4 + 1]!;
}

/** Add the word lists of ./keywords.ts. */
function addKeywords(): void {
  for (const [category, list] of WORDS) {
    const bits = bitsOf(category);
    for (const w of list.split(/\s+/)) if (w) tableAdd(hashWord(w), bits);
  }
  for (const [categories, list] of PHRASES) {
    const bits = bitsOf(categories);
    for (const phrase of list.split('|')) {
      const [a, b] = phrase.split(' ') as [string, string];
      const ha = hashWord(a);
      tableAdd(ha, K_HEAD);
      tableAdd(bigramKey(ha, hashWord(b)), bits);
    }
  }
}

/** For tests: the categories the tokenizer assigns to one lower-case word (or "two words"). */
export function keywordCategories(phrase: string): string[] {
  const parts = phrase.toLowerCase().split(' ');
  const h =
    parts.length === 2 ? bigramKey(hashWord(parts[0]!), hashWord(parts[1]!)) : hashWord(parts[0] ?? '');
  const v = tableGet(h);
  return CATEGORY_NAMES.filter(([bit]) => (v & bit) !== 0).map(([, name]) => name);
}

// ---------------------------------------------------------------------------------------------
// Counters filled by the scanner (per segment); features are derived from them.
const C_WORDS = 0;
const C_OPTION_SQ = 1; // sum of squared option lengths (spread of the answer options)
const C_LETTERS = 2;
const C_LONG = 3;
const C_SENT = 4;
const C_QMARK = 5;
const C_LIST = 6;
const C_OPTIONS = 7;
const C_OPTION_CHARS = 8;
const C_NUMBERS = 9;
const C_ARITH = 10;
const C_FORMAL = 11;
const C_CODESYN = 12;
const C_PROPER = 13;
const C_VOCAB = 14; // sum of the vocabulary weights of the words, in units of 1 / VOCAB_SCALE
const C_QUOTES = 15;
const C_NONLATIN = 16;
const C_MORPH = 17;
const C_FENCES = 18;
const C_DUMMY = 19; // sink for words that are no keyword (lets the scanner count without a branch)
const C_OPTION_NUM = 20; // answer options that are numbers (the answer must be computed)
const C_MEASURE = 21; // numbers followed by a unit ("300 meters", "5 kg", "20%", "$4")
const C_CAT0 = 22; // category counters start here, one per category bit 0..NUM_CATEGORIES-1
const NUM_CATEGORIES = 28;
const NUM_COUNTERS = C_CAT0 + NUM_CATEGORIES;
const cat = (bit: number): number => C_CAT0 + (31 - Math.clz32(bit));

/** Finish the keyword table: first category's counter per slot, and the multi-category flag. */
function finishKeywords(): void {
  for (let i = 0; i < TABLE_SIZE; i++) {
    table[i * 4 + 2] = C_DUMMY;
    if (table[i * 4] === 0) continue;
    const cats = table[i * 4 + 1]! & CATEGORY_MASK;
    if (cats === 0) continue;
    const first = cats & -cats;
    table[i * 4 + 2] = cat(first);
    if (cats !== first) table[i * 4 + 1] = table[i * 4 + 1]! | K_MULTICAT;
  }
}

/** Fixed-point scale of the vocabulary weights stored in the table. */
export const VOCAB_SCALE = 1 << 20;
/** Most vocabulary entries the table takes (keeps its load factor under one half). */
export const MAX_VOCABULARY = TABLE_SIZE / 2 - 2048;
/** A vocabulary word: lower-case ASCII letters, optionally one inner apostrophe ("don't"). */
const VOCABULARY_WORD = /^[a-z]+(?:'[a-z]+)?$/;

/**
 * Install the learned vocabulary: lower-case word -> difficulty weight (how much harder than
 * usual, for LLMs, requests using that word were in the training data). The classifier's model
 * installs its vocabulary at load; the training script installs one per cross-validation fold.
 * Replaces any previous vocabulary. Throws on a malformed entry.
 */
export function setVocabulary(vocabulary: Readonly<Record<string, number>>): void {
  const entries = Object.entries(vocabulary);
  if (entries.length > MAX_VOCABULARY) {
    throw new Error(`vocabulary has ${entries.length} words; at most ${MAX_VOCABULARY} fit`);
  }
  for (const [word, weight] of entries) {
    if (!VOCABULARY_WORD.test(word))
      throw new Error(`vocabulary word ${JSON.stringify(word)} is not a lower-case word`);
    if (!Number.isFinite(weight) || Math.abs(weight) >= 1) {
      throw new Error(`vocabulary weight of ${JSON.stringify(word)} must be a number in (-1, 1)`);
    }
  }
  table.fill(0);
  addKeywords();
  finishKeywords();
  for (const [word, weight] of entries) {
    const h = hashWord(word);
    const i = tableFind(h);
    if (table[i * 4] === 0) {
      table[i * 4] = h;
      table[i * 4 + 2] = C_DUMMY;
    }
    table[i * 4 + 3] = Math.round(weight * VOCAB_SCALE);
  }
}

/** The installed vocabulary weight of one lower-case word (0 when it has none). */
export function vocabularyWeight(word: string): number {
  return table[tableFind(hashWord(word)) * 4 + 3]! / VOCAB_SCALE;
}

setVocabulary({});

/** Add one to the counter of every category bit in `v`. */
function countCategories(v: number): void {
  let bits = v & CATEGORY_MASK;
  while (bits !== 0) {
    const low = bits & -bits;
    cur[C_CAT0 + 31 - Math.clz32(low)]! += 1;
    bits ^= low;
  }
}

// Scratch state (the classifier is synchronous, so module-level buffers are safe and allocation-free).
// Two fixed arrays, copied rather than swapped at a segment boundary: V8 compiles an update of a
// constant typed array to a load and a store at a fixed address, without the checks a `let`
// array needs at each update.
/** Counters of the current segment. */
const cur = new Float64Array(NUM_COUNTERS);
/** Counters of the worked examples before it. */
const prev = new Float64Array(NUM_COUNTERS);
/** Scanner outputs besides the counters. */
let segStart = 0; // index in the text where the current segment (the task) begins
let boundaries = 0; // worked examples closed inside the scanned text
let skipped = 0; // characters of the current segment not scanned (long-text window gap)

/** Long texts: scan the first HEAD and the last TAIL characters only. */
export const SCAN_LIMIT = 4 * 1024;
const SCAN_HEAD = 1024;
const SCAN_TAIL = 3 * 1024;

const isLetter = (c: number): boolean =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 0xc0 && c <= 0x24f && c !== 0xd7 && c !== 0xf7);
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isSpace = (c: number): boolean => c === 32 || c === 10 || c === 9 || c === 13 || c === 0xa0;

function isFormalSymbol(c: number): boolean {
  return (
    (c >= 0x2200 && c <= 0x22ff) || // mathematical operators
    (c >= 0x0391 && c <= 0x03c9) || // Greek letters
    (c >= 0x2190 && c <= 0x21ff) || // arrows
    (c >= 0x2070 && c <= 0x209f) || // super/subscripts
    (c >= 0x27c0 && c <= 0x27ef) || // misc math symbols
    (c >= 0x1d400 && c <= 0x1d7ff) || // math alphanumerics (surrogates never match; kept for clarity)
    c === 0xb1 ||
    c === 0xd7 ||
    c === 0xf7 ||
    c === 0xb2 ||
    c === 0xb3 ||
    c === 0xb9 ||
    c === 0xbc ||
    c === 0xbd ||
    c === 0xbe
  );
}

/** Answer-marker words: "<marker>:" followed by an answer closes a worked example. */
const H_ANSWER = hashWord('answer');
const H_ANS = hashWord('ans');
const H_A = hashWord('a');
const H_Q = hashWord('q');
const H_QUESTION = hashWord('question');
const H_OUTPUT = hashWord('output');
const H_SOLUTION = hashWord('solution');
const H_ASSISTANT = hashWord('assistant');

/** Option marker at `i`: "A)", "A.", "A:", "(A)", "[A]" followed by a space, letters A-J. */
function optionMarkerAt(t: string, i: number, end: number): boolean {
  const c = t.charCodeAt(i);
  if (c >= 65 && c <= 74) {
    if (i + 2 >= end) return false;
    const d = t.charCodeAt(i + 1);
    return (d === 41 || d === 46 || d === 58) && isSpace(t.charCodeAt(i + 2));
  }
  if (c === 40 || c === 91) {
    if (i + 2 >= end) return false;
    const l = t.charCodeAt(i + 1);
    const r = t.charCodeAt(i + 2);
    return l >= 65 && l <= 74 && (r === 41 || r === 93);
  }
  return false;
}

/**
 * At an answer marker's colon (index `colon`), decide whether it closes a worked example: an
 * answer follows, and a substantial, non-option text comes after it. The answer runs to the
 * next blank line or the next "Q..." line (multi-line worked solutions), else to the end of its
 * first line. Returns the index just past the answer, or -1.
 */
function closedAnswerEnd(t: string, colon: number, end: number): number {
  let j = colon + 1;
  while (j < end && isSpace(t.charCodeAt(j))) j++;
  if (j >= end) return -1; // open marker: the task's own "Answer:"
  let k = t.indexOf('\n', j);
  if (k < 0 || k >= end) return -1; // the answer runs to the end: nothing follows
  // Follow the answer line by line (bounded) to a blank line or a line starting with "Q".
  for (let p = k; p >= 0 && p < end && p - j <= MAX_ANSWER; p = t.indexOf('\n', p + 1)) {
    const next = p + 1 < end ? t.charCodeAt(p + 1) : 10;
    if (next === 10 || next === 13 || next === 81) {
      k = p;
      break;
    }
  }
  // Something substantial must follow, and not an answer option ("B) ...").
  let m = k + 1;
  while (m < end && isSpace(t.charCodeAt(m))) m++;
  if (end - m < 16) return -1;
  if (optionMarkerAt(t, m, end)) return -1;
  return k + 1;
}
/** Longest worked answer followed past its first line (characters). */
const MAX_ANSWER = 4000;

/** Counter index of a category bit. */
const CI_NEG = cat(K_NEG);
const CI_EXAMPLE = cat(K_EXAMPLE);

/** Scan t[from, to) into `cur`, starting a new segment at each worked-example boundary. */
function scan(t: string, from: number, to: number): void {
  let i = from;
  let atLineStart = true;
  let sentenceStart = true;
  let inOption = false;
  let optionStart = 0; // where the current option's text starts
  let prevHash = 0;
  let prevHead = false;
  let lastWasQuantity = false; // previous non-space token was a number or ')'
  let afterNumber = false; // previous token was a number (for "300 meters")
  let pendingBoundary = -1; // index just past the answer line that closes a worked example
  let sawQ = false; // a "Q:" / "Question:" marker in this segment (enables "A:" as an answer marker)
  while (i < to) {
    let c = t.charCodeAt(i);
    if (atLineStart) {
      // ---- start of a line: indentation, answer options, list items, doctest prompts
      atLineStart = false;
      let indent = 0;
      while (c === 32 || c === 9) {
        indent += c === 9 ? 4 : 1;
        if (++i >= to) break;
        c = t.charCodeAt(i);
      }
      if (i >= to) break;
      if (c !== 10 && c !== 13) {
        sentenceStart = true;
        if (indent >= 4) cur[C_CODESYN]! += 1;
        if (optionMarkerAt(t, i, to)) {
          cur[C_OPTIONS]! += 1;
          inOption = true;
          let j = i + (c === 40 || c === 91 ? 3 : 2);
          while (j < to && (t.charCodeAt(j) === 32 || t.charCodeAt(j) === 9)) j++;
          optionStart = j;
          const d = j < to ? t.charCodeAt(j) : 0;
          if (
            isDigit(d) ||
            ((d === 45 || d === 36 || d === 46) && j + 1 < to && isDigit(t.charCodeAt(j + 1)))
          ) {
            cur[C_OPTION_NUM]! += 1;
          }
        } else if (isDigit(c)) {
          let j = i + 1;
          while (j < to && isDigit(t.charCodeAt(j))) j++;
          const d = j < to ? t.charCodeAt(j) : 0;
          if ((d === 46 || d === 41) && j + 1 < to && t.charCodeAt(j + 1) === 32) cur[C_LIST]! += 1;
        } else if ((c === 45 || c === 42 || c === 0x2022) && i + 1 < to && t.charCodeAt(i + 1) === 32) {
          cur[C_LIST]! += 1;
        } else if (c === 62 && t.startsWith('>>>', i)) {
          cur[CI_EXAMPLE]! += 1;
        }
      }
    }

    if (((c | 32) - 97) >>> 0 < 26 || (c >= 0xc0 && isLetter(c))) {
      // ---- word token: hash the lower-cased word while reading it
      const start = i;
      let h = FNV_OFFSET;
      let last = 0; // the last four lower-cased characters, one byte each (suffix tests)
      let upper = 0;
      let inner = false; // '_' or camelCase or digits inside: an identifier
      let lastLower = false;
      const firstUpper = (c - 65) >>> 0 < 26;
      for (;;) {
        if ((c - 65) >>> 0 < 26) {
          upper++;
          if (lastLower) inner = true;
          lastLower = false;
          c |= 0x20;
        } else {
          lastLower = (c - 97) >>> 0 < 26;
        }
        h = Math.imul(h ^ c, FNV_PRIME);
        last = (last << 8) | (c & 0xff);
        if (++i >= to) break;
        c = t.charCodeAt(i);
        if (((c | 32) - 97) >>> 0 < 26) continue;
        if ((c - 48) >>> 0 < 10 || c === 95) {
          inner = true;
          continue;
        }
        if (c >= 0xc0 && isLetter(c)) continue;
        // inner apostrophe / period: "don't", "e.g", "node.js"
        if ((c === 39 || c === 0x2019 || c === 46) && i + 1 < to && isLetter(t.charCodeAt(i + 1))) {
          if (c === 0x2019) c = 39;
          continue;
        }
        if (i - start === 1 && (c === 43 || c === 35)) {
          // "c++" / "c#": a single letter followed by "++" or "#"
          const d = i + 1 < to ? t.charCodeAt(i + 1) : 0;
          if (c === 43 && d === 43) {
            h = Math.imul(h ^ 43, FNV_PRIME);
            i++;
            continue;
          }
          if (c === 35 && !isLetter(d) && !isDigit(d)) continue;
        }
        break;
      }
      if (h === 0) h = 1;
      const len = i - start;
      // Per-word counters are updated without data-dependent branches (mispredictions dominate
      // the cost of this loop on real, varied text).
      cur[C_WORDS]! += 1;
      cur[C_LETTERS]! += len;
      cur[C_LONG]! += (8 - len) >>> 31; // len >= 9
      cur[CI_NEG]! += +((last & 0xffffff) === 0x6e2774); // "...n't"
      cur[C_MORPH]! += technicalSuffix(last) & ((6 - len) >>> 31); // len >= 7
      if (inner) cur[C_CODESYN]! += 1;
      cur[C_PROPER]! += +firstUpper & ((1 - len) >>> 31) & (+!sentenceStart | +(upper === len)) & +!inOption;
      // keyword table: the first probe inline; a miss lands on an empty slot whose counter is C_DUMMY
      let s0 = (h ^ (h >>> 15)) & TABLE_MASK;
      const k0 = table[s0 * 4]!;
      if (k0 !== h && k0 !== 0) s0 = tableFind(h);
      cur[table[s0 * 4 + 2]!]! += 1;
      cur[C_VOCAB]! += table[s0 * 4 + 3]!;
      const v = table[s0 * 4 + 1]!;
      if (prevHead) {
        const pv = tableGet(bigramKey(prevHash, h));
        if (pv !== 0) countCategories(pv);
      }
      prevHead = (v & K_HEAD) !== 0;
      prevHash = h;
      let numberWord = false;
      if ((v & K_SPECIAL) !== 0) {
        if ((v & K_MULTICAT) !== 0) countCategories(v & (v - 1)); // the categories after the first
        if (afterNumber && (v & K_UNIT) !== 0) cur[C_MEASURE]! += 1;
        if ((v & K_NUMWORD) !== 0) {
          cur[C_NUMBERS]! += 1; // "three boxes", "twice as many"
          numberWord = true;
        }
      }
      // answer markers ("Answer:", "Q:", "A:", "Output:"); `c` is the character that ended the word
      if (i < to && c === 58) {
        if (h === H_Q || h === H_QUESTION) sawQ = true;
        else if (
          h === H_ANSWER ||
          h === H_ANS ||
          h === H_OUTPUT ||
          h === H_SOLUTION ||
          h === H_ASSISTANT ||
          (h === H_A && sawQ)
        ) {
          const e = closedAnswerEnd(t, i, to);
          if (e > 0) pendingBoundary = e;
        }
      }
      sentenceStart = false;
      lastWasQuantity = false;
      afterNumber = numberWord; // "three meters"
      if (c === 32 && i < to) i++; // the space after a word, as the space case below (saves an iteration)
      continue;
    }

    if (c === 32) {
      i++; // spaces keep lastWasQuantity / afterNumber: "3 + 4", "300 meters"
      continue;
    }

    if ((c - 48) >>> 0 < 10) {
      // ---- number token: 12, 3.5, 1,000 (1/2 counts as two numbers and one operator)
      i++;
      while (i < to) {
        const d = t.charCodeAt(i);
        if ((d - 48) >>> 0 < 10) i++;
        else if ((d === 46 || d === 44) && i + 1 < to && isDigit(t.charCodeAt(i + 1))) i += 2;
        else break;
      }
      cur[C_NUMBERS]! += 1;
      lastWasQuantity = true;
      afterNumber = true;
      sentenceStart = false;
      prevHead = false;
      continue;
    }

    if (c === 10) {
      // ---- end of line
      if (inOption) {
        endOption(i - optionStart);
        inOption = false;
      }
      i++;
      lastWasQuantity = false;
      afterNumber = false;
      prevHead = false;
      atLineStart = true;
      if (i === pendingBoundary) {
        // A worked example ended: keep its counters in `prev`, start a fresh segment.
        prev.set(cur);
        cur.fill(0);
        boundaries++;
        segStart = i;
        skipped = 0;
        pendingBoundary = -1;
        sawQ = false;
      }
      continue;
    }

    // ---- everything else, one character at a time
    i++;
    switch (c) {
      case 9:
      case 13:
        continue; // like spaces
      case 63: // ?
        cur[C_QMARK]! += 1;
        cur[C_SENT]! += 1;
        sentenceStart = true;
        break;
      case 46: // .
      case 33: // !
        if (i >= to || isSpace(t.charCodeAt(i))) {
          cur[C_SENT]! += 1;
          sentenceStart = true;
        }
        break;
      case 61: {
        // '=' ; '==' '=>' are code
        const d = i < to ? t.charCodeAt(i) : 0;
        if (d === 61 || d === 62) {
          cur[C_CODESYN]! += 1;
          i++;
        } else cur[C_ARITH]! += 1;
        break;
      }
      case 43: // +
      case 94: // ^
      case 60: // <
      case 62: // >
        cur[C_ARITH]! += 1;
        break;
      case 42: // *
      case 47: // /
      case 45: // -
      case 37: // %
        if (lastWasQuantity) {
          if (c === 37) cur[C_MEASURE]! += 1;
          else cur[C_ARITH]! += 1;
        }
        break;
      case 36: // $: money before a digit, otherwise math mode
        if (i < to && isDigit(t.charCodeAt(i))) cur[C_MEASURE]! += 1;
        else cur[C_FORMAL]! += 1;
        break;
      case 92: // backslash + letters: LaTeX command
        if (i < to && isLetter(t.charCodeAt(i))) cur[C_FORMAL]! += 1;
        break;
      case 123: // {
      case 125: // }
      case 59: // ;
        cur[C_CODESYN]! += 1;
        break;
      case 40: // ( directly after a word or identifier: a call
        if (i >= 2) {
          const p = t.charCodeAt(i - 2);
          if (isLetter(p) || isDigit(p) || p === 95) cur[C_CODESYN]! += 1;
        }
        break;
      case 96: // `
        if (i + 1 < to && t.charCodeAt(i) === 96 && t.charCodeAt(i + 1) === 96) {
          cur[C_FENCES]! += 1;
          i += 2;
        } else cur[C_CODESYN]! += 1;
        break;
      case 95: // _ outside a word (a blank to fill, a rule): skip the run
        while (i < to && t.charCodeAt(i) === 95) i++;
        break;
      case 34: // "
      case 0x201c:
      case 0x201d:
        cur[C_QUOTES]! += 1;
        break;
      default:
        if (c >= 0x370) {
          if (isFormalSymbol(c)) cur[C_FORMAL]! += 1;
          else if (c >= 0x400) cur[C_NONLATIN]! += 1;
        } else if (c === 0xb1 || c === 0xd7 || c === 0xf7 || (c >= 0xb2 && c <= 0xbe && isFormalSymbol(c))) {
          cur[C_FORMAL]! += 1;
        }
    }
    lastWasQuantity = c === 41; // ')' closes a quantity: "(3 + 4) * 2"
    afterNumber = false;
    prevHead = false;
  }
  if (inOption) endOption(to - optionStart);
}

function endOption(len: number): void {
  const l = Math.max(0, len);
  cur[C_OPTION_CHARS]! += l;
  cur[C_OPTION_SQ]! += l * l;
}

const pack = (s: string): number => [...s].reduce((acc, ch) => (acc << 8) | ch.charCodeAt(0), 0) >>> 0;
const SUFFIX_BITS = 8;
const suffixSlot = (key: number): number => Math.imul(key, 0x9e3779b1) >>> (32 - SUFFIX_BITS);
const suffix3 = new Int32Array(1 << SUFFIX_BITS).fill(-1);
const suffix4 = new Int32Array(1 << SUFFIX_BITS).fill(-1);
for (const [suffixes, list] of [
  [suffix3, SUFFIX3],
  [suffix4, SUFFIX4],
] as const) {
  for (const suf of list) {
    const key = pack(suf) | 0;
    const slot = suffixSlot(key);
    if (suffixes[slot] !== -1) throw new Error(`suffix table collision: ${suf}`);
    suffixes[slot] = key;
  }
}

/** 1 when the word whose last four letters are packed in `last` ends with a technical suffix, else 0. */
function technicalSuffix(last: number): number {
  const k3 = last & 0xffffff;
  const k4 = last | 0;
  return +(suffix3[suffixSlot(k3)] === k3) | +(suffix4[suffixSlot(k4)] === k4);
}

/**
 * Worked examples closed inside t[from, to) (the unscanned middle of a long message): adds them to
 * `boundaries` and returns the index where the last one's answer line ends (0 when none).
 * One native search for ':' over the gap; the word before each colon is compared in place.
 */
function gapExamples(t: string, from: number, to: number, end: number): number {
  let last = 0;
  let at = t.indexOf(':', from);
  while (at >= 0 && at < to) {
    for (const m of GAP_MARKERS) {
      const s = at - m.length;
      if (s < from) continue;
      let k = 0;
      while (k < m.length && (t.charCodeAt(s + k) | 32) === m.charCodeAt(k)) k++;
      if (k < m.length || (s > 0 && isLetter(t.charCodeAt(s - 1)))) continue;
      const e = closedAnswerEnd(t, at, end);
      if (e > 0 && e <= to) {
        boundaries++;
        last = e;
      }
      break;
    }
    at = t.indexOf(':', at + 1);
  }
  return last;
}

/** Counter indices by name, for ./features.ts (C_WORDS is COUNTER.WORDS). */
export const COUNTER = {
  WORDS: C_WORDS,
  OPTION_SQ: C_OPTION_SQ,
  LETTERS: C_LETTERS,
  LONG: C_LONG,
  SENT: C_SENT,
  QMARK: C_QMARK,
  LIST: C_LIST,
  OPTIONS: C_OPTIONS,
  OPTION_CHARS: C_OPTION_CHARS,
  NUMBERS: C_NUMBERS,
  ARITH: C_ARITH,
  FORMAL: C_FORMAL,
  CODESYN: C_CODESYN,
  PROPER: C_PROPER,
  VOCAB: C_VOCAB,
  QUOTES: C_QUOTES,
  NONLATIN: C_NONLATIN,
  MORPH: C_MORPH,
  FENCES: C_FENCES,
  OPTION_NUM: C_OPTION_NUM,
  MEASURE: C_MEASURE,
  CAT0: C_CAT0,
} as const;

/** Category bits by name, for ./features.ts (K_MATH is CATEGORY.MATH). */
export const CATEGORY = {
  REASON: K_REASON,
  LOGIC: K_LOGIC,
  NEG: K_NEG,
  COMPARE: K_COMPARE,
  MATH: K_MATH,
  QUANT: K_QUANT,
  STEPS: K_STEPS,
  CODE: K_CODE,
  WRITE: K_WRITE,
  LANG: K_LANG,
  DS: K_DS,
  ALGO: K_ALGO,
  CONSTRAINT: K_CONSTRAINT,
  FORMAT: K_FORMAT,
  CREATIVE: K_CREATIVE,
  TRANSFORM: K_TRANSFORM,
  SMALLTALK: K_SMALLTALK,
  EXPERT: K_EXPERT,
  SCIENCE: K_SCIENCE,
  PRONOUN: K_PRONOUN,
  WHYHOW: K_WHYHOW,
  FACTOID: K_FACTOID,
  MULTI: K_MULTI,
  EXAMPLE: K_EXAMPLE,
  UNIT: K_UNIT,
  CODEOBJ: K_CODEOBJ,
  NUMWORD: K_NUMWORD,
  PROOF: K_PROOF,
} as const;

/** What scanTask found; one object, reused by every call. */
export interface TaskScan {
  /** The task's counters, indexed by COUNTER (valid until the next call). */
  counters: Float64Array;
  /** Index in the text where the task begins (after the worked examples). */
  start: number;
  /** Characters of the task from its first non-space character. */
  chars: number;
  /** Worked examples closed before the task. */
  examples: number;
  /** Scale from the scanned part of the task to its whole length (long texts skip a middle). */
  scale: number;
}

const result: TaskScan = { counters: cur, start: 0, chars: 0, examples: 0, scale: 1 };

/**
 * Scan the text of the task's message: up to SCAN_LIMIT characters whole; longer ones as a head
 * and a tail window (the middle only searched for worked examples, natively), with counts scaled
 * to the task's full length.
 */
export function scanTask(t: string): TaskScan {
  const n = t.length;
  cur.fill(0);
  prev.fill(0);
  segStart = 0;
  boundaries = 0;
  skipped = 0;
  if (n <= SCAN_LIMIT) {
    scan(t, 0, n);
  } else {
    scan(t, 0, SCAN_HEAD);
    const resumeAt = n - SCAN_TAIL;
    const gapEnd = gapExamples(t, SCAN_HEAD, resumeAt, n);
    if (gapEnd > 0) {
      // the task starts after a worked example inside the gap: the head belongs to the examples
      prev.set(cur);
      cur.fill(0);
      segStart = gapEnd;
      skipped = resumeAt - gapEnd;
    }
    const segBefore = segStart;
    scan(t, resumeAt, n);
    if (segStart === segBefore && gapEnd <= 0) skipped = resumeAt - SCAN_HEAD; // the task spans the gap
  }
  // A trivially short last segment after a worked example is an appendix, not the task.
  let acc = cur;
  if (boundaries > 0 && cur[C_WORDS]! < 3) {
    for (let k = 0; k < NUM_COUNTERS; k++) prev[k] = prev[k]! + cur[k]!;
    acc = prev;
  }
  let lead = segStart;
  while (lead < n && isSpace(t.charCodeAt(lead))) lead++;
  result.counters = acc;
  result.start = segStart;
  result.chars = n - lead;
  result.examples = boundaries;
  result.scale = (n - segStart) / Math.max(1, n - segStart - skipped);
  return result;
}
