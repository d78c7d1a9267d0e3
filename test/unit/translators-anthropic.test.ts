import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CompiledModel, CompiledProvider } from '../../src/core/config/compiled.js';
import type { Capability } from '../../src/core/config/schema.js';
import { ApiError } from '../../src/core/errors.js';
import { parseChatRequest } from '../../src/core/parse.js';
import { Secret } from '../../src/core/secret.js';
import {
  AnthropicTranslator,
  DEFAULT_MAX_TOKENS,
  finishReasonFor,
  toAnthropicRequest,
} from '../../src/core/providers/anthropic/chat.js';
import { translatorFor } from '../../src/core/providers/table.js';
import { parseSse } from '../../src/core/providers/shared/sse.js';
import type { Translator } from '../../src/core/providers/types.js';
import { type MockServer, startAnthropicMock } from '../mocks/anthropic-mock.js';
import { compiledModel, sendThrough } from '../helpers/translator.js';

const KEY = 'sk-ant-api03-SECRETSECRET-0123456789';

function model(
  over: Partial<CompiledProvider> = {},
  opts: { caps?: Capability[]; maxOut?: number; ctx?: number } = {},
): CompiledModel {
  return compiledModel(
    {
      name: 'claude',
      type: 'anthropic',
      baseUrl: 'https://anthropic.example.test/v1',
      credentials: { apiKey: new Secret(KEY) },
      ...over,
    },
    {
      id: 'claude/sonnet',
      name: 'sonnet',
      upstreamModel: 'claude-sonnet-4-5',
      tier: 'flagship',
      pricing: { inputPerMTok: 3, outputPerMTok: 15, cachedInputPerMTok: 0.3, cacheWritePerMTok: 3.75 },
      contextWindow: opts.ctx ?? 200000,
      maxOutputTokens: opts.maxOut ?? 64000,
      capabilities: opts.caps ?? ['tools', 'vision', 'streaming'],
    },
  );
}

const req = (body: Record<string, unknown>) =>
  parseChatRequest(
    JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'Hello' }], ...body }),
  );
const build = (body: Record<string, unknown>, m = model()) =>
  toAnthropicRequest(req(body), m) as Record<string, any>;
const translator = (body: Record<string, unknown> = {}, m = model()): Translator =>
  translatorFor('anthropic')(req(body), m);

const SSE_HEADERS = { 'content-type': 'text/event-stream' };

function drive(t: Translator, chunks: (string | Buffer)[]): string {
  const out: Buffer[] = [];
  chunks.forEach((c, i) =>
    out.push(t.onStreamChunk(Buffer.isBuffer(c) ? c : Buffer.from(c), i === chunks.length - 1)),
  );
  return Buffer.concat(out).toString('utf8');
}
const dataOf = (out: string) => parseSse(out).map((e) => e.data);
const payloads = (out: string) =>
  dataOf(out)
    .filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d) as Record<string, any>);

