import { describe, expect, it } from 'vitest';
import type { CompiledModel, CompiledProvider } from '../../src/core/config/compiled.js';
import { parseChatRequest } from '../../src/core/parse.js';
import { Secret } from '../../src/core/secret.js';
import { createAzureOpenAITranslator } from '../../src/core/providers/azure-openai/chat.js';
import { AZURE_DEFAULT_API_VERSION } from '../../src/core/providers/azure-openai/endpoint.js';
import { translatorFor } from '../../src/core/providers/table.js';
import { parseSse } from '../../src/core/providers/shared/sse.js';
import { compiledModel } from '../helpers/translator.js';

const KEY = 'azure-key-0123456789abcdef';

function model(over: Partial<CompiledProvider> = {}): CompiledModel {
  return compiledModel(
    {
      name: 'azure',
      type: 'azure-openai',
      baseUrl: 'https://my-resource.openai.azure.com',
      credentials: { apiKey: new Secret(KEY) },
      apiVersion: '2025-04-01-preview',
      ...over,
    },
    {
      id: 'azure/gpt-4.1-mini',
      name: 'gpt-4.1-mini',
      upstreamModel: 'prod-gpt41-mini',
      tier: 'lightweight',
      pricing: { inputPerMTok: 0.4, outputPerMTok: 1.6, cachedInputPerMTok: 0.1, cacheWritePerMTok: 0.4 },
      contextWindow: 1047576,
      maxOutputTokens: 32768,
      capabilities: ['tools', 'vision', 'jsonSchema', 'streaming'],
    },
  );
}

const req = (body: Record<string, unknown>) =>
  parseChatRequest(JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }], ...body }));

