// Translation time: Translator.buildRequest per family (the request adapted to the serving model's
// facts, mapped to the wire format, serialised), in-process, for the models of the shipped catalog;
// then the same for embeddings requests (16 texts; Titan takes one).
//   node bench/translate.ts [--iterations 20000]
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../dist/config/load.js';
import { embeddingsParsedRequest, parseEmbeddingsRequest } from '../dist/core/embeddings/request.js';
import { parseChatRequest } from '../dist/core/parse.js';
import { translatorFor, translatorForRequest } from '../dist/core/providers/table.js';
import { fmt, summarize } from './lib.ts';

const { values } = parseArgs({ options: { iterations: { type: 'string' }, quick: { type: 'boolean' } } });
const iterations = Number(values.iterations ?? (values.quick ? 5_000 : 20_000));
const loaded = loadConfigFile('tierflow.yaml', {
  env: {
    OPENAI_API_KEY: 'x',
    ANTHROPIC_API_KEY: 'x',
    GEMINI_API_KEY: 'x',
    AZURE_OPENAI_API_KEY: 'x',
    AWS_BEARER_TOKEN_BEDROCK: 'x',
  },
});
if (!loaded.config) throw new Error('tierflow.yaml did not load');
const models = loaded.config.models;

// An 8 KB tool conversation with sampling parameters several models adapt (temperature, top_p)
// and a tool-call id longer than OpenAI's 40 characters (a Gemini 3 id with its signature).
const longId = `call_gid6763313233_ts_${'A'.repeat(240)}`;
const body = {
  model: 'auto',
  temperature: 0.4,
  top_p: 0.9,
  tools: [
    {
      type: 'function',
      function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } },
    },
  ],
  messages: [
    { role: 'developer', content: 'Be careful.' },
    ...Array.from({ length: 12 }, (_, i) => ({
      role: i % 2 ? 'assistant' : 'user',
      content: `Turn ${i}: please refactor this function and explain the complexity. `.repeat(7),
    })),
    {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: longId, type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } }],
    },
    { role: 'tool', tool_call_id: longId, content: 'result' },
  ],
};
const raw = Buffer.from(JSON.stringify(body));
const request = parseChatRequest(raw);

for (const id of [
  'openai/gpt-6.2-sol',
  'azure/gpt-6.2-sol',
  'anthropic/claude-sonnet-5-5',
  'google/gemini-4-neon',
  'bedrock/bedrock-claude-sonnet-4-5',
]) {
  const model = models.get(id);
  if (!model) throw new Error(`${id} is not in the catalog`);
  const make = translatorFor(model.provider.type);
  for (let i = 0; i < 2000; i++) make(request, model).buildRequest(); // warm-up
  const samples = new Array<number>(iterations);
  let adjusted: readonly string[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    const t = make(request, model);
    t.buildRequest();
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
    adjusted = t.adjusted;
  }
  const s = summarize(samples);
  console.log(
    `translate (${id}, ${raw.length} B): p50 ${fmt(s.p50, 1)} µs  p99 ${fmt(s.p99, 1)} µs  adjusted: ${adjusted.join(',') || '-'}  (n=${s.n})`,
  );
}

// Embeddings: 16 texts of about 500 characters (Titan embeds one input per request: one text).
const texts = Array.from({ length: 16 }, (_, i) => `Document ${i}: ${'searchable words '.repeat(30)}`);
for (const [id, input] of [
  ['openai/text-embedding-3-small', texts],
  ['azure/text-embedding-3-small', texts],
  ['google/gemini-embedding-001', texts],
  ['bedrock/cohere-embed-english-v3', texts],
  ['bedrock/titan-embed-text-v2', texts.slice(0, 1)],
] as const) {
  const model = loaded.config.embeddingModels.get(id);
  if (!model) throw new Error(`${id} is not in the catalog`);
  const bytes = Buffer.from(JSON.stringify({ model: model.name, input }));
  const req = embeddingsParsedRequest(parseEmbeddingsRequest(bytes));
  for (let i = 0; i < 2000; i++) translatorForRequest(req, model).buildRequest(); // warm-up
  const samples = new Array<number>(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    translatorForRequest(req, model).buildRequest();
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const s = summarize(samples);
  console.log(
    `embeddings (${id}, ${bytes.length} B): p50 ${fmt(s.p50, 1)} µs  p99 ${fmt(s.p99, 1)} µs  (n=${s.n})`,
  );
}
