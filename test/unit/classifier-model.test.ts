import { describe, expect, it } from 'vitest';
import { MAX_VOCABULARY } from '../../src/core/classifier/scan.js';
import {
  classify,
  explainClassification,
  FEATURE_NAMES,
  MODEL_INFO,
} from '../../src/core/classifier/index.js';
import model from '../../src/core/classifier/model.json' with { type: 'json' };
import type { ChatCompletionRequest } from '../../src/core/openai.js';

const user = (content: string): ChatCompletionRequest => ({
  model: 'auto',
  messages: [{ role: 'user', content }],
});
const score = (content: string): number => classify(user(content)).score;

const PROMPTS = [
  'hi',
  'hello, how are you today?',
  'Thanks a lot!',
  'What is the capital of France?',
  'Translate "good morning" into Spanish.',
  'Rewrite this sentence to sound more polite: send me the file now.',
  'Write a haiku about the sea.',
  'Write a cover letter for a barista job.',
  'Summarize the plot of Hamlet in three sentences.',
  'Who wrote Pride and Prejudice?',
  'Which gas do plants absorb from the air?\nA) oxygen\nB) carbon dioxide\nC) nitrogen\nD) helium',
  'A shop sells pens at $3 each and notebooks at $5 each. Maya buys 4 pens and 3 notebooks and pays with a $50 bill. How much change does she get?',
  'A train leaves at 9:40 and travels 240 km at 80 km/h, stops 25 minutes, then covers 150 km at 100 km/h. When does it arrive?',
  'Prove that every finite group of prime order is cyclic, step by step.',
  'Let f(x) = x^3 - 6x^2 + 9x + 1. Find all local extrema and prove that f has exactly one real root in [-1, 0].',
  'Write a Python function that returns the longest palindromic substring of a string in O(n^2) time.',
  'Implement a thread-safe LRU cache in Rust with O(1) get and put; explain the trade-offs of your design.',
  'Explain why the sky is blue.',
  'Compare the monetary policy responses of the Fed and the ECB to the 2008 crisis, and evaluate which was more effective.',
  'List five fruits.',
];

