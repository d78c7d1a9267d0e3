// Decision time: Router.plan (parse, classify, select) per request, in-process, and a control
// (a loop that allocates nothing, of the same median) for the machine's own tail.
//   node bench/decision.ts [--iterations 20000]
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../dist/config/load.js';
import { HealthRegistry } from '../dist/core/health/registry.js';
import { Router } from '../dist/core/router.js';
import { figure, fmt, summarize } from './lib.ts';

const { values } = parseArgs({ options: { iterations: { type: 'string' }, quick: { type: 'boolean' } } });
const iterations = Number(values.iterations ?? (values.quick ? 5_000 : 20_000));
const loaded = loadConfigFile('tierflow.yaml', {
  env: { OPENAI_API_KEY: 'x', ANTHROPIC_API_KEY: 'x', GEMINI_API_KEY: 'x' },
});
if (!loaded.config) throw new Error('tierflow.yaml did not load');
const router = new Router({ config: loaded.config, health: new HealthRegistry() });

const bodies = {
  'short chat (60 B)': {
    model: 'auto',
    messages: [{ role: 'user', content: 'What is the capital of France?' }],
  },
  '4 KB request': {
    model: 'auto',
    messages: [
      { role: 'system', content: 'You are a careful assistant.' },
      {
        role: 'user',
        content: 'Summarize the following report and list three risks, step by step. '.repeat(60),
      },
    ],
  },
  '8 KB multi-turn with tools': {
    model: 'auto',
    tools: [
      {
        type: 'function',
        function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } },
      },
    ],
    messages: Array.from({ length: 16 }, (_, i) => ({
      role: i % 2 ? 'assistant' : 'user',
      content: `Turn ${i}: please refactor this function and explain the complexity. `.repeat(7),
    })),
  },
};

let lastP50 = 0;
for (const [name, body] of Object.entries(bodies)) {
  const raw = Buffer.from(JSON.stringify(body));
  const route = { body: raw, headers: { 'content-type': 'application/json', 'user-agent': 'bench' } };
  for (let i = 0; i < 2000; i++) router.plan(route); // warm-up
  const samples = new Array<number>(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    router.plan(route);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const s = summarize(samples);
  lastP50 = s.p50;
  const budget = raw.length > 6000 ? 50 : undefined;
  figure({
    plane: 'decision',
    what: `Router.plan, ${name}: p50 / p99 (us)`,
    value: `${fmt(s.p50, 1)} / ${fmt(s.p99, 1)}`,
    goal: budget ? `p99 <= ${budget} us` : undefined,
    ok: budget ? s.p99 <= budget : undefined,
  });
  console.log(
    `decision (${name}, ${raw.length} B): p50 ${fmt(s.p50, 1)} µs  p99 ${fmt(s.p99, 1)} µs  (n=${s.n})`,
  );
}

// Control: the machine's own tail. A fixed loop that allocates nothing, sized to the median of the
// last case above, timed the same way: on a shared or loaded machine its p99 shows how much of a
// p99 is preemption and interrupts rather than the decision's work (allocation, GC).
const scratch = new Float64Array(1024).map((_, i) => i);
let _sink = 0;
const spin = (rounds: number) => {
  let acc = 0;
  for (let r = 0; r < rounds; r++) for (let i = 0; i < scratch.length; i++) acc += scratch[i]! * r;
  _sink += acc;
};
/** `n` timings of spin(rounds), us (the same function sizes the loop and measures it). */
const timeSpin = (r: number, n: number) => {
  const t = new Array<number>(n);
  for (let k = 0; k < n; k++) {
    const t0 = process.hrtime.bigint();
    spin(r);
    t[k] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return t;
};
timeSpin(4, 20_000); // warm-up: size the optimized loop
let rounds = 1;
while (summarize(timeSpin(rounds, 301)).p50 < lastP50 && rounds < 1 << 16) rounds *= 2;
rounds = Math.max(1, Math.round((rounds * lastP50) / summarize(timeSpin(rounds, 301)).p50));
const control = timeSpin(rounds, iterations);
const c = summarize(control);
figure({
  plane: 'decision',
  what: 'control: a loop of the same median that allocates nothing: p50 / p99 (us)',
  value: `${fmt(c.p50, 1)} / ${fmt(c.p99, 1)}`,
});
console.log(
  `control (fixed loop, no allocation): p50 ${fmt(c.p50, 1)} µs  p99 ${fmt(c.p99, 1)} µs  (n=${c.n})`,
);
