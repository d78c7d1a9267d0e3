// Contract tests, one family at a time: the provider's documented request and response shapes
// (the examples in the official SDKs' sources and API references, rewritten here as fixtures; no
// file of theirs is copied) go through TierFlow's translator, and the result is read by the
// official openai SDK, which is what a client runs. A translator that drifts from either side's
// documented format fails here.
//   Anthropic: anthropic-sdk-typescript src/resources/messages/messages.ts (MessageCreateParams.tools
//     example: get_stock_price, tool_use / tool_result) and the Messages streaming event sequence.
//   Gemini: googleapis/js-genai src/types.ts (GenerateContentResponse, FunctionCall.id,
//     Part.thoughtSignature, UsageMetadata).
//   Bedrock: botocore bedrock-runtime service-2.json (ConverseResponse, ConverseStream events,
//     ToolConfiguration).
//   OpenAI / Azure OpenAI: openai-node chat.completion / chat.completion.chunk, Azure's
//     prompt_filter_results opening event (azure-rest-api-specs inference 2024-10-21).
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import type { CompiledModel } from '../../src/core/config/compiled.js';
import type { ProviderType } from '../../src/core/config/schema.js';
import { parseChatRequest } from '../../src/core/parse.js';
import { Secret } from '../../src/core/secret.js';
import { encodeEventStreamMessage } from '../../src/core/providers/shared/eventstream.js';
import { translatorFor } from '../../src/core/providers/table.js';
import type { Translator } from '../../src/core/providers/types.js';
import { compiledModel } from '../helpers/translator.js';

function modelOf(type: ProviderType, upstreamModel: string): CompiledModel {
  const credentials =
    type === 'bedrock'
      ? { awsAccessKeyId: new Secret('AKIDCONTRACT'), awsSecretAccessKey: new Secret('contract-secret') }
      : { apiKey: new Secret('contract-key') };
  return compiledModel(
    { name: type, type, baseUrl: 'https://provider.invalid', credentials, region: 'us-east-1' },
    {
      id: `${type}/${upstreamModel}`,
      name: upstreamModel,
      upstreamModel,
      tier: 'flagship',
      pricing: { inputPerMTok: 1, outputPerMTok: 1, cachedInputPerMTok: 1, cacheWritePerMTok: 1 },
      contextWindow: 200_000,
      maxOutputTokens: 8192,
      capabilities: ['tools', 'vision', 'jsonSchema', 'streaming'],
    },
  );
}

const request = (body: Record<string, unknown>) =>
  parseChatRequest(JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }], ...body }));

/** What the translator makes of a provider answer (all chunks at once, then end). */
function translate(
  t: Translator,
  answer: Buffer,
  contentType: string,
): { body: Buffer; headers: Record<string, string> } {
  t.buildRequest();
  const start = t.onResponseHeaders(200, { 'content-type': contentType });
  const body = start.streaming
    ? Buffer.concat([t.onStreamChunk(answer, false), t.onStreamChunk(Buffer.alloc(0), true)])
    : t.onBody(answer);
  return { body, headers: start.headers };
}

/** The official openai SDK reading a translated answer, as a client of TierFlow would. */
function sdkReading(out: { body: Buffer; headers: Record<string, string> }): OpenAI {
  return new OpenAI({
    apiKey: 'unused',
    baseURL: 'http://tierflow.invalid/v1',
    maxRetries: 0,
    fetch: async () => new Response(new Uint8Array(out.body), { status: 200, headers: out.headers }),
  });
}

async function sdkStream(out: { body: Buffer; headers: Record<string, string> }) {
  const stream = sdkReading(out).chat.completions.stream({
    model: 'auto',
    messages: [{ role: 'user', content: 'hi' }],
    stream_options: { include_usage: true },
  });
  return stream.finalChatCompletion();
}

const sse = (events: [string | undefined, unknown][]) =>
  Buffer.from(
    events
      .map(([name, data]) => `${name ? `event: ${name}\n` : ''}data: ${JSON.stringify(data)}\n\n`)
      .join(''),
  );