describe('classify', () => {
  it('returns a finite score in [0,1] and a few known reasons', () => {
    for (const p of [...PROMPTS, '', ' ', 'x'.repeat(300_000)]) {
      const c = classify(user(p));
      expect(Number.isFinite(c.score)).toBe(true);
      expect(c.score).toBeGreaterThanOrEqual(0);
      expect(c.score).toBeLessThanOrEqual(1);
      expect(c.reasons.length).toBeLessThanOrEqual(3);
      for (const r of c.reasons) expect(FEATURE_NAMES).toContain(r);
    }
    expect(Number.isFinite(classify({ model: 'auto', messages: [] }).score)).toBe(true);
  });

  it('is deterministic, whatever was classified before', () => {
    const first = PROMPTS.map((p) => classify(user(p)));
    const again = [...PROMPTS]
      .reverse()
      .map((p) => classify(user(p)))
      .reverse();
    expect(again).toEqual(first);
  });

  it('gives continuous scores (no mass ties) across different prompts', () => {
    const scores = PROMPTS.map(score);
    expect(new Set(scores).size).toBe(PROMPTS.length);
  });

  it('orders clearly different requests sensibly', () => {
    const pairs: Array<[hard: string, easy: string]> = [
      ['Prove that every finite group of prime order is cyclic, step by step.', 'hi'],
      [
        'Prove that every finite group of prime order is cyclic, step by step.',
        'Write a haiku about the sea.',
      ],
      [
        'Write a Python function that returns the longest palindromic substring of a string in O(n^2) time.',
        'Thanks a lot!',
      ],
      [
        'Implement a thread-safe LRU cache in Rust with O(1) get and put; explain the trade-offs of your design.',
        'Rewrite this sentence to sound more polite: send me the file now.',
      ],
      [
        'A shop sells pens at $3 each and notebooks at $5 each. Maya buys 4 pens and 3 notebooks and pays with a $50 bill. How much change does she get?',
        'What is the capital of France?',
      ],
      [
        'Let f(x) = x^3 - 6x^2 + 9x + 1. Find all local extrema and prove that f has exactly one real root in [-1, 0].',
        'List five fruits.',
      ],
      ['Explain why the sky is blue.', 'hello, how are you today?'],
    ];
    for (const [hard, easy] of pairs) expect(score(hard), `${hard} > ${easy}`).toBeGreaterThan(score(easy));
  });

  // Kinds of traffic the development set does not contain (knowledge questions across subjects,
  // math word problems, open chat): written for this test, one clearly harder than the other.
  it('orders requests of kinds the training data lacks sensibly', () => {
    const mc = (q: string, options: string[]) =>
      `${q}\n${options.map((o, i) => `${'ABCD'[i]}. ${o}`).join('\n')}\nAnswer:`;
    const pairs: Array<[hard: string, easy: string]> = [
      [
        'A store sells notebooks for $3 each and pens for $1.50 each. Maria buys 4 notebooks and 6 pens, then uses a coupon for 15% off the total. How much does she pay?',
        'Tom has 5 apples and buys 3 more. How many apples does he have?',
      ],
      [
        mc(
          'In a first-order reaction the half-life is 20 minutes. What fraction of the reactant remains after one hour?',
          ['1/2', '1/4', '1/8', '1/16'],
        ),
        mc('At what temperature in Celsius does water freeze?', ['0', '10', '50', '100']),
      ],
      [
        mc(
          "Under the Uniform Commercial Code, a merchant's firm offer is irrevocable without consideration for at most",
          ['30 days', '3 months', '6 months', '1 year'],
        ),
        mc('Which animal says "moo"?', ['Cow', 'Dog', 'Cat', 'Duck']),
      ],
      [
        'If f(x) = 4x^3 - 9x - 14, find the value of x such that f(x) = 0, to two decimal places.',
        'Pretend you are a pirate and greet me.',
      ],
      [
        'Alice is taller than Bob. Bob is taller than Carol. Dave is shorter than Carol but taller than Eve. Who is the second shortest? Explain step by step.',
        'Translate "good morning" into Spanish.',
      ],
      [
        'Write a Python function for the longest increasing subsequence in O(n log n) time.',
        'Suggest three names for a coffee shop.',
      ],
    ];
    for (const [hard, easy] of pairs) expect(score(hard), `${hard} > ${easy}`).toBeGreaterThan(score(easy));
    // A bare proof request reaches the flagship tier of the shipped policy (lightweight <= 0.5).
    expect(score('Prove that every bounded monotone sequence of real numbers converges.')).toBeGreaterThan(
      0.5,
    );
  });

  // Everyday kinds no data set covers: the cheap kind of each pair must stay below the
  // demanding one, and the cheap kinds below the shipped threshold.
  it('orders everyday kinds of traffic: formatting, translation, summaries, chat vs reasoning, long context, tools', () => {
    const report = 'The quarterly report shows revenue of $4.2M, up 12% on last year. '.repeat(60);
    const cheap = [
      'Format this as a bulleted list: apples, pears, plums.',
      'Translate "where is the train station?" into German.',
      'Summarize in one sentence: the meeting moved to Thursday at 3pm in room 4.',
      'hey, how was your weekend?',
      'Fix the typos: "Teh quick brwon fox."',
    ];
    const demanding = [
      'A bat and a ball cost $1.10 in total. The bat costs $1.00 more than the ball. Then the price of the bat doubles and the ball drops by 20%. What is the new total, and why is the intuitive answer to the first part wrong? Reason step by step.',
      'Prove that there are infinitely many primes of the form 4k + 3.',
      `${report}\n\nAnalyse this report: identify the inconsistencies between its figures, explain what could cause each, and evaluate which conclusions still hold.`,
    ];
    for (const c of cheap) expect(score(c), c).toBeLessThan(0.5);
    for (const d of demanding)
      for (const c of cheap) expect(score(d), `${d.slice(0, 60)} > ${c}`).toBeGreaterThan(score(c));
    const agent: ChatCompletionRequest = {
      model: 'auto',
      messages: [
        {
          role: 'system',
          content: 'You are an operations agent. Use the tools to investigate before answering.',
        },
        { role: 'user', content: 'Find why checkout latency doubled since yesterday and propose a fix.' },
      ],
      tools: ['query_metrics', 'search_logs', 'list_deploys', 'read_file'].map((name) => ({
        type: 'function' as const,
        function: { name },
      })),
    };
    for (const c of cheap) expect(classify(agent).score, `agent > ${c}`).toBeGreaterThan(score(c));
  });

  it('moves the right way when a demand is added to the same request', () => {
    const base = 'A farmer has 12 cows and buys 7 more. How many cows does he have?';
    const more =
      'A farmer has 12 cows, buys 7 more, sells 5, then each of the remaining cows gives 8 liters of milk a day. How many liters does he get in 3 days?';
    expect(score(more)).toBeGreaterThan(score(base));
    const code = 'Write a function that reverses a string.';
    expect(
      score(code + ' It must run in O(n) time, handle Unicode, and include unit tests.'),
    ).toBeGreaterThan(score(code));
    const chat = 'Tell me about volcanoes.';
    const tools: ChatCompletionRequest = {
      ...user(chat),
      tools: [{ type: 'function', function: { name: 'search' } }],
    };
    expect(classify(tools).score).toBeGreaterThan(score(chat));
  });

  it('names the features that pushed the score up for a hard request', () => {
    const c = classify(
      user('Prove that every finite group of prime order is cyclic, with a rigorous derivation.'),
    );
    expect(c.reasons[0]).toBe('proof_demand');
  });

  // Asking for code is not hard by itself: trivial code is what lightweight models do well; what
  // the code must do (algorithms, concurrency, constraints) is what needs the flagship.
  it('keeps trivial code requests on the lightweight tier and sends demanding ones up', () => {
    const trivial = [
      'Write a Python function that reverses a string.',
      'Write a JavaScript function that adds two numbers.',
      'Write a bash one-liner that counts the lines of a file.',
    ];
    for (const t of trivial) expect(score(t), t).toBeLessThan(0.5);
    const demanding = [
      'Write a Python function that returns the longest palindromic substring of a string in O(n^2) time.',
      'Implement a thread-safe LRU cache in Rust with O(1) get and put; explain the trade-offs of your design.',
    ];
    for (const d of demanding) {
      expect(score(d), d).toBeGreaterThan(0.5);
      for (const t of trivial) expect(score(d), `${d} > ${t}`).toBeGreaterThan(score(t));
    }
  });
});

