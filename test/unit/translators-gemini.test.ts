import { describe, expect, it } from 'vitest';
import type { CompiledModel, CompiledProvider } from '../../src/core/config/compiled.js';
import { parseChatRequest } from '../../src/core/parse.js';
import { Secret } from '../../src/core/secret.js';
import {
  SKIP_SIGNATURE,
  buildGeminiBody,
  createGeminiTranslator,
  signatureFromToolCallId,
  toolCallIdFor,
} from '../../src/core/providers/gemini/chat.js';
import { translatorFor } from '../../src/core/providers/table.js';
import { parseSse } from '../../src/core/providers/shared/sse.js';
import { compiledModel } from '../helpers/translator.js';

const KEY = 'AIzaSyTEST-gemini-key-0123456789';

function model(over: Partial<CompiledProvider> = {}, upstreamModel = 'gemini-2.5-flash'): CompiledModel {
  return compiledModel(
    { name: 'google', type: 'gemini', baseUrl: '', credentials: { apiKey: new Secret(KEY) }, ...over },
    {
      id: 'google/flash',
      name: 'gemini-flash',
      upstreamModel,
      tier: 'lightweight',
      pricing: { inputPerMTok: 0.3, outputPerMTok: 2.5, cachedInputPerMTok: 0.03, cacheWritePerMTok: 0.3 },
      contextWindow: 1048576,
      maxOutputTokens: 65536,
      capabilities: ['tools', 'vision', 'jsonSchema', 'streaming'],
    },
  );
}

const req = (body: Record<string, unknown>) =>
  parseChatRequest(JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }], ...body }));

const dataEvents = (sse: string) =>
  parseSse(sse)
    .map((e) => e.data)
    .filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d) as Record<string, any>);

