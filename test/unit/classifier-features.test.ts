import { afterEach, describe, expect, it } from 'vitest';
import { FEATURE_NAMES, type FeatureName, NUM_FEATURES } from '../../src/core/classifier/feature-names.js';
import { extractFeatures, type TaskInfo } from '../../src/core/classifier/features.js';
import {
  keywordCategories,
  MAX_VOCABULARY,
  setVocabulary,
  vocabularyWeight,
} from '../../src/core/classifier/scan.js';
import type { ChatCompletionRequest, ChatMessage } from '../../src/core/openai.js';

const req = (messages: ChatMessage[], extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest => ({
  model: 'auto',
  messages,
  ...extra,
});
const user = (content: string): ChatCompletionRequest => req([{ role: 'user', content }]);

function features(r: ChatCompletionRequest, task?: TaskInfo): Record<FeatureName, number> {
  const x = extractFeatures(r, undefined, task);
  return Object.fromEntries(FEATURE_NAMES.map((n, i) => [n, x[i]!])) as Record<FeatureName, number>;
}
const count = (v: number): number => Math.round(Math.expm1(v)); // inverse of log1p for count features

// A few-shot multiple-choice prompt in the common "Answer:" layout (made-up questions).
const EXAMPLE = (q: string, opts: string[], answer: string): string =>
  `${q}\n${opts.map((o, i) => `${'ABCD'[i]}) ${o}`).join('\n')}\nAnswer with one letter.\nAnswer:\n${answer}\n\n`;
const FEW_SHOT =
  EXAMPLE(
    'Which animal has 8 legs and spins webs? It lives 365 days at 20 degrees.',
    ['ant', 'spider', 'cat', 'fish'],
    'B',
  ) +
  EXAMPLE('How many days are in 2 weeks, given 7 days per week?', ['7', '14', '21', '28'], 'B') +
  EXAMPLE('Which color is the daytime sky on a clear day?', ['green', 'blue', 'red', 'black'], 'B');
const FINAL =
  'Which planet is closest to the Sun?\nA) Mercury\nB) Venus\nC) Earth\nD) Mars\nAnswer with one letter.\nAnswer:';

describe('feature vector', () => {
  it('has a fixed, unique list of names', () => {
    expect(new Set(FEATURE_NAMES).size).toBe(FEATURE_NAMES.length);
    expect(NUM_FEATURES).toBe(FEATURE_NAMES.length);
    expect(extractFeatures(user('hello')).length).toBe(NUM_FEATURES);
  });

  it('fills a caller-supplied buffer and is deterministic', () => {
    const buf = new Float64Array(NUM_FEATURES);
    const r = user('Solve 3x + 5 = 20 and explain each step.');
    const a = Array.from(extractFeatures(r, buf));
    extractFeatures(user('something else entirely, with 42 numbers 7 8 9'), buf);
    const b = Array.from(extractFeatures(r, buf));
    expect(b).toEqual(a);
  });

  it('never throws and stays finite on odd input', () => {
    const odd: unknown[] = [
      { model: 'auto', messages: [] },
      { model: 'auto', messages: [{ role: 'user', content: '' }] },
      { model: 'auto', messages: [{ role: 'user', content: null }] },
      { model: 'auto', messages: [{ role: 'user', content: 42 }] },
      { model: 'auto', messages: [null, 'x', { role: 'user' }] },
      {
        model: 'auto',
        messages: [{ role: 'user', content: [{ type: 'text' }, null, { type: 'image_url' }] }],
      },
      { model: 'auto', messages: [{ role: 'system', content: 'only a system prompt' }] },
      { model: 'auto', messages: [{ role: 'user', content: '\u0000\uffff\ud800 ∑∫ 漢字 😀 ___ ``` {{{' }] },
      { model: 'auto' },
    ];
    for (const r of odd) {
      const x = extractFeatures(r as ChatCompletionRequest);
      expect(Array.from(x).every(Number.isFinite)).toBe(true);
    }
  });
});

