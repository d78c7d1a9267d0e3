// Responses API overhead, in-process: what POST /v1/responses costs on top of the same
// conversation sent as a chat completion.
//   request: parseResponsesRequest + validateChatRequest of its chat form (what
//            planResponsesRequest does) vs parseChatRequest of the equivalent chat body
//   stream:  ChatToResponsesStream over a 200-delta chat stream (per chat chunk)
//   node bench/responses.ts [--iterations 20000]    (after npm run build)
import { parseArgs } from 'node:util';
import { parseChatRequest, validateChatRequest } from '../dist/core/parse.js';
import { parseResponsesRequest } from '../dist/core/responses/request.js';
import { ChatToResponsesStream } from '../dist/core/responses/stream.js';
import { fmt, summarize } from './lib.ts';

const { values } = parseArgs({ options: { iterations: { type: 'string' }, quick: { type: 'boolean' } } });
const iterations = Number(values.iterations ?? (values.quick ? 5_000 : 20_000));

// An ~8 KB tool conversation, as Responses input items and as the chat body it maps to.
const turns = Array.from({ length: 12 }, (_, i) => ({
  role: i % 2 ? 'assistant' : 'user',
  content: `Turn ${i}: please refactor this function and explain the complexity. `.repeat(7),
}));
const tool = { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } };
const responsesBody = Buffer.from(
  JSON.stringify({
    model: 'auto',
    instructions: 'Be careful.',
    tools: [{ type: 'function', ...tool }],
    input: [
      ...turns,
      { type: 'function_call', call_id: 'call_1', name: 'lookup', arguments: '{"q":"x"}' },
      { type: 'function_call_output', call_id: 'call_1', output: 'result' },
    ],
  }),
);
const chatBody = Buffer.from(
  JSON.stringify({
    model: 'auto',
    tools: [{ type: 'function', function: tool }],
    messages: [
      { role: 'system', content: 'Be careful.' },
      ...turns,
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: 'result' },
    ],
  }),
);

function time(label: string, fn: () => void): number {
  for (let i = 0; i < 2000; i++) fn();
  const samples = new Array<number>(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const s = summarize(samples);
  console.log(`${label}: p50 ${fmt(s.p50, 1)} µs  p99 ${fmt(s.p99, 1)} µs  (n=${s.n})`);
  return s.p50;
}

const chat = time(`parse chat request (${chatBody.length} B)`, () => parseChatRequest(chatBody));
const responses = time(`parse Responses request + chat form (${responsesBody.length} B)`, () => {
  validateChatRequest(parseResponsesRequest(responsesBody).chat);
});
console.log(`request overhead of /v1/responses: ${fmt(responses - chat, 1)} µs at p50`);

const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const deltas = Array.from({ length: 200 }, (_, i) => Buffer.from(chunk({ content: `word${i} ` })));
const tail = Buffer.from(chunk({}, 'stop') + 'data: [DONE]\n\n');
const usage = { promptTokens: 10, completionTokens: 200, cachedPromptTokens: 0, cacheWriteTokens: 0 };
const perStream = time('Responses events from a 200-delta chat stream (whole stream)', () => {
  const s = new ChatToResponsesStream({ model: 'auto' }, 0, () => usage);
  for (const d of deltas) s.push(d, false);
  s.push(tail, true);
});
console.log(`per chat chunk: ${fmt(perStream / 201, 2)} µs at p50`);
