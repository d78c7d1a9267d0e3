import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CompiledModel, CompiledProvider } from '../../src/core/config/compiled.js';
import type { ProviderType } from '../../src/core/config/schema.js';
import { ApiError } from '../../src/core/errors.js';
import { parseChatRequest } from '../../src/core/parse.js';
import { Secret } from '../../src/core/secret.js';
import { translatorFor } from '../../src/core/providers/table.js';
import { hasNonNullKey, OPENAI_FAMILY, OpenAITranslator } from '../../src/core/providers/openai/chat.js';
import { parseSse } from '../../src/core/providers/shared/sse.js';
import type { Translator } from '../../src/core/providers/types.js';
import { redact } from '../../src/core/redact.js';
import { type MockServer, startOpenAIMock } from '../mocks/openai-mock.js';
import { compiledModel, sendThrough } from '../helpers/translator.js';

const KEY = 'sk-proj-TESTKEY1234567890abcdefXYZ';

function model(
  over: Partial<CompiledProvider> = {},
  upstreamModel = 'gpt-4o-mini-2024-07-18',
): CompiledModel {
  const provider = {
    name: 'oai',
    type: 'openai' as const,
    baseUrl: 'https://api.example.test/v1',
    credentials: { apiKey: new Secret(KEY) },
    ...over,
  };
  return compiledModel(provider, {
    id: `${provider.name}/mini`,
    name: 'mini',
    upstreamModel,
    tier: 'lightweight',
    pricing: { inputPerMTok: 0.15, outputPerMTok: 0.6, cachedInputPerMTok: 0.075, cacheWritePerMTok: 0.15 },
    contextWindow: 128000,
    maxOutputTokens: 16384,
    capabilities: ['tools', 'vision', 'jsonSchema', 'streaming'],
  });
}

const req = (body: Record<string, unknown>) =>
  parseChatRequest(
    JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'Hello' }], ...body }),
  );

function translator(body: Record<string, unknown> = {}, m = model()): Translator {
  return translatorFor(m.provider.type)(req(body), m);
}

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8' };

/** Feed chunks; return the concatenated client output. */
function drive(t: Translator, chunks: (string | Buffer)[]): string {
  const out: Buffer[] = [];
  chunks.forEach((c, i) =>
    out.push(t.onStreamChunk(Buffer.isBuffer(c) ? c : Buffer.from(c), i === chunks.length - 1)),
  );
  return Buffer.concat(out).toString('utf8');
}

const chunkEv = (delta: unknown, finish: string | null = null, extra: Record<string, unknown> = {}) =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...extra,
  })}\n\n`;
const USAGE = {
  prompt_tokens: 20,
  completion_tokens: 3,
  total_tokens: 23,
  prompt_tokens_details: { cached_tokens: 8 },
};
const usageEv = `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini-2024-07-18', choices: [], usage: USAGE })}\n\n`;

const STREAM = [
  chunkEv({ role: 'assistant', content: '' }, null, { usage: null }),
  chunkEv({ content: 'Grüße ' }, null, { usage: null }),
  chunkEv({ content: '😀 there' }, null, { usage: null }),
  chunkEv({}, 'stop', { usage: null }),
  usageEv,
  'data: [DONE]\n\n',
].join('');

const dataOf = (out: string) => parseSse(out).map((e) => e.data);
const payloads = (out: string) =>
  dataOf(out)
    .filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d) as Record<string, any>);