describe('the task: the last user turn, after any worked examples', () => {
  it('finds the final question behind a few-shot block and counts the examples', () => {
    const task: TaskInfo = { message: -1, start: 0, examples: 0 };
    const f = features(user(FEW_SHOT + FINAL), task);
    expect(task.message).toBe(0);
    expect(task.examples).toBe(3);
    expect(count(f.worked_examples)).toBe(3);
    expect((FEW_SHOT + FINAL).slice(task.start).trim().startsWith('Which planet')).toBe(true);
    // features describe the final question only: the numbers of the examples do not count
    expect(f.numbers).toBe(0);
    expect(count(f.answer_options)).toBe(4);
    // ... and match the same question asked without examples, except for the context features
    const alone = features(user(FINAL));
    for (const name of FEATURE_NAMES) {
      if (name === 'worked_examples' || name === 'context_length') continue;
      expect(f[name], name).toBeCloseTo(alone[name], 9);
    }
    expect(f.context_length).toBeGreaterThan(alone.context_length);
  });

  it('understands Q:/A: and Input/Output demonstrations', () => {
    const qa =
      'Q: Tom has 3 apples and buys 2 more. How many apples?\nA: 3 + 2 = 5. The answer is 5.\n\n' +
      'Q: A box holds 6 eggs. How many eggs in 4 boxes?\nA: 6 * 4 = 24. The answer is 24.\n\n' +
      'Q: What is the capital of Italy?\nA:';
    const task: TaskInfo = { message: -1, start: 0, examples: 0 };
    const f = features(user(qa), task);
    expect(task.examples).toBe(2);
    expect(f.numbers).toBe(0);
    expect(f.arithmetic).toBe(0);

    const io =
      'Input: [1, 2, 3]\nOutput: 6\n\nInput: [4, 5]\nOutput: 9\n\nWrite a function that sums the input list.';
    const task2: TaskInfo = { message: -1, start: 0, examples: 0 };
    features(user(io), task2);
    expect(task2.examples).toBe(2);
  });

  it('does not mistake answer options or a plain "Answer:" for worked examples', () => {
    const mcq = 'Question: Which is a mammal?\nA: shark\nB: whale\nC: trout\nD: eel\nAnswer:';
    const task: TaskInfo = { message: -1, start: 0, examples: 0 };
    const f = features(user(mcq), task);
    expect(task.examples).toBe(0);
    expect(task.start).toBe(0);
    expect(count(f.answer_options)).toBe(4);
  });

  it('uses the last user message; earlier turns are context', () => {
    const convo = req([
      { role: 'system', content: 'You are a careful assistant.' },
      { role: 'user', content: 'Compute 17 * 23 and 12 * 12 please.' },
      { role: 'assistant', content: '391 and 144.' },
      { role: 'user', content: 'Thanks! Now write a haiku about autumn.' },
    ]);
    const f = features(convo);
    expect(count(f.turns)).toBe(1);
    expect(f.numbers).toBe(0);
    expect(f.creative_writing).toBeGreaterThan(0);
    expect(count(f.system_prompt)).toBe('You are a careful assistant.'.length);
    expect(f.context_length).toBeGreaterThan(Math.log1p(40));
    // short assistant answers to earlier questions are worked examples in chat form
    expect(count(f.worked_examples)).toBe(1);
  });

  it('reads text parts of array content and counts images', () => {
    const f = features(
      req([
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is shown in this picture?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        },
      ]),
    );
    expect(count(f.images)).toBe(1);
    expect(count(f.questions)).toBe(1);
  });
});

