// The embeddings scenarios both data planes must pass alike (test/e2e/embeddings-gateway.test.ts,
// test/extproc/embeddings-e2e.test.ts): the official openai SDK's `client.embeddings.create` ->
// the plane -> mock OpenAI, Azure OpenAI, Gemini and Bedrock (Titan, Cohere; SigV4 checked by
// the mock) servers in their own wire formats. Each family: float and base64 vectors (the SDK asks
// for base64 unless told otherwise and decodes it), dimensions where the family has them, usage
// and cost; then failover between two providers of one model, the explicit-model rule, and
// virtual-key rpm and budget.
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileConfig } from '../../src/core/config/compile.js';
import type { CompiledConfig, ProviderCredentials } from '../../src/core/config/compiled.js';
import type { Router } from '../../src/core/router.js';
import { Secret } from '../../src/core/secret.js';
import { startAzureMock } from '../mocks/azure-mock.js';
import { startBedrockMock } from '../mocks/bedrock-mock.js';
import { mockTokens, mockVector } from '../mocks/embeddings.js';
import type { MockServer } from '../mocks/faults.js';
import { startGeminiMock } from '../mocks/gemini-mock.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';

const AWS = {
  accessKeyId: 'AKIAEMBEDTEST',
  secretAccessKey: 'embed/secret+key',
  sessionToken: 'embed-token',
};
const REGION = 'us-west-2';
const KEYS: Record<string, string> = { OA_KEY: 'sk-oa', AZ_KEY: 'az-key-123456', GG_KEY: 'AIza-embed' };

/** A data plane under test, started on a compiled config. */
export interface Plane {
  baseURL: string;
  router: Router;
  /** Checked after every test (e.g. the Envoy harness saw no protocol violation). */
  check?(): void;
  close(): Promise<void>;
}

let openaiA: MockServer;
let openaiB: MockServer;
let azure: MockServer;
let gemini: MockServer;
let bedrock: MockServer;
let gw: Plane;
let client: OpenAI;

const chatModel = (name: string) => ({
  name,
  tier: 'lightweight',
  pricing: { inputPerMTok: 1, outputPerMTok: 2 },
  contextWindow: 100000,
  maxOutputTokens: 1000,
});

function config() {
  return {
    providers: [
      {
        name: 'oa',
        type: 'openai',
        baseUrl: openaiA.url,
        credentials: { apiKeyEnv: 'OA_KEY' },
        models: [chatModel('gpt-mini')],
        embeddingModels: [{ name: 'text-embedding-3-small', pricing: { inputPerMTok: 0.02 } }],
      },
      {
        // A second provider of the same embedding model, dearer: the failover target.
        name: 'ob',
        type: 'openai-compatible',
        baseUrl: openaiB.url,
        // Embeddings only (a text-embeddings server): no chat model.
        models: [],
        embeddingModels: [{ name: 'text-embedding-3-small', pricing: { inputPerMTok: 0.03 } }],
      },
      {
        name: 'az',
        type: 'azure-openai',
        baseUrl: azure.url,
        credentials: { apiKeyEnv: 'AZ_KEY' },
        models: [{ ...chatModel('az-chat'), upstreamModel: 'prod-mini' }],
        embeddingModels: [{ name: 'az-embed', upstreamModel: 'emb-large', pricing: { inputPerMTok: 0.13 } }],
      },
      {
        name: 'gg',
        type: 'gemini',
        baseUrl: gemini.url,
        credentials: { apiKeyEnv: 'GG_KEY' },
        models: [{ ...chatModel('gem-chat'), upstreamModel: 'gemini-2.5-flash' }],
        embeddingModels: [
          {
            name: 'gemini-embedding',
            upstreamModel: 'gemini-embedding-001',
            pricing: { inputPerMTok: 0.15 },
          },
        ],
      },
      {
        name: 'aws',
        type: 'bedrock',
        baseUrl: bedrock.url,
        region: REGION,
        models: [{ ...chatModel('nova'), upstreamModel: 'amazon.nova-lite-v1:0' }],
        embeddingModels: [
          {
            name: 'titan-embed',
            upstreamModel: 'amazon.titan-embed-text-v2:0',
            pricing: { inputPerMTok: 0.02 },
          },
          { name: 'cohere-embed', upstreamModel: 'cohere.embed-english-v3', pricing: { inputPerMTok: 0.1 } },
          { name: 'cohere-v4', upstreamModel: 'cohere.embed-v4:0', pricing: { inputPerMTok: 0.12 } },
        ],
      },
    ],
    policies: [{ name: 'auto', virtualModels: ['auto'], tiers: [{ name: 'lightweight' }] }],
    virtualKeys: [
      { name: 'open', key: 'vk-open' },
      { name: 'tight', key: 'vk-tight', rpm: 2 },
      { name: 'poor', key: 'vk-poor', budget: { usd: 0.0000001, period: 'day' } },
      { name: 'only-titan', key: 'vk-titan', allowedModels: ['titan-embed'] },
    ],
  };
}