describe('Anthropic Messages contract', () => {
  const model = modelOf('anthropic', 'claude-sonnet-4-5-20250929');

  it('the documented tool exchange (get_stock_price) is the request TierFlow sends', () => {
    const t = translatorFor('anthropic')(
      request({
        messages: [
          { role: 'user', content: "What's the S&P 500 at today?" },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'toolu_01D7FLrfh4GYq7yT1ULFeyMV',
                type: 'function',
                function: { name: 'get_stock_price', arguments: '{"ticker":"^GSPC"}' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'toolu_01D7FLrfh4GYq7yT1ULFeyMV', content: '259.75 USD' },
        ],
        tools: [
          {
            type: 'function',
            function: {
              name: 'get_stock_price',
              description: 'Get the current stock price for a given ticker symbol.',
              parameters: {
                type: 'object',
                properties: {
                  ticker: {
                    type: 'string',
                    description: 'The stock ticker symbol, e.g. AAPL for Apple Inc.',
                  },
                },
                required: ['ticker'],
              },
            },
          },
        ],
      }),
      model,
    );
    const body = JSON.parse(t.buildRequest().body.toString());
    expect(body.tools).toEqual([
      {
        name: 'get_stock_price',
        description: 'Get the current stock price for a given ticker symbol.',
        input_schema: {
          type: 'object',
          properties: {
            ticker: { type: 'string', description: 'The stock ticker symbol, e.g. AAPL for Apple Inc.' },
          },
          required: ['ticker'],
        },
      },
    ]);
    expect(body.messages.slice(1)).toEqual([
      {
        role: 'assistant',
        content: [
          {
            type: 'tool_use',
            id: 'toolu_01D7FLrfh4GYq7yT1ULFeyMV',
            name: 'get_stock_price',
            input: { ticker: '^GSPC' },
          },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_01D7FLrfh4GYq7yT1ULFeyMV', content: '259.75 USD' },
        ],
      },
    ]);
  });

  it('the documented streaming event sequence (text, then a tool_use with input_json_delta) reads as one completion', async () => {
    const events = sse([
      [
        'message_start',
        {
          type: 'message_start',
          message: {
            id: 'msg_014p7gG3wDgGV9EUtLvnow3U',
            type: 'message',
            role: 'assistant',
            model: 'claude-sonnet-4-5-20250929',
            stop_sequence: null,
            usage: { input_tokens: 472, output_tokens: 2 },
            content: [],
            stop_reason: null,
          },
        },
      ],
      [
        'content_block_start',
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      ],
      ['ping', { type: 'ping' }],
      [
        'content_block_delta',
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Okay' } },
      ],
      [
        'content_block_delta',
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ', checking.' } },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      [
        'content_block_start',
        {
          type: 'content_block_start',
          index: 1,
          content_block: {
            type: 'tool_use',
            id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6',
            name: 'get_weather',
            input: {},
          },
        },
      ],
      [
        'content_block_delta',
        { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '' } },
      ],
      [
        'content_block_delta',
        {
          type: 'content_block_delta',
          index: 1,
          delta: { type: 'input_json_delta', partial_json: '{"location":' },
        },
      ],
      [
        'content_block_delta',
        {
          type: 'content_block_delta',
          index: 1,
          delta: { type: 'input_json_delta', partial_json: ' "San Francisco, CA"}' },
        },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 1 }],
      [
        'message_delta',
        {
          type: 'message_delta',
          delta: { stop_reason: 'tool_use', stop_sequence: null },
          usage: { output_tokens: 89 },
        },
      ],
      ['message_stop', { type: 'message_stop' }],
    ]);
    const t = translatorFor('anthropic')(
      request({ stream: true, stream_options: { include_usage: true } }),
      model,
    );
    const done = await sdkStream(translate(t, events, 'text/event-stream'));
    const msg = done.choices[0]!.message;
    expect(msg.content).toBe('Okay, checking.');
    expect(msg.tool_calls).toEqual([
      {
        id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6',
        type: 'function',
        function: { name: 'get_weather', arguments: '{"location": "San Francisco, CA"}' },
      },
    ]);
    expect(done.choices[0]!.finish_reason).toBe('tool_calls');
    expect(done.usage).toMatchObject({ prompt_tokens: 472, completion_tokens: 89 });
  });
});