describe('Anthropic translator: request mapping', () => {
  it('is registered for anthropic', () => {
    expect(translator()).toBeInstanceOf(AnthropicTranslator);
  });

  it('posts to {baseUrl}/messages with x-api-key and anthropic-version, no bearer', () => {
    const r = translator(
      {},
      model({ headers: { 'Anthropic-Beta': 'prompt-caching-2024-07-31' } }),
    ).buildRequest();
    expect(r.method).toBe('POST');
    expect(r.url.href).toBe('https://anthropic.example.test/v1/messages');
    expect(r.headers['x-api-key']).toBe(KEY);
    expect(r.headers['anthropic-version']).toBe('2023-06-01');
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['anthropic-beta']).toBe('prompt-caching-2024-07-31');
    expect(r.headers.authorization).toBeUndefined();
    const body = JSON.parse(r.body.toString());
    expect(body.model).toBe('claude-sonnet-4-5');
    expect(body.messages).toEqual([{ role: 'user', content: 'Hello' }]);
  });

  it('defaults the base URL to the public API', () => {
    expect(translator({}, model({ baseUrl: '' })).buildRequest().url.href).toBe(
      'https://api.anthropic.com/v1/messages',
    );
  });

  it('moves system and developer messages to top-level system, in order', () => {
    const b = build({
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
        { role: 'user', content: 'Hi' },
        { role: 'system', content: 'Late note.' },
      ],
    });
    expect(b.system).toBe('You are terse.\n\nAnswer in French.\n\nLate note.');
    expect(b.messages).toEqual([{ role: 'user', content: 'Hi' }]);
  });

  it('keeps system as blocks when a part carries cache_control', () => {
    const b = build({
      messages: [
        {
          role: 'system',
          content: [{ type: 'text', text: 'Big context', cache_control: { type: 'ephemeral' } }],
        },
        { role: 'user', content: 'Hi' },
      ],
    });
    expect(b.system).toEqual([{ type: 'text', text: 'Big context', cache_control: { type: 'ephemeral' } }]);
  });

  describe('automatic prompt-cache breakpoints (promptCaching: auto, the default)', () => {
    const LONG = 'Policy clause. '.repeat(400); // 6,000 characters, about 1,500 tokens
    const ephemeral = { type: 'ephemeral' };

    it('marks a long system prompt, and nothing else in a single-turn request', () => {
      const b = build({
        messages: [
          { role: 'system', content: LONG },
          { role: 'user', content: 'Summarize clause 3.' },
        ],
      });
      expect(b.system).toEqual([{ type: 'text', text: LONG, cache_control: ephemeral }]);
      expect(b.messages).toEqual([{ role: 'user', content: 'Summarize clause 3.' }]);
    });

    it('marks the newest block of a long conversation under way, so the next turn reads it from the cache', () => {
      const b = build({
        messages: [
          { role: 'user', content: LONG },
          { role: 'assistant', content: 'Noted.' },
          { role: 'user', content: 'Now list the exceptions.' },
        ],
      });
      expect(b.system).toBeUndefined();
      expect(b.messages[2]).toEqual({
        role: 'user',
        content: [{ type: 'text', text: 'Now list the exceptions.', cache_control: ephemeral }],
      });
      expect(b.messages[0]).toEqual({ role: 'user', content: LONG });
    });

    it('adds nothing to short prompts, to a client that marked its own, or with promptCaching: off', () => {
      const short = build({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
          { role: 'user', content: 'Bye' },
        ],
      });
      expect(JSON.stringify(short)).not.toContain('cache_control');
      const own = build({
        messages: [
          {
            role: 'system',
            content: [{ type: 'text', text: LONG, cache_control: { type: 'ephemeral', ttl: '1h' } }],
          },
          { role: 'user', content: LONG },
          { role: 'assistant', content: 'ok' },
          { role: 'user', content: 'more' },
        ],
      });
      expect(JSON.stringify(own).match(/cache_control/g)).toHaveLength(1);
      const off = build(
        {
          messages: [
            { role: 'system', content: LONG },
            { role: 'user', content: LONG },
            { role: 'assistant', content: 'ok' },
            { role: 'user', content: 'more' },
          ],
        },
        model({ promptCaching: 'off' }),
      );
      expect(JSON.stringify(off)).not.toContain('cache_control');
    });
  });

  it('keeps a multi-turn conversation and merges consecutive same-role turns', () => {
    const b = build({
      messages: [
        { role: 'user', content: 'a' },
        { role: 'user', content: [{ type: 'text', text: 'b' }] },
        { role: 'assistant', content: 'c' },
        { role: 'assistant', content: 'd' },
        { role: 'user', content: 'e' },
      ],
    });
    expect(b.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'c' },
          { type: 'text', text: 'd' },
        ],
      },
      { role: 'user', content: 'e' },
    ]);
  });

  it('maps assistant tool_calls to tool_use and tool messages to one user turn of tool_result blocks', () => {
    const b = build({
      messages: [
        { role: 'user', content: 'Weather in Paris and Rome?' },
        {
          role: 'assistant',
          content: 'Checking.',
          tool_calls: [
            { id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
            { id: 'toolu_2', type: 'function', function: { name: 'weather', arguments: '' } },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_1', content: '18C' },
        { role: 'tool', tool_call_id: 'toolu_2', content: [{ type: 'text', text: '21C' }] },
        { role: 'user', content: 'Thanks, and?' },
      ],
    });
    expect(b.messages).toEqual([
      { role: 'user', content: 'Weather in Paris and Rome?' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'toolu_2', name: 'weather', input: {} },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: '18C' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: '21C' }] },
          { type: 'text', text: 'Thanks, and?' },
        ],
      },
    ]);
  });

  it('puts tool_result blocks first when user text preceded them in a merged turn', () => {
    const b = build({
      messages: [
        { role: 'user', content: 'q' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{}' } }],
        },
        { role: 'user', content: 'note first' },
        { role: 'tool', tool_call_id: 't1', content: 'r' },
      ],
    });
    expect(b.messages[2].content.map((x: any) => x.type)).toEqual(['tool_result', 'text']);
  });

  it('rejects tool-call arguments that are not a JSON object', () => {
    const bad = (args: string) => () =>
      build({
        messages: [
          { role: 'user', content: 'q' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: args } }],
          },
        ],
      });
    expect(bad('{not json')).toThrow(ApiError);
    expect(bad('[1,2]')).toThrow(/JSON object/);
  });

  it('maps images: data URL -> base64 source, https -> url source', () => {
    const b = build({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'high' } },
          ],
        },
      ],
    });
    expect(b.messages[0].content).toEqual([
      { type: 'text', text: 'What is this?' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
    ]);
  });

  it('maps a PDF file part to a document block, and rejects what it cannot map', () => {
    const b = build({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'file', file: { filename: 'a.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' } },
          ],
        },
      ],
    });
    expect(b.messages[0].content).toEqual([
      { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } },
    ]);
    expect(() =>
      build({
        messages: [
          { role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'x', format: 'wav' } }] },
        ],
      }),
    ).toThrow(/input_audio/);
    expect(() =>
      build({
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://x/y.png' } }] }],
      }),
    ).toThrow(ApiError);
    expect(() =>
      build({
        messages: [
          { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png,raw' } }] },
        ],
      }),
    ).toThrow(ApiError);
  });

  it('maps tools and every tool_choice form', () => {
    const tools = [
      {
        type: 'function',
        function: {
          name: 'weather',
          description: 'Get weather',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
      { type: 'function', function: { name: 'noargs' } },
    ];
    const b = build({ tools });
    expect(b.tools).toEqual([
      {
        name: 'weather',
        description: 'Get weather',
        input_schema: { type: 'object', properties: { city: { type: 'string' } } },
      },
      { name: 'noargs', input_schema: { type: 'object', properties: {} } },
    ]);
    expect(b.tool_choice).toBeUndefined();
    expect(build({ tools, tool_choice: 'auto' }).tool_choice).toEqual({ type: 'auto' });
    expect(build({ tools, tool_choice: 'none' }).tool_choice).toEqual({ type: 'none' });
    expect(build({ tools, tool_choice: 'required' }).tool_choice).toEqual({ type: 'any' });
    expect(
      build({ tools, tool_choice: { type: 'function', function: { name: 'weather' } } }).tool_choice,
    ).toEqual({ type: 'tool', name: 'weather' });
    expect(build({ tools, parallel_tool_calls: false }).tool_choice).toEqual({
      type: 'auto',
      disable_parallel_tool_use: true,
    });
    expect(build({ tools, tool_choice: 'required', parallel_tool_calls: false }).tool_choice).toEqual({
      type: 'any',
      disable_parallel_tool_use: true,
    });
  });

  it('declares the tools a history used when the request offers none (tool_choice none)', () => {
    const b = build({
      messages: [
        { role: 'user', content: 'q' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 't1', type: 'function', function: { name: 'lookup', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 't1', content: 'r' },
        { role: 'user', content: 'summarise' },
      ],
    });
    expect(b.tools).toEqual([{ name: 'lookup', input_schema: { type: 'object' } }]);
    expect(b.tool_choice).toEqual({ type: 'none' });
    expect(build({}).tools).toBeUndefined();
  });

  it('sets max_tokens: client value, capped at the model maximum, or the documented default', () => {
    expect(build({ max_tokens: 300 }).max_tokens).toBe(300);
    expect(build({ max_completion_tokens: 500, max_tokens: 300 }).max_tokens).toBe(500);
    expect(build({ max_tokens: 100000 }).max_tokens).toBe(64000);
    expect(build({}).max_tokens).toBe(DEFAULT_MAX_TOKENS);
    expect(build({}, model({}, { maxOut: 4096 })).max_tokens).toBe(4096);
    // Small context window: the default leaves room for the prompt.
    expect(build({}, model({}, { ctx: 5000 })).max_tokens).toBeLessThan(5000);
  });

  it('maps sampling parameters: temperature clamped, top_p only without temperature, stop, user', () => {
    const b = build({ temperature: 1.7, top_p: 0.9, stop: ['END', 'STOP'], user: 'user-42' });
    expect(b.temperature).toBe(1);
    expect(b.top_p).toBeUndefined();
    expect(b.stop_sequences).toEqual(['END', 'STOP']);
    expect(b.metadata).toEqual({ user_id: 'user-42' });
    const c = build({ top_p: 0.5, stop: 'X' });
    expect(c.top_p).toBe(0.5);
    expect(c.temperature).toBeUndefined();
    expect(c.stop_sequences).toEqual(['X']);
  });

  it('sets stream and ignores fields without an equivalent', () => {
    const b = build({
      stream: true,
      stream_options: { include_usage: true },
      seed: 1,
      frequency_penalty: 0.5,
      logprobs: true,
    });
    expect(b.stream).toBe(true);
    for (const k of ['stream_options', 'seed', 'frequency_penalty', 'logprobs']) expect(b[k]).toBeUndefined();
  });

  it('rejects n > 1 and the legacy function role', () => {
    expect(() => build({ n: 2 })).toThrow(/'n'/);
    expect(() => build({ messages: [{ role: 'function', name: 'f', content: 'x' }] })).toThrow(ApiError);
  });

  it('json_schema: output_config.format with the jsonSchema capability, a system instruction without', () => {
    const rf = {
      type: 'json_schema',
      json_schema: { name: 'person', schema: { type: 'object', properties: { name: { type: 'string' } } } },
    };
    const withCap = build({ response_format: rf }, model({}, { caps: ['tools', 'jsonSchema'] }));
    // Rewritten like the official SDK does: additionalProperties false on every object.
    expect(withCap.output_config).toEqual({
      format: {
        type: 'json_schema',
        schema: { type: 'object', properties: { name: { type: 'string' } }, additionalProperties: false },
      },
    });
    expect(withCap.system).toBeUndefined();
    const without = build({ response_format: rf });
    expect(without.output_config).toBeUndefined();
    expect(without.system).toContain('JSON Schema');
    expect(without.system).toContain('"name":{"type":"string"}');
    expect(build({ response_format: { type: 'json_object' } }).system).toContain('JSON object');
  });

  it('trims a final assistant prefill and handles a system-only request', () => {
    const b = build({
      messages: [
        { role: 'user', content: 'Say hi' },
        { role: 'assistant', content: 'Hi   ' },
      ],
    });
    expect(b.messages[1]).toEqual({ role: 'assistant', content: 'Hi' });
    const s = build({ messages: [{ role: 'system', content: 'Tell a joke.' }] });
    expect(s.messages).toEqual([{ role: 'user', content: 'Tell a joke.' }]);
    expect(s.system).toBeUndefined();
  });
});

describe('Anthropic translator: JSON responses', () => {
  const message = {
    id: 'msg_01',
    type: 'message',
    role: 'assistant',
    model: 'claude-sonnet-4-5-20250929',
    content: [
      { type: 'thinking', thinking: 'hmm', signature: 'x' },
      { type: 'text', text: 'Let me check. ' },
      { type: 'tool_use', id: 'toolu_9', name: 'weather', input: { city: 'Paris' } },
    ],
    stop_reason: 'tool_use',
    stop_sequence: null,
    usage: {
      input_tokens: 100,
      cache_creation_input_tokens: 20,
      cache_read_input_tokens: 1000,
      output_tokens: 30,
    },
  };

  it('translates content, tool calls, finish reason and usage', () => {
    const t = translator();
    t.buildRequest();
    expect(t.onResponseHeaders(200, { 'content-type': 'application/json' }).streaming).toBe(false);
    const out = JSON.parse(t.onBody(Buffer.from(JSON.stringify(message))).toString());
    expect(out.id).toBe('msg_01');
    expect(out.object).toBe('chat.completion');
    expect(typeof out.created).toBe('number');
    expect(out.model).toBe('claude-sonnet-4-5-20250929');
    expect(out.choices[0].message).toEqual({
      role: 'assistant',
      content: 'Let me check. ',
      refusal: null,
      tool_calls: [
        { id: 'toolu_9', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
      ],
    });
    expect(out.choices[0].finish_reason).toBe('tool_calls');
    expect(out.usage).toEqual({
      prompt_tokens: 1120,
      completion_tokens: 30,
      total_tokens: 1150,
      prompt_tokens_details: { cached_tokens: 1000 },
    });
    expect(t.usage).toEqual({
      promptTokens: 1120,
      completionTokens: 30,
      cachedPromptTokens: 1000,
      cacheWriteTokens: 20,
    });
    expect(t.sawFirstToken).toBe(true);
  });

  it('gives content null for a tool-only answer', () => {
    const t = translator();
    const out = JSON.parse(
      t.onBody(Buffer.from(JSON.stringify({ ...message, content: [message.content[2]] }))).toString(),
    );
    expect(out.choices[0].message.content).toBeNull();
  });

  it('maps every stop reason', () => {
    expect(finishReasonFor('end_turn')).toBe('stop');
    expect(finishReasonFor('stop_sequence')).toBe('stop');
    expect(finishReasonFor('max_tokens')).toBe('length');
    expect(finishReasonFor('tool_use')).toBe('tool_calls');
    expect(finishReasonFor('refusal')).toBe('content_filter');
    expect(finishReasonFor('pause_turn')).toBe('stop');
    expect(finishReasonFor('model_context_window_exceeded')).toBe('length');
  });

  it('rejects a non-JSON body with a 502', () => {
    expect(() => translator().onBody(Buffer.from('nope'))).toThrow(ApiError);
  });
});

const ev = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
const TEXT_STREAM = [
  ev('message_start', {
    type: 'message_start',
    message: {
      id: 'msg_S1',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5-20250929',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: 50,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 200,
        output_tokens: 1,
      },
    },
  }),
  ev('content_block_start', {
    type: 'content_block_start',
    index: 0,
    content_block: { type: 'text', text: '' },
  }),
  ev('ping', { type: 'ping' }),
  ev('content_block_delta', {
    type: 'content_block_delta',
    index: 0,
    delta: { type: 'text_delta', text: 'Bonjour ' },
  }),
  ev('content_block_delta', {
    type: 'content_block_delta',
    index: 0,
    delta: { type: 'text_delta', text: 'à 😀 tous' },
  }),
  ev('content_block_stop', { type: 'content_block_stop', index: 0 }),
  ev('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: 'end_turn', stop_sequence: null },
    usage: { output_tokens: 7 },
  }),
  ev('message_stop', { type: 'message_stop' }),
].join('');