describe('what the features pick up', () => {
  it('math: quantities, units, operators and formal notation', () => {
    const f = features(
      user(
        'A train travels 300 meters in 20 seconds, then 150 km in 2 hours. It costs $12 and 15% more. Is 3 + 4 = 7?',
      ),
    );
    expect(count(f.numbers)).toBeGreaterThanOrEqual(9);
    expect(count(f.measurements)).toBe(6); // 300 meters, 20 seconds, 150 km, 2 hours, $12, 15%
    expect(count(f.arithmetic)).toBe(2);
    const latex = features(user('Evaluate $\\int_0^1 x^2 \\, dx$ and show that ∑ 1/n² = π²/6.'));
    expect(count(latex.formal_notation)).toBeGreaterThanOrEqual(4);
    expect(latex.math_terms).toBe(0); // no math words, only notation
    expect(
      features(user('Find the probability that the sum of two dice is prime.')).math_terms,
    ).toBeGreaterThan(0);
  });

  it('multiple choice: options, their spread, numeric options', () => {
    const numeric = features(user('How far?\nA) 10 m\nB) 20 m\nC) 30 m\nD) 40 m'));
    expect(count(numeric.answer_options)).toBe(4);
    expect(numeric.numeric_options).toBe(1);
    const words = features(
      user(
        'Why?\n(A) because it is raining heavily today\n(B) no\n(C) the wind\n(D) a long explanation of something else',
      ),
    );
    expect(count(words.answer_options)).toBe(4);
    expect(words.numeric_options).toBe(0);
    expect(words.option_spread).toBeGreaterThan(numeric.option_spread);
    // not a multiple-choice question: option features stay neutral
    const plain = features(user('Tell me about the sea.'));
    expect([plain.answer_options, plain.option_length, plain.option_spread, plain.numeric_options]).toEqual([
      0, 0, 0, 0,
    ]);
  });

  it('code: code-writing requests, languages and syntax', () => {
    const ask = features(
      user('Write a Python function that returns the n-th Fibonacci number using memoization.'),
    );
    expect(ask.code_request).toBe(1);
    expect(ask.language_names).toBeGreaterThan(0);
    expect(ask.algorithm_terms).toBeGreaterThan(0);
    expect(features(user('Write a poem about the sea.')).code_request).toBe(0);
    expect(features(user('I love C++ and C# more than Java.')).language_names).toBeCloseTo(Math.log1p(3), 9);
    const snippet = features(
      user(
        'Why does this fail?\n```js\nfunction addOne(xs) {\n    return xs.map((x) => x + 1);\n}\nconst my_list = [1, 2];\n```',
      ),
    );
    expect(snippet.code_syntax).toBeGreaterThan(Math.log1p(6));
    expect(features(user('The weather is nice today.')).code_syntax).toBe(0);
  });

  it('reasoning, logic, negation, comparison and steps', () => {
    const f = features(
      user(
        "Explain why the argument fails if we don't assume continuity, and prove the better bound step by step.",
      ),
    );
    expect(f.reasoning_terms).toBeGreaterThan(Math.log1p(2));
    expect(count(f.proof_demand)).toBe(2); // "prove", "step by step"
    expect(f.logic_connectives).toBeGreaterThan(0);
    expect(count(f.negation)).toBe(1); // "don't"
    expect(f.comparison).toBeGreaterThan(0);
    expect(f.why_how).toBeGreaterThan(0);
  });

  it('constraints, output format and multi-part asks', () => {
    const f = features(
      user(
        'List exactly 3 risks. Answer in JSON with at least two fields.\n1. First, summarize the plan.\n2. Second, give a table of costs.\nAlso add a short conclusion.',
      ),
    );
    expect(count(f.constraints)).toBeGreaterThanOrEqual(2); // exactly, at least
    expect(f.output_format).toBeGreaterThan(0); // json, table
    expect(count(f.multi_part)).toBeGreaterThanOrEqual(3); // two list items + "also"/"second"
    expect(f.transform_task).toBeGreaterThan(0); // summarize
  });

  it('kinds of task and domain vocabulary', () => {
    expect(features(user('hi there, thanks!')).small_talk).toBeGreaterThan(0);
    expect(features(user('Write a short story about a dragon.')).creative_writing).toBeGreaterThan(0);
    expect(features(user('Translate this sentence into French.')).transform_task).toBeGreaterThan(0);
    const expert = features(
      user('Which enzyme catalyses the oxidation step in glycolysis, and what is its kinetic equilibrium?'),
    );
    expect(count(expert.expert_terms)).toBeGreaterThanOrEqual(3);
    expect(expert.technical_morphology).toBeGreaterThan(0); // "equilibrium" (-ium)
  });

  it('keyword lookup covers words and two-word phrases', () => {
    expect(keywordCategories('at least')).toContain('constraint');
    expect(keywordCategories('how many')).toContain('quantity');
    expect(keywordCategories('dynamic programming')).toContain('algorithm');
    expect(keywordCategories('because')).toEqual(['logic']);
    expect(keywordCategories('zebra')).toEqual([]);
  });

  it('request-level signals: tools, structured output', () => {
    const tools = features(
      req([{ role: 'user', content: 'What is the weather in Paris?' }], {
        tools: [
          { type: 'function', function: { name: 'get_weather' } },
          { type: 'function', function: { name: 'get_time' } },
        ],
        response_format: { type: 'json_schema', json_schema: { name: 'x' } },
      }),
    );
    expect(count(tools.tools)).toBe(2);
    expect(tools.structured_output).toBe(1);
  });
});

