// The Responses API core (src/core/responses): request -> chat form, chat answers -> Response
// objects and Responses SSE events, and the native (OpenAI) translator's stream handling.
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/core/errors.js';
import { parseChatRequest } from '../../src/core/parse.js';
import { parseResponsesRequest, responsesToChat } from '../../src/core/responses/request.js';
import { completionToResponse } from '../../src/core/responses/response.js';
import { ResponseStore } from '../../src/core/responses/store.js';
import { ChatToResponsesStream } from '../../src/core/responses/stream.js';
import { NativeResponsesTranslator } from '../../src/core/providers/openai/responses.js';
import { responsesTranslator } from '../../src/core/responses/translator.js';
import { Secret } from '../../src/core/secret.js';
import { SseParser } from '../../src/core/providers/shared/sse.js';
import { compiledModel } from '../helpers/translator.js';

const usage = { promptTokens: 10, completionTokens: 5, cachedPromptTokens: 2, cacheWriteTokens: 0 };

function events(text: string): Record<string, any>[] {
  const out: Record<string, any>[] = [];
  const p = new SseParser((data, event) => {
    const obj = JSON.parse(data) as Record<string, any>;
    expect(event).toBe(obj.type);
    out.push(obj);
  });
  p.push(Buffer.from(text));
  p.end();
  return out;
}

const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'up-model', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

describe('responsesToChat', () => {
  it('maps instructions, input items, tools, tool_choice, text.format, reasoning and limits', () => {
    const { chat, responses } = responsesToChat({
      model: 'auto',
      instructions: 'Be brief.',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'Look' },
            { type: 'input_image', image_url: 'https://x/i.png' },
          ],
        },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Calling.' }] },
        { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{"a":1}' },
        { type: 'function_call', call_id: 'c2', name: 'g', arguments: '{}' },
        { type: 'reasoning', id: 'rs_1', summary: [] },
        { type: 'function_call_output', call_id: 'c1', output: 'one' },
        { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: 'two' }] },
      ],
      tools: [
        { type: 'function', name: 'f', description: 'F', parameters: { type: 'object' }, strict: true },
      ],
      tool_choice: { type: 'function', name: 'f' },
      parallel_tool_calls: false,
      text: { format: { type: 'json_schema', name: 's', schema: { type: 'object' }, strict: true } },
      reasoning: { effort: 'high' },
      max_output_tokens: 99,
      temperature: 0.2,
      stream: true,
    });
    expect(responses.nativeOnly).toEqual([]);
    expect(responses.stream).toBe(true);
    expect(chat.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Look' },
          { type: 'image_url', image_url: { url: 'https://x/i.png', detail: 'auto' } },
        ],
      },
      {
        role: 'assistant',
        content: 'Calling.',
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } },
          { id: 'c2', type: 'function', function: { name: 'g', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'one' },
      { role: 'tool', tool_call_id: 'c2', content: 'two' },
    ]);
    expect(chat.tools).toEqual([
      {
        type: 'function',
        function: { name: 'f', description: 'F', parameters: { type: 'object' }, strict: true },
      },
    ]);
    expect(chat.tool_choice).toEqual({ type: 'function', function: { name: 'f' } });
    expect(chat.parallel_tool_calls).toBe(false);
    expect(chat.response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 's', schema: { type: 'object' }, strict: true },
    });
    expect(chat.reasoning_effort).toBe('high');
    expect(chat.max_tokens).toBe(99);
    expect(chat.temperature).toBe(0.2);
    expect(chat.stream).toBe(true);
    // The chat form is a valid chat request: the router parses it as such.
    const parsed = parseChatRequest(JSON.stringify(chat));
    expect(parsed.needs).toEqual({ tools: true, vision: true, jsonSchema: true });
  });

  it('an inline input_file becomes a chat file part; a stored one needs OpenAI', () => {
    const pdf = 'data:application/pdf;base64,JVBERi0=';
    const { chat, responses } = responsesToChat({
      model: 'auto',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'Summarise' },
            { type: 'input_file', filename: 'a.pdf', file_data: pdf },
            { type: 'input_file', file_id: 'file-1' },
          ],
        },
      ],
    });
    expect(chat.messages[0]!.content).toEqual([
      { type: 'text', text: 'Summarise' },
      { type: 'file', file: { file_data: pdf, filename: 'a.pdf' } },
    ]);
    expect(responses.nativeOnly).toEqual(['input_file.file_id']);
  });

  it('lists what only a native Responses provider can serve', () => {
    const { responses } = responsesToChat({
      model: 'auto',
      previous_response_id: 'resp_1',
      input: [
        { type: 'item_reference', id: 'msg_1' },
        { role: 'user', content: 'hi' },
      ],
      tools: [{ type: 'web_search' }],
    });
    expect(responses.nativeOnly).toEqual([
      'previous_response_id',
      "input item 'item_reference'",
      "tool 'web_search'",
    ]);
  });

  it.each([
    [{}, "'model'"],
    [{ model: 'auto' }, "'input'"],
    [{ model: 'auto', input: 5 }, "'input'"],
    [{ model: 'auto', input: [{ role: 'robot', content: 'x' }] }, 'input[0].role'],
    [{ model: 'auto', input: 'x', max_output_tokens: 0 }, 'max_output_tokens'],
    [{ model: 'auto', input: 'x', text: { format: { type: 'json_schema' } } }, 'text.format'],
  ])('refuses %j with a 400 naming %s', (body, what) => {
    const err = (() => {
      try {
        responsesToChat(body);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);
    expect((err as ApiError).message).toContain(what);
  });

  it('refuses bodies that are not JSON objects', () => {
    expect(() => parseResponsesRequest(Buffer.from('[1]'))).toThrow(/JSON object/);
    expect(() => parseResponsesRequest(Buffer.from('{'))).toThrow(/not valid JSON/);
    expect(() => parseResponsesRequest(Buffer.alloc(0))).toThrow(/empty/);
  });
});

