// End to end through the sidecar for the non-OpenAI wire formats: the official openai SDK -> the
// Envoy harness (configured from the bootstrap we ship) -> TierFlow's ext_proc server -> mock
// Gemini / Azure OpenAI / Bedrock servers (Gemini SSE, Azure deployments API with api-version,
// Bedrock SigV4 + binary event-stream). The same scenarios as test/e2e/providers-gateway.test.ts,
// which must behave the same in both data planes.
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CompiledConfig } from '../../src/core/config/compiled.js';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import type { ExtProcServer } from '../../src/extproc/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import type { AttemptDeps } from '../../src/pipeline/send.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import { azureContentFilterFault } from '../mocks/azure-mock.js';
import { bedrockFault } from '../mocks/bedrock-mock.js';
import type { MockServer, RecordedRequest } from '../mocks/faults.js';
import {
  AWS,
  AZURE_KEY,
  compileFamilies,
  GEMINI_KEY,
  REGION,
  startFamilyMocks,
} from '../helpers/families.js';
import { EnvoyHarness } from './envoy-harness.js';
import { startSidecar } from './sidecar.js';

const CLIENT_KEY = 'sk-client-dummy-never-upstream';
let gemini: MockServer;
let azure: MockServer;
let bedrock: MockServer;
let compiled: CompiledConfig;
let router: Router;
let deps: AttemptDeps;
let metrics: Metrics;
let server: ExtProcServer;
let harness: EnvoyHarness;
let closeSidecar: (() => Promise<void>) | undefined;
/** Same, but Envoy sends end_of_stream on the last data chunk instead of an empty one after it. */
let harnessEos: EnvoyHarness;
let upstream: UpstreamClient;
let openai: OpenAI;
let openaiEos: OpenAI;

// Envoy hands upstream bytes to ext_proc as the network cut them: never at SSE event or
// event-stream frame boundaries. Every upstream chunk is cut into pieces of 1..13 bytes (an
// event-stream message is at least 16 bytes, so every Bedrock frame is split across messages).
const PIECES = [5, 1, 9, 2, 13, 3, 7, 4, 11];
const MAX_PIECE = Math.max(...PIECES);
const cuts = { pieces: 0, bytes: 0, largest: 0 };
let nextPiece = 0;
function rechunk(c: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < c.length;) {
    const n = PIECES[nextPiece++ % PIECES.length]!;
    out.push(c.subarray(i, i + n));
    i += n;
  }
  cuts.pieces += out.length;
  cuts.bytes += c.length;
  for (const p of out) cuts.largest = Math.max(cuts.largest, p.length);
  return out;
}

