// End to end: the official openai SDK -> the TierFlow gateway -> mock Gemini / Azure OpenAI /
// Bedrock servers speaking the real wire formats (Gemini SSE, Azure deployments API, Bedrock
// SigV4 + binary event-stream), including failover between families.
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { createGateway, type Gateway } from '../../src/gateway/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import { azureContentFilterFault } from '../mocks/azure-mock.js';
import { bedrockFault } from '../mocks/bedrock-mock.js';
import type { MockServer } from '../mocks/faults.js';
import { AWS, AZURE_KEY, compileFamilies, GEMINI_KEY, startFamilyMocks } from '../helpers/families.js';

let gemini: MockServer;
let azure: MockServer;
let bedrock: MockServer;
let gateway: Gateway;
let client: UpstreamClient;
let openai: OpenAI;

beforeAll(async () => {
  ({ gemini, azure, bedrock } = await startFamilyMocks());
  const config = compileFamilies({ gemini, azure, bedrock });
  const router = new Router({ config, health: new HealthRegistry() });
  client = new UpstreamClient();
  gateway = createGateway({
    router,
    metrics: new Metrics({ defaultMetrics: false }),
    log: silentLogger,
    client,
  });
  const addr = await gateway.listen(0, '127.0.0.1');
  openai = new OpenAI({ baseURL: `http://127.0.0.1:${addr.port}/v1`, apiKey: 'not-used', maxRetries: 0 });
});

afterAll(async () => {
  await gateway?.close(0);
  await client?.close();
  await Promise.all([gemini?.close(), azure?.close(), bedrock?.close()]);
});

beforeEach(() => {
  gemini.reset();
  azure.reset();
  bedrock.reset();
});

const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather by city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

