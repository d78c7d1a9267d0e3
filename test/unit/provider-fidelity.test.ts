// Provider fidelity: a request one model accepts is made acceptable to whichever model serves it.
// Each case sends the translated request to a strict mock that enforces the provider's documented
// rules for that model generation (test/mocks/*), and also shows that the mock refuses the request
// as the client wrote it, so the test fails if either the translator or the mock drifts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompiledModel, CompiledProvider } from '../../src/core/config/compiled.js';
import type { ModelFactsSpec } from '../../src/core/config/model-facts.js';
import type { ProviderType } from '../../src/core/config/schema.js';
import { parseChatRequest } from '../../src/core/parse.js';
import { Secret } from '../../src/core/secret.js';
import { ADJUSTED_HEADER, fitToolCallId } from '../../src/core/providers/shared/common.js';
import { translatorFor } from '../../src/core/providers/table.js';
import { parseSse } from '../../src/core/providers/shared/sse.js';
import { startAnthropicMock } from '../mocks/anthropic-mock.js';
import { startAzureMock } from '../mocks/azure-mock.js';
import { bedrockFault, startBedrockMock } from '../mocks/bedrock-mock.js';
import type { MockServer } from '../mocks/faults.js';
import { startGeminiMock } from '../mocks/gemini-mock.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';
import { compiledModel, sendThrough } from '../helpers/translator.js';

const KEY = 'fidelity-test-key-0123456789';
const AWS = { accessKeyId: 'AKIDFIDELITY', secretAccessKey: 'fidelity/secret' };

let openai: MockServer;
let azure: MockServer;
let anthropic: MockServer;
let gemini: MockServer;
let bedrock: MockServer;

beforeAll(async () => {
  [openai, azure, anthropic, gemini, bedrock] = await Promise.all([
    startOpenAIMock({ apiKey: KEY }),
    startAzureMock({
      apiKey: KEY,
      deploymentModels: { 'prod-reasoner': 'o4-mini', 'prod-chat': 'gpt-4.1-mini' },
    }),
    startAnthropicMock({ apiKey: KEY }),
    startGeminiMock({ apiKey: KEY }),
    startBedrockMock({ credentials: AWS, region: 'us-east-1' }),
  ]);
});
afterAll(async () => {
  await Promise.all([openai, azure, anthropic, gemini, bedrock].map((m) => m.close()));
});

function modelOf(
  type: ProviderType,
  upstreamModel: string,
  provider: Partial<CompiledProvider> = {},
  facts?: ModelFactsSpec,
): CompiledModel {
  const url = { openai, 'openai-compatible': openai, 'azure-openai': azure, anthropic, gemini, bedrock }[
    type as string
  ]!.url;
  const credentials =
    type === 'bedrock'
      ? { awsAccessKeyId: new Secret(AWS.accessKeyId), awsSecretAccessKey: new Secret(AWS.secretAccessKey) }
      : { apiKey: new Secret(KEY) };
  return compiledModel(
    { name: type, type, baseUrl: url, credentials, region: 'us-east-1', ...provider },
    {
      id: `${type}/${upstreamModel}`,
      name: upstreamModel,
      upstreamModel,
      tier: 'flagship',
      pricing: { inputPerMTok: 1, outputPerMTok: 1, cachedInputPerMTok: 1, cacheWritePerMTok: 1 },
      contextWindow: 200_000,
      maxOutputTokens: 32_000,
      capabilities: ['tools', 'vision', 'jsonSchema', 'streaming'],
      facts,
    },
  );
}

const chat = (body: Record<string, unknown>) =>
  parseChatRequest(JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }], ...body }));

/** Sends the client's body to the mock as is (OpenAI-shaped providers only), to prove the rule exists. */
async function sendRaw(model: CompiledModel, body: Record<string, unknown>): Promise<number> {
  const t = translatorFor(model.provider.type)(chat({}), model);
  const r = t.buildRequest();
  const raw = { model: model.upstreamModel, messages: [{ role: 'user', content: 'hi' }], ...body };
  const res = await fetch(r.url, { method: 'POST', headers: r.headers, body: JSON.stringify(raw) });
  await res.arrayBuffer();
  return res.status;
}