describe('OpenAI translator: request', () => {
  it('registers openai, openai-compatible and demo', () => {
    for (const type of ['openai', 'openai-compatible', 'demo'] as ProviderType[]) {
      expect(translatorFor(type)(req({}), model({ type }))).toBeInstanceOf(OpenAITranslator);
    }
  });

  it('posts the client body to {baseUrl}/chat/completions with the upstream model', () => {
    const body = {
      temperature: 0.2,
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      custom_field: { x: 1 },
    };
    const r = translator(body).buildRequest();
    expect(r.method).toBe('POST');
    expect(r.url.href).toBe('https://api.example.test/v1/chat/completions');
    const sent = JSON.parse(r.body.toString());
    expect(sent.model).toBe('gpt-4o-mini-2024-07-18');
    expect(sent.messages).toEqual([{ role: 'user', content: 'Hello' }]);
    expect(sent.temperature).toBe(0.2);
    expect(sent.tools).toEqual(body.tools);
    expect(sent.custom_field).toEqual({ x: 1 });
    expect(sent.stream_options).toBeUndefined();
  });

  it('sends auth and provider headers (lower-cased), auth cannot be overridden', () => {
    const r = translator(
      {},
      model({ headers: { 'OpenAI-Organization': 'org-1', Authorization: 'Bearer nope' } }),
    ).buildRequest();
    expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(r.headers['openai-organization']).toBe('org-1');
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.headers.host).toBeUndefined();
  });

  it('sends no authorization without a key, and uses the public base URL when none is configured', () => {
    const r = translator({}, model({ credentials: {}, baseUrl: '' })).buildRequest();
    expect(r.headers.authorization).toBeUndefined();
    expect(r.url.href).toBe('https://api.openai.com/v1/chat/completions');
  });

  it('joins a base URL with a trailing slash', () => {
    expect(
      translator(
        {},
        model({ baseUrl: 'http://127.0.0.1:8000/v1/', type: 'openai-compatible' }),
      ).buildRequest().url.href,
    ).toBe('http://127.0.0.1:8000/v1/chat/completions');
  });

  it('fails clearly when an openai-compatible provider has no base URL', () => {
    expect(() => translator({}, model({ type: 'openai-compatible', baseUrl: '' })).buildRequest()).toThrow(
      ApiError,
    );
  });

  it('injects stream_options.include_usage for streaming, keeping other stream options, without mutating the client body', () => {
    const parsed = req({ stream: true, stream_options: { include_obfuscation: false } });
    const r = new OpenAITranslator(parsed, model(), OPENAI_FAMILY.openai).buildRequest();
    const sent = JSON.parse(r.body.toString());
    expect(sent.stream).toBe(true);
    expect(sent.stream_options).toEqual({ include_obfuscation: false, include_usage: true });
    expect(parsed.body.stream_options).toEqual({ include_obfuscation: false });
    expect(parsed.body.model).toBe('auto');
    expect(r.headers.accept).toBe('text/event-stream');
  });

  it('does not inject when the provider type is configured not to', () => {
    const r = new OpenAITranslator(req({ stream: true }), model(), {
      injectIncludeUsage: false,
      defaultBaseUrl: 'http://x',
    }).buildRequest();
    expect(JSON.parse(r.body.toString()).stream_options).toBeUndefined();
  });
});

