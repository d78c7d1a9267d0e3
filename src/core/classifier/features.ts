// Feature extraction for the complexity classifier: request -> fixed-order vector of numbers.
//
// Design (hot path, runs on every `model: "auto"` request):
// - The *task* is the last user turn's final item. Worked examples (few-shot "...Answer: B" blocks)
//   before it are detected while scanning and only counted (`worked_examples`), so the features
//   describe the question that must be answered, not the demonstrations.
// - One forward pass over the task text: a hand-written tokenizer (no regexes) hashes each
//   lower-cased word (FNV-1a) and looks it up in an open-addressing table of keyword categories;
//   a few two-word phrases ("at least", "how many") are found through a bigram key.
// - Very long messages are scanned as a head window plus a tail window (see SCAN_*); count
//   features are scaled up to the full length, so cost stays bounded (200 KB < 1 ms).
// - Other messages (system prompt, earlier turns, tool results) contribute only cheap
//   structural features (lengths, turn counts, code fences), never a full scan.
//
// The module is self-contained (type-only imports) so the offline training script can run it
// directly with Node's type stripping; it must stay free of I/O and of non-erasable syntax.
import type { ChatCompletionRequest, ChatMessage } from '../openai.js';

/** Feature names in vector order. The model file lists them too; a mismatch is a load error. */
export const FEATURE_NAMES = [
  // size and structure of the task
  'task_length', // log1p(characters of the task)
  'avg_word_length', // mean letters per word
  'long_word_share', // share of words with 9+ letters (rare, technical vocabulary)
  'sentences', // log1p(sentences)
  'questions', // log1p(question marks)
  'multi_part', // log1p(list items, extra questions, "also/additionally/second...")
  'answer_options', // log1p(lines that are answer options: "A) ...", "(B) ...")
  'option_length', // log1p(mean characters per answer option)
  // math and formal notation
  'numbers', // log1p(numeric quantities)
  'arithmetic', // log1p(arithmetic operators between quantities)
  'formal_notation', // log1p(LaTeX commands, math symbols, Greek letters)
  'math_terms', // log1p(words of mathematics: solve, probability, integral...)
  'quantity_terms', // log1p(word-problem vocabulary: each, per, total, how many, units...)
  // reasoning
  'reasoning_terms', // explain, why-type demands, prove, derive, justify, analyse...
  'logic_connectives', // because, therefore, if, unless, although, assume...
  'negation', // not, never, except, n't...
  'comparison', // more, less, best, most likely, than...
  'step_terms', // first, then, next, finally, step...
  'why_how', // why / how questions
  'factoid_question', // what / which / who / when / where
  // code
  'code_syntax', // braces, semicolons, fences, indented lines, snake_case / camelCase identifiers, calls
  'code_terms', // function, class, bug, compile, api...
  'code_request', // a write/implement verb together with a programming object
  'language_names', // python, javascript, sql...
  'data_structures', // list, array, string, tuple, tree...
  'algorithm_terms', // recursion, complexity, dynamic programming, shortest path...
  // demands on the output
  'constraints', // exactly, must, only, at least, at most, no more than...
  'output_format', // json, table, markdown, bullet, csv...
  'inline_examples', // "for example", "e.g.", assert, >>>, Input/Output samples inside the task
  // kind of task
  'creative_writing', // story, poem, email, essay...
  'transform_task', // summarize, translate, rewrite, paraphrase...
  'small_talk', // hi, thanks, joke...
  'expert_terms', // domain vocabulary: medicine, law, finance, physics, chemistry, biology...
  'technical_morphology', // words with technical suffixes (-ology, -osis, -ase, -ium, -ical...)
  'scientific_method', // experiment, hypothesis, variable, control...
  'proper_nouns', // log1p(capitalised words inside sentences and acronyms)
  'pronouns', // he, she, they, it... (who-refers-to-whom load)
  'blank_slot', // a fill-in-the-blank "_" in the task
  'quoted_text', // log1p(quote characters): passages or strings to work on
  'non_latin_share', // share of characters in non-Latin scripts
  // context around the task
  'worked_examples', // log1p(solved examples before the task: few-shot block or short assistant answers)
  'context_length', // log1p(characters outside the task: few-shot block, system prompt, earlier turns)
  'turns', // log1p(earlier user turns)
  'system_prompt', // log1p(characters of system/developer messages)
  'tools', // log1p(tools offered)
  'structured_output', // response_format json_schema (1) / json_object (0.5)
  'images', // log1p(image parts)
  'code_in_context', // code fences in earlier messages
] as const;