describe('Azure OpenAI requests', () => {
  it('uses the deployment URL, api-version and the api-key header', () => {
    const r = createAzureOpenAITranslator(
      req({
        tools: [{ type: 'function', function: { name: 'f' } }],
        response_format: { type: 'json_object' },
      }),
      model(),
    ).buildRequest();
    expect(r.url.toString()).toBe(
      'https://my-resource.openai.azure.com/openai/deployments/prod-gpt41-mini/chat/completions?api-version=2025-04-01-preview',
    );
    expect(r.headers['api-key']).toBe(KEY);
    expect(r.headers.authorization).toBeUndefined();
    const body = JSON.parse(r.body.toString());
    // OpenAI wire format passes through (tools, response_format...)
    expect(body.tools).toEqual([{ type: 'function', function: { name: 'f' } }]);
    expect(body.response_format).toEqual({ type: 'json_object' });
    expect(body.messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('defaults the api-version and accepts a base URL ending in /openai', () => {
    const r = createAzureOpenAITranslator(
      req({}),
      model({ apiVersion: undefined, baseUrl: 'https://x.openai.azure.com/openai/' }),
    ).buildRequest();
    expect(r.url.toString()).toBe(
      `https://x.openai.azure.com/openai/deployments/prod-gpt41-mini/chat/completions?api-version=${AZURE_DEFAULT_API_VERSION}`,
    );
  });

  it('supports the v1 API (deployment as model, no api-version)', () => {
    const r = createAzureOpenAITranslator(req({}), model({ apiVersion: 'v1' })).buildRequest();
    expect(r.url.toString()).toBe('https://my-resource.openai.azure.com/openai/v1/chat/completions');
    expect(JSON.parse(r.body.toString()).model).toBe('prod-gpt41-mini');
  });

  it('sends an Entra token as a bearer token', () => {
    const r = createAzureOpenAITranslator(
      req({}),
      model({ auth: 'entra', credentials: { apiKey: new Secret('eyJ0eXAiOiJKV1Qi.token') } }),
    ).buildRequest();
    expect(r.headers.authorization).toBe('Bearer eyJ0eXAiOiJKV1Qi.token');
    expect(r.headers['api-key']).toBeUndefined();
  });

  it('asks for usage in streams (stream_options.include_usage) and hides it when the client did not ask', () => {
    const t = createAzureOpenAITranslator(req({ stream: true }), model());
    const body = JSON.parse(t.buildRequest().body.toString());
    expect(body.stream_options).toEqual({ include_usage: true });
    t.onResponseHeaders(200, { 'content-type': 'text/event-stream' });
    const upstream =
      [
        {
          id: '',
          object: '',
          created: 0,
          model: '',
          choices: [],
          prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }],
        },
        {
          id: 'c1',
          object: 'chat.completion.chunk',
          created: 1,
          model: 'gpt-4.1-mini',
          choices: [
            {
              index: 0,
              delta: { role: 'assistant', content: 'Hi' },
              finish_reason: null,
              content_filter_results: {},
            },
          ],
        },
        {
          id: 'c1',
          object: 'chat.completion.chunk',
          created: 1,
          model: 'gpt-4.1-mini',
          choices: [{ index: 0, delta: {}, finish_reason: 'content_filter' }],
        },
        {
          id: 'c1',
          object: 'chat.completion.chunk',
          created: 1,
          model: 'gpt-4.1-mini',
          choices: [],
          usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
        },
      ]
        .map((o) => `data: ${JSON.stringify(o)}\n\n`)
        .join('') + 'data: [DONE]\n\n';
    const out = t.onStreamChunk(Buffer.from(upstream), true).toString();
    const events = parseSse(out).map((e) => e.data);
    expect(events[events.length - 1]).toBe('[DONE]');
    const objs = events.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
    expect(objs.some((o) => o.usage)).toBe(false);
    expect(objs.find((o) => o.choices[0]?.finish_reason)?.choices[0].finish_reason).toBe('content_filter');
    expect(t.usage).toMatchObject({ promptTokens: 5, completionTokens: 1 });
    expect(t.sawFirstToken).toBe(true);
  });

  it('fails clearly without a base URL or a key', () => {
    expect(() => createAzureOpenAITranslator(req({}), model({ baseUrl: '' })).buildRequest()).toThrow(
      /baseUrl/,
    );
    expect(() => createAzureOpenAITranslator(req({}), model({ credentials: {} })).buildRequest()).toThrow(
      /no credential/,
    );
  });

  it('is registered for the azure-openai type', () => {
    expect(translatorFor('azure-openai')(req({}), model()).buildRequest().url.pathname).toContain(
      '/openai/deployments/',
    );
  });
});

describe('Azure OpenAI responses and errors', () => {
  it('passes a filtered completion through (finish_reason content_filter)', () => {
    const t = createAzureOpenAITranslator(req({}), model());
    const upstream = {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4.1-mini',
      prompt_filter_results: [
        { prompt_index: 0, content_filter_results: { hate: { filtered: false, severity: 'safe' } } },
      ],
      choices: [
        {
          index: 0,
          finish_reason: 'content_filter',
          message: { role: 'assistant', content: null },
          content_filter_results: { violence: { filtered: true, severity: 'high' } },
        },
      ],
      usage: { prompt_tokens: 10, completion_tokens: 0, total_tokens: 10 },
    };
    const out = JSON.parse(t.onBody(Buffer.from(JSON.stringify(upstream))).toString());
    expect(out.choices[0].finish_reason).toBe('content_filter');
    expect(t.usage?.promptTokens).toBe(10);
  });

  it('maps a content-filtered prompt (400 content_filter) to a 400 that does not fail over', () => {
    const body = {
      error: {
        message:
          "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        type: null,
        param: 'prompt',
        code: 'content_filter',
        status: 400,
        innererror: {
          code: 'ResponsibleAIPolicyViolation',
          content_filter_result: { violence: { filtered: true, severity: 'high' } },
        },
      },
    };
    const e = createAzureOpenAITranslator(req({}), model()).onError(
      400,
      {},
      Buffer.from(JSON.stringify(body)),
    );
    expect(e).toMatchObject({
      status: 400,
      code: 'content_filter',
      param: 'prompt',
      type: 'invalid_request_error',
    });
  });

  it('maps throttling to a failover-eligible 429', () => {
    const body = {
      error: {
        code: '429',
        message:
          'Requests to the ChatCompletions_Create Operation have exceeded token rate limit. Please retry after 6 seconds.',
      },
    };
    const e = createAzureOpenAITranslator(req({}), model()).onError(
      429,
      { 'retry-after': '6' },
      Buffer.from(JSON.stringify(body)),
    );
    expect(e).toMatchObject({ status: 429, type: 'rate_limit_error' });
  });

  it('keeps a missing deployment a 404 and never echoes the key', () => {
    const body = {
      error: {
        code: 'DeploymentNotFound',
        message: `The API deployment for this resource does not exist. key=${KEY}`,
      },
    };
    const e = createAzureOpenAITranslator(req({}), model()).onError(
      404,
      {},
      Buffer.from(JSON.stringify(body)),
    );
    expect(e.status).toBe(404);
    expect(e.code).toBe('DeploymentNotFound');
    expect(e.message).not.toContain(KEY);
  });

  it('maps 5xx to 502/503', () => {
    const t = createAzureOpenAITranslator(req({}), model());
    expect(
      t.onError(500, {}, Buffer.from('{"error":{"code":"InternalServerError","message":"x"}}')).status,
    ).toBe(502);
    expect(t.onError(503, {}, Buffer.from('oops')).status).toBe(503);
  });
});