describe('OpenAI translator: JSON responses', () => {
  const completion = {
    id: 'chatcmpl-9',
    object: 'chat.completion',
    created: 5,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'Hi!', refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: USAGE,
  };

  it('passes the body through unchanged (upstream model kept) and extracts usage', () => {
    const t = translator();
    t.buildRequest();
    const start = t.onResponseHeaders(200, { 'content-type': 'application/json' });
    expect(start).toEqual({ status: 200, headers: { 'content-type': 'application/json' }, streaming: false });
    const body = Buffer.from(JSON.stringify(completion));
    const out = t.onBody(body);
    expect(out.equals(body)).toBe(true);
    expect(JSON.parse(out.toString()).model).toBe('gpt-4o-mini-2024-07-18');
    expect(t.usage).toEqual({
      promptTokens: 20,
      completionTokens: 3,
      cachedPromptTokens: 8,
      cacheWriteTokens: 0,
    });
    expect(t.sawFirstToken).toBe(true);
  });

  it('leaves usage undefined when the server reports none', () => {
    const t = translator();
    t.buildRequest();
    t.onBody(Buffer.from(JSON.stringify({ ...completion, usage: undefined })));
    expect(t.usage).toBeUndefined();
  });

  it('reads DeepSeek-style prompt_cache_hit_tokens', () => {
    const t = translator();
    t.onBody(
      Buffer.from(
        JSON.stringify({
          ...completion,
          usage: { prompt_tokens: 10, completion_tokens: 1, prompt_cache_hit_tokens: 6 },
        }),
      ),
    );
    expect(t.usage?.cachedPromptTokens).toBe(6);
  });

  it('rejects a body that is not JSON with a 502', () => {
    const t = translator();
    let err: unknown;
    try {
      t.onBody(Buffer.from('<html>oops</html>'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(502);
    expect((err as ApiError).message).toContain('oops');
  });
});

describe('OpenAI translator: streaming', () => {
  it('hides the injected usage chunk when the client did not ask, but still extracts usage', () => {
    const t = translator({ stream: true });
    t.buildRequest();
    expect(t.onResponseHeaders(200, SSE_HEADERS)).toEqual({
      status: 200,
      headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
      streaming: true,
    });
    const out = drive(t, [STREAM, '']);
    const ps = payloads(out);
    expect(ps).toHaveLength(4);
    expect(ps.every((p) => p.choices.length === 1)).toBe(true);
    expect(ps.map((p) => p.choices[0].delta.content ?? '').join('')).toBe('Grüße 😀 there');
    expect(dataOf(out).filter((d) => d === '[DONE]')).toHaveLength(1);
    expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(t.usage).toEqual({
      promptTokens: 20,
      completionTokens: 3,
      cachedPromptTokens: 8,
      cacheWriteTokens: 0,
    });
    expect(t.streamError).toBeUndefined();
  });

  it('forwards the usage chunk when the client asked for it', () => {
    const t = translator({ stream: true, stream_options: { include_usage: true } });
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    const ps = payloads(drive(t, [STREAM, '']));
    expect(ps).toHaveLength(5);
    expect(ps[4]!.choices).toEqual([]);
    expect(ps[4]!.usage).toEqual(USAGE);
  });

  it('gives identical output for the stream split at every byte boundary', () => {
    const run = (chunks: Buffer[]) => {
      const t = translator({ stream: true });
      t.buildRequest();
      t.onResponseHeaders(200, SSE_HEADERS);
      const out = drive(t, [...chunks, Buffer.alloc(0)]);
      return { out, usage: t.usage, first: t.sawFirstToken };
    };
    const all = Buffer.from(STREAM);
    const whole = run([all]);
    for (let i = 1; i < all.length; i++) {
      const r = run([all.subarray(0, i), all.subarray(i)]);
      expect(r.out, `split at ${i}`).toBe(whole.out);
      expect(r.usage).toEqual(whole.usage);
      expect(r.first).toBe(true);
    }
  });

  it('sets sawFirstToken on the first content delta, not on the role chunk', () => {
    const t = translator({ stream: true });
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    t.onStreamChunk(Buffer.from(chunkEv({ role: 'assistant', content: '' })), false);
    expect(t.sawFirstToken).toBe(false);
    t.onStreamChunk(Buffer.from(chunkEv({ content: 'x' })), false);
    expect(t.sawFirstToken).toBe(true);
  });

  it('holds the role-only opening chunk until the first token, so an early failure sent nothing', () => {
    const t = translator({ stream: true });
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    expect(t.onStreamChunk(Buffer.from(chunkEv({ role: 'assistant', content: '' })), false).length).toBe(0);
    const out = t.onStreamChunk(Buffer.from(chunkEv({ content: 'x' })), false).toString();
    expect(payloads(out).map((p) => p.choices[0].delta)).toEqual([
      { role: 'assistant', content: '' },
      { content: 'x' },
    ]);
    // A stream that breaks before any token: nothing held back is lost at the end either.
    const u = translator({ stream: true });
    u.buildRequest();
    u.onResponseHeaders(200, SSE_HEADERS);
    expect(u.onStreamChunk(Buffer.from(chunkEv({ role: 'assistant', content: '' })), false).length).toBe(0);
    const tail = u.onStreamChunk(Buffer.alloc(0), true).toString();
    expect(u.streamError?.code).toBe('incomplete_stream');
    expect(payloads(tail)[0]!.choices[0].delta.role).toBe('assistant');
  });

  it('counts reasoning text of reasoning servers as the first token', () => {
    const t = translator({ stream: true }, model({ type: 'openai-compatible' }));
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    const out = t.onStreamChunk(
      Buffer.from(
        chunkEv({ role: 'assistant', content: '' }) + chunkEv({ reasoning_content: 'Let me think' }),
      ),
      false,
    );
    expect(t.sawFirstToken).toBe(true);
    expect(payloads(out.toString())).toHaveLength(2);
  });

  it('sets sawFirstToken on a tool-call delta and passes tool calls through', () => {
    const t = translator({ stream: true });
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    const tc = chunkEv({
      tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }],
    });
    const out = t
      .onStreamChunk(Buffer.from(chunkEv({ role: 'assistant', content: null }) + tc), false)
      .toString();
    expect(t.sawFirstToken).toBe(true);
    expect(payloads(out)[1]!.choices[0].delta.tool_calls[0]).toEqual({
      index: 0,
      id: 'call_1',
      type: 'function',
      function: { name: 'f', arguments: '' },
    });
  });

  it('tolerates a compatible server that ignores include_usage: usage undefined, no error', () => {
    const t = translator(
      { stream: true },
      model({ type: 'openai-compatible', baseUrl: 'http://vllm:8000/v1' }),
    );
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    const out = drive(t, [chunkEv({ content: 'a' }) + chunkEv({}, 'stop') + 'data: [DONE]\n\n', '']);
    expect(t.usage).toBeUndefined();
    expect(t.streamError).toBeUndefined();
    expect(dataOf(out)).toHaveLength(3);
  });

  it('accepts data: without a space and \\r\\n line endings', () => {
    const t = translator({ stream: true });
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    const text = `data:${JSON.stringify({ choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null }] })}\r\n\r\ndata:[DONE]\r\n\r\n`;
    const out = drive(t, [text, '']);
    expect(dataOf(out)).toEqual([
      JSON.stringify({ choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null }] }),
      '[DONE]',
    ]);
  });

  it('adds [DONE] at the end when a server omits it after a finish_reason', () => {
    const t = translator({ stream: true });
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    const out = drive(t, [chunkEv({ content: 'a' }) + chunkEv({}, 'stop'), '']);
    expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(t.streamError).toBeUndefined();
  });

  it('marks a truncated stream (no finish, no [DONE]) as a stream error and tells the client', () => {
    const t = translator({ stream: true });
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    const out = drive(t, [chunkEv({ content: 'a' }), '']);
    expect(t.streamError?.status).toBe(502);
    const last = payloads(out).at(-1)!;
    expect(last.error.code).toBe('incomplete_stream');
    expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('turns an error event inside the stream into streamError and forwards an OpenAI error chunk', () => {
    const t = translator({ stream: true });
    t.buildRequest();
    t.onResponseHeaders(200, SSE_HEADERS);
    const out = drive(t, [
      chunkEv({ content: 'a' }) +
        `data: {"error":{"message":"The server had an error","type":"server_error"}}\n\n`,
      '',
    ]);
    expect(t.streamError?.status).toBe(502);
    expect(t.streamError?.type).toBe('upstream_error');
    expect(payloads(out)[1]!.error.message).toContain('The server had an error');
  });

  it('converts a JSON answer to a streaming request into chunks', () => {
    const t = translator({ stream: true, stream_options: { include_usage: true } });
    t.buildRequest();
    const start = t.onResponseHeaders(200, { 'content-type': 'application/json' });
    expect(start.streaming).toBe(true);
    const completion = {
      id: 'c1',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Whole answer' }, finish_reason: 'stop' }],
      usage: USAGE,
    };
    const text = JSON.stringify(completion);
    const out = drive(t, [text.slice(0, 10), text.slice(10), '']);
    const ps = payloads(out);
    expect(ps[0]!.choices[0].delta).toEqual({ role: 'assistant', content: 'Whole answer' });
    expect(ps[1]!.choices[0].finish_reason).toBe('stop');
    expect(ps[2]!.usage).toEqual(USAGE);
    expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(t.usage?.promptTokens).toBe(20);
  });

  it('hasNonNullKey looks at values, not at text inside strings', () => {
    expect(hasNonNullKey('{"usage":null}', '"usage"')).toBe(false);
    expect(hasNonNullKey('{"usage" : null}', '"usage"')).toBe(false);
    expect(hasNonNullKey('{"usage": {"a":1}}', '"usage"')).toBe(true);
    expect(hasNonNullKey('{"content":"the \\"usage\\": 5"}', '"usage"')).toBe(false);
    expect(hasNonNullKey('{"finish_reason":"stop"}', '"finish_reason"')).toBe(true);
  });
});

describe('OpenAI translator: malformed stream events', () => {
  for (const [when, bad] of [
    ['before the first token', ['data: {"choices":[{"delta":{"content":\n\n']],
    ['after the first token', [chunkEv({ content: 'Hi' }), 'data: not json at all\n\n']],
    [
      'after the first token, truncated object',
      [chunkEv({ content: 'Hi' }), 'data: {"choices":[{"delta":{"cont\n\n'],
    ],
    ['a JSON value that is not an object', [chunkEv({ content: 'Hi' }), 'data: 42\n\n']],
  ] as const) {
    it(`end the stream with an OpenAI error event (${when})`, () => {
      const t = translator({ stream: true });
      t.onResponseHeaders(200, SSE_HEADERS);
      const out = drive(t, [...bad, chunkEv({ content: ' more' }), chunkEv({}, 'stop'), 'data: [DONE]\n\n']);
      const data = dataOf(out);
      expect(data.at(-1)).toBe('[DONE]');
      expect(data.filter((d) => d === '[DONE]')).toHaveLength(1);
      const last = JSON.parse(data.at(-2)!) as { error?: { code?: string } };
      expect(last.error?.code).toBe('invalid_upstream_response');
      expect(out).not.toContain(' more'); // nothing after the broken event
      for (const d of data) if (d !== '[DONE]') expect(() => JSON.parse(d) as unknown).not.toThrow();
      expect(t.streamError?.code).toBe('invalid_upstream_response');
    });
  }
});

describe('OpenAI translator: errors', () => {
  const err = (status: number, body: unknown, m = model()) =>
    translator({}, m).onError(
      status,
      { 'content-type': 'application/json' },
      Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    );

  it('keeps a 400 with the provider message, param and code', () => {
    const e = err(400, {
      error: {
        message: "Invalid value for 'temperature'.",
        type: 'invalid_request_error',
        param: 'temperature',
        code: 'invalid_value',
      },
    });
    expect(e.status).toBe(400);
    expect(e.type).toBe('invalid_request_error');
    expect(e.message).toBe("Invalid value for 'temperature'.");
    expect(e.param).toBe('temperature');
    expect(e.code).toBe('invalid_value');
  });

  it('keeps 429 (rate limit and quota)', () => {
    const e = err(429, {
      error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' },
    });
    expect(e.status).toBe(429);
    expect(e.type).toBe('rate_limit_error');
    expect(e.message).toContain('Rate limit reached');
    const q = err(429, {
      error: {
        message: 'You exceeded your current quota',
        type: 'insufficient_quota',
        code: 'insufficient_quota',
      },
    });
    expect(q.type).toBe('insufficient_quota');
  });

  it('maps 5xx to 502 upstream_error naming the provider, 503 to 503, 504 to 504', () => {
    const e = err(500, { error: { message: 'The server had an error', type: 'server_error' } });
    expect(e.status).toBe(502);
    expect(e.type).toBe('upstream_error');
    expect(e.message).toContain("'oai'");
    expect(e.message).toContain('The server had an error');
    expect(err(503, { error: { message: 'overloaded', type: 'server_error' } }).status).toBe(503);
    expect(err(504, 'gateway timeout').status).toBe(504);
  });

  it('handles non-JSON bodies (proxy HTML) and empty bodies', () => {
    const e = err(502, '<html><body><h1>502 Bad Gateway</h1></body></html>');
    expect(e.status).toBe(502);
    expect(e.message).toContain('502 Bad Gateway');
    expect(e.message).not.toContain('<h1>');
    expect(err(500, '').message).toContain('HTTP 500');
  });

  it('reads the {"error":"text"} and {"detail":...} shapes of compatible servers', () => {
    expect(err(400, { error: 'model not loaded' }).message).toBe('model not loaded');
    expect(err(422, { detail: 'field required' }).message).toBe('field required');
  });

  it('never lets the API key (plain or masked) through', () => {
    const masked = `sk-pro${'*'.repeat(20)}XYZ`;
    const e = err(401, {
      error: {
        message: `Incorrect API key provided: ${masked}. Also ${KEY} and Bearer ${KEY}`,
        type: 'invalid_request_error',
        code: 'invalid_api_key',
      },
    });
    expect(e.status).toBe(401);
    expect(e.type).toBe('authentication_error');
    const text = e.message + e.toJson();
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(masked);
    expect(text).not.toContain('TESTKEY');
    expect(text).toContain('[redacted]');
    // A key without a recognisable prefix is still removed verbatim.
    const m = model({ credentials: { apiKey: new Secret('plainsecretvalue42') }, type: 'openai-compatible' });
    expect(err(500, 'auth plainsecretvalue42 failed', m).message).not.toContain('plainsecretvalue42');
  });

  it('redact removes key-shaped tokens and header values', () => {
    const s = redact('x-api-key: abc123 sk-ant-api03-AAAA rk-live-1234 Bearer tok.en');
    expect(s).not.toMatch(/abc123|AAAA|1234|tok\.en/);
  });
});

describe('OpenAI translator against the mock server', () => {
  let mock: MockServer;
  beforeAll(async () => {
    mock = await startOpenAIMock({ apiKey: KEY });
  });
  afterAll(async () => {
    await mock.close();
  });
  beforeEach(() => mock.reset());

  const send = sendThrough;

  const mockModel = () => model({ baseUrl: mock.url });

  it('round-trips a JSON completion; the mock saw the translated request', async () => {
    mock.setResponse({ content: 'Hi there', usage: { prompt: 12, completion: 2, cached: 4 } });
    const t = translator({ max_tokens: 50 }, mockModel());
    const r = await send(t);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.out).choices[0].message.content).toBe('Hi there');
    expect(t.usage).toEqual({
      promptTokens: 12,
      completionTokens: 2,
      cachedPromptTokens: 4,
      cacheWriteTokens: 0,
    });
    const seen = mock.lastRequest!;
    expect(seen.path).toBe('/v1/chat/completions');
    expect(seen.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(seen.body.model).toBe('gpt-4o-mini-2024-07-18');
    expect(seen.body.max_completion_tokens).toBe(50); // OpenAI: max_tokens is sent as max_completion_tokens
  });

  it('streams with the usage chunk hidden and usage extracted', async () => {
    mock.setResponse({ content: 'one two three', usage: { prompt: 9, completion: 3 } });
    const t = translator({ stream: true }, mockModel());
    const r = await send(t);
    expect(mock.lastRequest!.body.stream_options).toEqual({ include_usage: true });
    const ps = payloads(r.out);
    expect(ps.every((p) => p.choices.length === 1)).toBe(true);
    expect(ps.map((p) => p.choices[0].delta.content ?? '').join('')).toBe('one two three');
    expect(t.usage?.promptTokens).toBe(9);
    expect(t.sawFirstToken).toBe(true);
  });

  it('streams tool calls (default echo from the request otherwise)', async () => {
    mock.setResponse({
      content: '',
      toolCalls: [{ id: 'call_7', name: 'get_weather', arguments: { city: 'Paris' } }],
    });
    const t = translator({ stream: true, stream_options: { include_usage: true } }, mockModel());
    const r = await send(t);
    const ps = payloads(r.out);
    const args = ps
      .flatMap((p) => p.choices[0]?.delta?.tool_calls ?? [])
      .map((d: any) => d.function?.arguments ?? '')
      .join('');
    expect(JSON.parse(args)).toEqual({ city: 'Paris' });
    expect(ps.find((p) => p.choices[0]?.finish_reason)!.choices[0].finish_reason).toBe('tool_calls');
    expect(ps.at(-1)!.usage).toBeDefined();
  });

  it('maps injected faults: 503, then 429 with retry-after, then success', async () => {
    mock.failNext({ kind: 'status', status: 503 });
    mock.failNext({ kind: 'status', status: 429, retryAfter: 2 });
    const a = await send(translator({}, mockModel()));
    expect(a.error?.status).toBe(503);
    const b = await send(translator({}, mockModel()));
    expect(b.error?.status).toBe(429);
    const c = await send(translator({ messages: [{ role: 'user', content: 'ping' }] }, mockModel()));
    expect(JSON.parse(c.out).choices[0].message.content).toBe('echo: ping');
    expect(mock.requests).toHaveLength(3);
  });

  it('reports a wrong key without leaking it', async () => {
    const wrong = 'sk-proj-WRONGKEY0000000000000000';
    const t = translator({}, model({ baseUrl: mock.url, credentials: { apiKey: new Secret(wrong) } }));
    const r = await send(t);
    expect(r.error?.status).toBe(401);
    expect(r.error?.toJson()).not.toContain('WRONGKEY');
    expect(r.error?.toJson()).not.toContain('0000');
  });

  it('marks a stream cut by the server as incomplete', async () => {
    mock.failNext({ kind: 'reset-mid-stream', afterEvents: 2 });
    const t = translator({ stream: true }, mockModel());
    await send(t).catch(() => undefined); // the body read may reject on reset
    const end = t.onStreamChunk(Buffer.alloc(0), true).toString();
    expect(t.streamError?.code).toBe('incomplete_stream');
    expect(end === '' || end.endsWith('data: [DONE]\n\n')).toBe(true);
  });
});

