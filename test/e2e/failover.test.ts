// Failover rules of the attempt engine, end to end: the official openai SDK -> the gateway ->
// two mock OpenAI providers, one of them failing. (test/extproc/failover-e2e.test.ts runs the
// same rules through the Envoy harness.)
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';
import { failoverConfig, KEY_A, KEY_B } from '../helpers/failover.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { createLogger } from '../../src/observe/log.js';
import { UpstreamClient } from '../../src/pipeline/client.js';

let a: MockServer;
let b: MockServer;
let gw: TestGateway;
let sdk: OpenAI;
let logLines: Record<string, unknown>[] = [];

async function restart(failover: object = {}, keys: { a?: string } = {}, client?: UpstreamClient) {
  await gw?.close();
  logLines = [];
  const log = createLogger('debug', {}, (line) => logLines.push(JSON.parse(line) as Record<string, unknown>));
  gw = await startTestGateway(failoverConfig({ a: a.url, b: b.url }, failover, keys), {
    log,
    ...(client ? { gateway: { client } } : {}),
  });
  sdk = new OpenAI({ baseURL: gw.baseURL, apiKey: 'client-key-never-forwarded', maxRetries: 0 });
}

const user = (content: string) => [{ role: 'user' as const, content }];
const always = () => true;

beforeAll(async () => {
  a = await startOpenAIMock({ apiKey: KEY_A });
  b = await startOpenAIMock({ apiKey: KEY_B });
  await restart();
});
afterEach(async () => {
  a.reset();
  b.reset();
  await restart();
});
afterAll(async () => {
  await gw.close();
  await a.close();
  await b.close();
});

async function metricValue(name: string, labels: string): Promise<number | undefined> {
  const text = await gw.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').at(-1)) : undefined;
}

describe('a provider-wide failure sends the next attempt to another provider', () => {
  for (const [what, fault] of [
    ['500 to everything', { kind: 'status', status: 500 }],
    ['a reset', { kind: 'reset' }],
    ['a hang', { kind: 'stall' }],
  ] as const) {
    it(`${what}: with maxAttempts 2 the healthy provider serves (auto, JSON and stream)`, async () => {
      a.failWhen(always, fault);
      const { data, response } = await sdk.chat.completions
        .create({ model: 'auto', messages: user('hi') })
        .withResponse();
      expect(data.choices[0]!.message.content).toBe('echo: hi');
      expect(response.headers.get('x-tierflow-provider')).toBe('b');
      expect(Number(response.headers.get('x-tierflow-attempts'))).toBeGreaterThan(1);
      const stream = await sdk.chat.completions.create({ model: 'auto', stream: true, messages: user('yo') });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
      expect(text).toBe('echo: yo');
      // One attempt per request on the failing provider, never its second model.
      expect(a.requests.map((r) => r.body.model)).toEqual(['a-mini', 'a-mini']);
    });
  }

  it('a model-specific 5xx still lets the same provider try its other model first', async () => {
    a.failWhen((r) => r.body.model === 'a-mini', {
      kind: 'status',
      status: 503,
      body: { error: { message: 'overloaded', type: 'server_error', code: 'model_overloaded' } },
    });
    const { response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('hi') })
      .withResponse();
    expect(response.headers.get('x-tierflow-provider')).toBe('a');
    expect(response.headers.get('x-tierflow-model')).toBe('shared');
  });
});

describe('a named model gets its policy failover and checks', () => {
  it('a hanging provider fails over within the policy first-byte timeout (JSON and stream)', async () => {
    a.failWhen(always, { kind: 'stall' });
    const { data, response } = await sdk.chat.completions
      .create({ model: 'shared', messages: user('named') })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('echo: named');
    expect(response.headers.get('x-tierflow-provider')).toBe('b');
    const stream = await sdk.chat.completions.create({ model: 'shared', stream: true, messages: user('s') });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe('echo: s');
    const log = logLines.find((l) => l.msg === 'attempt failed');
    expect(log).toMatchObject({ provider: 'a', model: 'shared', outcome: 'timeout' });
    expect(String(log!.cause)).toContain('400 ms');
  });

  it('a prompt beyond the named model context window is a clear 400, nothing is sent', async () => {
    const err = (await sdk.chat.completions
      .create({ model: 'a-small-context', messages: user('word '.repeat(5000)) })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.code).toBe('context_length_exceeded');
    expect(err.message).toContain("'a-small-context'");
    expect(a.requests).toHaveLength(0);
  });

  it('an image to a named model without vision is a clear 400, nothing is sent', async () => {
    const err = (await sdk.chat.completions
      .create({
        model: 'a-small-context',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is this?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            ],
          },
        ],
      })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.code).toBe('unsupported_capability');
    expect(err.message).toContain('vision');
    expect(a.requests).toHaveLength(0);
  });
});