/** Float32 values back on the mocks' 1/1024 grid (base64 vectors are float32). */
const approx = (v: ArrayLike<number>) => Array.from(v, (x) => Math.round(x * 1024) / 1024);

function compiled(): CompiledConfig {
  const aws: ProviderCredentials = {
    awsAccessKeyId: new Secret(AWS.accessKeyId),
    awsSecretAccessKey: new Secret(AWS.secretAccessKey),
    awsSessionToken: new Secret(AWS.sessionToken),
  };
  const r = compileConfig(config(), {
    resolveCredentials: (_p, spec): ProviderCredentials =>
      spec.apiKeyEnv ? { apiKey: new Secret(KEYS[spec.apiKeyEnv]!) } : {},
    aws: { credentials: aws, region: REGION },
  });
  if (!r.config) throw new Error(`config: ${JSON.stringify(r.issues)}`);
  return r.config;
}

export function embeddingsSuite(start: (config: CompiledConfig) => Promise<Plane>): void {
  beforeAll(async () => {
    [openaiA, openaiB, azure, gemini, bedrock] = await Promise.all([
      startOpenAIMock({ apiKey: 'sk-oa' }),
      startOpenAIMock(),
      startAzureMock({ apiKey: 'az-key-123456', deployments: ['prod-mini', 'emb-large'] }),
      startGeminiMock({ apiKey: 'AIza-embed' }),
      startBedrockMock({ credentials: AWS, region: REGION }),
    ]);
    gw = await start(compiled());
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'vk-open', maxRetries: 0 });
  });

  afterAll(async () => {
    await gw?.close();
    await Promise.all([openaiA, openaiB, azure, gemini, bedrock].map((m) => m?.close()));
  });

  afterEach(() => {
    for (const m of [openaiA, openaiB, azure, gemini, bedrock]) m.reset();
    gw.check?.();
  });

  describe.each([
    ['openai', 'text-embedding-3-small', () => openaiA, 1536],
    ['azure-openai', 'az-embed', () => azure, 256],
    ['gemini', 'gemini-embedding', () => gemini, 768],
    ['bedrock titan', 'titan-embed', () => bedrock, 512],
    ['bedrock cohere', 'cohere-embed', () => bedrock, undefined],
    ['bedrock cohere v4', 'cohere-v4', () => bedrock, 256],
  ] as const)('%s embeddings through the gateway', (family, model, mock, dimensions) => {
    const inputs = family === 'bedrock titan' ? ['one input only'] : ['first text', 'second, longer text'];
    // Titan answers 1024 dimensions unless asked for fewer; the other mocks 8.
    const expected = (text: string) => mockVector(text, family === 'bedrock titan' ? 1024 : undefined);

    it('float vectors in input order, with usage and cost', async () => {
      const { data, response } = await client.embeddings
        .create({ model, input: inputs, encoding_format: 'float' })
        .withResponse();
      expect(data.object).toBe('list');
      expect(data.data.map((d) => d.index)).toEqual(inputs.map((_, i) => i));
      data.data.forEach((d, i) => expect(d.embedding).toEqual(expected(inputs[i]!)));
      const tokens = inputs.reduce((n, t) => n + mockTokens(t), 0);
      if (family !== 'gemini') expect(data.usage.prompt_tokens).toBe(tokens);
      else expect(data.usage.prompt_tokens).toBeGreaterThan(0);
      expect(Number(response.headers.get('x-tierflow-cost-usd'))).toBeGreaterThan(0);
      expect(mock().requests).toHaveLength(1);
    });

    it('base64 (the SDK default) decodes to the same vectors', async () => {
      const data = await client.embeddings.create({ model, input: inputs });
      data.data.forEach((d, i) => expect(approx(d.embedding)).toEqual(expected(inputs[i]!)));
    });

    if (dimensions !== undefined) {
      it('passes dimensions on', async () => {
        const data = await client.embeddings.create({
          model,
          input: inputs[0]!,
          dimensions,
          encoding_format: 'float',
        });
        expect(data.data[0]!.embedding).toHaveLength(dimensions);
      });
    }
  });

  describe('embeddings routing', () => {
    it('fails over to another provider of the same model', async () => {
      openaiA.failNext({ kind: 'status', status: 503 });
      const { data, response } = await client.embeddings
        .create({ model: 'text-embedding-3-small', input: 'hello', encoding_format: 'float' })
        .withResponse();
      expect(data.data[0]!.embedding).toEqual(mockVector('hello'));
      expect(response.headers.get('x-tierflow-attempts')).toBe('2');
      expect(openaiA.requests).toHaveLength(1);
      expect(openaiB.requests).toHaveLength(1);
      expect(openaiB.lastRequest!.body.model).toBe('text-embedding-3-small');
    });

    it('names the cheaper provider first (provider/model pins one)', async () => {
      await client.embeddings.create({ model: 'ob/text-embedding-3-small', input: 'x' });
      expect(openaiA.requests).toHaveLength(0);
      expect(openaiB.requests).toHaveLength(1);
    });

    it('refuses `auto` and chat models with a 400 that names the embedding models', async () => {
      for (const model of ['auto', 'gpt-mini']) {
        const err = await client.embeddings.create({ model, input: 'x' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(OpenAI.BadRequestError);
        expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('model_not_embeddings');
        expect((err as Error).message).toContain("'titan-embed'");
      }
      const missing = await client.embeddings.create({ model: 'nope', input: 'x' }).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    });

    it('a translated family refuses token arrays; Titan one input at a time (400, nothing sent)', async () => {
      const tokens = await client.embeddings
        .create({ model: 'gemini-embedding', input: [[1, 2, 3]] })
        .catch((e: unknown) => e);
      expect(tokens).toBeInstanceOf(OpenAI.BadRequestError);
      const many = await client.embeddings
        .create({ model: 'titan-embed', input: ['a', 'b'] })
        .catch((e: unknown) => e);
      expect(many).toBeInstanceOf(OpenAI.BadRequestError);
      expect(gemini.requests).toHaveLength(0);
      expect(bedrock.requests).toHaveLength(0);
    });

    it('OpenAI takes token arrays as they are', async () => {
      const data = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input: [[1, 2, 3]],
        encoding_format: 'float',
      });
      expect(data.data).toHaveLength(1);
      expect(openaiA.lastRequest!.body.input).toEqual([[1, 2, 3]]);
    });

    it('lists embedding models in GET /v1/models', async () => {
      const ids = (await client.models.list()).data.map((m) => m.id);
      expect(ids).toEqual(expect.arrayContaining(['text-embedding-3-small', 'titan-embed', 'cohere-embed']));
    });
  });

  describe('embeddings and virtual keys', () => {
    it('needs a key', async () => {
      const anon = new OpenAI({ baseURL: gw.baseURL, apiKey: 'wrong', maxRetries: 0 });
      const err = await anon.embeddings.create({ model: 'titan-embed', input: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    });

    it('keeps to allowedModels', async () => {
      const k = new OpenAI({ baseURL: gw.baseURL, apiKey: 'vk-titan', maxRetries: 0 });
      await k.embeddings.create({ model: 'titan-embed', input: 'x' });
      const err = await k.embeddings.create({ model: 'cohere-embed', input: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    });

    it('counts against rpm', async () => {
      const k = new OpenAI({ baseURL: gw.baseURL, apiKey: 'vk-tight', maxRetries: 0 });
      await k.embeddings.create({ model: 'titan-embed', input: 'x' });
      await k.embeddings.create({ model: 'titan-embed', input: 'x' });
      const err = await k.embeddings.create({ model: 'titan-embed', input: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    });

    it('spends the budget', async () => {
      const k = new OpenAI({ baseURL: gw.baseURL, apiKey: 'vk-poor', maxRetries: 0 });
      await k.embeddings.create({ model: 'cohere-embed', input: 'a text long enough to cost something' });
      const err = await k.embeddings
        .create({ model: 'cohere-embed', input: 'a text long enough to cost something' })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      const usage = gw.router.keyUsage().find((u) => u.name === 'poor')!;
      expect(usage.spentUsd).toBeGreaterThan(0);
    });
  });
}