describe('mock server faults (shared by all provider mocks)', () => {
  let mock: MockServer;
  beforeAll(async () => {
    mock = await startOpenAIMock();
  });
  afterAll(async () => {
    await mock.close();
  });
  beforeEach(() => mock.reset());

  const post = (body: Record<string, unknown> = {}, signal?: AbortSignal) =>
    fetch(`${mock.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...body }),
      signal,
    });

  it('records requests with headers and parsed body, and echoes the last user text', async () => {
    const r = await post({ messages: [{ role: 'user', content: 'remember me' }] });
    expect(((await r.json()) as any).choices[0].message.content).toBe('echo: remember me');
    expect(mock.requests).toHaveLength(1);
    expect(mock.lastRequest!.headers['content-type']).toBe('application/json');
    expect(mock.lastRequest!.body.messages[0].content).toBe('remember me');
  });

  it('applies failNext for `times` requests, in order, then answers normally', async () => {
    mock.failNext({ kind: 'status', status: 500, times: 2 });
    mock.failNext({ kind: 'status', status: 400, body: { error: { message: 'custom' } } });
    expect((await post()).status).toBe(500);
    expect((await post()).status).toBe(500);
    const third = await post();
    expect(third.status).toBe(400);
    expect(((await third.json()) as any).error.message).toBe('custom');
    expect((await post()).status).toBe(200);
  });

  it('applies failWhen to matching requests only', async () => {
    mock.failWhen((r) => r.body?.model === 'bad', { kind: 'status', status: 503 });
    expect((await post({ model: 'bad' })).status).toBe(503);
    expect((await post({ model: 'good' })).status).toBe(200);
    expect((await post({ model: 'bad' })).status).toBe(503);
  });

  it('sends retry-after with a 429', async () => {
    mock.failNext({ kind: 'status', status: 429, retryAfter: 7 });
    const r = await post();
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('7');
    expect(((await r.json()) as any).error.code).toBe('rate_limit_exceeded');
  });

  it('resets the connection before any header', async () => {
    mock.failNext({ kind: 'reset' });
    await expect(post()).rejects.toThrow();
  });

  it('stalls until the client gives up', async () => {
    mock.failNext({ kind: 'stall' });
    await expect(post({}, AbortSignal.timeout(150))).rejects.toThrow();
    expect(mock.requests).toHaveLength(1);
  });

  it('delays the answer, delays the first body byte, and spaces stream events', async () => {
    mock.failNext({ kind: 'delay', ms: 120 });
    let t0 = Date.now();
    expect((await post()).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);

    mock.failNext({ kind: 'slow-first-byte', ms: 120 });
    t0 = Date.now();
    const r = await post();
    const headersAfter = Date.now() - t0;
    await r.json();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    expect(headersAfter).toBeLessThan(Date.now() - t0);

    mock.setResponse({ content: 'a b c d' });
    mock.failNext({ kind: 'cadence', ms: 40 });
    t0 = Date.now();
    const s = await post({ stream: true });
    const arrivals: number[] = [];
    for await (const _c of s.body as unknown as AsyncIterable<Uint8Array>) arrivals.push(Date.now() - t0);
    expect(arrivals.length).toBeGreaterThan(2);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(150); // 7 events, 6 gaps of 40 ms
  });

  it('emulates servers without stream_options support or usage', async () => {
    const loose = await startOpenAIMock({ rejectStreamOptions: true });
    try {
      const r = await fetch(`${loose.url}/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({
          model: 'm',
          stream: true,
          stream_options: { include_usage: true },
          messages: [{ role: 'user', content: 'x' }],
        }),
      });
      expect(r.status).toBe(400);
    } finally {
      await loose.close();
    }
  });
});

