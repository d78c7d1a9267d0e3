// The classifier's word lists (data only): the words and two-word phrases of each keyword
// category, and the suffixes and marker words the scanner looks for. ./scan.ts turns them into its
// lookup table and counts them. Words are written exactly as the tokenizer produces them:
// lower-case letters, digits, '_', inner '.', '+', '#', "'".

/** Keyword categories; each has a counter and feeds the features of ./features.ts. */
export type Category =
  | 'reasoning'
  | 'logic'
  | 'negation'
  | 'comparison'
  | 'math'
  | 'quantity'
  | 'steps'
  | 'code'
  | 'write'
  | 'language'
  | 'data_structure'
  | 'algorithm'
  | 'constraint'
  | 'format'
  | 'creative'
  | 'transform'
  | 'small_talk'
  | 'expert'
  | 'science'
  | 'pronoun'
  | 'why_how'
  | 'factoid'
  | 'multi_part'
  | 'example'
  | 'unit'
  | 'code_object'
  | 'number_word'
  | 'proof';

/** Words of each category. */
export const WORDS: ReadonlyArray<readonly [Category, string]> = [
  [
    'reasoning',
    'explain explains explaining explanation why justify justification analyze analyse analysis analyzing ' +
      'reason reasoning reasons infer inference evaluate evaluation critique critically argue argument ' +
      'arguments demonstrate conclude conclusion implication implications implies imply interpret ' +
      'interpretation assess reasoned logically tradeoff tradeoffs trade-offs nuanced hypothetical',
  ],
  [
    'proof',
    'prove proves proving proof proofs derive derives deriving derivation rigorous rigorously deduce ' +
      'deduction contradiction counterexample lemma',
  ],
  [
    'logic',
    'because therefore thus hence consequently since unless if then although though however whereas ' +
      'otherwise given assuming assume assumes suppose supposing provided whether implies iff despite ' +
      'nevertheless nonetheless accordingly so',
  ],
  [
    'negation',
    'not no never none neither nor without except cannot false incorrect untrue nothing nobody nowhere ' +
      'unlike excluding',
  ],
  [
    'comparison',
    'more less most least best better worse worst greater fewer larger smaller higher lower bigger ' +
      'rather than likely unlikely probably compared comparison versus vs faster slower stronger weaker ' +
      'closest farthest maximum minimum',
  ],
  [
    'math',
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
    'quantity',
    'each per total twice half thrice double triple remaining remains left altogether every cost costs ' +
      'price prices spent spend spends earn earns earned paid pay pays dollars dollar cents hours hour ' +
      'minutes minute seconds days day weeks week months years miles mile km kilometers meters meter ' +
      'feet foot inches inch kg kilograms grams gram pounds liters litres gallons units unit rate speed ' +
      'profit discount tax salary wage times dozen pairs amount quantity',
  ],
  [
    'steps',
    'first firstly then next finally afterwards subsequently step steps stage stages phase phases ' +
      'sequence order process procedure before after later initially eventually',
  ],
  [
    'code',
    'function functions code coding program programs programming script scripts class classes method ' +
      'methods api apis bug bugs debug debugging exception exceptions compile compiler runtime library ' +
      'libraries module modules regex query queries database endpoint endpoints framework unittest syntax ' +
      'refactor refactoring repository docker kubernetes deploy async concurrency pointer pointers boolean ' +
      'lambda callback stacktrace traceback json http sdk cli',
  ],
  [
    'write',
    'write writes writing implement implementing create build develop design generate code debug fix refactor',
  ],
  [
    'code_object',
    'function functions program programs script scripts class classes method methods code api apis regex ' +
      'query sql algorithm app application website webpage endpoint module library package cli parser ' +
      'compiler interpreter server microservice scraper bot database schema component unittest dockerfile ' +
      'makefile pipeline',
  ],
  [
    'language',
    'python javascript typescript java rust golang sql bash shell ruby php swift kotlin scala haskell ' +
      'html css perl lua julia matlab fortran cobol assembly c++ c# react node.js nodejs pandas numpy ' +
      'pytorch tensorflow django flask spring linux powershell',
  ],
  [
    'data_structure',
    'list lists array arrays string strings tuple tuples dictionary dictionaries dict hashmap map tree ' +
      'trees graph graphs node nodes stack queue heap hash linked element elements index indices ' +
      'substring substrings sublist sublists character characters binary bit bits matrix nested key keys ' +
      'value values pair pairs sequence',
  ],
  [
    'algorithm',
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
    'constraint',
    'exactly must only strictly ensure ensuring required require requires requirement requirements ' +
      'limit limited maximum minimum precisely always never specific specified constraint constraints ' +
      'condition conditions mandatory shall without avoid preserve satisfy satisfies',
  ],
  [
    'format',
    'json table tables markdown bullet bullets bulleted format formatted formatting csv yaml xml outline ' +
      'headings heading paragraph paragraphs sentences words concise brief briefly template numbered ' +
      'columns column schema',
  ],
  [
    'creative',
    'story stories poem poems poetry essay email letter blog tweet song lyrics haiku limerick slogan ' +
      'speech dialogue narrative fiction character characters creative imagine pretend roleplay persona ' +
      'joke jokes rap sonnet tagline advertisement',
  ],
  [
    'transform',
    'summarize summarise summary translate translation rewrite rephrase paraphrase extract classify ' +
      'categorize proofread edit shorten simplify convert reformat correct tl;dr',
  ],
  [
    'small_talk',
    'hi hello hey thanks thank cheers lol please favorite favourite fun weather recommend suggest tips ' +
      'ideas goodbye bye hobby',
  ],
  [
    'expert',
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
    'science',
    'experiment experiments experimental investigation investigate hypothesis variable variables control ' +
      'controlled measure measured measurement measurements observe observed observation observations ' +
      'data trial trials results conclusion predict prediction sample procedure evidence',
  ],
  ['pronoun', 'he she they it him her them his hers their theirs its himself herself themselves'],
  ['why_how', 'why how'],
  ['factoid', 'what which who whom whose when where'],
  [
    'multi_part',
    'also additionally furthermore moreover besides second secondly third thirdly fourth respectively ' +
      'both',
  ],
  ['example', 'example examples e.g eg instance sample samples assert expected'],
  [
    'number_word',
    'two three four five six seven eight nine ten eleven twelve thirteen fifteen twenty thirty forty fifty ' +
      'sixty hundred hundreds thousand thousands million millions billion dozen dozens twice thrice half ' +
      'quarter third double triple',
  ],
  [
    'unit',
    'm cm mm km kg g mg lb lbs oz ml s ms min h hr hrs hz khz mhz ghz kw kwh w v mv j kj pa kpa atm mol nm ' +
      'percent degrees degree meters metres meter metre centimeters centimetres kilometers kilometres ' +
      'millimeters grams gram kilograms milligrams liters litres liter milliliters seconds second minutes ' +
      'minute hours hour days weeks months years miles mile feet foot inches inch yards pounds ounces tons ' +
      'dollars dollar cents euros joules newtons watts volts amps amperes ohms calories kelvin celsius ' +
      'fahrenheit mph kph',
  ],
];