describe('OpenAI: reasoning models take only default sampling', () => {
  it('drops temperature and top_p for gpt-6.2-sol and says so; the strict mock refuses them', async () => {
    const m = modelOf('openai', 'gpt-6.2-sol');
    expect(await sendRaw(m, { temperature: 0.5 })).toBe(400);
    const t = translatorFor('openai')(chat({ temperature: 0.5, top_p: 0.3, max_tokens: 50 }), m);
    const r = await sendThrough(t);
    expect(r.status).toBe(200);
    const sent = openai.lastRequest!.body;
    expect(sent.temperature).toBeUndefined();
    expect(sent.top_p).toBeUndefined();
    expect(sent.max_completion_tokens).toBe(50);
    expect(t.adjusted).toEqual(['temperature', 'top_p']);
    expect(t.onResponseHeaders(200, {}).headers[ADJUSTED_HEADER]).toBe('temperature,top_p');
  });

  it('keeps the default value and clamps out-of-range values for other models', async () => {
    const t1 = translatorFor('openai')(chat({ temperature: 1 }), modelOf('openai', 'gpt-6.2-sol'));
    expect((await sendThrough(t1)).status).toBe(200);
    expect(openai.lastRequest!.body.temperature).toBe(1);
    expect(t1.adjusted).toEqual([]);
    expect(t1.onResponseHeaders(200, {}).headers[ADJUSTED_HEADER]).toBeUndefined();
    const m = modelOf('openai', 'gpt-4.1');
    expect(await sendRaw(m, { temperature: 3 })).toBe(400);
    const t2 = translatorFor('openai')(chat({ temperature: 3, top_p: 0.5 }), m);
    expect((await sendThrough(t2)).status).toBe(200);
    expect(openai.lastRequest!.body).toMatchObject({ temperature: 2, top_p: 0.5 });
    expect(t2.adjusted).toEqual(['temperature']);
  });

  it('catalog facts override the family defaults', async () => {
    const m = modelOf('openai', 'gpt-4.1', {}, { temperature: { support: 'range', min: 0, max: 1 } });
    const t = translatorFor('openai')(chat({ temperature: 1.5 }), m);
    await sendThrough(t);
    expect(openai.lastRequest!.body.temperature).toBe(1);
  });

  it('shortens tool-call ids over 40 characters consistently, so calls and results stay paired', async () => {
    const longId = `call_gid${'ab'.repeat(8)}_ts_${'S'.repeat(300)}`;
    const body = {
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: longId, type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
            {
              id: 'call_short',
              type: 'function',
              function: { name: 'weather', arguments: '{"city":"Rome"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'call_short', content: 'Rome: 22C' },
        { role: 'tool', tool_call_id: longId, content: 'Paris: 18C' },
      ],
    };
    const m = modelOf('openai', 'gpt-4.1');
    expect(await sendRaw(m, body)).toBe(400);
    const t = translatorFor('openai')(chat(body), m);
    expect((await sendThrough(t)).status).toBe(200);
    const sent = openai.lastRequest!.body.messages;
    const short = fitToolCallId(longId, 40);
    expect(short.length).toBeLessThanOrEqual(40);
    expect(sent[1].tool_calls.map((c: { id: string }) => c.id)).toEqual([short, 'call_short']);
    expect(sent[3]).toMatchObject({ tool_call_id: short, content: 'Paris: 18C' });
    expect(t.adjusted).toEqual(['tool_call_ids']);
  });

  it('sends developer messages as system to OpenAI-compatible servers', async () => {
    const m = modelOf('openai-compatible', 'llama-3.3-70b');
    const t = translatorFor('openai-compatible')(
      chat({
        messages: [
          { role: 'developer', content: 'Be brief.' },
          { role: 'user', content: 'hi' },
        ],
      }),
      m,
    );
    expect((await sendThrough(t)).status).toBe(200);
    expect(openai.lastRequest!.body.messages[0]).toEqual({ role: 'system', content: 'Be brief.' });
    expect(t.adjusted).toEqual(['developer_role']);
  });
});

describe('Azure OpenAI: api-version gates', () => {
  const dev = {
    messages: [
      { role: 'developer', content: 'Be brief.' },
      { role: 'user', content: 'hi' },
    ],
  };

  it('raises the api-version for a reasoning deployment, which then takes the developer role', async () => {
    const m = modelOf(
      'azure-openai',
      'prod-reasoner',
      { apiVersion: '2024-10-21' },
      {
        minApiVersion: '2024-12-01-preview',
        temperature: { support: 'defaultOnly', default: 1 },
      },
    );
    const t = translatorFor('azure-openai')(chat({ ...dev, temperature: 0.2 }), m);
    const r = await sendThrough(t);
    expect(r.status).toBe(200);
    const got = azure.lastRequest!;
    expect(new URL(got.path, 'http://x').searchParams.get('api-version')).toBe('2024-12-01-preview');
    expect(got.body.messages[0].role).toBe('developer');
    expect(got.body.temperature).toBeUndefined();
    expect(t.adjusted).toEqual(['temperature']);
  });

  it('derives the reasoning facts from the model name when the deployment name says nothing', () => {
    const m = compiledModel(
      { name: 'az', type: 'azure-openai', baseUrl: azure.url, credentials: { apiKey: new Secret(KEY) } },
      {
        id: 'az/o4-mini',
        name: 'o4-mini',
        upstreamModel: 'prod-reasoner',
        tier: 'flagship',
        pricing: { inputPerMTok: 1, outputPerMTok: 1, cachedInputPerMTok: 1, cacheWritePerMTok: 1 },
        contextWindow: 200_000,
        maxOutputTokens: 100_000,
        capabilities: ['tools'],
      },
    );
    expect(m.facts.minApiVersion).toBe('2024-12-01-preview');
    expect(m.facts.temperature.support).toBe('defaultOnly');
  });

  it('maps developer to system on api-version 2024-10-21, which has no developer role', async () => {
    const m = modelOf('azure-openai', 'prod-chat', { apiVersion: '2024-10-21' });
    expect(await sendRaw(m, dev)).toBe(400);
    const t = translatorFor('azure-openai')(chat(dev), m);
    expect((await sendThrough(t)).status).toBe(200);
    expect(azure.lastRequest!.body.messages[0]).toEqual({ role: 'system', content: 'Be brief.' });
    expect(t.adjusted).toEqual(['developer_role']);
  });

  it('the mock refuses a reasoning deployment on an old api-version', async () => {
    const m = modelOf(
      'azure-openai',
      'prod-reasoner',
      { apiVersion: '2024-10-21' },
      { minApiVersion: undefined },
    );
    // Catalog says nothing about the api-version and the deployment name hides the family: the
    // provider's refusal is what the client would get.
    const t = translatorFor('azure-openai')(chat({}), m);
    const r = await sendThrough(t);
    expect(r.status).toBe(400);
    expect(r.error?.message).toContain('enabled only for api versions 2024-12-01-preview and later');
  });
});

describe('Anthropic: sampling per generation and structured outputs', () => {
  it('post-Opus-4.6 models: temperature only 1, no top_p below 0.99, no top_k', async () => {
    const m = modelOf('anthropic', 'claude-opus-5-5');
    const t = translatorFor('anthropic')(chat({ temperature: 0.2, top_p: 0.5, top_k: 40 }), m);
    const r = await sendThrough(t);
    expect(r.status).toBe(200);
    const sent = anthropic.lastRequest!.body;
    expect(sent.temperature).toBeUndefined();
    expect(sent.top_p).toBeUndefined();
    expect(sent.top_k).toBeUndefined();
    expect(t.adjusted).toEqual(['temperature', 'top_p', 'top_k']);
    const ok = translatorFor('anthropic')(chat({ top_p: 0.995 }), m);
    expect((await sendThrough(ok)).status).toBe(200);
    expect(anthropic.lastRequest!.body.top_p).toBe(0.995);
  });

  it('Claude 4.5: temperature clamped to [0, 1] and sent without top_p', async () => {
    const t = translatorFor('anthropic')(
      chat({ temperature: 1.7, top_p: 0.9 }),
      modelOf('anthropic', 'claude-sonnet-4-5'),
    );
    expect((await sendThrough(t)).status).toBe(200);
    expect(anthropic.lastRequest!.body).toMatchObject({ temperature: 1 });
    expect(anthropic.lastRequest!.body.top_p).toBeUndefined();
    expect(t.adjusted).toEqual(['temperature', 'top_p']);
  });

  it('a schema with unsupported keywords is rewritten the way the official SDK does, and the strict mock accepts it', async () => {
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 40, pattern: '^[A-Z]' },
        age: { type: 'integer', minimum: 0, description: 'Years.' },
        tags: { type: 'array', items: { type: 'string', format: 'email' }, minItems: 2 },
        kind: { oneOf: [{ type: 'string', enum: ['a', 'b'] }, { $ref: '#/$defs/Other' }] },
        at: { type: 'string', format: 'date-time' },
        nested: { type: 'object', properties: { x: { type: 'number' } }, additionalProperties: true },
      },
      required: ['name'],
      $defs: { Other: { type: 'object', properties: { y: { type: 'boolean' } } } },
    };
    const rf = { type: 'json_schema', json_schema: { name: 'person', schema } };
    const t = translatorFor('anthropic')(
      chat({ response_format: rf }),
      modelOf('anthropic', 'claude-sonnet-5-5'),
    );
    const r = await sendThrough(t);
    expect(r.status).toBe(200);
    const sent = anthropic.lastRequest!.body.output_config.format.schema;
    expect(sent).toEqual({
      $defs: {
        Other: { type: 'object', properties: { y: { type: 'boolean' } }, additionalProperties: false },
      },
      type: 'object',
      properties: {
        name: { type: 'string', description: '{minLength: 1, maxLength: 40, pattern: "^[A-Z]"}' },
        age: { type: 'integer', description: 'Years.\n\n{minimum: 0}' },
        tags: { type: 'array', items: { type: 'string', format: 'email' }, description: '{minItems: 2}' },
        kind: { anyOf: [{ type: 'string', enum: ['a', 'b'] }, { $ref: '#/$defs/Other' }] },
        at: { type: 'string', format: 'date-time' },
        nested: { type: 'object', properties: { x: { type: 'number' } }, additionalProperties: false },
      },
      additionalProperties: false,
      required: ['name'],
    });
    // The client's schema is not modified, and the mock refuses it as written.
    expect(schema.properties.name.minLength).toBe(1);
    const raw = await fetch(`${anthropic.url}/messages`, {
      method: 'POST',
      headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'claude-sonnet-5-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'hi' }],
        output_config: { format: { type: 'json_schema', schema } },
      }),
    });
    expect(raw.status).toBe(400);
  });

  it('shortens tool ids outside [a-zA-Z0-9_-] and keeps them paired', async () => {
    const body = {
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'functions.weather:0', type: 'function', function: { name: 'weather', arguments: '{}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'functions.weather:0', content: '18C' },
      ],
      tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object' } } }],
    };
    const t = translatorFor('anthropic')(chat(body), modelOf('anthropic', 'claude-sonnet-4-5'));
    expect((await sendThrough(t)).status).toBe(200);
    const msgs = anthropic.lastRequest!.body.messages;
    expect(msgs[1].content[0].id).toMatch(/^[a-zA-Z0-9_-]+$/);
    expect(msgs[2].content[0].tool_use_id).toBe(msgs[1].content[0].id);
    expect(t.adjusted).toEqual(['tool_call_ids']);
  });
});

