// Keys that hold: with virtual keys configured, every /v1/* path needs one, /v1/models shows only
// what the key may use, and the key's limits are told in OpenAI's x-ratelimit-* headers on every
// answer, with Retry-After on the 429. The official SDK is the client.
import OpenAI from 'openai';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { model } from '../helpers/config.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type MockServer, startOpenAIMock } from '../mocks/openai-mock.js';

const AUTO_ONLY = 'tf-team-auto-only-0123456789';
const RATED = 'tf-team-rated-0123456789';
const BUDGETED = 'tf-team-budget-0123456789';
const OPEN = 'tf-team-open-0123456789';
const RESPONSES = 'tf-team-responses-0123456789';

let mock: MockServer;
let gw: TestGateway;

beforeAll(async () => {
  mock = await startOpenAIMock({ apiKey: 'sk-upstream' });
  mock.setResponse({ content: 'hi', usage: { prompt: 10, completion: 2 } });
  gw = await startTestGateway({
    providers: [
      {
        name: 'alpha',
        type: 'openai',
        baseUrl: mock.url,
        credentials: { apiKey: 'sk-upstream' },
        // 0.1 USD per token: one answer of 12 tokens costs 1.2 USD
        models: [
          model('alpha-mini', 'lightweight', 100_000, 100_000),
          model('alpha-large', 'flagship', 100_000, 100_000),
        ],
      },
    ],
    policies: [
      {
        name: 'default',
        virtualModels: ['auto'],
        tiers: [{ name: 'lightweight', maxScore: 0.5 }, { name: 'flagship' }],
      },
    ],
    virtualKeys: [
      { name: 'auto-only', key: AUTO_ONLY, allowedModels: ['auto', 'alpha/alpha-large'] },
      { name: 'rated', key: RATED, rpm: 2, tpm: 1000 },
      { name: 'budgeted', key: BUDGETED, budget: { usd: 1, period: 'month' } },
      { name: 'open', key: OPEN },
      { name: 'responses', key: RESPONSES, rpm: 2, tpm: 1000 },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await mock?.close();
});

const sdk = (apiKey: string, maxRetries = 0) => new OpenAI({ baseURL: gw.baseURL, apiKey, maxRetries });
const hi = { model: 'auto', messages: [{ role: 'user' as const, content: 'Hi' }] };

describe('every /v1/* path needs a key', () => {
  it('models, one model, and unknown paths answer 401 without a valid key', async () => {
    await expect(sdk('wrong').models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(sdk('wrong').models.retrieve('auto')).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    for (const path of [
      '/v1/models',
      '/v1/models/auto',
      '/v1/embeddings',
      '/v1/responses',
      '/v1/nothing-here',
      '/models',
    ]) {
      const res = await request(gw.url + path);
      expect(res.statusCode, path).toBe(401);
      expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    }
  });

  it('a valid key on an unknown path gets the 404', async () => {
    const res = await request(gw.url + '/v1/nothing-here', { headers: { authorization: `Bearer ${OPEN}` } });
    expect(res.statusCode).toBe(404);
    await res.body.dump();
  });
});

describe('client.responses: the same keys, model rules and limits as chat', () => {
  const ask = { model: 'auto', input: 'Hi' };

  it('401 without a valid key, 403 for a model the key may not use', async () => {
    await expect(sdk('wrong').responses.create(ask)).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(sdk(AUTO_ONLY).responses.create({ ...ask, model: 'alpha-mini' })).rejects.toBeInstanceOf(
      OpenAI.PermissionDeniedError,
    );
  });

  it('requests and tokens (from the Responses usage) count against the key; the third is a 429', async () => {
    const { response: first } = await sdk(RESPONSES).responses.create(ask).withResponse();
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    const { response: second } = await sdk(RESPONSES).responses.create(ask).withResponse();
    expect(second.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    // the first answer's usage (input_tokens 10 + output_tokens 2) is counted by now
    expect(second.headers.get('x-ratelimit-remaining-tokens')).toBe('988');
    await expect(sdk(RESPONSES).responses.create(ask)).rejects.toBeInstanceOf(OpenAI.RateLimitError);
  });
});

describe('/v1/models shows what the key may use', () => {
  it('a key allowed [auto, alpha/alpha-large] sees exactly those', async () => {
    const ids = [];
    for await (const m of sdk(AUTO_ONLY).models.list()) ids.push(m.id);
    expect(ids.sort()).toEqual(['alpha/alpha-large', 'auto']);
  });

  it('a key without allowedModels sees every model', async () => {
    const ids = [];
    for await (const m of sdk(OPEN).models.list()) ids.push(m.id);
    expect(ids.sort()).toEqual(['alpha-large', 'alpha-mini', 'auto']);
  });

  it('client.models.retrieve: a model the key may use, 404 for one it may not', async () => {
    const auto = await sdk(AUTO_ONLY).models.retrieve('auto');
    expect(auto).toMatchObject({ id: 'auto', object: 'model', owned_by: 'tierflow:default' });
    // the SDK percent-encodes the slash of provider/model
    expect((await sdk(AUTO_ONLY).models.retrieve('alpha/alpha-large')).id).toBe('alpha/alpha-large');
    await expect(sdk(AUTO_ONLY).models.retrieve('alpha-mini')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect((await sdk(OPEN).models.retrieve('alpha-mini')).owned_by).toBe('alpha');
    await expect(sdk(OPEN).models.retrieve('no-such-model')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe('limits in headers', () => {
  it('successful answers carry what is left; the 429 carries Retry-After and the SDK can wait for it', async () => {
    const { response: first } = await sdk(RATED).chat.completions.create(hi).withResponse();
    expect(first.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    expect(first.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    expect(first.headers.get('x-ratelimit-remaining-tokens')).toBe('1000');
    expect(first.headers.get('x-ratelimit-reset-requests')).toMatch(/^(\d+m)?[\d.]+s$/);

    const { response: second } = await sdk(RATED).chat.completions.create(hi).withResponse();
    expect(second.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    // the first answer's 12 tokens are counted by now
    expect(second.headers.get('x-ratelimit-remaining-tokens')).toBe('988');

    const err = await sdk(RATED)
      .chat.completions.create(hi)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const headers = (err as InstanceType<typeof OpenAI.RateLimitError>).headers;
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('rate_limit_exceeded');
    const retryAfter = Number(headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(120);
    expect(Number(headers.get('retry-after-ms'))).toBeLessThanOrEqual(retryAfter * 1000);
    expect(headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(headers.get('x-should-retry')).toBeNull();
  });

  it('a spent budget: 429 budget_exceeded that the SDK does not retry, with the budget left in headers', async () => {
    const { response } = await sdk(BUDGETED).chat.completions.create(hi).withResponse();
    // counted at admission, before this answer's cost (1.2 USD) was known
    expect(response.headers.get('x-tierflow-budget-remaining-usd')).toBe('1.000000');
    const rejectedBefore = await rejected();
    const err = await sdk(BUDGETED, 3)
      .chat.completions.create(hi)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const e = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.code).toBe('budget_exceeded');
    expect(e.headers.get('x-should-retry')).toBe('false');
    expect(e.headers.get('x-tierflow-budget-remaining-usd')).toBe('0.000000');
    expect(Number(e.headers.get('retry-after'))).toBeGreaterThan(0);
    // maxRetries 3, yet one request reached the gateway
    expect((await rejected()) - rejectedBefore).toBe(1);
  });

  it('a key without limits gets no x-ratelimit headers', async () => {
    const { response } = await sdk(OPEN).chat.completions.create(hi).withResponse();
    expect(response.headers.get('x-ratelimit-limit-requests')).toBeNull();
    expect(response.headers.get('x-tierflow-budget-remaining-usd')).toBeNull();
  });
});

async function rejected(): Promise<number> {
  const m = await gw.metrics.registry.getSingleMetric('tierflow_requests_total')!.get();
  return m.values.filter((v) => v.labels.mode === 'rejected').reduce((a, v) => a + v.value, 0);
}
