import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

import { describe, expect, it } from 'vitest';
import type { CompiledModel, CompiledProvider } from '../../src/core/config/compiled.js';
import { parseChatRequest } from '../../src/core/parse.js';
import { Secret } from '../../src/core/secret.js';
import {
  bedrockToolUseId,
  buildConverseBody,
  createBedrockTranslator,
} from '../../src/core/providers/bedrock/converse.js';
import { signSigV4 } from '../../src/core/providers/shared/sigv4.js';
import { encodeEventStreamMessage } from '../../src/core/providers/shared/eventstream.js';
import { translatorFor } from '../../src/core/providers/table.js';
import { parseSse } from '../../src/core/providers/shared/sse.js';
import { compiledModel } from '../helpers/translator.js';

const KEY_ID = 'AKIDEXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const TOKEN = 'FQoGZXIvYXdzEXAMPLESESSIONTOKEN//////////wEaDExampleToken=';

function model(
  over: Partial<CompiledProvider> = {},
  upstreamModel = 'anthropic.claude-sonnet-4-5-20250929-v1:0',
): CompiledModel {
  return compiledModel(
    {
      name: 'aws',
      type: 'bedrock',
      baseUrl: '',
      region: 'us-west-2',
      credentials: { awsAccessKeyId: new Secret(KEY_ID), awsSecretAccessKey: new Secret(SECRET) },
      ...over,
    },
    {
      id: 'aws/claude',
      name: 'claude-sonnet-bedrock',
      upstreamModel,
      tier: 'flagship',
      pricing: { inputPerMTok: 3, outputPerMTok: 15, cachedInputPerMTok: 0.3, cacheWritePerMTok: 3.75 },
      contextWindow: 200000,
      maxOutputTokens: 64000,
      capabilities: ['tools', 'vision', 'streaming'],
    },
  );
}

const req = (body: Record<string, unknown>) =>
  parseChatRequest(JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }], ...body }));

const ev = (type: string, payload: unknown) =>
  Buffer.from(
    encodeEventStreamMessage(
      { ':message-type': 'event', ':event-type': type, ':content-type': 'application/json' },
      JSON.stringify(payload),
    ),
  );
const exc = (type: string, message: string) =>
  Buffer.from(
    encodeEventStreamMessage(
      { ':message-type': 'exception', ':exception-type': type, ':content-type': 'application/json' },
      JSON.stringify({ message }),
    ),
  );

const dataEvents = (sse: string) =>
  parseSse(sse)
    .map((e) => e.data)
    .filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d) as Record<string, any>);

describe('SigV4 signing', () => {
  const date = new Date('2026-03-04T05:06:07.890Z');
  const cases: { name: string; token?: string; modelId: string }[] = [
    { name: 'long-term keys', modelId: 'anthropic.claude-sonnet-4-5-20250929-v1:0' },
    { name: 'session token', token: TOKEN, modelId: 'us.amazon.nova-pro-v1:0' },
    {
      name: 'inference profile ARN',
      modelId: 'arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-x',
    },
  ];
  for (const c of cases) {
    it(`matches @smithy/signature-v4 (${c.name})`, async () => {
      const m = model(
        {
          credentials: {
            awsAccessKeyId: new Secret(KEY_ID),
            awsSecretAccessKey: new Secret(SECRET),
            ...(c.token ? { awsSessionToken: new Secret(c.token) } : {}),
          },
        },
        c.modelId,
      );
      const t = createBedrockTranslator(req({ temperature: 0.2 }), m, { now: () => date });
      const r = t.buildRequest();
      expect(r.url.pathname).toContain(encodeURIComponent(c.modelId));
      const signer = new SignatureV4({
        credentials: {
          accessKeyId: KEY_ID,
          secretAccessKey: SECRET,
          ...(c.token ? { sessionToken: c.token } : {}),
        },
        region: 'us-west-2',
        service: 'bedrock',
        sha256: Sha256,
      });
      const signed = await signer.sign(
        {
          method: 'POST',
          protocol: 'https:',
          hostname: r.url.hostname,
          path: r.url.pathname,
          query: {},
          headers: {
            host: r.url.host,
            'content-type': r.headers['content-type']!,
            accept: r.headers.accept!,
          },
          body: r.body,
        },
        { signingDate: date },
      );
      expect(r.headers.authorization).toBe(signed.headers.authorization);
      expect(r.headers['x-amz-date']).toBe('20260304T050607Z');
      expect(r.headers['x-amz-security-token']).toBe(c.token);
    });
  }

  it('signs a query string and a custom port like the SDK', async () => {
    const url = new URL('http://127.0.0.1:8443/model/a%3Ab/converse?b=2&a=1&a=0&sp=x%20y');
    const body = Buffer.from('{"x":1}');
    const mine = signSigV4({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      body,
      region: 'eu-central-1',
      service: 'bedrock',
      accessKeyId: KEY_ID,
      secretAccessKey: SECRET,
      date,
    });
    const signer = new SignatureV4({
      credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET },
      region: 'eu-central-1',
      service: 'bedrock',
      sha256: Sha256,
    });
    const signed = await signer.sign(
      {
        method: 'POST',
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: 8443,
        path: url.pathname,
        query: { b: '2', a: ['1', '0'], sp: 'x y' },
        headers: { host: url.host, 'content-type': 'application/json' },
        body,
      },
      { signingDate: date },
    );
    expect(mine.authorization).toBe(signed.headers.authorization);
  });
});