describe('Gemini: function-call ids, files, system-only requests, failed finishes', () => {
  const weather = [{ type: 'function', function: { name: 'weather', parameters: { type: 'object' } } }];

  it('Gemini 3: parallel calls of one function keep their ids, and results go back with them', async () => {
    const m = modelOf('gemini', 'gemini-3-flash');
    gemini.setResponse({
      content: '',
      toolCalls: [
        { id: 'g1', name: 'weather', arguments: { city: 'Paris' } },
        { id: 'g2', name: 'weather', arguments: { city: 'Rome' } },
      ],
    });
    const first = translatorFor('gemini')(chat({ tools: weather }), m);
    const out = JSON.parse((await sendThrough(first)).out);
    const calls = out.choices[0].message.tool_calls as { id: string; function: { arguments: string } }[];
    expect(calls).toHaveLength(2);
    expect(calls[0]!.id).not.toBe(calls[1]!.id);
    gemini.setResponse({ content: 'Done.' });
    // The client answers Rome first: pairing must follow the ids, not the order.
    const second = translatorFor('gemini')(
      chat({
        tools: weather,
        messages: [
          { role: 'user', content: 'weather?' },
          out.choices[0].message,
          { role: 'tool', tool_call_id: calls[1]!.id, content: 'Rome: 22C' },
          { role: 'tool', tool_call_id: calls[0]!.id, content: 'Paris: 18C' },
        ],
      }),
      m,
    );
    const r = await sendThrough(second);
    expect(r.status).toBe(200);
    const contents = gemini.lastRequest!.body.contents;
    expect(contents[1].parts.map((p: any) => p.functionCall.id)).toEqual(['g1', 'g2']);
    expect(
      contents[2].parts.map((p: any) => [p.functionResponse.id, p.functionResponse.response.result]),
    ).toEqual([
      ['g2', 'Rome: 22C'],
      ['g1', 'Paris: 18C'],
    ]);
  });

  it('Gemini 2.x: no ids are sent (the API rejects the field)', async () => {
    const m = modelOf('gemini', 'gemini-2.5-flash');
    const body = {
      tools: weather,
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'weather', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'call_abc', content: '18C' },
      ],
    };
    const t = translatorFor('gemini')(chat(body), m);
    expect((await sendThrough(t)).status).toBe(200);
    const contents = gemini.lastRequest!.body.contents;
    expect(contents[1].parts[0].functionCall.id).toBeUndefined();
    expect(contents[2].parts[0].functionResponse.id).toBeUndefined();
  });

  it('gives extension-less image URLs a mimeType and turns a system-only request into a user turn', async () => {
    const m = modelOf('gemini', 'gemini-3-flash');
    const img = chat({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image_url', image_url: { url: 'https://example.com/render?id=42' } },
          ],
        },
      ],
    });
    expect((await sendThrough(translatorFor('gemini')(img, m))).status).toBe(200);
    expect(gemini.lastRequest!.body.contents[0].parts[1].fileData).toEqual({
      fileUri: 'https://example.com/render?id=42',
      mimeType: 'image/jpeg',
    });
    const sys = chat({ messages: [{ role: 'system', content: 'Tell a joke.' }] });
    expect((await sendThrough(translatorFor('gemini')(sys, m))).status).toBe(200);
    expect(gemini.lastRequest!.body.contents).toEqual([{ role: 'user', parts: [{ text: 'Tell a joke.' }] }]);
    expect(gemini.lastRequest!.body.systemInstruction).toBeUndefined();
  });

  it('MALFORMED_FUNCTION_CALL with nothing produced is a 502 (failover), JSON and stream', async () => {
    const m = modelOf('gemini', 'gemini-3-flash');
    gemini.setResponse({ content: '', stop: 'MALFORMED_FUNCTION_CALL' });
    const r = await sendThrough(translatorFor('gemini')(chat({ tools: weather }), m)).catch((e) => e);
    expect(r.status).toBe(502);
    expect(r.code).toBe('malformed_function_call');
    const t = translatorFor('gemini')(chat({ tools: weather, stream: true }), m);
    const s = await sendThrough(t);
    expect(t.streamError?.status).toBe(502);
    expect(t.sawFirstToken).toBe(false);
    expect(parseSse(s.out).some((e) => e.data.includes('malformed_function_call'))).toBe(true);
    gemini.setResponse(undefined);
  });
});