describe('explainClassification', () => {
  it("lists the task's words that carry a learned weight, as the model file has them", () => {
    const vocabulary = model.vocabulary as Record<string, number>;
    const known = Object.keys(vocabulary)
      .sort((a, b) => Math.abs(vocabulary[b]!) - Math.abs(vocabulary[a]!))
      .slice(0, 5);
    const d = explainClassification(user(`${known.join(' ')} zzzunknownword`));
    expect(d.vocabulary.map((v) => v.word).sort()).toEqual([...known].sort());
    for (const v of d.vocabulary) expect(v.weight).toBeCloseTo(vocabulary[v.word]!, 5);
    // The feature is the sum of the word weights over the square root of the word count.
    const sum = known.reduce((a, w) => a + vocabulary[w]!, 0);
    const f = d.features.find((x) => x.name === 'vocabulary_difficulty')!;
    expect(f.value).toBeCloseTo(sum / Math.sqrt(known.length + 1), 5);
  });

  it('gives the same score as classify, and contributions that add up to the logit', () => {
    for (const p of PROMPTS) {
      const r = user(p);
      const d = explainClassification(r);
      const c = classify(r);
      expect(d.score).toBe(c.score);
      expect(d.reasons).toEqual(c.reasons);
      expect(d.features).toHaveLength(FEATURE_NAMES.length);
      let z = model.intercept;
      for (const f of d.features) z += f.weight * f.value;
      expect(d.logit).toBeCloseTo(z, 9);
      expect(d.task.excerpt.length).toBeLessThanOrEqual(245);
      for (let i = 1; i < d.features.length; i++) {
        expect(Math.abs(d.features[i - 1]!.contribution)).toBeGreaterThanOrEqual(
          Math.abs(d.features[i]!.contribution),
        );
      }
    }
    expect(MODEL_INFO.version).toBe(model.version);
  });
});

describe('model.json', () => {
  it('matches the feature list of the code and carries its training summary', () => {
    expect(model.features).toEqual([...FEATURE_NAMES]);
    expect(model.weights.every(Number.isFinite)).toBe(true);
    expect(model.calibration.scale).toBeGreaterThan(0);
    expect(model.training.leaveOneSourceOut).toBeDefined();
    expect(model.training.promptLength).toBeDefined();
    expect(JSON.stringify(model).length).toBeLessThan(400_000);
  });

  it('has a vocabulary of plain words, each learned from several prompts', () => {
    const words = Object.entries(model.vocabulary);
    expect(words.length).toBeGreaterThan(100);
    expect(words.length).toBeLessThanOrEqual(MAX_VOCABULARY);
    for (const [word, weight] of words) {
      expect(word).toMatch(/^[a-z]+(?:'[a-z]+)?$/);
      expect(Math.abs(weight)).toBeLessThan(1);
    }
    expect(model.training.vocabulary).toMatchObject({ minRows: expect.any(Number) as number });
    expect((model.training.vocabulary as { minRows: number }).minRows).toBeGreaterThanOrEqual(5);
  });
});