describe('Gemini generateContent contract', () => {
  const model = modelOf('gemini', 'gemini-3-pro-preview');
  const signature = Buffer.alloc(180, 7).toString('base64');

  it('a Gemini 3 function call (id, thoughtSignature) reads as a tool call, and both come back next turn', async () => {
    const answer = Buffer.from(
      JSON.stringify({
        candidates: [
          {
            content: {
              role: 'model',
              parts: [
                {
                  functionCall: { id: 'dsc4f3x1', name: 'get_weather', args: { location: 'Boston' } },
                  thoughtSignature: signature,
                },
              ],
            },
            finishReason: 'STOP',
            index: 0,
          },
        ],
        usageMetadata: {
          promptTokenCount: 70,
          candidatesTokenCount: 15,
          thoughtsTokenCount: 40,
          totalTokenCount: 125,
        },
        modelVersion: 'gemini-3-pro-preview',
        responseId: 'r1',
      }),
    );
    const t = translatorFor('gemini')(request({}), model);
    const done = await sdkReading(translate(t, answer, 'application/json')).chat.completions.create({
      model: 'auto',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const call = done.choices[0]!.message.tool_calls![0]!;
    expect(call.type === 'function' && call.function.name).toBe('get_weather');
    expect(done.choices[0]!.finish_reason).toBe('tool_calls');
    expect(done.usage).toMatchObject({ prompt_tokens: 70, completion_tokens: 55 });

    const next = translatorFor('gemini')(
      request({
        messages: [
          { role: 'user', content: 'Weather in Boston?' },
          done.choices[0]!.message,
          { role: 'tool', tool_call_id: call.id, content: '{"temperature":"15C"}' },
        ],
      }),
      model,
    );
    const body = JSON.parse(next.buildRequest().body.toString());
    expect(body.contents[1].parts).toEqual([
      {
        functionCall: { id: 'dsc4f3x1', name: 'get_weather', args: { location: 'Boston' } },
        thoughtSignature: signature,
      },
    ]);
    expect(body.contents[2].parts).toEqual([
      { functionResponse: { id: 'dsc4f3x1', name: 'get_weather', response: { temperature: '15C' } } },
    ]);
  });

  it('a streamed answer (text chunks, finishReason, usageMetadata) reads as one completion', async () => {
    const chunk = (text: string, extra: Record<string, unknown> = {}) =>
      [
        undefined,
        {
          candidates: [{ content: { role: 'model', parts: [{ text }] }, index: 0, ...extra }],
          modelVersion: 'gemini-3-pro-preview',
        },
      ] as [undefined, unknown];
    const events = sse([
      chunk('The sky '),
      chunk('is blue.', { finishReason: 'STOP' }),
      [
        undefined,
        {
          candidates: [],
          usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 4, totalTokenCount: 12 },
        },
      ],
    ]);
    const t = translatorFor('gemini')(
      request({ stream: true, stream_options: { include_usage: true } }),
      model,
    );
    const done = await sdkStream(translate(t, events, 'text/event-stream'));
    expect(done.choices[0]!.message.content).toBe('The sky is blue.');
    expect(done.choices[0]!.finish_reason).toBe('stop');
    expect(done.usage).toMatchObject({ prompt_tokens: 8, completion_tokens: 4 });
  });
});

describe('Bedrock Converse contract', () => {
  const model = modelOf('bedrock', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0');

  it('a ConverseResponse (output.message, stopReason, usage, metrics) reads as a completion', async () => {
    const answer = Buffer.from(
      JSON.stringify({
        output: {
          message: {
            role: 'assistant',
            content: [
              { text: 'Checking.' },
              {
                toolUse: {
                  toolUseId: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q',
                  name: 'top_song',
                  input: { sign: 'WZPZ' },
                },
              },
            ],
          },
        },
        stopReason: 'tool_use',
        usage: { inputTokens: 375, outputTokens: 56, totalTokens: 431 },
        metrics: { latencyMs: 1350 },
      }),
    );
    const t = translatorFor('bedrock')(request({}), model);
    const done = await sdkReading(translate(t, answer, 'application/json')).chat.completions.create({
      model: 'auto',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(done.choices[0]!.message.content).toBe('Checking.');
    expect(done.choices[0]!.message.tool_calls).toEqual([
      {
        id: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q',
        type: 'function',
        function: { name: 'top_song', arguments: '{"sign":"WZPZ"}' },
      },
    ]);
    expect(done.usage).toMatchObject({ prompt_tokens: 375, completion_tokens: 56 });
  });

  it('ConverseStream events (messageStart, contentBlockStart/Delta/Stop, messageStop, metadata) read as one completion', async () => {
    const frame = (type: string, payload: unknown) =>
      Buffer.from(
        encodeEventStreamMessage(
          { ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' },
          JSON.stringify(payload),
        ),
      );
    const frames = Buffer.concat([
      frame('messageStart', { role: 'assistant' }),
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Let me look.' } }),
      frame('contentBlockStop', { contentBlockIndex: 0 }),
      frame('contentBlockStart', {
        contentBlockIndex: 1,
        start: { toolUse: { toolUseId: 'tooluse_1', name: 'top_song' } },
      }),
      frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '{"sign":' } } }),
      frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '"WZPZ"}' } } }),
      frame('contentBlockStop', { contentBlockIndex: 1 }),
      frame('messageStop', { stopReason: 'tool_use' }),
      frame('metadata', {
        usage: { inputTokens: 20, outputTokens: 9, totalTokens: 29 },
        metrics: { latencyMs: 300 },
      }),
    ]);
    const t = translatorFor('bedrock')(
      request({ stream: true, stream_options: { include_usage: true } }),
      model,
    );
    const done = await sdkStream(translate(t, frames, 'application/vnd.amazon.eventstream'));
    const msg = done.choices[0]!.message;
    expect(msg.content).toBe('Let me look.');
    expect(msg.tool_calls?.[0]).toMatchObject({
      id: 'tooluse_1',
      function: { name: 'top_song', arguments: '{"sign":"WZPZ"}' },
    });
    expect(done.usage).toMatchObject({ prompt_tokens: 20, completion_tokens: 9 });
  });

  it('the request is the documented ToolConfiguration / Message shape', () => {
    const t = translatorFor('bedrock')(
      request({
        messages: [{ role: 'user', content: 'What is the most popular song on WZPZ?' }],
        tools: [
          {
            type: 'function',
            function: {
              name: 'top_song',
              description: 'Get the most popular song played on a radio station.',
              parameters: { type: 'object', properties: { sign: { type: 'string' } }, required: ['sign'] },
            },
          },
        ],
      }),
      model,
    );
    const body = JSON.parse(t.buildRequest().body.toString());
    expect(body.messages).toEqual([
      { role: 'user', content: [{ text: 'What is the most popular song on WZPZ?' }] },
    ]);
    expect(body.toolConfig).toEqual({
      tools: [
        {
          toolSpec: {
            name: 'top_song',
            description: 'Get the most popular song played on a radio station.',
            inputSchema: {
              json: { type: 'object', properties: { sign: { type: 'string' } }, required: ['sign'] },
            },
          },
        },
      ],
    });
  });
});

