// Embeddings below the data planes: request validation, what the config accepts, and the
// translators' edge cases the mocks do not reach (an OpenAI-compatible server answering floats to
// a base64 request, Cohere's by-type answer, a Bedrock model TierFlow cannot translate).
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../src/core/config/compile.js';
import { embeddingsParsedRequest, parseEmbeddingsRequest } from '../../src/core/embeddings/request.js';
import { ApiError } from '../../src/core/errors.js';
import { translatorForRequest } from '../../src/core/providers/table.js';
import { Secret } from '../../src/core/secret.js';
import { compiledModel } from '../helpers/translator.js';
import { sampleFile } from '../helpers/config.js';

const parse = (body: unknown) => parseEmbeddingsRequest(Buffer.from(JSON.stringify(body)));
const status = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof ApiError ? e.status : -1;
  }
  return 0;
};

describe('parseEmbeddingsRequest', () => {
  it('reads text, lists of texts and token arrays', () => {
    expect(parse({ model: 'm', input: 'a' })).toMatchObject({
      texts: ['a'],
      count: 1,
      encodingFormat: 'float',
    });
    expect(parse({ model: 'm', input: ['a', 'b'], encoding_format: 'base64', dimensions: 64 })).toMatchObject(
      {
        texts: ['a', 'b'],
        count: 2,
        encodingFormat: 'base64',
        dimensions: 64,
      },
    );
    expect(parse({ model: 'm', input: [1, 2, 3] })).toMatchObject({ texts: undefined, count: 1 });
    expect(parse({ model: 'm', input: [[1], [2, 3]] })).toMatchObject({ texts: undefined, count: 2 });
    expect(embeddingsParsedRequest(parse({ model: 'm', input: ['abcdefgh'] })).promptTokens).toBe(2);
  });

  it('refuses what OpenAI refuses with a 400', () => {
    for (const body of [
      { input: 'a' },
      { model: 'm' },
      { model: 'm', input: [] },
      { model: 'm', input: [1, 'a'] },
      { model: 'm', input: 'a', encoding_format: 'int8' },
      { model: 'm', input: 'a', dimensions: 0 },
      [],
    ])
      expect(
        status(() => parse(body)),
        JSON.stringify(body),
      ).toBe(400);
  });
});

describe('embeddingModels in the config', () => {
  const withEmbeddings = (type: string, extra: Record<string, unknown> = {}) => {
    const file = sampleFile() as unknown as { providers: Record<string, unknown>[] };
    file.providers[type === 'anthropic' ? 1 : 0]!.embeddingModels = [
      { name: 'emb', pricing: { inputPerMTok: 0.02 }, ...extra },
    ];
    return compileConfig(file, {
      resolveCredentials: (_p, spec) => (spec.apiKey ? { apiKey: new Secret(spec.apiKey) } : {}),
    });
  };

  it('compiles them apart from the chat models, priced by input only', () => {
    const { config } = withEmbeddings('openai', { upstreamModel: 'text-embedding-3-small' });
    const m = config!.embeddingModels.get('alpha/emb')!;
    expect(m).toMatchObject({ upstreamModel: 'text-embedding-3-small', tier: 'embeddings' });
    expect(m.pricing).toMatchObject({ inputPerMTok: 0.02, outputPerMTok: 0 });
    expect(config!.embeddingModelsByName.get('emb')).toEqual([m]);
    expect(config!.models.has('alpha/emb')).toBe(false);
    for (const p of config!.policies.values())
      for (const t of p.tiers) expect(t.candidates.map((c) => c.name)).not.toContain('emb');
  });

  it('a provider may offer embeddings only, but not nothing', () => {
    const file = sampleFile() as unknown as { providers: Record<string, unknown>[] };
    file.providers.push({
      name: 'tei',
      type: 'openai-compatible',
      baseUrl: 'http://127.0.0.1:9/v1',
      models: [],
      embeddingModels: [{ name: 'bge-m3', pricing: { inputPerMTok: 0 } }],
    });
    const ok = compileConfig(file, { resolveCredentials: () => ({ apiKey: new Secret('k') }) });
    expect(ok.config!.embeddingModels.has('tei/bge-m3')).toBe(true);
    delete file.providers.at(-1)!.embeddingModels;
    const bad = compileConfig(file, { resolveCredentials: () => ({ apiKey: new Secret('k') }) });
    expect(bad.issues).toContainEqual(
      expect.objectContaining({ path: '/providers/2/models', severity: 'error' }),
    );
  });

  it('refuses them on a family without an embeddings API, and a name a chat model has', () => {
    expect(withEmbeddings('anthropic').issues.map((i) => i.message)).toContain(
      'provider type anthropic offers no embeddings API',
    );
    const file = sampleFile() as unknown as { providers: Record<string, unknown>[] };
    file.providers[0]!.embeddingModels = [{ name: 'alpha-mini', pricing: { inputPerMTok: 1 } }];
    const r = compileConfig(file, { resolveCredentials: () => ({ apiKey: new Secret('k') }) });
    expect(r.config).toBeUndefined();
  });
});