beforeAll(async () => {
  ({ gemini, azure, bedrock } = await startFamilyMocks());
  compiled = compileFamilies({ gemini, azure, bedrock });
  metrics = new Metrics({ defaultMetrics: false });
  router = new Router({ config: compiled, health: new HealthRegistry() });
  upstream = new UpstreamClient();
  deps = { router, metrics, log: silentLogger, client: upstream };
  const sidecar = await startSidecar(deps, { harness: { rechunk } });
  ({ server, harness } = sidecar);
  closeSidecar = sidecar.close;
  harnessEos = new EnvoyHarness({ ...sidecar.options, emptyLastChunk: false });
  openai = new OpenAI({ baseURL: `${sidecar.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
  openaiEos = new OpenAI({ baseURL: `${await harnessEos.listen()}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
});

afterAll(async () => {
  await harnessEos?.close();
  await closeSidecar?.();
  await upstream?.close();
  router?.health.close();
  await Promise.all([gemini?.close(), azure?.close(), bedrock?.close()]);
});

beforeEach(() => {
  // Fresh breakers and latency stats per test: one test's injected failures must not open or
  // cool down another's providers.
  router.health.close();
  router = new Router({ config: compiled, health: new HealthRegistry() });
  deps.router = router;
  gemini.reset();
  azure.reset();
  bedrock.reset();
  cuts.pieces = 0;
  cuts.bytes = 0;
  cuts.largest = 0;
});

afterEach(() => {
  // Every request obeyed the protocol rules Envoy enforces.
  for (const h of [harness, harnessEos]) {
    expect(h.violations).toEqual([]);
    expect(h.grpcErrors).toEqual([]);
  }
});

/** Current value of a counter child (0 when it does not exist yet). */
async function counter(
  c: Metrics['attempts'] | Metrics['failovers'],
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await c.get();
  const hit = values.find((v) => {
    const have = v.labels as Record<string, string | number | undefined>;
    return Object.entries(labels).every(([k, x]) => have[k] === x);
  });
  return hit?.value ?? 0;
}

/** Client headers that must never reach a provider. */
const SPOOFED = { 'x-tierflow-model': 'evil', 'x-tierflow-provider': 'evil', 'x-tierflow-cluster': 'tls' };

function expectProviderAuth(family: string, req: RecordedRequest): void {
  const h = req.headers;
  // No client header or key crossed over, whatever the family's auth looks like.
  expect(Object.keys(h).filter((k) => k.startsWith('x-tierflow-'))).toEqual([]);
  expect(Object.keys(h).filter((k) => k.startsWith('x-stainless-'))).toEqual([]);
  expect(JSON.stringify(h)).not.toContain(CLIENT_KEY);
  if (family === 'gemini') {
    expect(h['x-goog-api-key']).toBe(GEMINI_KEY);
    expect(h.authorization).toBeUndefined();
    expect(req.path).not.toContain('key=');
  }
  if (family === 'azure-openai') {
    expect(h['api-key']).toBe(AZURE_KEY);
    expect(h.authorization).toBeUndefined();
    expect(new URL(req.path, 'http://x').searchParams.get('api-version')).toBe('2024-10-21');
  }
  if (family === 'bedrock') {
    // The mock recomputed the signature over what it received (a mismatch is a 403); check the
    // pieces are there too.
    expect(String(h.authorization)).toMatch(
      new RegExp(
        `^AWS4-HMAC-SHA256 Credential=${AWS.accessKeyId}/\\d{8}/${REGION}/bedrock/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$`,
      ),
    );
    expect(h['x-amz-security-token']).toBe(AWS.sessionToken);
    expect(h['x-amz-content-sha256']).toBe(createHash('sha256').update(req.raw).digest('hex'));
    expect(JSON.stringify(h)).not.toContain(AWS.secretAccessKey);
  }
}

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
] as const)('%s through the sidecar', (family, model, mock) => {
  const [providerName, modelName] = model.split('/') as [string, string];

  it('answers a JSON chat completion with usage, x-tierflow-* headers and provider auth', async () => {
    mock().setResponse({ content: 'Hello from the mock', usage: { prompt: 11, completion: 4 } });
    const { data, response } = await openai.chat.completions
      .create(
        {
          model,
          messages: [
            { role: 'system', content: 'Be brief.' },
            { role: 'user', content: 'Say hello' },
          ],
        },
        { headers: SPOOFED },
      )
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]!.message.content).toBe('Hello from the mock');
    expect(data.choices[0]!.finish_reason).toBe('stop');
    expect(data.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 });
    expect(response.headers.get('x-tierflow-provider')).toBe(providerName);
    expect(response.headers.get('x-tierflow-model')).toBe(modelName);
    expect(response.headers.get('x-tierflow-attempts')).toBe('1');
    expect(Number(response.headers.get('x-tierflow-cost-usd'))).toBeGreaterThan(0);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    // Provider-specific response headers stay behind.
    expect([...response.headers.keys()].filter((k) => /^(x-amzn|apim|x-goog)/.test(k))).toEqual([]);

    expect(mock().requests).toHaveLength(1);
    const seen = mock().lastRequest!;
    expectProviderAuth(family, seen);
    if (family === 'gemini') {
      expect(seen.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
      expect(seen.body.systemInstruction).toEqual({ parts: [{ text: 'Be brief.' }] });
    }
    if (family === 'azure-openai')
      expect(seen.path).toBe('/openai/deployments/prod-mini/chat/completions?api-version=2024-10-21');
    if (family === 'bedrock') {
      expect(seen.path).toBe(`/model/${encodeURIComponent('eu.amazon.nova-lite-v1:0')}/converse`);
      expect(seen.body.system).toEqual([{ text: 'Be brief.' }]);
    }

    const log = harness.accessLog.at(-1)!;
    expect(log.status).toBe(200);
    expect(log.metadata.tierflow).toMatchObject({
      provider: providerName,
      model: modelName,
      attempts: 1,
      prompt_tokens: 11,
      completion_tokens: 4,
    });
  });

  it('streams: the SDK reassembles the text from chunks cut at arbitrary boundaries, with usage', async () => {
    mock().setResponse({ content: 'one two three four', usage: { prompt: 7, completion: 4 } });
    const { data: stream, response } = await openai.chat.completions
      .create(
        {
          model,
          stream: true,
          stream_options: { include_usage: true },
          messages: [{ role: 'user', content: 'count' }],
        },
        { headers: SPOOFED },
      )
      .withResponse();
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('x-tierflow-provider')).toBe(providerName);
    expect(response.headers.get('x-tierflow-model')).toBe(modelName);
    const parts: string[] = [];
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      parts.push(chunk.choices[0]?.delta?.content ?? '');
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(parts.join('')).toBe('one two three four');
    expect(parts.filter(Boolean).length).toBeGreaterThanOrEqual(4);
    expect(finish).toBe('stop');
    expect(usage).toMatchObject({ prompt_tokens: 7, completion_tokens: 4 });

    const seen = mock().lastRequest!;
    expectProviderAuth(family, seen);
    if (family === 'gemini') expect(seen.path).toMatch(/:streamGenerateContent\?alt=sse$/);
    if (family === 'azure-openai') expect(seen.body.stream).toBe(true);
    if (family === 'bedrock') {
      expect(seen.path).toMatch(/\/converse-stream$/);
      expect(seen.headers.accept).toBe('application/vnd.amazon.eventstream');
    }

    // The upstream bytes reached the sidecar as small STREAMED pieces: request headers, request
    // body, response headers, one message per piece, and Envoy's empty end_of_stream chunk.
    expect(cuts.pieces).toBeGreaterThanOrEqual(Math.ceil(cuts.bytes / MAX_PIECE));
    expect(cuts.pieces).toBeGreaterThan(20);
    expect(cuts.largest).toBeLessThanOrEqual(MAX_PIECE);
    const log = harness.accessLog.at(-1)!;
    expect(log.status).toBe(200);
    expect(log.messagesSent).toBe(3 + cuts.pieces + 1);
    expect(log.metadata.tierflow).toMatchObject({ provider: providerName, completion_tokens: 4 });
  });

  it('streams multi-byte text when end_of_stream rides on the last data chunk', async () => {
    // Characters of 2, 3 and 4 UTF-8 bytes: the 1..13-byte pieces cut through many of them.
    const text = `héllo wörld 日本語のテキスト 🎉🎉 ünïcødé ${'x'.repeat(40)} done`;
    mock().setResponse({ content: text, usage: { prompt: 3, completion: 9 } });
    const stream = await openaiEos.chat.completions.create({
      model,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'über' }],
    });
    let got = '';
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      got += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(got).toBe(text);
    expect(finish).toBe('stop');
    expect(usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 9 });
    // No separate empty chunk: one response_body message per piece, the last one carrying end_of_stream.
    const log = harnessEos.accessLog.at(-1)!;
    expect(log.status).toBe(200);
    expect(cuts.pieces).toBeGreaterThan(20);
    expect(log.messagesSent).toBe(3 + cuts.pieces);
    expect(log.metadata.tierflow).toMatchObject({ provider: providerName, completion_tokens: 9 });
  });

  it('round-trips a tool call and its result', async () => {
    mock().setResponse({ content: '', toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
    const first = await openai.chat.completions.create({
      model,
      tools,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    });
    expect(first.choices[0]!.finish_reason).toBe('tool_calls');
    const call = first.choices[0]!.message
      .tool_calls![0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
    if (family === 'gemini')
      expect(gemini.lastRequest!.body.tools[0].functionDeclarations[0].name).toBe('get_weather');
    if (family === 'bedrock')
      expect(bedrock.lastRequest!.body.toolConfig.tools[0].toolSpec.name).toBe('get_weather');

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
    // The provider got the call and its result in its own shape (the strict mocks check pairing).
    const body = mock().lastRequest!.body;
    if (family === 'gemini') {
      expect(body.contents[1].parts[0].functionCall).toEqual({
        name: 'get_weather',
        args: { city: 'Paris' },
      });
      expect(body.contents[2].parts[0].functionResponse).toEqual({
        name: 'get_weather',
        response: { temp: 18 },
      });
    }
    if (family === 'azure-openai') {
      expect(body.messages[1].tool_calls[0].id).toBe(call.id);
      expect(body.messages[2]).toMatchObject({ role: 'tool', tool_call_id: call.id });
    }
    if (family === 'bedrock') {
      expect(body.messages[1].content[0].toolUse).toMatchObject({
        toolUseId: call.id,
        name: 'get_weather',
        input: { city: 'Paris' },
      });
      expect(body.messages[2].content[0].toolResult).toMatchObject({ toolUseId: call.id });
    }
  });

  it('maps provider throttling to a 429 RateLimitError when there is nothing to fail over to', async () => {
    mock().failNext(
      family === 'bedrock' ? bedrockFault('ThrottlingException') : { kind: 'status', status: 429 },
    );
    const err = (await openai.chat.completions
      .create({ model, messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.error).toMatchObject({ type: 'rate_limit_error' });
    expect(err.headers?.get('x-tierflow-attempts')).toBe('1');
    expect(mock().requests).toHaveLength(1);
  });
});

describe('streamed tool calls', () => {
  it.each([
    ['google/gemini-flash', () => gemini],
    ['azure/gpt-4.1-mini', () => azure],
  ] as const)('%s: two parallel calls reassemble from the chunks', async (model, mock) => {
    mock().setResponse({
      content: '',
      toolCalls: [
        { name: 'get_weather', arguments: { city: 'Paris' } },
        { name: 'get_weather', arguments: { city: 'Rome' } },
      ],
    });
    const stream = await openai.chat.completions.create({
      model,
      tools,
      stream: true,
      messages: [{ role: 'user', content: 'Weather in Paris and Rome?' }],
    });
    const args: string[] = [];
    const ids: string[] = [];
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
        args[tc.index] = (args[tc.index] ?? '') + (tc.function?.arguments ?? '');
        if (tc.id) ids[tc.index] = tc.id;
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(args.map((a) => JSON.parse(a) as unknown)).toEqual([{ city: 'Paris' }, { city: 'Rome' }]);
    expect(new Set(ids).size).toBe(2);
    expect(finish).toBe('tool_calls');
  });

  it('Bedrock: tool-use input deltas split across event-stream frames and pieces reassemble', async () => {
    bedrock.setResponse({
      content: '',
      toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } }],
    });
    const stream = await openai.chat.completions.create({
      model: 'aws/nova-lite',
      tools,
      stream: true,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    });
    let args = '';
    let name: string | undefined;
    let id: string | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      const tc = chunk.choices[0]?.delta?.tool_calls?.[0];
      if (tc?.function?.name) name = tc.function.name;
      if (tc?.id) id = tc.id;
      args += tc?.function?.arguments ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(name).toBe('get_weather');
    expect(id).toMatch(/^tooluse_mock0/);
    expect(JSON.parse(args)).toEqual({ city: 'Paris', unit: 'celsius' });
    expect(finish).toBe('tool_calls');
    expect(cuts.largest).toBeLessThanOrEqual(MAX_PIECE);
  });
});