export type FeatureName = (typeof FEATURE_NAMES)[number];
export const NUM_FEATURES = FEATURE_NAMES.length;
const F = Object.fromEntries(FEATURE_NAMES.map((n, i) => [n, i])) as Record<FeatureName, number>;

// ---------------------------------------------------------------------------------------------
// Keyword categories. One bit each in the lookup table's value.
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
/** Internal: word starts a listed two-word phrase (check the bigram table on the next word). */
const K_HEAD = 1 << 29;

/** Category bit -> counter index (counters below). */
const CATEGORY_COUNTER: Array<[number, number]> = [];

const WORDS: Array<[number, string]> = [
  [
    K_REASON,
    'explain explains explaining explanation why prove proves proving proof derive derivation justify justification ' +
      'analyze analyse analysis analyzing reason reasoning reasons deduce deduction infer inference evaluate ' +
      'evaluation critique critically argue argument arguments demonstrate conclude conclusion implication ' +
      'implications implies imply interpret interpretation assess reasoned rigorous rigorously logically ' +
      'contradiction counterexample tradeoff tradeoffs trade-offs nuanced hypothetical',
  ],
  [
    K_LOGIC,
    'because therefore thus hence consequently since unless if then although though however whereas ' +
      'otherwise given assuming assume assumes suppose supposing provided whether implies iff despite ' +
      'nevertheless nonetheless accordingly so',
  ],
  [
    K_NEG,
    'not no never none neither nor without except cannot false incorrect untrue nothing nobody nowhere ' +
      'unlike fails fail excluding',
  ],
  [
    K_COMPARE,
    'more less most least best better worse worst greater fewer larger smaller higher lower bigger ' +
      'rather than likely unlikely probably compared comparison versus vs faster slower stronger weaker ' +
      'closest farthest maximum minimum',
  ],
  [
    K_MATH,
    'equation equations solve solving solution calculate calculation compute computation sum product ' +
      'probability integral integrate derivative differentiate theorem lemma corollary matrix matrices ' +
      'vector vectors polynomial variable variables ratio ratios percent percentage average mean median ' +
      'mode fraction fractions divisible divisor prime primes factor factors factorial remainder modulo ' +
      'sqrt square squared cube cubed root roots exponent exponential logarithm log ln sin cos tan ' +
      'geometry angle angles triangle circle radius diameter area volume perimeter algebra algebraic ' +
      'integer integers digit digits real complex limit converge convergent series sequence expected ' +
      'variance deviation equals minus plus divided multiply multiplied quotient inequality function ' +
      'functions graph slope intercept coefficient coefficients linear quadratic arithmetic geometric ' +
      'permutation permutations combination combinations odd even decimal decimals numerator denominator ' +
      'parabola hypotenuse rational irrational infinite finite set sets subset subsets modular congruent ' +
      'eigenvalue eigenvalues determinant symmetric isomorphic homomorphism group ring field topology ' +
      'trigonometric calculus statistics statistical regression',
  ],
  [
    K_QUANT,
    'each per total twice half thrice double triple remaining remains left altogether every cost costs ' +
      'price prices spent spend spends earn earns earned paid pay pays dollars dollar cents hours hour ' +
      'minutes minute seconds days day weeks week months years miles mile km kilometers meters meter ' +
      'feet foot inches inch kg kilograms grams gram pounds liters litres gallons units unit rate speed ' +
      'profit discount tax salary wage times dozen pairs amount quantity',
  ],
  [
    K_STEPS,
    'first firstly then next finally afterwards subsequently step steps stage stages phase phases ' +
      'sequence order process procedure before after later initially eventually',
  ],
  [
    K_CODE,
    'function functions code coding program programs programming script scripts class classes method ' +
      'methods api apis bug bugs debug error errors exception compile compiler runtime library module ' +
      'modules variable parameter parameters argument return returns loop loops regex query queries ' +
      'database endpoint server client framework implementation unittest test tests testing syntax ' +
      'refactor refactoring repository docker kubernetes deploy thread threads async concurrency ' +
      'pointer pointers memory input inputs output outputs boolean int float char null lambda callback',
  ],
  [
    K_WRITE,
    'write writes writing implement implementing create build develop design construct generate ' +
      'code develop compose draft craft produce make',
  ],
  [
    K_LANG,
    'python javascript typescript java rust golang sql bash shell ruby php swift kotlin scala haskell ' +
      'html css perl lua julia matlab fortran cobol assembly c++ c# react node.js nodejs pandas numpy ' +
      'pytorch tensorflow django flask spring linux powershell',
  ],
  [
    K_DS,
    'list lists array arrays string strings tuple tuples dictionary dictionaries dict hashmap map tree ' +
      'trees graph graphs node nodes stack queue heap hash linked element elements index indices ' +
      'substring substrings sublist sublists character characters binary bit bits matrix nested key keys ' +
      'value values pair pairs sequence',
  ],
  [
    K_ALGO,
    'algorithm algorithms complexity efficient efficiently optimal optimize optimise optimization ' +
      'recursion recursive recursively greedy memoization traverse traversal shortest longest path paths ' +
      'subsequence subarray palindrome permutations combinations sort sorted sorting search searching ' +
      'bfs dfs dijkstra backtracking iterate iterative lcm gcd fibonacci',
  ],
  [
    K_CONSTRAINT,
    'exactly must only strictly ensure ensuring required require requires requirement requirements ' +
      'limit limited maximum minimum precisely always never specific specified constraint constraints ' +
      'condition conditions mandatory shall without avoid preserve satisfy satisfies',
  ],
  [
    K_FORMAT,
    'json table tables markdown bullet bullets bulleted format formatted formatting csv yaml xml outline ' +
      'headings heading paragraph paragraphs sentences words concise brief briefly template numbered ' +
      'columns column schema',
  ],
  [
    K_CREATIVE,
    'story stories poem poems poetry essay email letter blog tweet song lyrics haiku limerick slogan ' +
      'speech dialogue narrative fiction character characters creative imagine pretend roleplay persona ' +
      'joke jokes rap sonnet tagline advertisement',
  ],
  [
    K_TRANSFORM,
    'summarize summarise summary translate translation rewrite rephrase paraphrase extract classify ' +
      'categorize proofread edit shorten simplify convert reformat correct tl;dr',
  ],
  [
    K_SMALLTALK,
    'hi hello hey thanks thank cheers lol please favorite favourite fun weather recommend suggest tips ' +
      'ideas goodbye bye hobby',
  ],
  [
    K_EXPERT,
    // medicine and biology
    'diagnosis diagnose patient patients clinical symptom symptoms disease syndrome drug drugs dosage ' +
      'pathology pharmacology antibody antibodies enzyme enzymes protein proteins gene genes genetic ' +
      'genome dna rna chromosome chromosomes mutation cell cells cellular organism organisms species ' +
      'evolution ecosystem photosynthesis mitosis meiosis metabolism hormone hormones neuron neurons ' +
      'tissue bacteria virus viruses immune infection receptor membrane ' +
      // physics and chemistry
      'quantum relativity thermodynamics entropy velocity acceleration momentum energy kinetic potential ' +
      'force forces electric electrical voltage current circuit resistance magnetic wavelength frequency ' +
      'isotope electron electrons proton protons neutron neutrons atom atoms atomic nucleus molecule ' +
      'molecules molecular chemical compound compounds reaction reactions oxidation acid acids base ' +
      'solubility catalyst equilibrium density pressure gravity gravitational friction orbit ' +
      'radiation photon wave waves ' +
      // law, finance, economics
      'legal law laws court statute plaintiff defendant contract liability tort jurisdiction constitutional ' +
      'amendment precedent negligence accounting finance financial investment portfolio asset assets ' +
      'liabilities equity bond bonds interest inflation gdp monetary fiscal elasticity marginal ' +
      'economics economic macroeconomics microeconomics revenue depreciation ' +
      // philosophy, social science, engineering, computing theory
      'philosophy philosophical ethics ethical epistemology ontology metaphysics utilitarian ' +
      'hypothesis empirical theory theories paradigm cognitive psychological sociological ' +
      'semantics syntax protocol encryption cryptography compiler kernel latency throughput bandwidth',
  ],
  [
    K_SCIENCE,
    'experiment experiments experimental investigation investigate hypothesis variable variables control ' +
      'controlled measure measured measurement measurements observe observed observation observations ' +
      'data trial trials results conclusion predict prediction sample procedure evidence',
  ],
  [K_PRONOUN, 'he she they it him her them his hers their theirs its himself herself themselves'],
  [K_WHYHOW, 'why how'],
  [K_FACTOID, 'what which who whom whose when where'],
  [
    K_MULTI,
    'also additionally furthermore moreover besides second secondly third thirdly fourth respectively ' +
      'both',
  ],
  [K_EXAMPLE, 'example examples e.g eg instance sample samples assert expected'],
];