describe('embeddings translators', () => {
  const request = (body: unknown) => embeddingsParsedRequest(parse(body));
  const provider = (type: 'openai-compatible' | 'bedrock') => ({
    name: 'p',
    type,
    baseUrl: 'http://127.0.0.1:9/v1',
    credentials: type === 'bedrock' ? { apiKey: new Secret('bedrock-api-key') } : {},
  });
  const embeddingModel = (type: 'openai-compatible' | 'bedrock', upstreamModel: string) =>
    compiledModel(provider(type), {
      id: `p/${upstreamModel}`,
      name: 'emb',
      upstreamModel,
      tier: 'embeddings',
      pricing: { inputPerMTok: 0.1, outputPerMTok: 0, cachedInputPerMTok: 0.1, cacheWritePerMTok: 0.1 },
      contextWindow: 8192,
      maxOutputTokens: 0,
      capabilities: [],
    });

  it('re-encodes float vectors as base64 when the client asked for base64', () => {
    const t = translatorForRequest(
      request({ model: 'emb', input: 'x', encoding_format: 'base64' }),
      embeddingModel('openai-compatible', 'bge'),
    );
    expect(JSON.parse(t.buildRequest().body.toString())).toMatchObject({
      model: 'bge',
      encoding_format: 'base64',
    });
    t.onResponseHeaders(200, {});
    const out = JSON.parse(
      t
        .onBody(
          Buffer.from(
            JSON.stringify({ data: [{ index: 0, embedding: [0.5, -1] }], usage: { prompt_tokens: 3 } }),
          ),
        )
        .toString(),
    );
    const b = Buffer.from(out.data[0].embedding as string, 'base64');
    expect([b.readFloatLE(0), b.readFloatLE(4)]).toEqual([0.5, -1]);
    expect(t.usage?.promptTokens).toBe(3);
  });

  it("reads Cohere's by-type answer and the token count header", () => {
    const t = translatorForRequest(
      request({ model: 'emb', input: ['a', 'b'], encoding_format: 'float', input_type: 'search_query' }),
      embeddingModel('bedrock', 'us.cohere.embed-multilingual-v3'),
    );
    const up = t.buildRequest();
    expect(up.url.pathname).toBe('/v1/model/us.cohere.embed-multilingual-v3/invoke');
    expect(up.headers.authorization).toBe('Bearer bedrock-api-key');
    expect(JSON.parse(up.body.toString())).toEqual({ texts: ['a', 'b'], input_type: 'search_query' });
    t.onResponseHeaders(200, { 'x-amzn-bedrock-input-token-count': '7' });
    const out = JSON.parse(
      t.onBody(Buffer.from(JSON.stringify({ embeddings: { float: [[1], [2]] } }))).toString(),
    );
    expect(out.data.map((d: { embedding: number[] }) => d.embedding)).toEqual([[1], [2]]);
    expect(out.usage).toEqual({ prompt_tokens: 7, total_tokens: 7 });
  });

  it('a Bedrock model it cannot translate, or an answer without vectors, is refused', () => {
    const other = translatorForRequest(
      request({ model: 'emb', input: 'x' }),
      embeddingModel('bedrock', 'mistral.x'),
    );
    expect(status(() => other.buildRequest())).toBe(400);
    const v3 = translatorForRequest(
      request({ model: 'emb', input: 'x', dimensions: 256 }),
      embeddingModel('bedrock', 'cohere.embed-english-v3'),
    );
    expect(status(() => v3.buildRequest())).toBe(400);
    const titan = translatorForRequest(
      request({ model: 'emb', input: 'x' }),
      embeddingModel('bedrock', 'amazon.titan-embed-text-v2:0'),
    );
    titan.onResponseHeaders(200, {});
    expect(status(() => titan.onBody(Buffer.from('{"message":"?"}')))).toBe(502);
  });
});
