// Classifier latency: classify() per request, in-process, for prompts of ~1 KB, 8 KB and 200 KB.
//   node bench/classifier.ts [--iterations 20000] [--strict]
// Budgets (issue 4): p99 <= 50 us up to 8 KB, <= 1 ms at 200 KB. --strict exits 1 when over budget.
// Messages longer than 4 KB are scanned as a 1 KB head and a 3 KB tail (scan.ts, SCAN_LIMIT),
// so the cost levels off above 4 KB; the 4 KB case is the largest fully scanned one.
// Measures dist/ like the other benchmarks (`npm run build` first).
import { parseArgs } from 'node:util';
import { classify } from '../dist/core/classifier/index.js';
import { figure, fmt, summarize } from './lib.ts';
import { seededRandom } from '../test/helpers/prng.ts';

const { values } = parseArgs({
  options: { iterations: { type: 'string' }, strict: { type: 'boolean' }, quick: { type: 'boolean' } },
});
const iterations = Number(values.iterations ?? (values.quick ? 5_000 : 20_000));

// Word mix of ordinary prose: frequent function words, everyday content words, and some of the
// technical and task vocabulary the classifier looks for (about one word in six).
const FUNCTION_WORDS = (
  'the of and to a in is that for it with as was on be by this are from or at an have not but had ' +
  'they his her which you were their one all we can has there been if more when will would who so ' +
  'no out up into than them some could other then its only also after over most these two may any'
).split(' ');
const CONTENT_WORDS = (
  'people time year day way work report system water company group service market result number ' +
  'problem question change process level family member order information point study program data ' +
  'team customer product office price cost plan project design model building city country city road ' +
  'school student teacher history policy research paper letter meeting account window morning house'
).split(' ');
const TASK_WORDS = (
  'explain why prove function return list array string total each per least step first finally ' +
  'table json must exactly energy force protein contract patient theorem equation solve calculate ' +
  'probability matrix algorithm recursion python'
).split(' ');
const WORDS = [...FUNCTION_WORDS, ...FUNCTION_WORDS, ...CONTENT_WORDS, ...TASK_WORDS];

/** Pseudo-text of about `bytes` characters: sentences, numbers, a question, some code and math. */
function text(bytes: number, seed: number): string {
  const r = seededRandom(seed);
  const parts: string[] = [];
  let len = 0;
  while (len < bytes) {
    const n = 6 + Math.floor(r() * 14);
    const words: string[] = [];
    for (let i = 0; i < n; i++) {
      const x = r();
      words.push(
        x < 0.08
          ? String(Math.floor(r() * 1000))
          : x < 0.1
            ? 'x_1 + y^2 = z'
            : WORDS[Math.floor(r() * WORDS.length)]!,
      );
    }
    let s = words.join(' ');
    s = s[0]!.toUpperCase() + s.slice(1) + (r() < 0.2 ? '?' : '.');
    if (r() < 0.05) s += '\n```\nconst total = items.reduce((a, b) => a + b, 0);\n```';
    if (r() < 0.1) s += '\n';
    parts.push(s);
    len += s.length + 1;
  }
  return parts.join(' ').slice(0, bytes);
}

/** A few-shot multiple-choice prompt of about `bytes` characters (the layout of many benchmarks). */
function fewShot(bytes: number, seed: number): string {
  const r = seededRandom(seed);
  let s = '';
  while (s.length < bytes - 300) {
    s += `${text(160, Math.floor(r() * 1e9))}\nA) ${text(20, 1)}\nB) ${text(24, 2)}\nC) ${text(18, 3)}\nD) ${text(22, 4)}\nAnswer:\n${'ABCD'[Math.floor(r() * 4)]}\n\n`;
  }
  return s + `${text(200, seed + 1)}\nA) one\nB) two\nC) three\nD) four\nAnswer:`;
}

// Requests go through JSON like real traffic (flat strings, fresh objects).
const asRequest = (content: string) =>
  JSON.parse(JSON.stringify({ model: 'auto', messages: [{ role: 'user', content }] })) as Parameters<
    typeof classify
  >[0];

const cases: Array<{ name: string; budgetUs: number; make: (seed: number) => string; iterations: number }> = [
  { name: '~1 KB prompt', budgetUs: 50, make: (s) => text(1024, s), iterations },
  { name: '~4 KB prompt', budgetUs: 50, make: (s) => text(4 * 1024, s), iterations }, // largest fully scanned
  { name: '~8 KB prompt', budgetUs: 50, make: (s) => text(8 * 1024, s), iterations },
  { name: '~8 KB few-shot MCQ', budgetUs: 50, make: (s) => fewShot(8 * 1024, s), iterations },
  {
    name: '~200 KB prompt',
    budgetUs: 1000,
    make: (s) => text(200 * 1024, s),
    iterations: Math.max(200, Math.floor(iterations / 10)),
  },
];

let over = 0;
console.log('case                  n       p50 us   p99 us   max us   budget(p99)');
for (const c of cases) {
  const reqs = Array.from({ length: 16 }, (_, i) => asRequest(c.make(1000 + i)));
  let sink = 0;
  for (let i = 0; i < Math.min(2000, c.iterations); i++) sink += classify(reqs[i % reqs.length]!).score; // warm-up
  const samples = new Array<number>(c.iterations);
  for (let i = 0; i < c.iterations; i++) {
    const req = reqs[i % reqs.length]!;
    const t0 = process.hrtime.bigint();
    sink += classify(req).score;
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const s = summarize(samples);
  const ok = s.p99 <= c.budgetUs;
  if (!ok) over++;
  if (c.name === '~8 KB prompt' || c.name === '~200 KB prompt')
    figure({
      plane: 'classifier',
      what: `classify, ${c.name.slice(1)}: p50 / p99 (us)`,
      value: `${fmt(s.p50, 1)} / ${fmt(s.p99, 1)}`,
      goal: `p99 <= ${c.budgetUs} us`,
      ok,
    });
  console.log(
    `${c.name.padEnd(20)} ${String(s.n).padStart(6)}  ${fmt(s.p50, 1).padStart(7)}  ${fmt(s.p99, 1).padStart(7)}  ${fmt(s.max, 1).padStart(7)}   ${c.budgetUs} us ${ok ? 'ok' : 'OVER'}${sink < 0 ? '' : ''}`,
  );
}
if (over && values.strict) process.exit(1);
