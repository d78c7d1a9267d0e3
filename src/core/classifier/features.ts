// Feature extraction for the complexity classifier: request -> fixed-order vector of numbers.
//
// Design (hot path, runs on every `model: "auto"` request):
// - The *task* is the last user turn's final item. Worked examples (few-shot "...Answer: B" blocks)
//   before it are detected while scanning and only counted (`worked_examples`), so the features
//   describe the question that must be answered, not the demonstrations.
// - One forward pass over the task text: a hand-written tokenizer (no regexes) hashes each
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
  'option_length', // log1p(mean characters per option) - 3 when there are options, else 0
  'option_spread', // coefficient of variation of the option lengths - 0.3 (similar options are harder to rule out)
  'numeric_options', // share of answer options that are numbers (the answer must be computed)
  // math and formal notation
  'numbers', // log1p(numeric quantities, digits or words: 12, 3.5, "three", "twice")
  'measurements', // log1p(numbers with a unit: "300 meters", "20%", "$4")
  'arithmetic', // log1p(arithmetic operators between quantities)
  'formal_notation', // log1p(LaTeX commands, math symbols, Greek letters)
  'math_terms', // log1p(words of mathematics: solve, probability, integral...)
  'quantity_terms', // log1p(word-problem vocabulary: each, per, total, how many, units...)
  // reasoning
  'reasoning_terms', // explain, justify, analyse, evaluate, argue...
  'proof_demand', // prove, derive, show that, step by step, rigorous...
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
  'quoted_text', // log1p(quote characters): passages or strings to work on
  'non_latin_share', // share of characters in non-Latin scripts
  'vocabulary_difficulty', // sum of the learned difficulty of the task's words / sqrt(words) (see setVocabulary)
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