describe('Bedrock request mapping', () => {
  it('builds the URL, headers and Converse body', () => {
    const t = createBedrockTranslator(
      req({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: [{ type: 'text', text: 'Use metric units.' }] },
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is this?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            ],
          },
        ],
        max_tokens: 100000,
        temperature: 0.3,
        top_p: 0.9,
        stop: 'END',
      }),
      model(),
    );
    const r = t.buildRequest();
    expect(r.url.toString()).toBe(
      'https://bedrock-runtime.us-west-2.amazonaws.com/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse',
    );
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-west-2\/bedrock\/aws4_request, SignedHeaders=accept;content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
    );
    const body = JSON.parse(r.body.toString());
    expect(body.system).toEqual([{ text: 'Be brief.' }, { text: 'Use metric units.' }]);
    expect(body.messages).toEqual([
      { role: 'user', content: [{ text: 'hi' }] },
      { role: 'assistant', content: [{ text: 'hello' }] },
      {
        role: 'user',
        content: [{ text: 'what is this?' }, { image: { format: 'png', source: { bytes: 'iVBORw0KGgo=' } } }],
      },
    ]);
    // Claude 4.5 on Bedrock rejects temperature with topP: temperature is kept, topP dropped.
    expect(body.inferenceConfig).toEqual({
      maxTokens: 64000,
      temperature: 0.3,
      stopSequences: ['END'],
    });
    expect(t.adjusted).toEqual(['top_p']);
    expect(t.onResponseHeaders(200, {}).headers['x-tierflow-adjusted']).toBe('top_p');
    expect(r.body.toString()).not.toContain(SECRET);
  });

  it('uses the streaming operation and a custom base URL', () => {
    const t = createBedrockTranslator(req({ stream: true }), model({ baseUrl: 'http://127.0.0.1:9999/' }));
    const r = t.buildRequest();
    expect(r.url.toString()).toBe(
      'http://127.0.0.1:9999/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream',
    );
    expect(r.headers.accept).toBe('application/vnd.amazon.eventstream');
  });

  it('sends a Bedrock API key as a bearer token when no access keys are set', () => {
    const t = createBedrockTranslator(
      req({}),
      model({ credentials: { apiKey: new Secret('bedrock-api-key-xyz') } }),
    );
    expect(t.buildRequest().headers.authorization).toBe('Bearer bedrock-api-key-xyz');
  });

  it('fails clearly without credentials, without leaking anything', () => {
    const t = createBedrockTranslator(req({}), model({ credentials: {} }));
    expect(() => t.buildRequest()).toThrow(/no AWS credentials/);
  });

  it('maps tools, tool calls and tool results (merged into one user turn)', () => {
    const longId = 'call_' + 'x'.repeat(80);
    const body = buildConverseBody(
      req({
        messages: [
          { role: 'user', content: 'weather in Paris and Rome?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_1',
                type: 'function',
                function: { name: 'weather', arguments: '{"city":"Paris"}' },
              },
              { id: longId, type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
            ],
          },
          { role: 'tool', tool_call_id: 'call_1', content: '18C' },
          { role: 'tool', tool_call_id: longId, content: [{ type: 'text', text: '22C' }] },
          { role: 'user', content: 'thanks' },
        ],
        tools: [
          {
            type: 'function',
            function: {
              name: 'weather',
              description: 'Get weather',
              parameters: { type: 'object', properties: { city: { type: 'string' } } },
            },
          },
          { type: 'function', function: { name: 'noargs' } },
        ],
        tool_choice: 'required',
      }),
      model(),
    );
    const safeId = bedrockToolUseId(longId);
    expect(safeId).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(body.messages).toEqual([
      { role: 'user', content: [{ text: 'weather in Paris and Rome?' }] },
      {
        role: 'assistant',
        content: [
          { toolUse: { toolUseId: 'call_1', name: 'weather', input: { city: 'Paris' } } },
          { toolUse: { toolUseId: safeId, name: 'weather', input: { city: 'Rome' } } },
        ],
      },
      {
        role: 'user',
        content: [
          { toolResult: { toolUseId: 'call_1', content: [{ text: '18C' }] } },
          { toolResult: { toolUseId: safeId, content: [{ text: '22C' }] } },
          { text: 'thanks' },
        ],
      },
    ]);
    expect(body.toolConfig).toEqual({
      tools: [
        {
          toolSpec: {
            name: 'weather',
            description: 'Get weather',
            inputSchema: { json: { type: 'object', properties: { city: { type: 'string' } } } },
          },
        },
        { toolSpec: { name: 'noargs', inputSchema: { json: { type: 'object', properties: {} } } } },
      ],
      toolChoice: { any: {} },
    });
  });

  it('maps tool_choice auto / named / none', () => {
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
    expect(buildConverseBody(req({ tools, tool_choice: 'auto' }), model()).toolConfig?.toolChoice).toEqual({
      auto: {},
    });
    expect(
      buildConverseBody(req({ tools, tool_choice: { type: 'function', function: { name: 'f' } } }), model())
        .toolConfig?.toolChoice,
    ).toEqual({ tool: { name: 'f' } });
    expect(buildConverseBody(req({ tools }), model()).toolConfig?.toolChoice).toBeUndefined();
    // none: no tools at all, unless the history needs toolConfig
    expect(buildConverseBody(req({ tools, tool_choice: 'none' }), model()).toolConfig).toBeUndefined();
    const withHistory = buildConverseBody(
      req({
        tools,
        tool_choice: 'none',
        messages: [
          { role: 'user', content: 'x' },
          {
            role: 'assistant',
            tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }],
          },
          { role: 'tool', tool_call_id: 'c1', content: 'ok' },
        ],
      }),
      model(),
    );
    expect(withHistory.toolConfig).toBeDefined();
    expect(withHistory.toolConfig?.toolChoice).toBeUndefined();
  });

  it('maps response_format json_schema to outputConfig and json_object to a system hint', () => {
    const schema = {
      type: 'object',
      properties: { a: { type: 'number' } },
      required: ['a'],
      additionalProperties: false,
    };
    const b = buildConverseBody(
      req({ response_format: { type: 'json_schema', json_schema: { name: 'out', schema, strict: true } } }),
      model(),
    );
    expect(b.outputConfig).toEqual({
      textFormat: {
        type: 'json_schema',
        structure: { jsonSchema: { name: 'out', schema: JSON.stringify(schema) } },
      },
    });
    const j = buildConverseBody(req({ response_format: { type: 'json_object' } }), model());
    expect(j.system?.[0]?.text).toMatch(/JSON/);
  });

  it('rejects remote image URLs with a 400 naming the part', () => {
    const t = createBedrockTranslator(
      req({
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }],
          },
        ],
      }),
      model(),
    );
    expect(() => t.buildRequest()).toThrow(
      expect.objectContaining({
        status: 400,
        code: 'unsupported_image',
        param: 'messages[0].content[0].image_url',
      }),
    );
  });

  it('is registered for the bedrock type', () => {
    expect(translatorFor('bedrock')(req({}), model()).buildRequest().url.pathname).toMatch(/\/converse$/);
  });
});

