// The Responses API scenarios both data planes must pass alike (test/e2e/responses-gateway.test.ts,
// test/extproc/responses-e2e.test.ts): the official openai SDK's client.responses.create and
// client.responses.stream against every provider family's mock. OpenAI is served natively
// (POST /v1/responses); OpenAI-compatible, Anthropic, Gemini, Azure OpenAI and Bedrock through
// their chat APIs. Failover, previous_response_id, the 400 for state a chat API cannot hold, and
// secrets that must never reach the client.
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileConfig } from '../../src/core/config/compile.js';
import type { CompiledConfig, ProviderCredentials } from '../../src/core/config/compiled.js';
import { Secret } from '../../src/core/secret.js';
import { startAnthropicMock } from '../mocks/anthropic-mock.js';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';
import { model } from './config.js';
import {
  AZURE_KEY,
  AWS,
  familyConfigFile,
  GEMINI_KEY,
  startFamilyMocks,
  type FamilyMocks,
} from './families.js';

const OPENAI_KEY = 'sk-openai-responses-secret';
const COMPAT_KEY = 'sk-compat-responses-secret';
const ANTHROPIC_KEY = 'sk-ant-responses-secret';
const SECRETS = [
  OPENAI_KEY,
  COMPAT_KEY,
  ANTHROPIC_KEY,
  GEMINI_KEY,
  AZURE_KEY,
  AWS.secretAccessKey,
  AWS.sessionToken,
];

/** A data plane under test, started on a compiled config: the base URL the SDK talks to. */
export interface Plane {
  baseURL: string;
  /**
   * Whether a stream that breaks after its headers but before its first token can still fail
   * over (the gateway holds the headers back; in the sidecar Envoy has already sent them).
   */
  streamFailover: boolean;
  /** Checked after every test (e.g. the Envoy harness saw no protocol violation). */
  check?(): void;
  close(): Promise<void>;
}

let oa: MockServer;
let compat: MockServer;
let an: MockServer;
let fam: FamilyMocks;

function config() {
  const families = familyConfigFile(fam);
  return {
    providers: [
      {
        name: 'oa',
        type: 'openai',
        baseUrl: oa.url,
        credentials: { apiKeyEnv: 'OA_KEY' },
        models: [model('oa-mini', 'lightweight', 0.15, 0.6, { upstreamModel: 'oa-mini-2026' })],
      },
      {
        name: 'compat',
        type: 'openai-compatible',
        baseUrl: compat.url,
        credentials: { apiKeyEnv: 'COMPAT_KEY' },
        models: [model('llama', 'lightweight', 0.1, 0.1, { upstreamModel: 'llama-3.3-70b' })],
      },
      {
        name: 'an',
        type: 'anthropic',
        baseUrl: an.url,
        credentials: { apiKeyEnv: 'AN_KEY' },
        models: [model('an-small', 'lightweight', 0.8, 4)],
      },
      ...families.providers,
    ],
    policies: [
      {
        name: 'oa-first',
        virtualModels: ['auto'],
        objective: { cost: 0, latency: 0 },
        tiers: [{ name: 'lightweight', models: ['oa/oa-mini', 'an/an-small'] }],
        failover: { firstByteTimeoutMs: 2000, deadlineMs: 10_000 },
      },
      {
        name: 'an-first',
        virtualModels: ['an-first'],
        objective: { cost: 0, latency: 0 },
        tiers: [{ name: 'lightweight', models: ['an/an-small', 'oa/oa-mini'] }],
      },
    ],
  };
}