describe.each([
  ['gemini', 'google/gemini-flash', () => gemini],
  ['azure-openai', 'azure/gpt-4.1-mini', () => azure],
  ['bedrock', 'aws/nova-lite', () => bedrock],
] as const)('%s through the gateway', (family, model, mock) => {
  it('answers a JSON chat completion with usage', async () => {
    mock().setResponse({ content: 'Hello from the mock', usage: { prompt: 11, completion: 4 } });
    const { data, response } = await openai.chat.completions
      .create({
        model,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Say hello' },
        ],
      })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('Hello from the mock');
    expect(data.choices[0]!.finish_reason).toBe('stop');
    expect(data.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 4 });
    expect(response.headers.get('x-tierflow-provider')).toBe(model.split('/')[0]);
    // Auth reached the mock in the family's own form, and no client key leaked upstream.
    const h = mock().lastRequest!.headers;
    if (family === 'gemini') expect(h['x-goog-api-key']).toBe(GEMINI_KEY);
    if (family === 'azure-openai') expect(h['api-key']).toBe(AZURE_KEY);
    if (family === 'bedrock')
      expect(String(h.authorization)).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIAE2ETESTKEY\/\d{8}\/eu-west-1\/bedrock\/aws4_request/,
      );
    expect(JSON.stringify(h)).not.toContain('not-used');
  });

  it('streams with usage', async () => {
    mock().setResponse({ content: 'one two three four', usage: { prompt: 7, completion: 4 } });
    const stream = await openai.chat.completions.create({
      model,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'count' }],
    });
    let text = '';
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('one two three four');
    expect(finish).toBe('stop');
    expect(usage).toMatchObject({ prompt_tokens: 7, completion_tokens: 4 });
  });

  it('round-trips a tool call and its result', async () => {
    mock().setResponse({ content: '', toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
    const first = await openai.chat.completions.create({
      model,
      tools,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    });
    const call = first.choices[0]!.message
      .tool_calls![0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    expect(first.choices[0]!.finish_reason).toBe('tool_calls');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
    mock().setResponse({ content: 'It is 18C in Paris.' });
    const second = await openai.chat.completions.create({
      model,
      tools,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        first.choices[0]!.message,
        { role: 'tool', tool_call_id: call.id, content: '{"temp":18}' },
      ],
    });
    expect(second.choices[0]!.message.content).toBe('It is 18C in Paris.');
  });

  it('maps provider throttling to a 429 RateLimitError', async () => {
    mock().failNext(
      family === 'bedrock' ? bedrockFault('ThrottlingException') : { kind: 'status', status: 429 },
    );
    const err = await openai.chat.completions
      .create({ model, messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
  });
});

describe('family-specific behaviour through the gateway', () => {
  it('Gemini: a blocked prompt is a 400 with code content_filter', async () => {
    gemini.setResponse({ stop: 'BLOCKED:SAFETY' });
    const err = (await openai.chat.completions
      .create({ model: 'google/gemini-flash', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.code).toBe('content_filter');
  });

  it('Gemini: finishReason SAFETY is finish_reason content_filter', async () => {
    gemini.setResponse({ content: 'partial', stop: 'SAFETY' });
    const r = await openai.chat.completions.create({
      model: 'google/gemini-flash',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.choices[0]!.finish_reason).toBe('content_filter');
  });

  it('Gemini: images as data URLs reach the provider as inlineData', async () => {
    await openai.chat.completions.create({
      model: 'google/gemini-flash',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          ],
        },
      ],
    });
    expect(gemini.lastRequest!.body.contents[0].parts[1]).toEqual({
      inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' },
    });
  });

  it('Azure: a filtered prompt is a 400 content_filter that does not fail over', async () => {
    azure.failNext(azureContentFilterFault());
    const err = (await openai.chat.completions
      .create({ model: 'azure/gpt-4.1-mini', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.code).toBe('content_filter');
    expect(azure.requests).toHaveLength(1);
  });

  it('Bedrock: a ValidationException is a 400', async () => {
    bedrock.failNext(bedrockFault('ValidationException', 'Input is too long for requested model.'));
    const err = await openai.chat.completions
      .create({ model: 'aws/nova-lite', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('Bedrock: a wrong secret is caught by the mock signature check', async () => {
    // Sanity check of the mock itself: a request signed with another secret is refused.
    const { signSigV4 } = await import('../../src/core/providers/shared/sigv4.js');
    const url = new URL(`${bedrock.url}/model/x/converse`);
    const body = Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'hi' }] }] }));
    const headers = { 'content-type': 'application/json' };
    const signed = signSigV4({
      method: 'POST',
      url,
      headers,
      body,
      region: 'eu-west-1',
      service: 'bedrock',
      accessKeyId: AWS.accessKeyId,
      secretAccessKey: 'wrong',
      sessionToken: AWS.sessionToken,
      date: new Date(),
    });
    const res = await fetch(url, { method: 'POST', headers: { ...headers, ...signed }, body });
    expect(res.status).toBe(403);
    expect(res.headers.get('x-amzn-errortype')).toMatch(/^InvalidSignatureException/);
    const good = signSigV4({
      method: 'POST',
      url,
      headers,
      body,
      region: 'eu-west-1',
      service: 'bedrock',
      ...AWS,
      date: new Date(),
    });
    expect((await fetch(url, { method: 'POST', headers: { ...headers, ...good }, body })).status).toBe(200);
  });
});

describe('failover between families', () => {
  it('Gemini 429 -> Bedrock serves the request', async () => {
    gemini.failNext({ kind: 'status', status: 429 });
    bedrock.setResponse({ content: 'served by bedrock' });
    const { data, response } = await openai.chat.completions
      .create({ model: 'gem-first', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('served by bedrock');
    expect(response.headers.get('x-tierflow-provider')).toBe('aws');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    expect(gemini.requests).toHaveLength(1);
  });

  it('Gemini reset -> Bedrock serves a stream', async () => {
    gemini.failNext({ kind: 'reset' });
    bedrock.setResponse({ content: 'streamed by bedrock' });
    const stream = await openai.chat.completions.create({
      model: 'gem-first',
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe('streamed by bedrock');
  });

  it("a Gemini safety block is the client's 400: no failover to Bedrock", async () => {
    gemini.setResponse({ stop: 'BLOCKED:SAFETY' });
    const err = (await openai.chat.completions
      .create({ model: 'gem-first', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.code).toBe('content_filter');
    expect(err.headers?.get('x-tierflow-attempts')).toBe('1');
    expect(bedrock.requests).toHaveLength(0);
  });

  it('Gemini 400 does not fail over', async () => {
    gemini.failNext({ kind: 'status', status: 400 });
    const err = await openai.chat.completions
      .create({ model: 'gem-first', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bedrock.requests).toHaveLength(0);
  });
});

describe('requests adapted to the serving model, through the gateway', () => {
  const dev: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
    { role: 'developer', content: 'Be brief.' },
    { role: 'user', content: 'hi' },
  ];

  it('names what was changed in x-tierflow-adjusted (JSON, streamed, and after a failover)', async () => {
    const a = await openai.chat.completions
      .create({ model: 'azure/gpt-4.1-mini', messages: dev })
      .withResponse();
    expect(a.response.headers.get('x-tierflow-adjusted')).toBe('developer_role');
    expect(azure.lastRequest!.body.messages[0]).toEqual({ role: 'system', content: 'Be brief.' });

    const s = await openai.chat.completions
      .create({ model: 'aws/nova-lite', stream: true, temperature: 1.5, messages: dev })
      .withResponse();
    expect(s.response.headers.get('x-tierflow-adjusted')).toBe('temperature');
    for await (const _ of s.data) void _;
    expect(bedrock.lastRequest!.body.inferenceConfig.temperature).toBe(1);

    gemini.failNext({ kind: 'status', status: 503 });
    const f = await openai.chat.completions
      .create({ model: 'gem-first', temperature: 1.5, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(f.response.headers.get('x-tierflow-provider')).toBe('aws');
    expect(f.response.headers.get('x-tierflow-adjusted')).toBe('temperature');

    const n = await openai.chat.completions
      .create({ model: 'aws/nova-lite', temperature: 0.5, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(n.response.headers.get('x-tierflow-adjusted')).toBeNull();
  });
});