const TOOL_STREAM = [
  ev('message_start', {
    type: 'message_start',
    message: { id: 'msg_T', model: 'claude-x', content: [], usage: { input_tokens: 10, output_tokens: 1 } },
  }),
  ev('content_block_start', {
    type: 'content_block_start',
    index: 0,
    content_block: { type: 'thinking', thinking: '' },
  }),
  ev('content_block_delta', {
    type: 'content_block_delta',
    index: 0,
    delta: { type: 'thinking_delta', thinking: 'secret plan' },
  }),
  ev('content_block_stop', { type: 'content_block_stop', index: 0 }),
  ev('content_block_start', {
    type: 'content_block_start',
    index: 1,
    content_block: { type: 'text', text: '' },
  }),
  ev('content_block_delta', {
    type: 'content_block_delta',
    index: 1,
    delta: { type: 'text_delta', text: 'Checking.' },
  }),
  ev('content_block_stop', { type: 'content_block_stop', index: 1 }),
  ev('content_block_start', {
    type: 'content_block_start',
    index: 2,
    content_block: { type: 'tool_use', id: 'toolu_A', name: 'weather', input: {} },
  }),
  ev('content_block_delta', {
    type: 'content_block_delta',
    index: 2,
    delta: { type: 'input_json_delta', partial_json: '' },
  }),
  ev('content_block_delta', {
    type: 'content_block_delta',
    index: 2,
    delta: { type: 'input_json_delta', partial_json: '{"city": "Pa' },
  }),
  ev('content_block_delta', {
    type: 'content_block_delta',
    index: 2,
    delta: { type: 'input_json_delta', partial_json: 'ris"}' },
  }),
  ev('content_block_stop', { type: 'content_block_stop', index: 2 }),
  ev('content_block_start', {
    type: 'content_block_start',
    index: 3,
    content_block: { type: 'tool_use', id: 'toolu_B', name: 'now', input: {} },
  }),
  ev('content_block_stop', { type: 'content_block_stop', index: 3 }),
  ev('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: 'tool_use' },
    usage: { output_tokens: 40 },
  }),
  ev('message_stop', { type: 'message_stop' }),
].join('');

