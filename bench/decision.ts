// Decision time: Router.plan (parse, classify, select) per request, in-process.
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