const WORDS: Array<[number, string]> = [
  [
    K_REASON,
    'explain explains explaining explanation why justify justification analyze analyse analysis analyzing ' +
      'reason reasoning reasons infer inference evaluate evaluation critique critically argue argument ' +
      'arguments demonstrate conclude conclusion implication implications implies imply interpret ' +
      'interpretation assess reasoned logically tradeoff tradeoffs trade-offs nuanced hypothetical',
  ],
  [
    K_PROOF,
    'prove proves proving proof proofs derive derives deriving derivation rigorous rigorously deduce ' +
      'deduction contradiction counterexample lemma',
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
      'unlike excluding',
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
      'methods api apis bug bugs debug debugging exception exceptions compile compiler runtime library ' +
      'libraries module modules regex query queries database endpoint endpoints framework unittest syntax ' +
      'refactor refactoring repository docker kubernetes deploy async concurrency pointer pointers boolean ' +
      'lambda callback stacktrace traceback json http sdk cli',
  ],
  [
    K_WRITE,
    'write writes writing implement implementing create build develop design generate code debug fix refactor',
  ],
  [
    K_CODEOBJ,
    'function functions program programs script scripts class classes method methods code api apis regex ' +
      'query sql algorithm app application website webpage endpoint module library package cli parser ' +
      'compiler interpreter server microservice scraper bot database schema component unittest dockerfile ' +
      'makefile pipeline',
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
      'bfs dfs dijkstra backtracking iterate iterative lcm gcd fibonacci ' +
      // systems design: what makes code hard beyond the algorithm
      'cache caching concurrent concurrency thread-safe multithreaded mutex deadlock lock-free ' +
      'distributed scalable scalability latency throughput consistency replication sharding ' +
      'fault-tolerant idempotent',
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
  [
    K_NUMWORD,
    'two three four five six seven eight nine ten eleven twelve thirteen fifteen twenty thirty forty fifty ' +
      'sixty hundred hundreds thousand thousands million millions billion dozen dozens twice thrice half ' +
      'quarter third double triple',
  ],
  [
    K_UNIT,
    'm cm mm km kg g mg lb lbs oz ml s ms min h hr hrs hz khz mhz ghz kw kwh w v mv j kj pa kpa atm mol nm ' +
      'percent degrees degree meters metres meter metre centimeters centimetres kilometers kilometres ' +
      'millimeters grams gram kilograms milligrams liters litres liter milliliters seconds second minutes ' +
      'minute hours hour days weeks months years miles mile feet foot inches inch yards pounds ounces tons ' +
      'dollars dollar cents euros joules newtons watts volts amps amperes ohms calories kelvin celsius ' +
      'fahrenheit mph kph',
  ],
];

/** Two-word phrases: "first second" -> categories. */
const PHRASES: Array<[number, string]> = [
  [K_REASON, 'explain why|what if|pros and|trade offs|in depth'],
  [K_PROOF, 'by step|show that|prove that|think through'],
  [
    K_QUANT | K_COMPARE,
    'more than|less than|fewer than|greater than|how many|how much|how long|how far|how old',
  ],
  [K_CONSTRAINT, 'at least|at most|no more|no less|no longer|make sure|up to|no fewer'],
  [K_ALGO, 'dynamic programming|time complexity|space complexity|big o|binary search|linked list|hash table'],
  [K_CODE, 'unit test|unit tests|test cases|test case|edge cases|edge case|command line|pull request'],
  [K_COMPARE, 'most likely|best describes|best explains|least likely'],
  [K_EXAMPLE, 'for example|for instance|such as|sample input|sample output|example input|example output'],
  [K_MULTI, 'as well|in addition'],
];

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

/** Add the keyword lists (words exactly as the tokenizer produces them: lower-case letters, digits, '_', inner '.', '+', '#', "'"). */
function addKeywords(): void {
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
  [K_UNIT, 'unit'],
  [K_CODEOBJ, 'code_object'],
  [K_NUMWORD, 'number_word'],
  [K_PROOF, 'proof'],
];
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
const VOCAB_SCALE = 1 << 20;
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
function countCategories(acc: Float64Array, v: number): void {
  let bits = v & CATEGORY_MASK;
  while (bits !== 0) {
    const low = bits & -bits;
    acc[C_CAT0 + 31 - Math.clz32(low)]! += 1;
    bits ^= low;
  }
}

// Scratch state (the classifier is synchronous, so module-level buffers are safe and allocation-free).
let cur = new Float64Array(NUM_COUNTERS);
let prev = new Float64Array(NUM_COUNTERS);
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
  let acc = cur;
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
        if (indent >= 4) acc[C_CODESYN]! += 1;
        if (optionMarkerAt(t, i, to)) {
          acc[C_OPTIONS]! += 1;
          inOption = true;
          let j = i + (c === 40 || c === 91 ? 3 : 2);
          while (j < to && (t.charCodeAt(j) === 32 || t.charCodeAt(j) === 9)) j++;
          optionStart = j;
          const d = j < to ? t.charCodeAt(j) : 0;
          if (
            isDigit(d) ||
            ((d === 45 || d === 36 || d === 46) && j + 1 < to && isDigit(t.charCodeAt(j + 1)))
          ) {
            acc[C_OPTION_NUM]! += 1;
          }
        } else if (isDigit(c)) {
          let j = i + 1;
          while (j < to && isDigit(t.charCodeAt(j))) j++;
          const d = j < to ? t.charCodeAt(j) : 0;
          if ((d === 46 || d === 41) && j + 1 < to && t.charCodeAt(j + 1) === 32) acc[C_LIST]! += 1;
        } else if ((c === 45 || c === 42 || c === 0x2022) && i + 1 < to && t.charCodeAt(i + 1) === 32) {
          acc[C_LIST]! += 1;
        } else if (c === 62 && t.startsWith('>>>', i)) {
          acc[CI_EXAMPLE]! += 1;
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
      acc[C_WORDS]! += 1;
      acc[C_LETTERS]! += len;
      acc[C_LONG]! += (8 - len) >>> 31; // len >= 9
      acc[CI_NEG]! += +((last & 0xffffff) === 0x6e2774); // "...n't"
      acc[C_MORPH]! += technicalSuffix(last) & ((6 - len) >>> 31); // len >= 7
      if (inner) acc[C_CODESYN]! += 1;
      acc[C_PROPER]! += +firstUpper & ((1 - len) >>> 31) & (+!sentenceStart | +(upper === len)) & +!inOption;
      // keyword table: the first probe inline; a miss lands on an empty slot whose counter is C_DUMMY
      let s0 = (h ^ (h >>> 15)) & TABLE_MASK;
      const k0 = table[s0 * 4]!;
      if (k0 !== h && k0 !== 0) s0 = tableFind(h);
      acc[table[s0 * 4 + 2]!]! += 1;
      acc[C_VOCAB]! += table[s0 * 4 + 3]!;
      const v = table[s0 * 4 + 1]!;
      if (prevHead) {
        const pv = tableGet(bigramKey(prevHash, h));
        if (pv !== 0) countCategories(acc, pv);
      }
      prevHead = (v & K_HEAD) !== 0;
      prevHash = h;
      let numberWord = false;
      if ((v & K_SPECIAL) !== 0) {
        if ((v & K_MULTICAT) !== 0) countCategories(acc, v & (v - 1)); // the categories after the first
        if (afterNumber && (v & K_UNIT) !== 0) acc[C_MEASURE]! += 1;
        if ((v & K_NUMWORD) !== 0) {
          acc[C_NUMBERS]! += 1; // "three boxes", "twice as many"
          numberWord = true;
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
      afterNumber = numberWord; // "three meters"
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
      acc[C_NUMBERS]! += 1;
      lastWasQuantity = true;
      afterNumber = true;
      sentenceStart = false;
      prevHead = false;
      continue;
    }

    if (c === 10) {
      // ---- end of line
      if (inOption) {
        endOption(acc, i - optionStart);
        inOption = false;
      }
      i++;
      lastWasQuantity = false;
      afterNumber = false;
      prevHead = false;
      atLineStart = true;
      if (i === pendingBoundary) {
        // A worked example ended: keep its counters in `prev`, start a fresh segment.
        const tmp = prev;
        prev = cur;
        cur = tmp;
        cur.fill(0);
        acc = cur;
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
        if (lastWasQuantity) {
          if (c === 37) acc[C_MEASURE]! += 1;
          else acc[C_ARITH]! += 1;
        }
        break;
      case 36: // $: money before a digit, otherwise math mode
        if (i < to && isDigit(t.charCodeAt(i))) acc[C_MEASURE]! += 1;
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
      case 95: // _ outside a word (a blank to fill, a rule): skip the run
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
    afterNumber = false;
    prevHead = false;
  }
  if (inOption) endOption(acc, to - optionStart);
}

function endOption(acc: Float64Array, len: number): void {
  const l = Math.max(0, len);
  acc[C_OPTION_CHARS]! += l;
  acc[C_OPTION_SQ]! += l * l;
}

// Technical suffixes, tested on the last 3 or 4 lower-cased letters of a word packed one byte
// each: -ogy, -ase, -ium, -ics, -ide; -osis, -itis, -ical, -etry (biology, enzyme names, elements,
// physics, chloride, diagnosis, arthritis, chemical, geometry).
const SUFFIX3 = ['ogy', 'ase', 'ium', 'ics', 'ide'];
const SUFFIX4 = ['osis', 'itis', 'ical', 'etry'];
const pack = (s: string): number => [...s].reduce((acc, ch) => (acc << 8) | ch.charCodeAt(0), 0) >>> 0;
const SUFFIX_BITS = 8;
const suffixSlot = (key: number): number => Math.imul(key, 0x9e3779b1) >>> (32 - SUFFIX_BITS);
const suffix3 = new Int32Array(1 << SUFFIX_BITS).fill(-1);
const suffix4 = new Int32Array(1 << SUFFIX_BITS).fill(-1);
for (const [table, list] of [
  [suffix3, SUFFIX3],
  [suffix4, SUFFIX4],
] as const) {
  for (const suf of list) {
    const key = pack(suf) | 0;
    const slot = suffixSlot(key);
    if (table[slot] !== -1) throw new Error(`suffix table collision: ${suf}`);
    table[slot] = key;
  }
}

/** 1 when the word whose last four letters are packed in `last` ends with a technical suffix, else 0. */
function technicalSuffix(last: number): number {
  const k3 = last & 0xffffff;
  const k4 = last | 0;
  return +(suffix3[suffixSlot(k3)] === k3) | +(suffix4[suffixSlot(k4)] === k4);
}

/** Lower-cased answer-marker words that may precede a colon, e.g. "Answer:". */
const GAP_MARKERS = ['answer', 'output', 'solution'];

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
  const n = t.length;
  cur.fill(0);
  prev.fill(0);
  segStart = 0;
  boundaries = 0;
  skipped = 0;
  if (n <= SCAN_LIMIT) {
    scan(t, 0, n);
  } else {
    // Long message: scan a head and a tail window; the middle is only searched for worked
    // examples (native substring search), and count features are scaled to the task's length.
    scan(t, 0, SCAN_HEAD);
    const resumeAt = n - SCAN_TAIL;
    const gapEnd = gapExamples(t, SCAN_HEAD, resumeAt, n);
    if (gapEnd > 0) {
      // the task starts after a worked example inside the gap: the head belongs to the examples
      const tmp = prev;
      prev = cur;
      cur = tmp;
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
  if (boundaries > 0 && acc[C_WORDS]! < 3) {
    for (let k = 0; k < NUM_COUNTERS; k++) prev[k] = prev[k]! + acc[k]!;
    acc = prev;
  }
  let lead = segStart;
  while (lead < n && isSpace(t.charCodeAt(lead))) lead++;
  const taskChars = n - lead;
  const scanned = Math.max(1, n - segStart - skipped);
  const scale = (n - segStart) / scanned;
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
  out[F.multi_part] = Math.log1p((acc[C_LIST]! + Math.max(0, acc[C_QMARK]! - 1) + catCount(K_MULTI)) * scale);
  out[F.answer_options] = lg(C_OPTIONS);
  const nOpt = acc[C_OPTIONS]!;
  const optMean = nOpt > 0 ? acc[C_OPTION_CHARS]! / nOpt : 0;
  // Option features describe multiple-choice questions only: 0 when there are no options, and
  // centred on a typical question otherwise, so they do not shift other kinds of request.
  out[F.option_length] = nOpt > 0 ? Math.log1p(optMean) - 3 : 0;
  out[F.option_spread] =
    nOpt > 1 && optMean > 0
      ? Math.min(2, Math.sqrt(Math.max(0, acc[C_OPTION_SQ]! / nOpt - optMean * optMean)) / optMean) - 0.3
      : 0;
  out[F.numeric_options] = nOpt > 0 ? acc[C_OPTION_NUM]! / nOpt : 0;
  out[F.measurements] = lg(C_MEASURE);
  out[F.numbers] = lg(C_NUMBERS);
  out[F.arithmetic] = lg(C_ARITH);
  out[F.formal_notation] = lg(C_FORMAL);
  out[F.math_terms] = lc(K_MATH);
  out[F.quantity_terms] = lc(K_QUANT);
  out[F.reasoning_terms] = lc(K_REASON);
  out[F.proof_demand] = lc(K_PROOF);
  out[F.logic_connectives] = lc(K_LOGIC);
  out[F.negation] = lc(K_NEG);
  out[F.comparison] = lc(K_COMPARE);
  out[F.step_terms] = lc(K_STEPS);
  out[F.why_how] = lc(K_WHYHOW);
  out[F.factoid_question] = lc(K_FACTOID);
  out[F.code_syntax] = Math.log1p((acc[C_CODESYN]! + 3 * acc[C_FENCES]!) * scale);
  out[F.code_terms] = lc(K_CODE);
  out[F.code_request] =
    catCount(K_WRITE) > 0 && catCount(K_CODEOBJ) + catCount(K_LANG) + acc[C_FENCES]! > 0 ? 1 : 0;
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
  out[F.quoted_text] = lg(C_QUOTES);
  out[F.non_latin_share] = acc[C_NONLATIN]! / Math.max(1, acc[C_NONLATIN]! + acc[C_LETTERS]!);
  out[F.vocabulary_difficulty] = words > 0 ? acc[C_VOCAB]! / VOCAB_SCALE / Math.sqrt(words) : 0;

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