function compiled(): CompiledConfig {
  const env: Record<string, string> = {
    OA_KEY: OPENAI_KEY,
    COMPAT_KEY,
    AN_KEY: ANTHROPIC_KEY,
    GEMINI: GEMINI_KEY,
    AZURE: AZURE_KEY,
  };
  const r = compileConfig(config(), {
    resolveCredentials: (_p, spec): ProviderCredentials => {
      const c: ProviderCredentials = {};
      if (spec.apiKeyEnv) c.apiKey = new Secret(env[spec.apiKeyEnv]!);
      if (spec.awsAccessKeyIdRef) c.awsAccessKeyId = new Secret(AWS.accessKeyId);
      if (spec.awsSecretAccessKeyRef) c.awsSecretAccessKey = new Secret(AWS.secretAccessKey);
      if (spec.awsSessionTokenRef) c.awsSessionToken = new Secret(AWS.sessionToken);
      return c;
    },
  });
  if (!r.config) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

/** Defines the whole suite against the plane `start` brings up. */
export function responsesSuite(start: (config: CompiledConfig) => Promise<Plane>): void {
  let plane: Plane;
  let sdk: OpenAI;
  beforeAll(async () => {
    [oa, compat, an, fam] = await Promise.all([
      startOpenAIMock({ apiKey: OPENAI_KEY }),
      startOpenAIMock({ apiKey: COMPAT_KEY, strict: false }),
      startAnthropicMock({ apiKey: ANTHROPIC_KEY }),
      startFamilyMocks(),
    ]);
    plane = await start(compiled());
    sdk = new OpenAI({ baseURL: plane.baseURL, apiKey: 'client-key-not-forwarded', maxRetries: 0 });
  });
  afterEach(() => {
    for (const m of [oa, compat, an, fam.gemini, fam.azure, fam.bedrock]) m.reset();
    plane.check?.();
  });
  afterAll(async () => {
    await plane?.close();
    await Promise.all([oa, compat, an, fam.gemini, fam.azure, fam.bedrock].map((m) => m?.close()));
  });

  const weatherTool: OpenAI.Responses.FunctionTool = {
    type: 'function',
    name: 'get_weather',
    description: 'Weather by city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    strict: false,
  };

  function expectNoSecret(text: string): void {
    for (const s of SECRETS) expect(text).not.toContain(s);
  }

  const FAMILIES = [
    ['openai (native)', 'oa/oa-mini', () => oa, '/v1/responses'],
    ['openai-compatible', 'compat/llama', () => compat, '/v1/chat/completions'],
    ['anthropic', 'an/an-small', () => an, '/v1/messages'],
    ['gemini', 'google/gemini-flash', () => fam.gemini, ':generateContent'],
    ['azure-openai', 'azure/gpt-4.1-mini', () => fam.azure, '/chat/completions'],
    ['bedrock', 'aws/nova-lite', () => fam.bedrock, '/converse'],
  ] as const;

  describe.each(FAMILIES)('%s: client.responses', (family, modelId, mock, pathPart) => {
    it('create: instructions + input -> a Response with output_text and usage', async () => {
      mock().setResponse({ content: 'Hello from the mock', usage: { prompt: 11, completion: 4 } });
      const { data, response } = await sdk.responses
        .create({ model: modelId, instructions: 'Be brief.', input: 'Say hello' })
        .withResponse();
      expect(data.object).toBe('response');
      expect(data.id).toMatch(/^resp_/);
      expect(data.status).toBe('completed');
      expect(data.output_text).toBe('Hello from the mock');
      expect(data.output[0]!.type).toBe('message');
      expect(data.usage).toMatchObject({ input_tokens: 11, output_tokens: 4, total_tokens: 15 });
      expect(response.headers.get('x-tierflow-provider')).toBe(modelId.split('/')[0]);
      expect(response.headers.get('x-tierflow-attempts')).toBe('1');
      expect(Number(response.headers.get('x-tierflow-cost-usd'))).toBeGreaterThan(0);
      const seen = mock().lastRequest!;
      expect(seen.path).toContain(pathPart);
      const raw = seen.raw.toString();
      expect(raw).toContain('Be brief.');
      expect(raw).toContain('Say hello');
      expect(raw).not.toContain('client-key-not-forwarded');
      if (family === 'openai (native)') {
        expect(seen.body.model).toBe('oa-mini-2026');
        expect(seen.body.instructions).toBe('Be brief.');
        expect(seen.body.input).toBe('Say hello');
      }
    });

    it('stream: Responses SSE events in order, final response with usage', async () => {
      mock().setResponse({ content: 'one two three', usage: { prompt: 7, completion: 3 } });
      const stream = sdk.responses.stream({ model: modelId, input: 'Count' });
      const types: string[] = [];
      const seqs: number[] = [];
      let deltas = '';
      for await (const event of stream) {
        types.push(event.type);
        seqs.push(event.sequence_number);
        if (event.type === 'response.output_text.delta') deltas += event.delta;
      }
      const final = await stream.finalResponse();
      expect(final.output_text).toBe('one two three');
      expect(deltas).toBe('one two three');
      expect(final.usage).toMatchObject({ input_tokens: 7, output_tokens: 3 });
      expect(types[0]).toBe('response.created');
      expect(types).toContain('response.in_progress');
      expect(types).toContain('response.output_item.added');
      expect(types).toContain('response.content_part.added');
      expect(types).toContain('response.output_text.done');
      expect(types).toContain('response.output_item.done');
      expect(types[types.length - 1]).toBe('response.completed');
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
    });

    it('function tools: a function_call out, its function_call_output back in', async () => {
      mock().setResponse({
        content: '',
        toolCalls: [{ id: 'call_w1', name: 'get_weather', arguments: { city: 'Paris' } }],
      });
      const first = await sdk.responses.create({
        model: modelId,
        input: 'Weather in Paris?',
        tools: [weatherTool],
      });
      const call = first.output.find((o) => o.type === 'function_call');
      expect(call).toMatchObject({ type: 'function_call', name: 'get_weather' });
      const fc = call as OpenAI.Responses.ResponseFunctionToolCall;
      expect(JSON.parse(fc.arguments)).toEqual({ city: 'Paris' });
      expect(fc.call_id.length).toBeGreaterThan(0);

      mock().setResponse({ content: 'It is sunny.' });
      const second = await sdk.responses.create({
        model: modelId,
        tools: [weatherTool],
        input: [
          { role: 'user', content: 'Weather in Paris?' },
          { type: 'function_call', call_id: fc.call_id, name: 'get_weather', arguments: fc.arguments },
          { type: 'function_call_output', call_id: fc.call_id, output: '{"temp":21}' },
        ],
      });
      expect(second.output_text).toBe('It is sunny.');
      const raw = mock().lastRequest!.raw.toString();
      expect(raw).toContain('get_weather');
      expect(raw).toContain('temp');
    });

    it('streams a function call as function_call_arguments events', async () => {
      mock().setResponse({
        content: '',
        toolCalls: [{ id: 'call_s1', name: 'get_weather', arguments: { city: 'Oslo' } }],
      });
      const stream = sdk.responses.stream({
        model: modelId,
        input: 'Weather in Oslo?',
        tools: [weatherTool],
      });
      const types: string[] = [];
      for await (const e of stream) types.push(e.type);
      const final = await stream.finalResponse();
      const call = final.output.find(
        (o) => o.type === 'function_call',
      ) as OpenAI.Responses.ResponseFunctionToolCall;
      expect(call.name).toBe('get_weather');
      expect(JSON.parse(call.arguments)).toEqual({ city: 'Oslo' });
      expect(types).toContain('response.function_call_arguments.done');
    });
  });

  describe('responses across providers', () => {
    it('fails over from OpenAI (503) to Anthropic, answering in the Responses format', async () => {
      oa.failNext({ kind: 'status', status: 503 });
      an.setResponse({ content: 'served by anthropic' });
      const { data, response } = await sdk.responses.create({ model: 'auto', input: 'hi' }).withResponse();
      expect(data.output_text).toBe('served by anthropic');
      expect(response.headers.get('x-tierflow-provider')).toBe('an');
      expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    });

    it('a stream that breaks before its first token: failover where the plane still can', async () => {
      oa.failNext({ kind: 'reset-mid-stream', afterEvents: 1 });
      an.setResponse({ content: 'streamed by anthropic' });
      const stream = sdk.responses.stream({ model: 'auto', input: 'hi' });
      const outcome = await (async () => {
        for await (const _ of stream) void _;
        return (await stream.finalResponse()).output_text;
      })().catch((e: unknown) => e);
      if (plane.streamFailover) expect(outcome).toBe('streamed by anthropic');
      // In the sidecar Envoy has sent the response headers on by then: the client sees the break.
      else expect(outcome).toBeInstanceOf(Error);
    });

    it.each([
      ['OpenAI (native)', 'oa/oa-mini', () => oa],
      ['OpenAI-compatible (chat)', 'compat/llama', () => compat],
    ] as const)(
      '%s: a stream that breaks after its first tokens ends with Responses error events',
      async (_, id, mock) => {
        mock().setResponse({ content: 'one two three four five six seven' });
        mock().failNext({ kind: 'reset-mid-stream', afterEvents: 5 });
        const events: OpenAI.Responses.ResponseStreamEvent[] = [];
        const failure = await (async () => {
          const stream = await sdk.responses.create({ model: id, input: 'x', stream: true });
          for await (const e of stream) events.push(e);
        })().catch((e: unknown) => e);
        if (plane.streamFailover) {
          // The gateway ends it in-band, in the Responses format (no chat error chunk).
          expect(events.some((e) => e.type === 'response.output_text.delta')).toBe(true);
          expect(failure).toBeUndefined();
          const error = events.find((e) => e.type === 'error') as OpenAI.Responses.ResponseErrorEvent;
          expect(error.code).toBe('reset');
          expect(events[events.length - 1]!.type).toBe(id === 'oa/oa-mini' ? 'error' : 'response.failed');
        } else {
          // Envoy resets the client's stream.
          expect(failure).toBeInstanceOf(Error);
        }
      },
    );

    it('previous_response_id goes to OpenAI, skipping a chat-only candidate', async () => {
      oa.setResponse({ content: 'first' });
      const first = await sdk.responses.create({ model: 'oa/oa-mini', input: 'start' });
      oa.setResponse({ content: 'second' });
      const { data, response } = await sdk.responses
        .create({ model: 'an-first', previous_response_id: first.id, input: 'go on' })
        .withResponse();
      expect(data.output_text).toBe('second (after: first)');
      expect(response.headers.get('x-tierflow-provider')).toBe('oa');
      expect(oa.lastRequest!.body.previous_response_id).toBe(first.id);
      expect(an.requests).toHaveLength(0);
    });

    it('previous_response_id continues a translated response on any provider (stored in TierFlow)', async () => {
      an.setResponse({ content: 'The capital is Paris.' });
      const first = await sdk.responses.create({
        model: 'an/an-small',
        instructions: 'Be brief.',
        input: 'Capital of France?',
      });
      expect((first as unknown as { store: boolean }).store).toBe(true);
      compat.setResponse({ content: 'About 2 million.' });
      const second = await sdk.responses.create({
        model: 'compat/llama',
        previous_response_id: first.id,
        input: 'Population?',
      });
      expect(second.output_text).toBe('About 2 million.');
      expect(second.previous_response_id).toBe(first.id);
      // The earlier turns, not the earlier instructions (as OpenAI does).
      expect(compat.lastRequest!.body.messages).toEqual([
        { role: 'user', content: 'Capital of France?' },
        { role: 'assistant', content: 'The capital is Paris.' },
        { role: 'user', content: 'Population?' },
      ]);
      // On to OpenAI, in chat form: OpenAI does not know the id.
      oa.setResponse({ content: 'ok' });
      const stream = sdk.responses.stream({
        model: 'oa/oa-mini',
        previous_response_id: second.id,
        input: 'Lyon?',
      });
      for await (const _ of stream) void _;
      const third = await stream.finalResponse();
      expect(oa.lastRequest!.path).toBe('/v1/chat/completions');
      expect(oa.lastRequest!.body.messages).toHaveLength(5);
      // A streamed answer is stored too.
      compat.setResponse({ content: 'fine' });
      await sdk.responses.create({ model: 'compat/llama', previous_response_id: third.id, input: 'Last.' });
      expect(compat.lastRequest!.body.messages).toHaveLength(7);
      expect(compat.lastRequest!.body.messages[5]).toEqual({ role: 'assistant', content: 'ok' });
      // Another client key cannot continue it.
      const other = new OpenAI({ baseURL: plane.baseURL, apiKey: 'another-client-key', maxRetries: 0 });
      await expect(
        other.responses.create({ model: 'compat/llama', previous_response_id: first.id, input: 'x' }),
      ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    });

    it('store: false is not kept', async () => {
      const unstored = await sdk.responses.create({ model: 'an/an-small', input: 'x', store: false });
      expect((unstored as unknown as { store: boolean }).store).toBe(false);
      await expect(
        sdk.responses.create({ model: 'an/an-small', previous_response_id: unstored.id, input: 'y' }),
      ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    });

    it('previous_response_id on a chat-only provider: a 400 naming the limitation', async () => {
      const err = await sdk.responses
        .create({ model: 'an/an-small', previous_response_id: 'resp_abc', input: 'go on' })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      const e = err as InstanceType<typeof OpenAI.BadRequestError>;
      expect(e.message).toContain('previous_response_id');
      expect(e.message).toContain('Responses API');
      expect(e.code).toBe('responses_feature_unsupported');
      expect(an.requests).toHaveLength(0);
    });

    it('text.format json_schema reaches a chat provider as response_format', async () => {
      compat.setResponse({ content: '{"answer":42}' });
      const res = await sdk.responses.create({
        model: 'compat/llama',
        input: 'answer',
        text: {
          format: {
            type: 'json_schema',
            name: 'answer',
            schema: { type: 'object', properties: { answer: { type: 'number' } } },
            strict: true,
          },
        },
        reasoning: { effort: 'low' },
        max_output_tokens: 50,
      });
      expect(JSON.parse(res.output_text)).toEqual({ answer: 42 });
      const body = compat.lastRequest!.body;
      expect(body.response_format).toMatchObject({
        type: 'json_schema',
        json_schema: { name: 'answer', strict: true },
      });
      expect(body.reasoning_effort).toBe('low');
      expect(body.max_tokens).toBe(50);
    });

    it('reasoning.effort reaches Gemini as its thinking budget', async () => {
      fam.gemini.setResponse({ content: 'thought about it' });
      const res = await sdk.responses.create({
        model: 'google/gemini-flash',
        input: 'think',
        reasoning: { effort: 'high' },
      });
      expect(res.output_text).toBe('thought about it');
      expect(fam.gemini.lastRequest!.body.generationConfig.thinkingConfig).toEqual({ thinkingBudget: 24576 });
    });

    it('an inline PDF (input_file) reaches Anthropic as a document block', async () => {
      an.setResponse({ content: 'A short PDF.' });
      const res = await sdk.responses.create({
        model: 'an/an-small',
        input: [
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'What is this?' },
              {
                type: 'input_file',
                filename: 'a.pdf',
                file_data: 'data:application/pdf;base64,JVBERi0xLjQK',
              },
            ],
          },
        ],
      });
      expect(res.output_text).toBe('A short PDF.');
      const blocks = an.lastRequest!.body.messages[0].content as { type: string }[];
      expect(blocks.map((b) => b.type)).toEqual(['text', 'document']);
    });

    it('a cut answer is status incomplete (max_output_tokens)', async () => {
      compat.setResponse({ content: 'a b c d e f' });
      const res = await sdk.responses.create({ model: 'compat/llama', input: 'x', max_output_tokens: 2 });
      expect(res.status).toBe('incomplete');
      expect(res.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    });

    it('a provider error mid-stream reaches the client as an error, without secrets', async () => {
      compat.setResponse({ content: 'one two three four five' });
      compat.failNext({ kind: 'stream-error', afterEvents: 3, message: `boom ${COMPAT_KEY}` });
      // Events and error may arrive in one read, before anything was committed: then the client
      // gets the error as the HTTP answer instead of in-band. Either way it is an error, redacted.
      const events: OpenAI.Responses.ResponseStreamEvent[] = [];
      const failure = await (async () => {
        const stream = await sdk.responses.create({ model: 'compat/llama', input: 'x', stream: true });
        for await (const e of stream) events.push(e);
      })().catch((e: unknown) => e);
      const text = JSON.stringify(events) + String(failure);
      expectNoSecret(text);
      const last = events[events.length - 1];
      expect(failure instanceof Error || last?.type === 'response.failed').toBe(true);
    });

    it('provider error bodies never carry a provider key', async () => {
      oa.failNext({
        kind: 'status',
        status: 400,
        body: {
          error: {
            message: `bad request for key ${OPENAI_KEY}`,
            type: 'invalid_request_error',
            code: null,
            param: null,
          },
        },
      });
      const err = await sdk.responses.create({ model: 'oa/oa-mini', input: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expectNoSecret(String((err as Error).message));
    });

    it('rejects a body that is not a Responses request with a 400', async () => {
      const err = await sdk.responses.create({ model: 'auto' } as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as Error).message).toContain("'input'");
    });
  });
}