describe('long prompts', () => {
  it('scans a head and a tail window of a 200 KB prompt and scales counts to its length', () => {
    const sentence = 'The value 42 appears here once more. ';
    const text = sentence.repeat(Math.ceil(200_000 / sentence.length));
    const f = features(user(text));
    const real = Math.ceil(200_000 / sentence.length);
    expect(f.task_length).toBeCloseTo(Math.log1p(text.length), 9);
    expect(Math.abs(count(f.numbers) - real) / real).toBeLessThan(0.02);
    expect(Math.abs(count(f.sentences) - real) / real).toBeLessThan(0.02);
  });

  it('still finds the final question after a long few-shot block', () => {
    let shots = '';
    for (let i = 0; i < 400; i++)
      shots += EXAMPLE(`Example question number ${i} about 7 things?`, ['a', 'b', 'c', 'd'], 'A');
    const task: TaskInfo = { message: -1, start: 0, examples: 0 };
    const f = features(user(shots + FINAL), task);
    expect(shots.length).toBeGreaterThan(30_000);
    expect(f.numbers).toBe(0);
    expect(count(f.answer_options)).toBe(4);
    expect(task.examples).toBeGreaterThan(0);
  });
});

describe('worked solutions over several lines', () => {
  it('treats a multi-line chain-of-thought answer as part of its example', () => {
    const shots =
      'Question: Ann has 5 pens and buys 3 more. How many pens does she have?\n' +
      'Answer: She starts with 5 pens.\n5 + 3 = 8.\n#### 8\n\n' +
      'Question: A box has 4 rows of 6 eggs. How many eggs?\n' +
      'Answer: Each row has 6 eggs.\n4 * 6 = 24.\n#### 24\n\n' +
      'Question: Who painted the ceiling of the Sistine Chapel?\nAnswer:';
    const task: TaskInfo = { message: -1, start: 0, examples: 0 };
    const f = features(user(shots), task);
    expect(task.examples).toBe(2);
    expect(f.numbers).toBe(0);
    expect(f.arithmetic).toBe(0);
  });
});

describe('learned vocabulary', () => {
  afterEach(() => setVocabulary({}));

  it('adds the weights of the words of the task, over the square root of its word count', () => {
    const before = features(user('What is the average speed of the cart?'));
    expect(before.vocabulary_difficulty).toBe(0);
    setVocabulary({ average: 0.1, speed: 0.05, cart: -0.02 });
    const x = features(user('What is the AVERAGE speed of the cart? Average, I said.'));
    expect(x.vocabulary_difficulty).toBeCloseTo((0.1 + 0.05 - 0.02 + 0.1) / Math.sqrt(11), 6);
    // words only match as written: another inflection is another entry
    expect(features(user('speeds')).vocabulary_difficulty).toBe(0);
    // keywords keep their categories when they also have a vocabulary weight
    setVocabulary({ prove: 0.2 });
    const k = features(user('prove it'));
    expect(k.vocabulary_difficulty).toBeCloseTo(0.2 / Math.sqrt(2), 6);
    expect(keywordCategories('prove')).toContain('proof');
    expect(count(k.proof_demand)).toBe(1);
  });

  it('counts only the task, not the worked examples before it', () => {
    setVocabulary({ volcano: 0.3 });
    const shot = 'Is a volcano hot?\nA) yes\nB) no\nAnswer:\nA\n\n';
    const withExamples = features(user(`${shot}${shot}Is ice cold?\nA) yes\nB) no\nAnswer:`));
    expect(withExamples.worked_examples).toBeGreaterThan(0);
    expect(withExamples.vocabulary_difficulty).toBe(0);
  });

  it('replaces the previous vocabulary and rejects malformed entries', () => {
    setVocabulary({ alpha: 0.5 });
    expect(vocabularyWeight('alpha')).toBeCloseTo(0.5, 6);
    setVocabulary({ beta: -0.25 });
    expect(vocabularyWeight('alpha')).toBe(0);
    expect(vocabularyWeight('beta')).toBeCloseTo(-0.25, 6);
    expect(() => setVocabulary({ 'Two words': 0.1 })).toThrow(/not a lower-case word/);
    expect(() => setVocabulary({ fine: Number.NaN })).toThrow(/must be a number/);
    expect(() => setVocabulary({ huge: 3 })).toThrow(/must be a number/);
    const tooMany = Object.fromEntries(
      Array.from({ length: MAX_VOCABULARY + 1 }, (_, i) => [
        `w${i.toString(26).replace(/\d/g, (d) => 'qrstuvwxyz'[+d]!)}`,
        0.01,
      ]),
    );
    expect(() => setVocabulary(tooMany)).toThrow(/at most/);
  });
});