describe("a provider refusing TierFlow's credentials", () => {
  it('leaves rotation, is logged and counted, and never reads as the client key being wrong', async () => {
    await restart({}, { a: 'sk-wrong-key' });
    const { response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('hi') })
      .withResponse();
    expect(response.headers.get('x-tierflow-provider')).toBe('b');
    expect(a.requests).toHaveLength(1);
    // Out of rotation: the next requests do not try it at all.
    await sdk.chat.completions.create({ model: 'auto', messages: user('again') });
    expect(a.requests).toHaveLength(1);
    expect(await metricValue('tierflow_provider_credentials_rejected', 'provider="a"')).toBe(1);
    expect(logLines.some((l) => l.msg === 'provider refused TierFlow credentials: out of rotation')).toBe(
      true,
    );
    // A model only that provider offers: a 503 that names the cause, not an AuthenticationError.
    const err = (await sdk.chat.completions
      .create({ model: 'a-mini', messages: user('only a') })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).not.toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.status).toBe(503);
  });

  it('with no other provider the client gets a 502 provider_auth_failed', async () => {
    await restart({}, { a: 'sk-wrong-key' });
    const err = (await sdk.chat.completions
      .create({ model: 'a-mini', messages: user('only a') })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err.status).toBe(502);
    expect(err.code).toBe('provider_auth_failed');
    expect(err.message).toContain('not a problem with your API key');
    expect(err.message).not.toContain('sk-wrong-key');
  });
});

describe('configurable statuses and same-model 429 retries', () => {
  it('a 409 is the client error by default, and fails over when listed in onStatusCodes', async () => {
    a.failWhen(always, { kind: 'status', status: 409 });
    const err = (await sdk.chat.completions
      .create({ model: 'auto', messages: user('x') })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(409);
    await restart({ onStatusCodes: [409], maxAttempts: 3 });
    a.failWhen(always, { kind: 'status', status: 409 });
    const { response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('x') })
      .withResponse();
    expect(response.headers.get('x-tierflow-provider')).toBe('b');
  });

  it('rateLimitRetries: a 429 is retried on the same model after the backoff before moving on', async () => {
    await restart({ rateLimitRetries: 1, rateLimitBackoffMs: 50 });
    a.failNext({ kind: 'status', status: 429 });
    const { response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('x') })
      .withResponse();
    expect(response.headers.get('x-tierflow-model')).toBe('a-mini');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    expect(a.requests.map((r) => r.body.model)).toEqual(['a-mini', 'a-mini']);
    expect(b.requests).toHaveLength(0);
  });

  it('without rateLimitRetries a 429 moves on to the next candidate', async () => {
    a.failNext({ kind: 'status', status: 429 });
    const { response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('x') })
      .withResponse();
    expect(response.headers.get('x-tierflow-model')).toBe('shared');
  });
});

describe('errors carry their causes', () => {
  it('the final error names every attempt; each failed attempt is logged with its cause', async () => {
    await restart({ maxAttempts: 3 });
    a.failWhen(always, {
      kind: 'status',
      status: 500,
      body: { error: { message: 'boom', type: 'server_error', code: 'internal_failure' } },
    });
    await b.close();
    try {
      const err = (await sdk.chat.completions
        .create({ model: 'auto', messages: user('doomed') })
        .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect(err.message).toContain('a/a-mini: http_5xx, HTTP 500 internal_failure');
      expect(err.message).toMatch(/b\/b-mini: connect_error, ECONNREFUSED/);
      const failed = logLines.filter((l) => l.msg === 'attempt failed');
      expect(failed.map((l) => l.provider)).toEqual(['a', 'b', 'a']);
      expect(String(failed[1]!.cause)).toContain(new URL(b.url).host);
      const summary = logLines.find((l) => l.msg === 'request');
      expect((summary!.attempts as string[]).join(' ')).toContain('ECONNREFUSED');
    } finally {
      b = await startOpenAIMock({ apiKey: KEY_B });
    }
  });
});

describe('an answer larger than a request may hold', () => {
  it('is not kept: the attempt fails over, and with no other candidate the client gets a 502', async () => {
    await restart({ maxAttempts: 4 }, {}, new UpstreamClient({ maxAnswerBytes: 64 * 1024 }));
    try {
      a.setResponse({ content: 'x'.repeat(200 * 1024) });
      const { data, response } = await sdk.chat.completions
        .create({ model: 'auto', messages: user('big') })
        .withResponse();
      expect(response.headers.get('x-tierflow-provider')).toBe('b');
      expect(Number(response.headers.get('x-tierflow-attempts'))).toBeGreaterThan(1);
      expect(data.choices[0]!.message.content).not.toContain('xxxx');
      b.setResponse({ content: 'y'.repeat(200 * 1024) });
      const err = (await sdk.chat.completions
        .create({ model: 'auto', messages: user('big again') })
        .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect(err.status).toBe(502);
      expect(err.code).toBe('invalid_upstream_response');
      expect(err.message).toContain('larger than 65536 bytes, more than TierFlow holds for one request');
    } finally {
      a.reset();
      b.reset();
      await restart();
    }
  });
});