describe('Gemini request mapping', () => {
  it('builds URL, auth header and body', () => {
    const t = createGeminiTranslator(
      req({ temperature: 0.5, top_p: 0.8, max_completion_tokens: 1_000_000, stop: ['X', 'Y'], seed: 7 }),
      model(),
    );
    const r = t.buildRequest();
    expect(r.method).toBe('POST');
    expect(r.url.toString()).toBe(
      'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent',
    );
    expect(r.headers['x-goog-api-key']).toBe(KEY);
    expect(r.url.search).not.toContain(KEY);
    const body = JSON.parse(r.body.toString());
    expect(body.contents).toEqual([{ role: 'user', parts: [{ text: 'hi' }] }]);
    expect(body.generationConfig).toEqual({
      temperature: 0.5,
      topP: 0.8,
      maxOutputTokens: 65536,
      stopSequences: ['X', 'Y'],
      seed: 7,
    });
  });

  it('uses streamGenerateContent with alt=sse and a custom base URL', () => {
    const r = createGeminiTranslator(
      req({ stream: true }),
      model({ baseUrl: 'http://127.0.0.1:1234/v1beta/' }, 'models/gemini-2.5-pro'),
    ).buildRequest();
    expect(r.url.toString()).toBe(
      'http://127.0.0.1:1234/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse',
    );
  });

  it('fails clearly without an API key', () => {
    expect(() => createGeminiTranslator(req({}), model({ credentials: {} })).buildRequest()).toThrow(
      /no API key/,
    );
  });

  it('maps system instruction, multi-turn and images (data URL -> inlineData, https -> fileData)', () => {
    const body = buildGeminiBody(
      req({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: 'Answer in French.' },
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'salut' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what are these?' },
              { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/4AAQ' } },
              { type: 'image_url', image_url: { url: 'https://example.com/a/cat.webp?x=1' } },
            ],
          },
        ],
      }),
      model(),
    );
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'Be brief.' }, { text: 'Answer in French.' }] });
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'hi' }] },
      { role: 'model', parts: [{ text: 'salut' }] },
      {
        role: 'user',
        parts: [
          { text: 'what are these?' },
          { inlineData: { mimeType: 'image/jpeg', data: '/9j/4AAQ' } },
          { fileData: { fileUri: 'https://example.com/a/cat.webp?x=1', mimeType: 'image/webp' } },
        ],
      },
    ]);
  });

  it('maps tools, tool calls and tool results (parallel results form one turn)', () => {
    const body = buildGeminiBody(
      req({
        messages: [
          { role: 'user', content: 'weather in Paris and Rome?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_a',
                type: 'function',
                function: { name: 'weather', arguments: '{"city":"Paris"}' },
              },
              { id: 'call_b', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
            ],
          },
          { role: 'tool', tool_call_id: 'call_a', content: '{"temp":18}' },
          { role: 'tool', tool_call_id: 'call_b', content: 'sunny' },
        ],
        tools: [
          {
            type: 'function',
            function: {
              name: 'weather',
              description: 'Weather by city',
              parameters: {
                type: 'object',
                properties: { city: { type: 'string' } },
                required: ['city'],
                additionalProperties: false,
              },
            },
          },
        ],
        tool_choice: 'required',
      }),
      model(),
    );
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'weather in Paris and Rome?' }] },
      {
        role: 'model',
        parts: [
          { functionCall: { name: 'weather', args: { city: 'Paris' } } },
          { functionCall: { name: 'weather', args: { city: 'Rome' } } },
        ],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'weather', response: { temp: 18 } } },
          { functionResponse: { name: 'weather', response: { result: 'sunny' } } },
        ],
      },
    ]);
    expect(body.tools).toEqual([
      {
        functionDeclarations: [
          {
            name: 'weather',
            description: 'Weather by city',
            parametersJsonSchema: {
              type: 'object',
              properties: { city: { type: 'string' } },
              required: ['city'],
              additionalProperties: false,
            },
          },
        ],
      },
    ]);
    expect(body.toolConfig).toEqual({ functionCallingConfig: { mode: 'ANY' } });
  });

  it('maps tool_choice auto / none / named', () => {
    const tools = [{ type: 'function', function: { name: 'f' } }];
    expect(buildGeminiBody(req({ tools, tool_choice: 'auto' }), model()).toolConfig).toEqual({
      functionCallingConfig: { mode: 'AUTO' },
    });
    expect(buildGeminiBody(req({ tools, tool_choice: 'none' }), model()).toolConfig).toEqual({
      functionCallingConfig: { mode: 'NONE' },
    });
    expect(
      buildGeminiBody(req({ tools, tool_choice: { type: 'function', function: { name: 'f' } } }), model())
        .toolConfig,
    ).toEqual({
      functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['f'] },
    });
    expect(buildGeminiBody(req({ tools }), model()).toolConfig).toBeUndefined();
  });

  it('maps response_format json_schema and json_object', () => {
    const schema = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] };
    expect(
      buildGeminiBody(
        req({ response_format: { type: 'json_schema', json_schema: { name: 's', schema } } }),
        model(),
      ).generationConfig,
    ).toEqual({
      responseMimeType: 'application/json',
      responseJsonSchema: schema,
    });
    expect(
      buildGeminiBody(req({ response_format: { type: 'json_object' } }), model()).generationConfig,
    ).toEqual({ responseMimeType: 'application/json' });
  });

  it.each([
    ['gemini-2.5-flash', 'low', { thinkingBudget: 1024 }],
    ['gemini-2.5-flash', 'medium', { thinkingBudget: 8192 }],
    ['gemini-2.5-flash', 'high', { thinkingBudget: 24576 }],
    ['gemini-2.5-flash', 'minimal', { thinkingBudget: 0 }],
    ['gemini-2.5-pro', 'none', { thinkingBudget: 128 }],
    ['gemini-3-pro-preview', 'medium', { thinkingLevel: 'high' }],
    ['gemini-3-pro-preview', 'minimal', { thinkingLevel: 'low' }],
    ['gemini-3-flash-preview', 'medium', { thinkingLevel: 'medium' }],
  ])('maps reasoning_effort on %s: %s -> %j', (upstream, effort, config) => {
    const t = createGeminiTranslator(req({ reasoning_effort: effort }), model({}, upstream));
    expect(JSON.parse(t.buildRequest().body.toString()).generationConfig.thinkingConfig).toEqual(config);
    expect(t.adjusted).toEqual([]);
  });

  it('drops reasoning_effort for a model that does not think, and says so', () => {
    const t = createGeminiTranslator(req({ reasoning_effort: 'high' }), model({}, 'gemini-2.0-flash'));
    expect(JSON.parse(t.buildRequest().body.toString()).generationConfig).toBeUndefined();
    expect(t.adjusted).toEqual(['reasoning_effort']);
  });

  it('round-trips thought signatures through the tool-call id', () => {
    const sig = 'CiQB0e2Kb+/sig==';
    const id = toolCallIdFor(sig);
    expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(signatureFromToolCallId(id)).toBe(sig);
    expect(signatureFromToolCallId(toolCallIdFor(undefined))).toBeUndefined();
    const body = buildGeminiBody(
      req({
        messages: [
          { role: 'user', content: 'x' },
          {
            role: 'assistant',
            tool_calls: [{ id, type: 'function', function: { name: 'f', arguments: '{}' } }],
          },
          { role: 'tool', tool_call_id: id, content: 'ok' },
        ],
      }),
      model({}, 'gemini-3-pro-preview'),
    );
    expect((body.contents as any)[1].parts[0].thoughtSignature).toBe(sig);
  });

  it('adds the documented placeholder signature for foreign tool calls on Gemini 3, not on 2.x', () => {
    const messages = [
      { role: 'user', content: 'x' },
      {
        role: 'assistant',
        tool_calls: [
          { id: 'toolu_01', type: 'function', function: { name: 'f', arguments: '{}' } },
          { id: 'toolu_02', type: 'function', function: { name: 'f', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_01', content: 'ok' },
      { role: 'tool', tool_call_id: 'toolu_02', content: 'ok' },
    ];
    const g3 = buildGeminiBody(req({ messages }), model({}, 'gemini-3-flash-preview')) as any;
    expect(g3.contents[1].parts[0].thoughtSignature).toBe(SKIP_SIGNATURE);
    expect(g3.contents[1].parts[1].thoughtSignature).toBeUndefined();
    const g25 = buildGeminiBody(req({ messages }), model({}, 'gemini-2.5-flash')) as any;
    expect(g25.contents[1].parts[0].thoughtSignature).toBeUndefined();
  });

  it('is registered for the gemini type', () => {
    expect(translatorFor('gemini')(req({}), model()).buildRequest().url.pathname).toMatch(
      /:generateContent$/,
    );
  });
});

describe('Gemini responses', () => {
  const usageMetadata = {
    promptTokenCount: 120,
    candidatesTokenCount: 30,
    thoughtsTokenCount: 50,
    cachedContentTokenCount: 100,
    totalTokenCount: 200,
  };

  it('translates a generateContent body (text, function call, usage)', () => {
    const t = createGeminiTranslator(req({}), model());
    expect(t.onResponseHeaders(200, {}).streaming).toBe(false);
    const out = JSON.parse(
      t
        .onBody(
          Buffer.from(
            JSON.stringify({
              candidates: [
                {
                  content: {
                    role: 'model',
                    parts: [
                      { text: 'thinking...', thought: true },
                      { text: 'Checking.' },
                      {
                        functionCall: { name: 'weather', args: { city: 'Paris' } },
                        thoughtSignature: 'c2lnbmF0dXJl',
                      },
                    ],
                  },
                  finishReason: 'STOP',
                  index: 0,
                },
              ],
              usageMetadata,
              modelVersion: 'gemini-2.5-flash',
            }),
          ),
        )
        .toString(),
    );
    expect(out.object).toBe('chat.completion');
    expect(out.choices[0].message.content).toBe('Checking.');
    const tc = out.choices[0].message.tool_calls[0];
    expect(tc.function).toEqual({ name: 'weather', arguments: '{"city":"Paris"}' });
    expect(signatureFromToolCallId(tc.id)).toBe('c2lnbmF0dXJl');
    expect(out.choices[0].finish_reason).toBe('tool_calls');
    expect(out.usage).toEqual({
      prompt_tokens: 120,
      completion_tokens: 80,
      total_tokens: 200,
      prompt_tokens_details: { cached_tokens: 100 },
    });
    expect(t.usage).toEqual({
      promptTokens: 120,
      completionTokens: 80,
      cachedPromptTokens: 100,
      cacheWriteTokens: 0,
    });
  });

  for (const [reason, finish] of [
    ['STOP', 'stop'],
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content_filter'],
    ['RECITATION', 'content_filter'],
    ['PROHIBITED_CONTENT', 'content_filter'],
    ['OTHER', 'stop'],
  ] as const) {
    it(`maps finishReason ${reason} -> ${finish}`, () => {
      const t = createGeminiTranslator(req({}), model());
      const out = JSON.parse(
        t
          .onBody(
            Buffer.from(
              JSON.stringify({ candidates: [{ content: { parts: [{ text: 'x' }] }, finishReason: reason }] }),
            ),
          )
          .toString(),
      );
      expect(out.choices[0].finish_reason).toBe(finish);
    });
  }

  it('turns a blocked prompt into a 400 content_filter error', () => {
    const t = createGeminiTranslator(req({}), model());
    expect(() =>
      t.onBody(
        Buffer.from(
          JSON.stringify({
            promptFeedback: { blockReason: 'SAFETY', safetyRatings: [] },
            usageMetadata: { promptTokenCount: 8 },
          }),
        ),
      ),
    ).toThrow(
      expect.objectContaining({ status: 400, code: 'content_filter', type: 'invalid_request_error' }),
    );
  });

  const sseBody = [
    {
      candidates: [{ content: { role: 'model', parts: [{ text: 'Bon' }] }, index: 0 }],
      usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 1 },
    },
    {
      candidates: [{ content: { role: 'model', parts: [{ text: 'jour ✓ 🌍' }] }, index: 0 }],
      usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 3 },
    },
    {
      candidates: [
        {
          content: { role: 'model', parts: [{ functionCall: { name: 'f', args: { a: 1 } } }] },
          finishReason: 'STOP',
          index: 0,
        },
      ],
      usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 8, totalTokenCount: 17 },
    },
  ]
    .map((o) => `data: ${JSON.stringify(o)}\r\n\r\n`)
    .join('');

  function runStream(chunks: Buffer[], includeUsage = true) {
    const t = createGeminiTranslator(
      req({ stream: true, stream_options: { include_usage: includeUsage } }),
      model(),
    );
    expect(t.onResponseHeaders(200, { 'content-type': 'text/event-stream' })).toMatchObject({
      streaming: true,
      status: 200,
    });
    let sse = '';
    for (const c of chunks) sse += t.onStreamChunk(c, false).toString();
    sse += t.onStreamChunk(Buffer.alloc(0), true).toString();
    return { t, sse };
  }

  it('translates an SSE stream into chat.completion.chunk events', () => {
    const { t, sse } = runStream([Buffer.from(sseBody)]);
    const events = dataEvents(sse);
    expect(events[0]!.choices[0].delta).toEqual({ role: 'assistant', content: 'Bon' });
    expect(events.map((e) => e.choices[0]?.delta?.content ?? '').join('')).toBe('Bonjour ✓ 🌍');
    const tc = events.flatMap((e) => e.choices[0]?.delta?.tool_calls ?? []);
    expect(tc).toHaveLength(1);
    expect(tc[0].function).toEqual({ name: 'f', arguments: '{"a":1}' });
    expect(events.find((e) => e.choices[0]?.finish_reason)?.choices[0].finish_reason).toBe('tool_calls');
    expect(events[events.length - 1]!.usage).toEqual({
      prompt_tokens: 9,
      completion_tokens: 8,
      total_tokens: 17,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    expect(sse.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(t.sawFirstToken).toBe(true);
    expect(t.streamError).toBeUndefined();
  });

  it('gives identical output for any split, including inside CRLF and multi-byte characters', () => {
    const whole = Buffer.from(sseBody);
    const norm = (s: string) =>
      dataEvents(s.replace(/"id":"call_[A-Za-z0-9_-]+"/g, '"id":"call"')).map((e) => ({
        ...e,
        id: 'x',
        created: 0,
      }));
    const expected = norm(runStream([whole]).sse);
    for (let cut = 1; cut < whole.length; cut += 3) {
      expect(norm(runStream([whole.subarray(0, cut), whole.subarray(cut)]).sse)).toEqual(expected);
    }
    const bytes: Buffer[] = [];
    for (let i = 0; i < whole.length; i++) bytes.push(whole.subarray(i, i + 1));
    expect(norm(runStream(bytes).sse)).toEqual(expected);
  });

  it('reports finishReason SAFETY as content_filter in a stream', () => {
    const body = `data: ${JSON.stringify({ candidates: [{ content: { parts: [{ text: 'partial' }] }, finishReason: 'SAFETY', safetyRatings: [] }] })}\n\n`;
    const { t, sse } = runStream([Buffer.from(body)]);
    expect(dataEvents(sse).find((e) => e.choices?.[0]?.finish_reason)?.choices[0].finish_reason).toBe(
      'content_filter',
    );
    expect(t.streamError).toBeUndefined();
  });

  it('reports a blocked prompt in a stream as an error event with code content_filter', () => {
    const body = `data: ${JSON.stringify({ promptFeedback: { blockReason: 'PROHIBITED_CONTENT' }, usageMetadata: { promptTokenCount: 5 } })}\n\n`;
    const { t, sse } = runStream([Buffer.from(body)]);
    const err = dataEvents(sse).find((e) => e.error);
    expect(err?.error).toMatchObject({ code: 'content_filter', type: 'invalid_request_error' });
    expect(t.streamError).toBeUndefined(); // a refusal, not a provider failure
    expect(sse.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('marks a stream that ends without a finish reason as failed', () => {
    const first = sseBody.split('\r\n\r\n')[0] + '\r\n\r\n';
    const { t } = runStream([Buffer.from(first)]);
    expect(t.streamError).toMatchObject({ status: 502, code: 'stream_truncated' });
  });

  it('reports an error object inside the stream', () => {
    const body = `data: ${JSON.stringify({ error: { code: 503, message: 'The model is overloaded.', status: 'UNAVAILABLE' } })}\n\n`;
    const { t, sse } = runStream([Buffer.from(body)]);
    expect(t.streamError?.status).toBe(503);
    expect(dataEvents(sse).some((e) => e.error)).toBe(true);
  });
});

describe('Gemini errors', () => {
  const t = () => createGeminiTranslator(req({}), model());
  const err = (code: number, status: string, message: string, details: unknown[] = []) =>
    Buffer.from(JSON.stringify({ error: { code, message, status, details } }));

  it('maps 429 RESOURCE_EXHAUSTED to a failover-eligible 429', () => {
    const e = t().onError(429, {}, err(429, 'RESOURCE_EXHAUSTED', 'You exceeded your current quota.'));
    expect(e).toMatchObject({ status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' });
  });

  it('maps 400 INVALID_ARGUMENT to 400', () => {
    expect(
      t().onError(400, {}, err(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.')),
    ).toMatchObject({ status: 400, type: 'invalid_request_error' });
  });

  it('maps an invalid API key (400 + API_KEY_INVALID) to 401 and never echoes the key', () => {
    const e = t().onError(
      400,
      {},
      err(400, 'INVALID_ARGUMENT', `API key not valid: ${KEY}`, [
        { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' },
      ]),
    );
    expect(e.status).toBe(401);
    expect(e.message).not.toContain(KEY);
  });

  it('maps 500/503/504 to 502/503/504 and handles array-wrapped and non-JSON bodies', () => {
    expect(t().onError(500, {}, err(500, 'INTERNAL', 'x')).status).toBe(502);
    expect(
      t().onError(
        503,
        {},
        Buffer.from(JSON.stringify([{ error: { code: 503, message: 'overloaded', status: 'UNAVAILABLE' } }])),
      ).status,
    ).toBe(503);
    expect(t().onError(504, {}, err(504, 'DEADLINE_EXCEEDED', 'x')).status).toBe(504);
    expect(t().onError(502, {}, Buffer.from('<html>Bad gateway</html>')).status).toBe(502);
  });
});
