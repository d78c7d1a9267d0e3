// A 2xx answer that is not the provider's JSON (a proxy's HTML error page, a truncated body) is
// refused the same way by every provider family and kind of request: a 502 the next candidate
// may serve, code invalid_upstream_response, a redacted excerpt and never the provider's key.
import { describe, expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.js';
import { ApiError } from '../../src/core/errors.js';
import { embeddingsParsedRequest, parseEmbeddingsRequest } from '../../src/core/embeddings/request.js';
import { parseChatRequest } from '../../src/core/parse.js';
import { PROVIDER_TYPES, providerSpec } from '../../src/core/providers/table.js';
import type { ProviderType } from '../../src/core/config/schema.js';
import { compiledModel } from '../helpers/translator.js';

const KEY = 'sk-proj-UnreadableAnswerKey0123456789abcdef';

function model(type: ProviderType) {
  return compiledModel(
    {
      name: `p-${type}`,
      type,
      baseUrl: 'http://127.0.0.1:1',
      region: 'us-east-1',
      credentials: {
        apiKey: new Secret(KEY),
        awsAccessKeyId: new Secret('AKIAUNREADABLE'),
        awsSecretAccessKey: new Secret(KEY),
      },
    },
    {
      id: `p-${type}/m`,
      name: 'm',
      upstreamModel: 'm',
      tier: 'lightweight',
      pricing: { inputPerMTok: 1, outputPerMTok: 1, cachedInputPerMTok: 1, cacheWritePerMTok: 1 },
      contextWindow: 8192,
      maxOutputTokens: 1024,
      capabilities: [],
    },
  );
}

const chat = parseChatRequest(
  Buffer.from(JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] })),
);
const embeddings = embeddingsParsedRequest(
  parseEmbeddingsRequest(Buffer.from(JSON.stringify({ model: 'e', input: ['a', 'b'] }))),
);

const cases = PROVIDER_TYPES.flatMap((type) => {
  const spec = providerSpec(type);
  return [
    { type, kind: 'chat', make: () => spec.chat(chat, model(type)) },
    ...(spec.embeddings
      ? [{ type, kind: 'embeddings', make: () => spec.embeddings!(embeddings, model(type)) }]
      : []),
  ];
});

function refusal(make: () => ReturnType<(typeof cases)[number]['make']>, body: string): ApiError {
  const t = make();
  t.onResponseHeaders(200, { 'content-type': 'application/json' });
  try {
    t.onBody(Buffer.from(body));
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('the body was accepted');
}

describe.each(cases)('$type $kind translator: an answer that is not a JSON object', ({ type, make }) => {
  it.each([
    [
      'an HTML page that echoes the key',
      `<html><body>502 Bad Gateway: upstream said Bearer ${KEY}</body></html>`,
    ],
    ['a truncated body', '{"id":"x","choices":[{"mess'],
    ['a JSON array', '[1,2,3]'],
  ])('%s: 502 invalid_upstream_response, redacted', (_name, body) => {
    const err = refusal(make, body);
    expect(err.status).toBe(502);
    expect(err.code).toBe('invalid_upstream_response');
    expect(err.message).toMatch(
      new RegExp(`^Provider 'p-${type}' returned a body that is not a JSON object: `),
    );
    expect(JSON.stringify(err.toBody())).not.toContain(KEY);
  });
});