describe('completionToResponse', () => {
  it('turns text, tool calls, finish and usage into output items and status', () => {
    const r = completionToResponse(
      {
        model: 'up-model',
        choices: [
          {
            message: {
              content: 'Hi',
              tool_calls: [{ id: 'call_1', function: { name: 'f', arguments: '{}' } }],
            },
            finish_reason: 'tool_calls',
          },
        ],
      },
      { model: 'auto', instructions: 'x', tools: [] },
      usage,
      123,
    );
    expect(r).toMatchObject({
      object: 'response',
      created_at: 123,
      status: 'completed',
      model: 'up-model',
      instructions: 'x',
      usage: {
        input_tokens: 10,
        output_tokens: 5,
        total_tokens: 15,
        input_tokens_details: { cached_tokens: 2 },
      },
    });
    const output = r.output as Record<string, any>[];
    expect(output[0]).toMatchObject({
      type: 'message',
      role: 'assistant',
      content: [{ type: 'output_text', text: 'Hi' }],
    });
    expect(output[1]).toMatchObject({ type: 'function_call', call_id: 'call_1', name: 'f', arguments: '{}' });
    const cut = completionToResponse(
      { choices: [{ message: { content: 'a' }, finish_reason: 'length' }] },
      {},
      undefined,
      0,
    );
    expect(cut).toMatchObject({
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
      usage: null,
    });
  });
});

describe('ChatToResponsesStream', () => {
  const chat =
    chunk({ role: 'assistant', content: '' }) +
    chunk({ content: 'Hel' }) +
    chunk({ content: 'lo' }) +
    chunk({
      tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }],
    }) +
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] }) +
    chunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] }) +
    chunk({}, 'tool_calls') +
    'data: [DONE]\n\n';

  it('emits the Responses event sequence, the same for every cut of the input', () => {
    const run = (cuts: number[]) => {
      const s = new ChatToResponsesStream({ model: 'auto' }, 1, () => usage);
      let out = '';
      let at = 0;
      const bytes = Buffer.from(chat);
      for (const c of [...cuts, bytes.length]) {
        out += s.push(bytes.subarray(at, c), false);
        at = c;
      }
      return out + s.push(Buffer.alloc(0), true);
    };
    const whole = events(run([]));
    expect(whole.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(whole.map((e) => e.sequence_number)).toEqual(whole.map((_, i) => i));
    const done = whole[whole.length - 1]!.response;
    expect(done.status).toBe('completed');
    expect(done.model).toBe('up-model');
    expect(done.usage).toMatchObject({ input_tokens: 10, output_tokens: 5 });
    expect(done.output).toMatchObject([
      { type: 'message', content: [{ type: 'output_text', text: 'Hello' }] },
      { type: 'function_call', call_id: 'call_1', name: 'f', arguments: '{"a":1}' },
    ]);
    // Ids are random per stream: compare everything else.
    const strip = (es: Record<string, any>[]) =>
      JSON.stringify(es).replace(/(resp|msg|fc)_[0-9a-f]{48}/g, 'ID');
    for (let cut = 1; cut < chat.length; cut += 7) expect(strip(events(run([cut])))).toBe(strip(whole));
  });

  it('an error chunk ends the response as failed, with an error event first', () => {
    const s = new ChatToResponsesStream({ model: 'auto' }, 1, () => undefined);
    const out =
      s.push(Buffer.from(chunk({ content: 'par' })), false) +
      s.push(
        Buffer.from(
          'data: {"error":{"message":"overloaded","type":"upstream_error","code":"overloaded_error"}}\n\ndata: [DONE]\n\n',
        ),
        true,
      );
    const es = events(out);
    expect(es.slice(-2)).toMatchObject([
      { type: 'error', code: 'overloaded_error', message: 'overloaded' },
      {
        type: 'response.failed',
        response: { status: 'failed', error: { code: 'server_error', message: 'overloaded' } },
      },
    ]);
    expect(s.ended).toBe(true);
  });

  it('a length finish is response.incomplete', () => {
    const s = new ChatToResponsesStream({ model: 'auto' }, 1, () => undefined);
    const es = events(
      s.push(Buffer.from(chunk({ content: 'a' }) + chunk({}, 'length') + 'data: [DONE]\n\n'), true),
    );
    expect(es[es.length - 1]).toMatchObject({
      type: 'response.incomplete',
      response: { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } },
    });
  });
});