/** Two-word phrases: "first second" -> categories. */
export const PHRASES: ReadonlyArray<readonly [Category | readonly Category[], string]> = [
  ['reasoning', 'explain why|what if|pros and|trade offs|in depth'],
  ['proof', 'by step|show that|prove that|think through'],
  [
    ['quantity', 'comparison'],
    'more than|less than|fewer than|greater than|how many|how much|how long|how far|how old',
  ],
  ['constraint', 'at least|at most|no more|no less|no longer|make sure|up to|no fewer'],
  [
    'algorithm',
    'dynamic programming|time complexity|space complexity|big o|binary search|linked list|hash table',
  ],
  ['code', 'unit test|unit tests|test cases|test case|edge cases|edge case|command line|pull request'],
  ['comparison', 'most likely|best describes|best explains|least likely'],
  ['example', 'for example|for instance|such as|sample input|sample output|example input|example output'],
  ['multi_part', 'as well|in addition'],
];

// Technical suffixes, tested on the last 3 or 4 lower-cased letters of a word packed one byte
// each: -ogy, -ase, -ium, -ics, -ide; -osis, -itis, -ical, -etry (biology, enzyme names, elements,
// physics, chloride, diagnosis, arthritis, chemical, geometry).
export const SUFFIX3 = ['ogy', 'ase', 'ium', 'ics', 'ide'];
export const SUFFIX4 = ['osis', 'itis', 'ical', 'etry'];

/** Lower-cased answer-marker words that may precede a colon, e.g. "Answer:". */
export const GAP_MARKERS = ['answer', 'output', 'solution'];