describe('Bedrock: toolConfig, sampling, documents, failed stops, quota', () => {
  const claude = () => modelOf('bedrock', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0');

  it('a tool history without tools still gets the toolConfig Converse requires', async () => {
    const body = {
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '18C' },
        { role: 'user', content: 'and now summarise' },
      ],
    };
    const t = translatorFor('bedrock')(chat(body), claude());
    expect((await sendThrough(t)).status).toBe(200);
    expect(bedrock.lastRequest!.body.toolConfig).toEqual({
      tools: [{ toolSpec: { name: 'weather', inputSchema: { json: { type: 'object' } } } }],
    });
  });

  it('temperature clamped to [0, 1], topP dropped next to it for Claude 4.5', async () => {
    const t = translatorFor('bedrock')(chat({ temperature: 1.4, top_p: 0.9 }), claude());
    expect((await sendThrough(t)).status).toBe(200);
    expect(bedrock.lastRequest!.body.inferenceConfig).toEqual({ temperature: 1 });
    expect(t.adjusted).toEqual(['temperature', 'top_p']);
    const nova = translatorFor('bedrock')(
      chat({ temperature: 0.4, top_p: 0.9 }),
      modelOf('bedrock', 'amazon.nova-pro-v1:0'),
    );
    expect((await sendThrough(nova)).status).toBe(200);
    expect(bedrock.lastRequest!.body.inferenceConfig).toEqual({ temperature: 0.4, topP: 0.9 });
  });

  it('sends PDF file parts as document blocks', async () => {
    const body = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'summarise' },
            {
              type: 'file',
              file: {
                filename: 'Q3 report (final).pdf',
                file_data: 'data:application/pdf;base64,JVBERi0xLjQ=',
              },
            },
          ],
        },
      ],
    };
    const t = translatorFor('bedrock')(chat(body), claude());
    expect((await sendThrough(t)).status).toBe(200);
    expect(bedrock.lastRequest!.body.messages[0].content[1]).toEqual({
      document: { format: 'pdf', name: 'Q3 report (final)', source: { bytes: 'JVBERi0xLjQ=' } },
    });
  });

  it('malformed_tool_use / malformed_model_output are the provider failing (502), not a stop', async () => {
    bedrock.setResponse({ content: '', stop: 'malformed_tool_use' });
    const r = await sendThrough(translatorFor('bedrock')(chat({}), claude())).catch((e) => e);
    expect(r.status).toBe(502);
    bedrock.setResponse({ content: '', stop: 'malformed_model_output' });
    const t = translatorFor('bedrock')(chat({ stream: true }), claude());
    await sendThrough(t);
    expect(t.streamError?.status).toBe(502);
    expect(t.sawFirstToken).toBe(false);
    bedrock.setResponse(undefined);
  });

  it('ServiceQuotaExceededException (HTTP 400) is an exhausted quota: 429 insufficient_quota, failover-eligible', async () => {
    bedrock.failNext(
      bedrockFault('ServiceQuotaExceededException', 'Your request exceeds the service quota.'),
    );
    const r = await sendThrough(translatorFor('bedrock')(chat({}), claude()));
    expect(r.status).toBe(400);
    expect(r.error?.status).toBe(429);
    expect(r.error?.type).toBe('insufficient_quota');
  });
});