describe('responsesTranslator', () => {
  const provider = (type: 'openai' | 'anthropic') => ({
    name: type === 'openai' ? 'oa' : 'an',
    type,
    baseUrl: 'http://127.0.0.1:9/v1',
    credentials: { apiKey: new Secret('sk-secret-key') },
  });
  const model = (type: 'openai' | 'anthropic') =>
    compiledModel(provider(type), {
      id: 'p/m',
      name: 'm',
      upstreamModel: type === 'openai' ? 'gpt-4.1-mini' : 'claude-haiku-4-5',
      tier: 't',
      pricing: { inputPerMTok: 1, outputPerMTok: 1, cachedInputPerMTok: 1, cacheWritePerMTok: 1 },
      contextWindow: 100000,
      maxOutputTokens: 1000,
      capabilities: ['tools', 'streaming'],
    });
  const request = (body: Record<string, unknown>) => {
    const { chat, responses } = responsesToChat(body);
    return { ...parseChatRequest(JSON.stringify(chat)), responses };
  };

  it('forwards to {base}/responses for OpenAI, model rewritten, the rest as sent', () => {
    const t = responsesTranslator(
      request({ model: 'auto', input: 'hi', store: true, include: ['x'] }),
      model('openai'),
    );
    expect(t).toBeInstanceOf(NativeResponsesTranslator);
    const r = t.buildRequest();
    expect(r.url.toString()).toBe('http://127.0.0.1:9/v1/responses');
    expect(JSON.parse(r.body.toString())).toEqual({
      model: 'gpt-4.1-mini',
      input: 'hi',
      store: true,
      include: ['x'],
    });
    expect(r.headers.authorization).toBe('Bearer sk-secret-key');
  });

  it('refuses a stateful request on a chat-only provider before sending', () => {
    const t = responsesTranslator(
      request({ model: 'auto', input: 'hi', previous_response_id: 'resp_1' }),
      model('anthropic'),
    );
    expect(() => t.buildRequest()).toThrow(
      /previous_response_id needs a provider that implements the Responses API/,
    );
  });

  it('native stream: holds events back until the first delta, reads usage, flags a cut stream', () => {
    const t = responsesTranslator(request({ model: 'auto', input: 'hi', stream: true }), model('openai'));
    t.buildRequest();
    expect(t.onResponseHeaders(200, { 'content-type': 'text/event-stream' }).streaming).toBe(true);
    const ev = (type: string, payload: object, seq: number) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, ...payload, sequence_number: seq })}\n\n`;
    expect(t.onStreamChunk(Buffer.from(ev('response.created', { response: {} }, 0)), false).length).toBe(0);
    const first = t
      .onStreamChunk(Buffer.from(ev('response.output_text.delta', { delta: 'x' }, 1)), false)
      .toString();
    expect(events(first).map((e) => e.type)).toEqual(['response.created', 'response.output_text.delta']);
    expect(t.sawFirstToken).toBe(true);
    const last = t.onStreamChunk(
      Buffer.from(
        ev(
          'response.completed',
          {
            response: {
              usage: { input_tokens: 3, output_tokens: 1, input_tokens_details: { cached_tokens: 1 } },
            },
          },
          2,
        ),
      ),
      true,
    );
    expect(events(last.toString())[0]!.type).toBe('response.completed');
    expect(t.usage).toEqual({
      promptTokens: 3,
      completionTokens: 1,
      cachedPromptTokens: 1,
      cacheWriteTokens: 0,
    });
    expect(t.streamError).toBeUndefined();

    const cut = responsesTranslator(request({ model: 'auto', input: 'hi', stream: true }), model('openai'));
    cut.buildRequest();
    cut.onResponseHeaders(200, {});
    const out = cut
      .onStreamChunk(Buffer.from(ev('response.output_text.delta', { delta: 'x' }, 0)), true)
      .toString();
    expect(events(out).map((e) => e.type)).toEqual(['response.output_text.delta', 'error']);
    expect(cut.streamError?.code).toBe('incomplete_stream');
  });
});

describe('ResponseStore', () => {
  const msgs = (text: string) => [{ role: 'user' as const, content: text }];

  it('gives a conversation back to its owner only, until it expires', () => {
    const s = new ResponseStore({ maxEntries: 10, maxBytes: 1 << 20, ttlMs: 1000 });
    s.set('resp_1', 'alice', msgs('hi'), 0);
    expect(s.get('resp_1', 'alice', 999)).toEqual(msgs('hi'));
    expect(s.get('resp_1', 'bob', 999)).toBeUndefined();
    expect(s.get('resp_1', 'alice', 1000)).toBeUndefined();
    expect(s.size).toBe(0);
    expect(s.bytes).toBe(0);
  });

  it('drops the oldest entries beyond maxEntries and maxBytes, and refuses one larger than maxBytes', () => {
    const s = new ResponseStore({ maxEntries: 2, maxBytes: 100, ttlMs: 1000 });
    s.set('a', '', msgs('1'), 0);
    s.set('b', '', msgs('2'), 0);
    s.set('c', '', msgs('3'), 0);
    expect([s.get('a', '', 1), s.get('b', '', 1), s.get('c', '', 1)].map(Boolean)).toEqual([
      false,
      true,
      true,
    ]);
    s.set('big', '', msgs('x'.repeat(60)), 0);
    expect(s.get('b', '', 1)).toBeUndefined();
    expect(s.bytes).toBeLessThanOrEqual(100);
    s.set('huge', '', msgs('x'.repeat(200)), 0);
    expect(s.get('huge', '', 1)).toBeUndefined();
  });

  it('tells its listener what it stores, and adopts what other replicas stored without echoing it', () => {
    const s = new ResponseStore({ maxEntries: 10, maxBytes: 100, ttlMs: 1000 });
    const told: unknown[] = [];
    s.onStored = (c) => told.push(c);
    s.set('mine', 'alice', msgs('hi'), 5);
    s.set('huge', 'alice', msgs('x'.repeat(200)), 5);
    expect(told).toEqual([{ id: 'mine', owner: 'alice', messages: msgs('hi'), expiresAt: 1005 }]);
    s.adopt({ id: 'theirs', owner: 'bob', messages: msgs('yo'), expiresAt: 3000 }, 10);
    s.adopt({ id: 'stale', owner: 'bob', messages: msgs('old'), expiresAt: 10 }, 10);
    expect(told).toHaveLength(1);
    expect(s.get('theirs', 'bob', 2999)).toEqual(msgs('yo'));
    expect(s.get('theirs', 'alice', 2999)).toBeUndefined();
    expect(s.get('stale', 'bob', 5)).toBeUndefined();
    expect(s.get('theirs', 'bob', 3000)).toBeUndefined();
  });

  it('previous_response_id found in the store continues in chat form, on any provider', () => {
    const earlier = [
      { role: 'user' as const, content: 'Q1' },
      { role: 'assistant' as const, content: 'A1' },
    ];
    const { chat, responses } = responsesToChat(
      { model: 'auto', instructions: 'Sys', previous_response_id: 'resp_x', input: 'Q2' },
      (id) => (id === 'resp_x' ? earlier : undefined),
    );
    expect(responses.nativeOnly).toEqual([]);
    expect(responses.continuesLocal).toBe(true);
    expect(chat.messages).toEqual([
      { role: 'system', content: 'Sys' },
      ...earlier,
      { role: 'user', content: 'Q2' },
    ]);
    expect(responses.conversation).toEqual([...earlier, { role: 'user', content: 'Q2' }]);
    const unknown = responsesToChat(
      { model: 'auto', previous_response_id: 'resp_y', input: 'Q2' },
      () => undefined,
    );
    expect(unknown.responses.nativeOnly).toEqual(['previous_response_id']);
  });
});