describe('family-specific behaviour through the sidecar', () => {
  it('Gemini: a blocked prompt is a 400 with code content_filter', async () => {
    gemini.setResponse({ stop: 'BLOCKED:SAFETY' });
    const err = (await openai.chat.completions
      .create({ model: 'google/gemini-flash', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.code).toBe('content_filter');
    expect(err.error).toMatchObject({ type: 'invalid_request_error', code: 'content_filter' });
    expect(err.headers?.get('content-type')).toMatch(/^application\/json/);
    expect(gemini.requests).toHaveLength(1);
    expect(bedrock.requests).toHaveLength(0);
  });

  it("a Gemini safety block under a two-family policy is the client's 400: no failover", async () => {
    gemini.setResponse({ stop: 'BLOCKED:SAFETY' });
    const err = (await openai.chat.completions
      .create({ model: 'gem-first', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.code).toBe('content_filter');
    expect(err.headers?.get('x-tierflow-attempts')).toBe('1');
    expect(bedrock.requests).toHaveLength(0);
  });

  it('Gemini: finishReason SAFETY is finish_reason content_filter', async () => {
    gemini.setResponse({ content: 'partial', stop: 'SAFETY' });
    const r = await openai.chat.completions.create({
      model: 'google/gemini-flash',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.choices[0]!.finish_reason).toBe('content_filter');
    expect(r.choices[0]!.message.content).toBe('partial');

    const stream = await openai.chat.completions.create({
      model: 'google/gemini-flash',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    let finish: string | null | undefined;
    for await (const c of stream) finish = c.choices[0]?.finish_reason ?? finish;
    expect(finish).toBe('content_filter');
  });

  it('Gemini: a prompt blocked in a stream ends it with an OpenAI-style content_filter error', async () => {
    gemini.setResponse({ stop: 'BLOCKED:SAFETY' });
    const stream = await openai.chat.completions.create({
      model: 'google/gemini-flash',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    const err = (await (async () => {
      for await (const c of stream) void c;
    })().catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.code).toBe('content_filter');
  });

  it('Gemini: an invalid key is a 401 that does not fail over', async () => {
    gemini.failNext({
      kind: 'status',
      status: 400,
      body: {
        error: {
          code: 400,
          message: 'API key not valid. Please pass a valid API key.',
          status: 'INVALID_ARGUMENT',
          details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' }],
        },
      },
    });
    const err = await openai.chat.completions
      .create({ model: 'gem-first', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(bedrock.requests).toHaveLength(0);
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

  it('Azure: a filtered completion ends the stream with finish_reason content_filter', async () => {
    azure.setResponse({ content: 'some words here', stop: 'content_filter' });
    const stream = await openai.chat.completions.create({
      model: 'azure/gpt-4.1-mini',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    let finish: string | null | undefined;
    for await (const c of stream) finish = c.choices[0]?.finish_reason ?? finish;
    expect(finish).toBe('content_filter');
  });

  it('Bedrock: a ValidationException is a 400 without failover', async () => {
    bedrock.failNext(bedrockFault('ValidationException', 'Input is too long for requested model.'));
    const err = (await openai.chat.completions
      .create({ model: 'aws-first', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.message).toContain('Input is too long for requested model.');
    expect(err.headers?.get('x-tierflow-provider')).toBe('aws');
    expect(err.headers?.get('x-tierflow-attempts')).toBe('1');
    expect(bedrock.requests).toHaveLength(1);
    expect(azure.requests).toHaveLength(0);
  });

  it('Bedrock: an exception frame mid-stream ends the stream with an error, no switch', async () => {
    bedrock.setResponse({ content: 'one two three four five' });
    bedrock.failNext({ kind: 'stream-error', afterEvents: 3, errorType: 'throttlingException' });
    const streamErrors = await counter(metrics.attempts, { provider: 'aws', outcome: 'stream_error' });
    const stream = await openai.chat.completions.create({
      model: 'aws-first',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    let text = '';
    const err = await (async () => {
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(text).toBe('one two ');
    expect(azure.requests).toHaveLength(0);
    expect(await counter(metrics.attempts, { provider: 'aws', outcome: 'stream_error' })).toBe(
      streamErrors + 1,
    );
  });
});

describe('failover between families', () => {
  it('Gemini 429 RESOURCE_EXHAUSTED -> Bedrock serves the request', async () => {
    gemini.failNext({ kind: 'status', status: 429 });
    bedrock.setResponse({ content: 'served by bedrock', usage: { prompt: 5, completion: 3 } });
    const failovers = await counter(metrics.failovers, { provider: 'google', reason: 'http_429' });
    const served = await counter(metrics.attempts, { provider: 'aws', outcome: 'success' });
    const { data, response } = await openai.chat.completions
      .create({ model: 'gem-first', messages: [{ role: 'user', content: 'hi' }] }, { headers: SPOOFED })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('served by bedrock');
    expect(data.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 3 });
    expect(response.headers.get('x-tierflow-provider')).toBe('aws');
    expect(response.headers.get('x-tierflow-model')).toBe('nova-lite');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    expect(gemini.requests).toHaveLength(1);
    expect(bedrock.requests).toHaveLength(1);
    expectProviderAuth('gemini', gemini.lastRequest!);
    expectProviderAuth('bedrock', bedrock.lastRequest!);
    expect(await counter(metrics.failovers, { provider: 'google', reason: 'http_429' })).toBe(failovers + 1);
    expect(await counter(metrics.attempts, { provider: 'aws', outcome: 'success' })).toBe(served + 1);
    expect(harness.accessLog.at(-1)!.metadata.tierflow).toMatchObject({ provider: 'aws', attempts: 2 });
  });

  it('Gemini 429 on a streaming request -> Bedrock streams the answer', async () => {
    gemini.failNext({ kind: 'status', status: 429 });
    bedrock.setResponse({ content: 'streamed by bedrock' });
    const { data: stream, response } = await openai.chat.completions
      .create({ model: 'gem-first', stream: true, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe('streamed by bedrock');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    expect(response.headers.get('x-tierflow-provider')).toBe('aws');
    expect(bedrock.lastRequest!.path).toMatch(/\/converse-stream$/);
  });

  it('Bedrock ThrottlingException -> Azure serves the request', async () => {
    bedrock.failNext(bedrockFault('ThrottlingException'));
    azure.setResponse({ content: 'served by azure' });
    const { data, response } = await openai.chat.completions
      .create({ model: 'aws-first', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('served by azure');
    expect(response.headers.get('x-tierflow-provider')).toBe('azure');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    expect(bedrock.requests).toHaveLength(1);
    expect(azure.requests).toHaveLength(1);
    expectProviderAuth('azure-openai', azure.lastRequest!);
  });

  it('Bedrock ThrottlingException on a stream -> Azure streams the answer', async () => {
    bedrock.failNext(bedrockFault('ThrottlingException'));
    azure.setResponse({ content: 'streamed by azure' });
    const { data: stream, response } = await openai.chat.completions
      .create({ model: 'aws-first', stream: true, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe('streamed by azure');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    expect(response.headers.get('x-tierflow-provider')).toBe('azure');
  });

  it('Gemini reset -> Bedrock serves a stream', async () => {
    gemini.failNext({ kind: 'reset' });
    bedrock.setResponse({ content: 'after the reset' });
    const { data: stream, response } = await openai.chat.completions
      .create({ model: 'gem-first', stream: true, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe('after the reset');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
  });

  it('Gemini 400 does not fail over: the SDK raises BadRequestError', async () => {
    gemini.failNext({ kind: 'status', status: 400 });
    const err = (await openai.chat.completions
      .create({ model: 'gem-first', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.error).toMatchObject({ type: 'invalid_request_error', message: expect.any(String) });
    expect(err.headers?.get('x-tierflow-provider')).toBe('google');
    expect(err.headers?.get('x-tierflow-attempts')).toBe('1');
    expect(gemini.requests).toHaveLength(1);
    expect(bedrock.requests).toHaveLength(0);
  });

  it('both families throttled: the last error is a 429 with attempts 2', async () => {
    gemini.failNext({ kind: 'status', status: 429 });
    bedrock.failNext(bedrockFault('ThrottlingException'));
    const err = (await openai.chat.completions
      .create({ model: 'gem-first', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.headers?.get('x-tierflow-attempts')).toBe('2');
    expect(gemini.requests).toHaveLength(1);
    expect(bedrock.requests).toHaveLength(1);
  });
});

describe('concurrency', () => {
  it('keeps per-stream translator state apart across families, streaming and not', async () => {
    gemini.setResponse((r) => ({ content: `g ${String(r.body.contents.at(-1).parts[0].text)}` }));
    azure.setResponse((r) => ({ content: `a ${String(r.body.messages.at(-1).content)}` }));
    bedrock.setResponse((r) => ({ content: `b ${String(r.body.messages.at(-1).content[0].text)}` }));
    const models = ['google/gemini-flash', 'azure/gpt-4.1-mini', 'aws/nova-lite'];
    const one = async (i: number): Promise<string> => {
      const request = { model: models[i % 3]!, messages: [{ role: 'user' as const, content: `q${i}` }] };
      if (i % 2 === 1) return (await openai.chat.completions.create(request)).choices[0]!.message.content!;
      const stream = await openai.chat.completions.create({ ...request, stream: true });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
      return text;
    };
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => one(i)));
    expect(results).toEqual(results.map((_, i) => `${'gab'[i % 3]} q${i}`));
    for (let i = 0; i < 100 && server.activeStreams > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(server.activeStreams).toBe(0);
  });
});

describe('requests adapted to the serving model, through the sidecar', () => {
  const dev: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
    { role: 'developer', content: 'Be brief.' },
    { role: 'user', content: 'hi' },
  ];

  it('names what was changed in x-tierflow-adjusted (JSON, streamed, and after a failover)', async () => {
    // Azure api-version 2024-10-21 has no developer role: sent as system.
    const a = await openai.chat.completions
      .create({ model: 'azure/gpt-4.1-mini', messages: dev })
      .withResponse();
    expect(a.response.headers.get('x-tierflow-adjusted')).toBe('developer_role');
    expect(azure.lastRequest!.body.messages[0]).toEqual({ role: 'system', content: 'Be brief.' });

    // Bedrock Converse takes temperature in [0, 1]: clamped.
    const s = await openai.chat.completions
      .create({ model: 'aws/nova-lite', stream: true, temperature: 1.5, messages: dev })
      .withResponse();
    expect(s.response.headers.get('x-tierflow-adjusted')).toBe('temperature');
    for await (const _ of s.data) void _;
    expect(bedrock.lastRequest!.body.inferenceConfig.temperature).toBe(1);

    // Gemini fails; the answer Bedrock gives (ext_proc immediate response) carries its adjustments.
    gemini.failNext({ kind: 'status', status: 503 });
    const f = await openai.chat.completions
      .create({ model: 'gem-first', temperature: 1.5, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(f.response.headers.get('x-tierflow-provider')).toBe('aws');
    expect(f.response.headers.get('x-tierflow-adjusted')).toBe('temperature');

    // Nothing to change: no header.
    const n = await openai.chat.completions
      .create({ model: 'aws/nova-lite', temperature: 0.5, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(n.response.headers.get('x-tierflow-adjusted')).toBeNull();
  });
});