/** Two-word phrases: "first second" -> categories. */
const PHRASES: Array<[number, string]> = [
  [K_REASON, 'by step|show that|prove that|explain why|what if|pros and|trade offs|in depth|think through'],
  [K_QUANT | K_COMPARE, 'more than|less than|fewer than|greater than|how many|how much|how long|how far|how old'],
  [K_CONSTRAINT, 'at least|at most|no more|no less|no longer|make sure|up to|no fewer'],
  [K_ALGO, 'dynamic programming|time complexity|space complexity|big o|binary search|linked list|hash table'],
  [K_CODE, 'unit test|unit tests|test cases|test case|edge cases|edge case|command line|pull request'],
  [K_COMPARE, 'most likely|best describes|best explains|least likely'],
  [K_EXAMPLE, 'for example|for instance|such as|sample input|sample output|example input|example output'],
  [K_MULTI, 'as well|in addition'],
];

// ---------------------------------------------------------------------------------------------
// Open-addressing hash table: FNV-1a hash of the lower-cased word -> category bits.
const TABLE_BITS = 13;
const TABLE_SIZE = 1 << TABLE_BITS;
const TABLE_MASK = TABLE_SIZE - 1;
const tableKeys = new Int32Array(TABLE_SIZE);
const tableVals = new Int32Array(TABLE_SIZE);

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
    const k = tableKeys[i];
    if (k === h) {
      tableVals[i] = tableVals[i]! | bits;
      return;
    }
    if (k === 0) {
      tableKeys[i] = h;
      tableVals[i] = bits;
      return;
    }
    i = (i + 1) & TABLE_MASK;
  }
}
function tableGet(h: number): number {
  let i = slot(h);
  for (;;) {
    const k = tableKeys[i];
    if (k === h) return tableVals[i]!;
    if (k === 0) return 0;
    i = (i + 1) & TABLE_MASK;
  }
}

