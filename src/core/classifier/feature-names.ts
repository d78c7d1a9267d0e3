// The classifier's features, by name, in vector order: the schema shared by the extractor
// (./features.ts), the model file (./model.json lists them too; a mismatch is a load error) and
// the training script.

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