describe('OpenAI and Azure OpenAI contract', () => {
  it('a chat.completion.chunk stream, with Azure prompt_filter_results first, reads unchanged', async () => {
    const base = {
      id: 'chatcmpl-123',
      object: 'chat.completion.chunk',
      created: 1694268190,
      model: 'gpt-4.1-mini',
    };
    const events = Buffer.concat([
      sse([
        [
          undefined,
          {
            id: '',
            object: '',
            created: 0,
            model: '',
            choices: [],
            prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }],
          },
        ],
        [
          undefined,
          {
            ...base,
            choices: [
              { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
            ],
          },
        ],
        [
          undefined,
          {
            ...base,
            choices: [{ index: 0, delta: { content: 'Hello' }, logprobs: null, finish_reason: null }],
          },
        ],
        [undefined, { ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }],
        [
          undefined,
          { ...base, choices: [], usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } },
        ],
      ]),
      Buffer.from('data: [DONE]\n\n'),
    ]);
    const t = translatorFor('azure-openai')(
      request({ stream: true, stream_options: { include_usage: true } }),
      modelOf('azure-openai', 'gpt-4.1-mini'),
    );
    const done = await sdkStream(translate(t, events, 'text/event-stream'));
    expect(done.choices[0]!.message.content).toBe('Hello');
    expect(done.usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 1 });
  });
});