/** Words exactly as the tokenizer produces them: lower-case letters, digits, '_', inner '.', '+', '#', "'". */
for (const [bits, list] of WORDS) {
  for (const w of list.split(/\s+/)) if (w) tableAdd(hashWord(w), bits);
}
for (const [bits, list] of PHRASES) {
  for (const phrase of list.split('|')) {
    const [a, b] = phrase.split(' ') as [string, string];
    const ha = hashWord(a);
    tableAdd(ha, K_HEAD);
    tableAdd(bigramKey(ha, hashWord(b)), bits);
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
const C_WORDS = 1;
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
const C_BLANK = 14;
const C_QUOTES = 15;
const C_NONLATIN = 16;
const C_MORPH = 17;
const C_FENCES = 18;
const C_WRITE = 19; // a write/implement verb seen (position-independent flag counter)
const C_CAT0 = 20; // category counters start here, one per category bit 0..23
const NUM_CATEGORIES = 24;
const NUM_COUNTERS = C_CAT0 + NUM_CATEGORIES;

const CATEGORY_NAMES: Array<[number, string]> = [
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
];
for (let b = 0; b < NUM_CATEGORIES; b++) CATEGORY_COUNTER.push([1 << b, C_CAT0 + b]);
const cat = (bit: number): number => C_CAT0 + (31 - Math.clz32(bit));

// Scratch state (the classifier is synchronous, so module-level buffers are safe and allocation-free).
let cur = new Float64Array(NUM_COUNTERS);
let prev = new Float64Array(NUM_COUNTERS);
/** Scanner outputs besides the counters. */
let segStart = 0; // index in the text where the current segment (the task) begins
let boundaries = 0; // worked examples closed inside the scanned text
let skipped = 0; // characters of the current segment not scanned (long-text window gap)

/** Long texts: scan the first HEAD and the last TAIL characters only. */
export const SCAN_LIMIT = 24 * 1024;
const SCAN_HEAD = 6 * 1024;
const SCAN_TAIL = 16 * 1024;

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
 * answer follows on this or the next line, and a substantial, non-option text comes after it.
 * Returns the index just past the answer line, or -1.
 */
function closedAnswerEnd(t: string, colon: number, end: number): number {
  let j = colon + 1;
  while (j < end && isSpace(t.charCodeAt(j))) j++;
  if (j >= end) return -1; // open marker: the task's own "Answer:"
  let k = t.indexOf('\n', j);
  if (k < 0 || k >= end) return -1; // the answer runs to the end: nothing follows
  // Something substantial must follow, and not an answer option ("B) ...").
  let m = k + 1;
  while (m < end && isSpace(t.charCodeAt(m))) m++;
  if (end - m < 16) return -1;
  if (optionMarkerAt(t, m, end)) return -1;
  k++;
  return k;
}

/** Scan t[from, to) into `cur`, starting a new segment at each worked-example boundary. */
function scan(t: string, from: number, to: number): void {
  let i = from;
  let lineStart = true;
  let indent = 0;
  let sentenceStart = true;
  let inOption = false;
  let prevHash = 0;
  let prevHead = false;
  let lastWasQuantity = false; // previous non-space token was a number or ')'
  let pendingBoundary = -1; // index at which the current worked example ends
  let sawQ = false; // a "Q:" / "Question:" marker in this segment (enables "A:" as an answer marker)
  while (i < to) {
    if (pendingBoundary >= 0 && i >= pendingBoundary) {
      // A worked example ended: keep its counters in `prev`, start a fresh segment.
      const tmp = prev;
      prev = cur;
      cur = tmp;
      cur.fill(0);
      boundaries++;
      segStart = i;
      skipped = 0;
      pendingBoundary = -1;
      sawQ = false;
    }
    const acc = cur;
    let c = t.charCodeAt(i);

    if (lineStart) {
      if (c === 32 || c === 9) {
        indent += c === 9 ? 4 : 1;
        i++;
        continue;
      }
      if (c === 10 || c === 13) {
        indent = 0;
        i++;
        continue;
      }
      lineStart = false;
      sentenceStart = true;
      inOption = false;
      if (indent >= 4) acc[C_CODESYN]! += 1;
      if (optionMarkerAt(t, i, to)) {
        acc[C_OPTIONS]! += 1;
        inOption = true;
      } else if (isDigit(c)) {
        let j = i + 1;
        while (j < to && isDigit(t.charCodeAt(j))) j++;
        const d = j < to ? t.charCodeAt(j) : 0;
        if ((d === 46 || d === 41) && j + 1 < to && t.charCodeAt(j + 1) === 32) acc[C_LIST]! += 1;
      } else if ((c === 45 || c === 42 || c === 0x2022) && i + 1 < to && t.charCodeAt(i + 1) === 32) {
        acc[C_LIST]! += 1;
      } else if (c === 62 && t.startsWith('>>>', i)) {
        acc[cat(K_EXAMPLE)]! += 1;
      }
    }
    if (inOption && c !== 10) acc[C_OPTION_CHARS]! += 1;

    if (isLetter(c)) {
      // ---- word token
      const start = i;
      let h = FNV_OFFSET;
      let upper = 0;
      let inner = false; // '_' or camelCase or digits inside: an identifier
      let lastLower = false;
      const firstUpper = c >= 65 && c <= 90;
      for (;;) {
        if (c >= 65 && c <= 90) {
          upper++;
          if (lastLower) inner = true;
          lastLower = false;
          c |= 0x20;
        } else {
          lastLower = c >= 97 && c <= 122;
        }
        h = Math.imul(h ^ c, FNV_PRIME);
        i++;
        if (i >= to) break;
        c = t.charCodeAt(i);
        if (isLetter(c)) continue;
        if (isDigit(c) || c === 95) {
          inner = true;
          continue;
        }
        // inner apostrophe / period / plus / hash: "don't", "e.g", "node.js", "c++", "c#"
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
      acc[C_WORDS]! += 1;
      acc[C_LETTERS]! += len;
      if (len >= 9) acc[C_LONG]! += 1;
      if (inner) acc[C_CODESYN]! += 1;
      if (firstUpper && len > 1 && (!sentenceStart || upper === len) && !inOption) acc[C_PROPER]! += 1;
      if (len >= 7 && technicalSuffix(t, i)) acc[C_MORPH]! += 1;
      // negated contractions: "...n't"
      if (len >= 4 && t.charCodeAt(i - 1) === 116 && t.charCodeAt(i - 2) === 39 && (t.charCodeAt(i - 3) | 32) === 110) {
        acc[cat(K_NEG)]! += 1;
      }
      let v = tableGet(h);
      if (prevHead) {
        const pv = tableGet(bigramKey(prevHash, h));
        if (pv !== 0) v |= pv;
      }
      prevHead = (v & K_HEAD) !== 0;
      prevHash = h;
      v &= ~K_HEAD;
      if (v !== 0) {
        if (v & K_WRITE) acc[C_WRITE]! += 1;
        while (v !== 0) {
          const low = v & -v;
          acc[C_CAT0 + 31 - Math.clz32(low)]! += 1;
          v ^= low;
        }
      }
      // answer markers ("Answer:", "Q:", "A:", "Output:")
      if (i < to && t.charCodeAt(i) === 58) {
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
      continue;
    }

    if (isDigit(c)) {
      // ---- number token: 12, 3.5, 1,000, 1/2 counts as two numbers and one operator
      i++;
      while (i < to) {
        const d = t.charCodeAt(i);
        if (isDigit(d)) i++;
        else if ((d === 46 || d === 44) && i + 1 < to && isDigit(t.charCodeAt(i + 1))) i += 2;
        else break;
      }
      acc[C_NUMBERS]! += 1;
      lastWasQuantity = true;
      sentenceStart = false;
      prevHead = false;
      continue;
    }

    // ---- everything else, one character at a time
    i++;
    switch (c) {
      case 10: // \n
        lineStart = true;
        indent = 0;
        inOption = false;
        lastWasQuantity = false;
        continue;
      case 32:
      case 9:
      case 13:
        continue; // spaces do not reset lastWasQuantity
      case 63: // ?
        acc[C_QMARK]! += 1;
        acc[C_SENT]! += 1;
        sentenceStart = true;
        break;
      case 46: // .
      case 33: // !
        if (i >= to || isSpace(t.charCodeAt(i))) {
          acc[C_SENT]! += 1;
          sentenceStart = true;
        }
        break;
      case 61: {
        // '=' ; '==' '=>' are code
        const d = i < to ? t.charCodeAt(i) : 0;
        if (d === 61 || d === 62) {
          acc[C_CODESYN]! += 1;
          i++;
        } else acc[C_ARITH]! += 1;
        break;
      }
      case 43: // +
      case 94: // ^
      case 60: // <
      case 62: // >
        acc[C_ARITH]! += 1;
        break;
      case 42: // *
      case 47: // /
      case 45: // -
      case 37: // %
        if (lastWasQuantity) acc[c === 37 ? cat(K_QUANT) : C_ARITH]! += 1;
        break;
      case 36: // $: money before a digit, otherwise math mode
        if (i < to && isDigit(t.charCodeAt(i))) acc[cat(K_QUANT)]! += 1;
        else acc[C_FORMAL]! += 1;
        break;
      case 92: // backslash + letters: LaTeX command
        if (i < to && isLetter(t.charCodeAt(i))) acc[C_FORMAL]! += 1;
        break;
      case 123: // {
      case 125: // }
      case 59: // ;
        acc[C_CODESYN]! += 1;
        break;
      case 40: // ( directly after a word or identifier: a call
        if (i >= 2) {
          const p = t.charCodeAt(i - 2);
          if (isLetter(p) || isDigit(p) || p === 95) acc[C_CODESYN]! += 1;
        }
        break;
      case 96: // `
        if (i + 1 < to && t.charCodeAt(i) === 96 && t.charCodeAt(i + 1) === 96) {
          acc[C_FENCES]! += 1;
          i += 2;
        } else acc[C_CODESYN]! += 1;
        break;
      case 95: // _ outside a word: a blank to fill
        acc[C_BLANK]! += 1;
        while (i < to && t.charCodeAt(i) === 95) i++;
        break;
      case 34: // "
      case 0x201c:
      case 0x201d:
        acc[C_QUOTES]! += 1;
        break;
      default:
        if (c >= 0x370) {
          if (isFormalSymbol(c)) acc[C_FORMAL]! += 1;
          else if (c >= 0x400) acc[C_NONLATIN]! += 1;
        } else if (c === 0xb1 || c === 0xd7 || c === 0xf7 || (c >= 0xb2 && c <= 0xbe && isFormalSymbol(c))) {
          acc[C_FORMAL]! += 1;
        }
    }
    lastWasQuantity = c === 41; // ')' closes a quantity: "(3 + 4) * 2"
    prevHead = false;
  }
}

/** Word ends (t[end-1]) with a technical suffix: -ology, -osis, -itis, -ase, -ium, -ical, -ics, -ide, -ometry. */
function technicalSuffix(t: string, end: number): boolean {
  const a = t.charCodeAt(end - 1) | 32;
  const b = t.charCodeAt(end - 2) | 32;
  const c = t.charCodeAt(end - 3) | 32;
  if (a === 121 && b === 103 && c === 111) return true; // -ogy (biology, technology)
  if (a === 115 && b === 105 && c === 115) return (t.charCodeAt(end - 4) | 32) === 111; // -osis
  if (a === 115 && b === 105 && c === 116) return (t.charCodeAt(end - 4) | 32) === 105; // -itis
  if (a === 101 && b === 115 && c === 97) return true; // -ase (enzymes)
  if (a === 109 && b === 117 && c === 105) return true; // -ium
  if (a === 108 && b === 97 && c === 99) return (t.charCodeAt(end - 4) | 32) === 105; // -ical
  if (a === 115 && b === 99 && c === 105) return true; // -ics
  if (a === 101 && b === 100 && c === 105) return true; // -ide
  if (a === 121 && b === 114 && c === 116) return (t.charCodeAt(end - 4) | 32) === 101; // -etry (geometry)
  return false;
}

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
    if (text.length > 0 && m.role !== 'system' && m.role !== 'developer' && text.includes('```')) contextFences++;
  }

  const t = ti >= 0 && msgs[ti] ? messageText(msgs[ti]!) : '';
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
    const segBefore = segStart;
    scan(t, resumeAt, n);
    if (segStart === segBefore) skipped = resumeAt - SCAN_HEAD; // the task spans the gap
  }
  // A trivially short last segment after a worked example is an appendix, not the task.
  let acc = cur;
  if (boundaries > 0 && acc[C_WORDS]! < 3) {
    for (let k = 0; k < NUM_COUNTERS; k++) prev[k] = prev[k]! + acc[k]!;
    acc = prev;
  }
  const taskChars = n - segStart;
  const scanned = Math.max(1, taskChars - skipped);
  const scale = taskChars / scanned;
  const examples = boundaries + shortAnswers;
  if (task) {
    task.message = ti;
    task.start = segStart;
    task.examples = examples;
  }

  const words = acc[C_WORDS]!;
  const lg = (counter: number): number => Math.log1p(acc[counter]! * scale);
  const lc = (bit: number): number => Math.log1p(acc[C_CAT0 + 31 - Math.clz32(bit)]! * scale);
  const catCount = (bit: number): number => acc[C_CAT0 + 31 - Math.clz32(bit)]!;

  out[F.task_length] = Math.log1p(taskChars);
  out[F.avg_word_length] = words > 0 ? Math.min(12, acc[C_LETTERS]! / words) : 0;
  out[F.long_word_share] = words > 0 ? acc[C_LONG]! / words : 0;
  out[F.sentences] = lg(C_SENT);
  out[F.questions] = lg(C_QMARK);
  out[F.multi_part] = Math.log1p(
    (acc[C_LIST]! + Math.max(0, acc[C_QMARK]! - 1) + catCount(K_MULTI)) * scale,
  );
  out[F.answer_options] = lg(C_OPTIONS);
  out[F.option_length] = acc[C_OPTIONS]! > 0 ? Math.log1p(acc[C_OPTION_CHARS]! / acc[C_OPTIONS]!) : 0;
  out[F.numbers] = lg(C_NUMBERS);
  out[F.arithmetic] = lg(C_ARITH);
  out[F.formal_notation] = lg(C_FORMAL);
  out[F.math_terms] = lc(K_MATH);
  out[F.quantity_terms] = lc(K_QUANT);
  out[F.reasoning_terms] = lc(K_REASON);
  out[F.logic_connectives] = lc(K_LOGIC);
  out[F.negation] = lc(K_NEG);
  out[F.comparison] = lc(K_COMPARE);
  out[F.step_terms] = lc(K_STEPS);
  out[F.why_how] = lc(K_WHYHOW);
  out[F.factoid_question] = lc(K_FACTOID);
  out[F.code_syntax] = Math.log1p((acc[C_CODESYN]! + 3 * acc[C_FENCES]!) * scale);
  out[F.code_terms] = lc(K_CODE);
  out[F.code_request] =
    acc[C_WRITE]! > 0 && catCount(K_CODE) + catCount(K_LANG) + catCount(K_ALGO) + acc[C_FENCES]! > 0 ? 1 : 0;
  out[F.language_names] = lc(K_LANG);
  out[F.data_structures] = lc(K_DS);
  out[F.algorithm_terms] = lc(K_ALGO);
  out[F.constraints] = lc(K_CONSTRAINT);
  out[F.output_format] = lc(K_FORMAT);
  out[F.inline_examples] = lc(K_EXAMPLE);
  out[F.creative_writing] = lc(K_CREATIVE);
  out[F.transform_task] = lc(K_TRANSFORM);
  out[F.small_talk] = lc(K_SMALLTALK);
  out[F.expert_terms] = lc(K_EXPERT);
  out[F.technical_morphology] = lg(C_MORPH);
  out[F.scientific_method] = lc(K_SCIENCE);
  out[F.proper_nouns] = lg(C_PROPER);
  out[F.pronouns] = lc(K_PRONOUN);
  out[F.blank_slot] = acc[C_BLANK]! > 0 ? 1 : 0;
  out[F.quoted_text] = lg(C_QUOTES);
  out[F.non_latin_share] = acc[C_NONLATIN]! / Math.max(1, acc[C_NONLATIN]! + acc[C_LETTERS]!);

  out[F.worked_examples] = Math.log1p(examples);
  out[F.context_length] = Math.log1p(contextChars + segStart);
  out[F.turns] = Math.log1p(userTurns);
  out[F.system_prompt] = Math.log1p(systemChars);
  out[F.tools] = Math.log1p(Array.isArray(req.tools) ? req.tools.length : 0);
  const rf = req.response_format?.type;
  out[F.structured_output] = rf === 'json_schema' ? 1 : rf === 'json_object' ? 0.5 : 0;
  out[F.images] = Math.log1p(images);
  out[F.code_in_context] = contextFences > 0 ? 1 : 0;
  return out;
}