describe('output limit field', () => {
  it('OpenAI gets max_completion_tokens; OpenAI-compatible servers keep max_tokens', async () => {
    const { translatorFor } = await import('../../src/core/providers/table.js');
    const { parseChatRequest } = await import('../../src/core/parse.js');
    const { compile, sampleFile } = await import('../helpers/config.js');
    const file = sampleFile();
    file.providers.push({ ...file.providers[0]!, name: 'local', type: 'openai-compatible' });
    const config = compile(file);
    const req = parseChatRequest(
      JSON.stringify({ model: 'x', max_tokens: 77, messages: [{ role: 'user', content: 'hi' }] }),
    );
    const openaiBody = JSON.parse(
      translatorFor('openai')(req, config.models.get('alpha/alpha-mini')!).buildRequest().body.toString(),
    );
    expect(openaiBody.max_completion_tokens).toBe(77);
    expect(openaiBody).not.toHaveProperty('max_tokens');
    const localBody = JSON.parse(
      translatorFor('openai-compatible')(req, config.models.get('local/alpha-mini')!)
        .buildRequest()
        .body.toString(),
    );
    expect(localBody.max_tokens).toBe(77);
    expect(localBody).not.toHaveProperty('max_completion_tokens');
  });
});

describe('upstream body on the client bytes', () => {
  const m = () => model({}, 'gpt-4o-mini-2024-07-18');
  const build = (text: string) => translatorFor('openai')(parseChatRequest(text), m()).buildRequest();

  it('is the client body with only model replaced when nothing else changes (formatting, key order, big integers kept)', () => {
    const text =
      '{ "messages": [ {"role": "user", "content": "Hi \\"there\\""} ],\n  "seed": 12345678901234567890, "model": "auto", "user": "u1" }';
    const request = build(text);
    const expected = text.replace('"auto"', '"gpt-4o-mini-2024-07-18"');
    // pieces of the client's bytes, for the sidecar to write into its answer
    expect(request.bodySplice?.length).toBe(Buffer.byteLength(expected));
    expect(request.body!.toString()).toBe(expected);
  });

  it('adds stream_options for a stream that sent none, as the first member', () => {
    const text = '{"model":"auto","stream":true,"messages":[{"role":"user","content":"Hi"}]}';
    const body = build(text).body!.toString();
    expect(body).toBe(
      '{"stream_options":{"include_usage":true},"model":"gpt-4o-mini-2024-07-18","stream":true,"messages":[{"role":"user","content":"Hi"}]}',
    );
  });

  it('is serialized again when the translator adapted something', () => {
    const withOptions = build(
      '{"model":"auto","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"Hi"}]}',
    );
    expect(JSON.parse(withOptions.body!.toString()).stream_options).toEqual({ include_usage: true });
    const maxTokens = build('{"model":"auto","max_tokens":5,"messages":[{"role":"user","content":"Hi"}]}');
    const parsed = JSON.parse(maxTokens.body!.toString());
    expect(parsed.max_completion_tokens).toBe(5);
    expect(parsed.max_tokens).toBeUndefined();
    expect(maxTokens.bodySplice).toBeUndefined();
  });
});