describe('Bedrock responses', () => {
  it('translates a Converse JSON body with text, tool use and usage', () => {
    const t = createBedrockTranslator(req({}), model());
    expect(t.onResponseHeaders(200, { 'content-type': 'application/json' })).toEqual({
      status: 200,
      headers: { 'content-type': 'application/json' },
      streaming: false,
    });
    const out = JSON.parse(
      t
        .onBody(
          Buffer.from(
            JSON.stringify({
              output: {
                message: {
                  role: 'assistant',
                  content: [
                    { text: 'Let me check.' },
                    { toolUse: { toolUseId: 'tooluse_abc', name: 'weather', input: { city: 'Paris' } } },
                  ],
                },
              },
              stopReason: 'tool_use',
              usage: {
                inputTokens: 100,
                outputTokens: 20,
                totalTokens: 170,
                cacheReadInputTokens: 40,
                cacheWriteInputTokens: 10,
              },
              metrics: { latencyMs: 321 },
            }),
          ),
        )
        .toString(),
    );
    expect(out.object).toBe('chat.completion');
    expect(out.model).toBe('claude-sonnet-bedrock');
    expect(out.choices[0].message).toEqual({
      role: 'assistant',
      content: 'Let me check.',
      refusal: null,
      tool_calls: [
        { id: 'tooluse_abc', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
      ],
    });
    expect(out.choices[0].finish_reason).toBe('tool_calls');
    expect(out.usage).toEqual({
      prompt_tokens: 150,
      completion_tokens: 20,
      total_tokens: 170,
      prompt_tokens_details: { cached_tokens: 40 },
    });
    expect(t.usage).toEqual({
      promptTokens: 150,
      completionTokens: 20,
      cachedPromptTokens: 40,
      cacheWriteTokens: 10,
    });
    expect(t.sawFirstToken).toBe(true);
  });

  for (const [stop, finish] of [
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['guardrail_intervened', 'content_filter'],
    ['content_filtered', 'content_filter'],
  ] as const) {
    it(`maps stopReason ${stop} -> ${finish}`, () => {
      const t = createBedrockTranslator(req({}), model());
      const out = JSON.parse(
        t
          .onBody(
            Buffer.from(
              JSON.stringify({ output: { message: { content: [{ text: 'x' }] } }, stopReason: stop }),
            ),
          )
          .toString(),
      );
      expect(out.choices[0].finish_reason).toBe(finish);
    });
  }

  const streamFrames = () => [
    ev('messageStart', { role: 'assistant', p: 'abc' }),
    ev('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Hel' } }),
    ev('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'lo ✓' } }),
    ev('contentBlockStop', { contentBlockIndex: 0 }),
    ev('contentBlockStart', {
      contentBlockIndex: 1,
      start: { toolUse: { toolUseId: 'tooluse_1', name: 'weather' } },
    }),
    ev('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '{"city":' } } }),
    ev('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '"Paris"}' } } }),
    ev('contentBlockStop', { contentBlockIndex: 1 }),
    ev('messageStop', { stopReason: 'tool_use' }),
    ev('metadata', {
      usage: { inputTokens: 12, outputTokens: 7, totalTokens: 19 },
      metrics: { latencyMs: 99 },
    }),
  ];

  function runStream(chunks: Buffer[], includeUsage = true) {
    const t = createBedrockTranslator(
      req({ stream: true, stream_options: { include_usage: includeUsage } }),
      model(),
    );
    const start = t.onResponseHeaders(200, { 'content-type': 'application/vnd.amazon.eventstream' });
    expect(start.streaming).toBe(true);
    expect(start.headers['content-type']).toMatch(/^text\/event-stream/);
    let sse = '';
    for (const c of chunks) sse += t.onStreamChunk(c, false).toString();
    sse += t.onStreamChunk(Buffer.alloc(0), true).toString();
    return { t, sse };
  }

  it('sets sawFirstToken only with the first content delta', () => {
    const t = createBedrockTranslator(req({ stream: true }), model());
    t.onResponseHeaders(200, {});
    const [start, delta] = streamFrames();
    t.onStreamChunk(start!, false);
    expect(t.sawFirstToken).toBe(false);
    t.onStreamChunk(delta!, false);
    expect(t.sawFirstToken).toBe(true);
  });

  it('translates ConverseStream frames into chat.completion.chunk events', () => {
    const { t, sse } = runStream(streamFrames());
    expect(sse.endsWith('data: [DONE]\n\n')).toBe(true);
    const events = dataEvents(sse);
    expect(events[0]!.choices[0].delta).toEqual({ role: 'assistant', content: '' });
    const text = events.map((e) => e.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe('Hello ✓');
    const tc = events.flatMap((e) => e.choices[0]?.delta?.tool_calls ?? []);
    expect(tc[0]).toEqual({
      index: 0,
      id: 'tooluse_1',
      type: 'function',
      function: { name: 'weather', arguments: '' },
    });
    expect(tc.map((x: any) => x.function.arguments).join('')).toBe('{"city":"Paris"}');
    expect(events.find((e) => e.choices[0]?.finish_reason)?.choices[0].finish_reason).toBe('tool_calls');
    const last = events[events.length - 1]!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({
      prompt_tokens: 12,
      completion_tokens: 7,
      total_tokens: 19,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    expect(t.usage?.completionTokens).toBe(7);
    expect(t.streamError).toBeUndefined();
  });

  it('gives identical output however the bytes are cut (mid-prelude, mid-header, mid-payload)', () => {
    const whole = Buffer.concat(streamFrames());
    const norm = (s: string) => dataEvents(s).map((e) => ({ ...e, id: 'x', created: 0 }));
    const expected = norm(runStream([whole]).sse);
    for (const size of [1, 3, 7, 13, 64]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < whole.length; i += size) chunks.push(whole.subarray(i, i + size));
      const got = norm(runStream(chunks).sse);
      // Deltas may be merged differently only if the translator coalesced; it does not.
      expect(got).toEqual(expected);
    }
  });

  it('omits the usage chunk when the client did not ask for it', () => {
    const events = dataEvents(runStream(streamFrames(), false).sse);
    expect(events.every((e) => e.choices.length === 1)).toBe(true);
  });

  it('reports a throttling exception frame as a 429 stream error', () => {
    const { t, sse } = runStream([
      ev('messageStart', { role: 'assistant' }),
      exc('throttlingException', 'Too many tokens, please wait.'),
    ]);
    expect(t.streamError).toMatchObject({
      status: 429,
      type: 'rate_limit_error',
      code: 'rate_limit_exceeded',
    });
    const err = dataEvents(sse).find((e) => e.error);
    expect(err?.error.message).toMatch(/Too many tokens/);
    expect(sse.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('reports a model stream error exception as 502', () => {
    const { t } = runStream([
      ev('messageStart', { role: 'assistant' }),
      exc('modelStreamErrorException', 'boom'),
    ]);
    expect(t.streamError?.status).toBe(502);
  });

  it('marks a truncated stream (cut mid-frame) as failed', () => {
    const whole = Buffer.concat(streamFrames().slice(0, 3));
    const { t, sse } = runStream([whole.subarray(0, whole.length - 5)]);
    expect(t.streamError).toMatchObject({ status: 502, code: 'stream_truncated' });
    expect(sse).toContain('data: [DONE]');
  });

  it('marks a corrupt frame as failed and stops decoding', () => {
    const bad = ev('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'zzz' } });
    bad[bad.length - 10]! ^= 0x55;
    const { t, sse } = runStream([
      ev('messageStart', { role: 'assistant' }),
      bad,
      ev('messageStop', { stopReason: 'end_turn' }),
    ]);
    expect(t.streamError).toMatchObject({ status: 502, code: 'invalid_upstream_response' });
    expect(sse).not.toContain('zzz');
  });
});

describe('Bedrock errors', () => {
  const t = () =>
    createBedrockTranslator(
      req({}),
      model({
        credentials: {
          awsAccessKeyId: new Secret(KEY_ID),
          awsSecretAccessKey: new Secret(SECRET),
          awsSessionToken: new Secret(TOKEN),
        },
      }),
    );
  const body = (message: string) => Buffer.from(JSON.stringify({ message }));

  it('maps ThrottlingException to 429 (failover-eligible)', () => {
    const e = t().onError(
      429,
      { 'x-amzn-errortype': 'ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/' },
      body('Too many requests, please wait before trying again.'),
    );
    expect(e).toMatchObject({ status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    expect(e.message).toMatch(/Too many requests/);
  });

  it('maps ServiceQuotaExceededException (HTTP 400) to 429', () => {
    expect(
      t().onError(400, { 'x-amzn-errortype': 'ServiceQuotaExceededException' }, body('quota')).status,
    ).toBe(429);
  });

  it('maps ValidationException to 400 (not failover-eligible)', () => {
    const e = t().onError(
      400,
      { 'x-amzn-errortype': 'ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/' },
      body('Input is too long for requested model.'),
    );
    expect(e).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'ValidationException' });
  });

  it('maps service errors to 5xx and timeouts to 504', () => {
    expect(t().onError(503, { 'x-amzn-errortype': 'ServiceUnavailableException' }, body('x')).status).toBe(
      503,
    );
    expect(t().onError(500, { 'x-amzn-errortype': 'InternalServerException' }, body('x')).status).toBe(502);
    expect(t().onError(408, { 'x-amzn-errortype': 'ModelTimeoutException' }, body('x')).status).toBe(504);
    expect(
      t().onError(
        424,
        {},
        Buffer.from(JSON.stringify({ __type: 'com.amazon.bedrock#ModelErrorException', message: 'x' })),
      ).status,
    ).toBe(502);
  });

  it('never echoes credentials from a signature error', () => {
    const msg = `The request signature we calculated does not match the signature you provided. The Canonical String for this request should have been 'POST\n/model\nx-amz-security-token:${TOKEN}' secret ${SECRET}`;
    const e = t().onError(403, { 'x-amzn-errortype': 'InvalidSignatureException' }, body(msg));
    expect(e.status).toBe(403);
    expect(e.message).not.toContain(TOKEN);
    expect(e.message).not.toContain(SECRET);
    expect(JSON.stringify(e.toBody())).not.toContain(TOKEN);
  });

  it('scrubs a session token echoed in any error', () => {
    const e = t().onError(400, { 'x-amzn-errortype': 'ValidationException' }, body(`bad token ${TOKEN}`));
    expect(e.message).not.toContain(TOKEN);
  });
});

describe('AWS environment credentials (src/config/aws-env.ts)', async () => {
  const { awsCredentialsFromEnv, awsRegionFromEnv, withAwsEnvDefaults } =
    await import('../../src/config/aws-env.js');
  it('reads access keys, session token, bearer token and region', () => {
    const c = awsCredentialsFromEnv({
      AWS_ACCESS_KEY_ID: KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET,
      AWS_SESSION_TOKEN: TOKEN,
    });
    expect(c.awsAccessKeyId?.reveal()).toBe(KEY_ID);
    expect(c.awsSecretAccessKey?.reveal()).toBe(SECRET);
    expect(c.awsSessionToken?.reveal()).toBe(TOKEN);
    expect(JSON.stringify(c)).not.toContain(SECRET);
    expect(awsCredentialsFromEnv({ AWS_ACCESS_KEY_ID: KEY_ID })).toEqual({});
    expect(awsCredentialsFromEnv({ AWS_BEARER_TOKEN_BEDROCK: 'abc' }).apiKey?.reveal()).toBe('abc');
    expect(awsRegionFromEnv({ AWS_DEFAULT_REGION: 'eu-west-3' })).toBe('eu-west-3');
    expect(awsRegionFromEnv({ AWS_REGION: 'us-east-2', AWS_DEFAULT_REGION: 'eu-west-3' })).toBe('us-east-2');
  });
  it('prefers the provider credentials over the environment', () => {
    const own = { awsAccessKeyId: new Secret('A'), awsSecretAccessKey: new Secret('B') };
    expect(withAwsEnvDefaults(own, { AWS_ACCESS_KEY_ID: 'X', AWS_SECRET_ACCESS_KEY: 'Y' })).toBe(own);
    expect(
      withAwsEnvDefaults({}, { AWS_ACCESS_KEY_ID: 'X', AWS_SECRET_ACCESS_KEY: 'Y' }).awsAccessKeyId?.reveal(),
    ).toBe('X');
  });
});