function streamed(body: Record<string, unknown>, chunks: (string | Buffer)[]) {
  const t = translator({ stream: true, ...body });
  t.buildRequest();
  expect(t.onResponseHeaders(200, SSE_HEADERS).streaming).toBe(true);
  const out = drive(t, chunks);
  return { t, out, ps: payloads(out) };
}

describe('Anthropic translator: streaming', () => {
  it('translates a text stream: stable id, role first, content, finish, [DONE]; no usage chunk unless asked', () => {
    const { t, out, ps } = streamed({}, [TEXT_STREAM, '']);
    expect(new Set(ps.map((p) => p.id))).toEqual(new Set(['msg_S1']));
    expect(
      ps.every((p) => p.object === 'chat.completion.chunk' && p.model === 'claude-sonnet-4-5-20250929'),
    ).toBe(true);
    expect(ps[0]!.choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(ps.map((p) => p.choices[0]?.delta?.content ?? '').join('')).toBe('Bonjour à 😀 tous');
    expect(ps.at(-1)!.choices[0].finish_reason).toBe('stop');
    expect(ps.some((p) => p.usage)).toBe(false);
    expect(dataOf(out).filter((d) => d === '[DONE]')).toHaveLength(1);
    expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(t.usage).toEqual({
      promptTokens: 250,
      completionTokens: 7,
      cachedPromptTokens: 200,
      cacheWriteTokens: 0,
    });
    expect(t.streamError).toBeUndefined();
  });

  it('adds the usage chunk when the client asked for include_usage', () => {
    const { ps } = streamed({ stream_options: { include_usage: true } }, [TEXT_STREAM, '']);
    const last = ps.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({
      prompt_tokens: 250,
      completion_tokens: 7,
      total_tokens: 257,
      prompt_tokens_details: { cached_tokens: 200 },
    });
    expect(ps.at(-2)!.choices[0].finish_reason).toBe('stop');
  });

  it('emits [DONE] on message_stop, before the end call, and never twice', () => {
    const t = translator({ stream: true });
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    const first = t.onStreamChunk(Buffer.from(TEXT_STREAM), false).toString();
    expect(first.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(t.onStreamChunk(Buffer.alloc(0), true).length).toBe(0);
  });

  it('sets sawFirstToken only once text arrives', () => {
    const t = translator({ stream: true });
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    const cut = TEXT_STREAM.indexOf('event: content_block_delta');
    t.onStreamChunk(Buffer.from(TEXT_STREAM.slice(0, cut)), false);
    expect(t.sawFirstToken).toBe(false);
    t.onStreamChunk(Buffer.from(TEXT_STREAM.slice(cut)), true);
    expect(t.sawFirstToken).toBe(true);
  });

  it('holds the role chunk until the first token; an overloaded error right after message_start has sent nothing', () => {
    const start = TEXT_STREAM.slice(0, TEXT_STREAM.indexOf('event: content_block_start'));
    const t = translator({ stream: true });
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    expect(t.onStreamChunk(Buffer.from(start), false).length).toBe(0);
    const err = t.onStreamChunk(
      Buffer.from(ev('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })),
      false,
    );
    expect(t.streamError?.status).toBe(503);
    expect(t.sawFirstToken).toBe(false);
    expect(payloads(err.toString()).at(-1)!.error).toBeDefined();

    const u = translator({ stream: true });
    u.buildRequest();
    u.onResponseHeaders(200, SSE_HEADERS);
    expect(u.onStreamChunk(Buffer.from(start), false).length).toBe(0);
    const rest = TEXT_STREAM.slice(start.length);
    const first = rest.slice(0, rest.indexOf('event: content_block_stop'));
    const ps = payloads(u.onStreamChunk(Buffer.from(first), false).toString());
    expect(ps[0]!.choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(ps[1]!.choices[0].delta).toEqual({ content: 'Bonjour ' });
  });

  it('translates tool_use blocks into tool_calls deltas (index, id, name, then argument fragments); ignores thinking', () => {
    const { out, ps } = streamed({}, [TOOL_STREAM, '']);
    expect(out).not.toContain('secret plan');
    const deltas = ps.flatMap((p) => p.choices[0]?.delta?.tool_calls ?? []);
    expect(deltas[0]).toEqual({
      index: 0,
      id: 'toolu_A',
      type: 'function',
      function: { name: 'weather', arguments: '' },
    });
    const argsOf = (i: number) =>
      deltas
        .filter((d: any) => d.index === i)
        .map((d: any) => d.function.arguments)
        .join('');
    expect(JSON.parse(argsOf(0))).toEqual({ city: 'Paris' });
    expect(deltas.find((d: any) => d.index === 1)).toEqual({
      index: 1,
      id: 'toolu_B',
      type: 'function',
      function: { name: 'now', arguments: '' },
    });
    expect(argsOf(1)).toBe('{}'); // no-argument tool still gets parseable arguments
    expect(ps.map((p) => p.choices[0]?.delta?.content ?? '').join('')).toBe('Checking.');
    expect(ps.at(-1)!.choices[0].finish_reason).toBe('tool_calls');
  });

  it('gives identical output for the stream split at every byte boundary', () => {
    for (const stream of [TEXT_STREAM, TOOL_STREAM]) {
      const all = Buffer.from(stream);
      const whole = streamed({ stream_options: { include_usage: true } }, [all, Buffer.alloc(0)]);
      // `created` is per translator (seconds); compare with it normalised.
      const norm = (s: string) => s.replace(/"created":\d+/g, '"created":0');
      for (let i = 1; i < all.length; i++) {
        const r = streamed({ stream_options: { include_usage: true } }, [
          all.subarray(0, i),
          all.subarray(i),
          Buffer.alloc(0),
        ]);
        expect(norm(r.out), `split at ${i}`).toBe(norm(whole.out));
        expect(r.t.usage).toEqual(whole.t.usage);
      }
    }
  });

  it('turns an error event into streamError (overloaded -> 503) and an OpenAI error chunk, then [DONE]', () => {
    const cut = TEXT_STREAM.indexOf('event: content_block_stop');
    const err = ev('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    const { t, out, ps } = streamed({}, [TEXT_STREAM.slice(0, cut) + err, '']);
    expect(t.streamError).toBeInstanceOf(ApiError);
    expect(t.streamError!.status).toBe(503);
    expect(t.streamError!.code).toBe('overloaded_error');
    expect(ps.at(-1)!.error.message).toContain('Overloaded');
    expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(ps.some((p) => p.choices?.[0]?.finish_reason)).toBe(false);
  });

  it('marks a stream that ends without message_stop as incomplete', () => {
    const cut = TEXT_STREAM.indexOf('event: message_delta');
    const { t, out, ps } = streamed({}, [TEXT_STREAM.slice(0, cut), '']);
    expect(t.streamError?.code).toBe('incomplete_stream');
    expect(t.streamError?.status).toBe(502);
    expect(ps.at(-1)!.error).toBeDefined();
    expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
    // Usage from message_start is still known.
    expect(t.usage?.promptTokens).toBe(250);
  });

  it('maps max_tokens to finish_reason length in a stream', () => {
    const s = TEXT_STREAM.replace('"stop_reason":"end_turn"', '"stop_reason":"max_tokens"');
    expect(streamed({}, [s, '']).ps.at(-1)!.choices[0].finish_reason).toBe('length');
  });

  it('converts a JSON answer to a streaming request into chunks', () => {
    const t = translator({ stream: true });
    t.buildRequest();
    expect(t.onResponseHeaders(200, { 'content-type': 'application/json' }).streaming).toBe(true);
    const body = JSON.stringify({
      id: 'msg_J',
      model: 'c',
      content: [{ type: 'text', text: 'whole' }],
      stop_reason: 'end_turn',
      usage: { input_tokens: 1, output_tokens: 1 },
    });
    const ps = payloads(drive(t, [body, '']));
    expect(ps[0]!.choices[0].delta.content).toBe('whole');
  });
});

describe('Anthropic translator: errors', () => {
  const err = (status: number, type: string | undefined, message = 'msg') =>
    translator().onError(
      status,
      {},
      Buffer.from(
        JSON.stringify(type ? { type: 'error', error: { type, message }, request_id: 'req_1' } : { oops: 1 }),
      ),
    );

  it('maps every documented error type and status', () => {
    const cases: [number, string, number, string][] = [
      [400, 'invalid_request_error', 400, 'invalid_request_error'],
      [401, 'authentication_error', 401, 'authentication_error'],
      [403, 'permission_error', 403, 'permission_error'],
      [404, 'not_found_error', 404, 'not_found_error'],
      [413, 'request_too_large', 413, 'invalid_request_error'],
      [429, 'rate_limit_error', 429, 'rate_limit_error'],
      [500, 'api_error', 502, 'upstream_error'],
      [529, 'overloaded_error', 503, 'upstream_error'],
    ];
    for (const [status, type, want, wantType] of cases) {
      const e = err(status, type);
      expect(e.status, type).toBe(want);
      expect(e.type, type).toBe(wantType);
      expect(e.message).toContain('msg');
    }
    expect(err(413, 'request_too_large').code).toBe('request_too_large');
    expect(err(529, 'overloaded_error').code).toBe('overloaded_error');
  });

  it('handles non-Anthropic error bodies', () => {
    const e = translator().onError(502, {}, Buffer.from('<html>Bad gateway</html>'));
    expect(e.status).toBe(502);
    expect(e.message).toContain('Bad gateway');
    expect(err(500, undefined).status).toBe(502);
  });

  it('never includes the API key', () => {
    const e = err(401, 'authentication_error', `invalid x-api-key ${KEY}`);
    expect(e.toJson()).not.toContain('SECRETSECRET');
  });
});

describe('Anthropic translator against the mock server', () => {
  let mock: MockServer;
  beforeAll(async () => {
    mock = await startAnthropicMock({ apiKey: KEY });
  });
  afterAll(async () => {
    await mock.close();
  });
  beforeEach(() => mock.reset());

  const send = sendThrough;
  const m = () => model({ baseUrl: mock.url });

  const conversation = {
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather?' },
      {
        role: 'user',
        content: [{ type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/4AAQ' } }],
      },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_1', content: '18C' },
      { role: 'user', content: 'So?' },
    ],
    tools: [
      {
        type: 'function',
        function: {
          name: 'weather',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ],
    temperature: 0.3,
    top_p: 0.9,
  };

  it('sends a multi-turn tool conversation the (strict) mock accepts, and translates the answer', async () => {
    mock.setResponse({
      content: 'It is 18C.',
      usage: { prompt: 40, completion: 4, cached: 10, cacheWrite: 5 },
    });
    const t = translator(conversation, m());
    const r = await send(t);
    expect(r.error).toBeUndefined();
    const out = JSON.parse(r.out);
    expect(out.choices[0].message.content).toBe('It is 18C.');
    expect(out.usage.prompt_tokens).toBe(55);
    expect(t.usage).toEqual({
      promptTokens: 55,
      completionTokens: 4,
      cachedPromptTokens: 10,
      cacheWriteTokens: 5,
    });
    const seen = mock.lastRequest!;
    expect(seen.headers['x-api-key']).toBe(KEY);
    expect(seen.body.system).toBe('Be brief.');
    expect(seen.body.messages.map((x: any) => x.role)).toEqual(['user', 'assistant', 'user']);
  });

  it('the mock accepts a tool history sent without tools (declared by the translator)', async () => {
    const { tools: _tools, ...noTools } = conversation;
    const r = await send(translator(noTools, m()));
    expect(r.error).toBeUndefined();
    expect(mock.lastRequest!.body.tool_choice).toEqual({ type: 'none' });
  });

  it('streams tool calls from the mock', async () => {
    mock.setResponse({
      content: 'Let me look.',
      toolCalls: [{ id: 'toolu_X', name: 'weather', arguments: { city: 'Rome' } }],
    });
    const t = translator({ ...conversation, stream: true, stream_options: { include_usage: true } }, m());
    const r = await send(t);
    const ps = payloads(r.out);
    const args = ps
      .flatMap((p) => p.choices[0]?.delta?.tool_calls ?? [])
      .map((d: any) => d.function?.arguments ?? '')
      .join('');
    expect(JSON.parse(args)).toEqual({ city: 'Rome' });
    expect(ps.find((p) => p.choices[0]?.finish_reason)!.choices[0].finish_reason).toBe('tool_calls');
    expect(ps.at(-1)!.usage.completion_tokens).toBeGreaterThan(0);
    expect(t.sawFirstToken).toBe(true);
  });

  it('maps injected 529 and a mid-stream overloaded error', async () => {
    mock.failNext({ kind: 'status', status: 529 });
    const a = await send(translator({}, m()));
    expect(a.error?.status).toBe(503);
    mock.failNext({ kind: 'stream-error', afterEvents: 3 });
    const t = translator({ stream: true }, m());
    const b = await send(t);
    expect(t.streamError?.status).toBe(503);
    expect(b.out.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('the strict mock catches a request that breaks Anthropic rules', async () => {
    const r = await fetch(`${mock.url}/messages`, {
      method: 'POST',
      headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'x',
        max_tokens: 5,
        messages: [
          { role: 'user', content: 'a' },
          { role: 'user', content: 'b' },
        ],
      }),
    });
    expect(r.status).toBe(400);
    const e = translator().onError(r.status, {}, Buffer.from(await r.arrayBuffer()));
    expect(e.message).toMatch(/alternate/);
  });

  it('truncates at max_tokens with finish_reason length', async () => {
    mock.setResponse({ content: 'one two three four five' });
    const r = await send(translator({ max_tokens: 2 }, m()));
    const out = JSON.parse(r.out);
    expect(out.choices[0].finish_reason).toBe('length');
    expect(out.choices[0].message.content).toBe('one two ');
  });
});
