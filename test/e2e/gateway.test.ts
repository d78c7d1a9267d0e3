// End to end: the official openai SDK -> the TierFlow gateway -> mock OpenAI and Anthropic
// servers speaking their documented wire formats, with injected faults.
import { connect } from 'node:net';
import OpenAI from 'openai';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicMock } from '../mocks/anthropic-mock.js';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';
import { model } from '../helpers/config.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import type { UpstreamClient } from '../../src/pipeline/client.js';

const OPENAI_KEY = 'sk-openai-e2e-secret';
const ANTHROPIC_KEY = 'sk-ant-e2e-secret';

let oa: MockServer;
let an: MockServer;
let gw: TestGateway;
let sdk: OpenAI;

function config(overrides: { breaker?: object; failover?: object; extraModel?: boolean } = {}) {
  return {
    providers: [
      {
        name: 'oa',
        type: 'openai',
        baseUrl: oa.url,
        credentials: { apiKey: '${OA_KEY}' },
        breaker: overrides.breaker,
        models: [
          model('oa-mini', 'lightweight', 0.15, 0.6, { upstreamModel: 'oa-mini-2026' }),
          model('oa-large', 'flagship', 2.5, 10),
          ...(overrides.extraModel ? [model('oa-new', 'lightweight', 0.01, 0.02)] : []),
        ],
      },
      {
        name: 'an',
        type: 'anthropic',
        baseUrl: an.url,
        credentials: { apiKeyEnv: 'AN_KEY' },
        breaker: overrides.breaker,
        models: [model('an-small', 'lightweight', 0.8, 4), model('an-big', 'flagship', 3, 15)],
      },
    ],
    policies: [
      {
        name: 'default',
        virtualModels: ['auto'],
        tiers: [{ name: 'lightweight', maxScore: 0.5 }, { name: 'flagship' }],
        failover: { firstByteTimeoutMs: 1500, deadlineMs: 10_000, ...overrides.failover },
      },
    ],
  };
}

// Routing tests pin the score through a marker in the prompt, so they test routing, not the classifier.
const classify = (req: { messages: { content?: unknown }[] }) => {
  const text = JSON.stringify(req.messages);
  return { score: text.includes('[hard]') ? 0.9 : 0.1, reasons: ['test'] };
};

async function restart(cfg: ReturnType<typeof config>) {
  await gw?.close();
  gw = await startTestGateway(cfg, { env: { OA_KEY: OPENAI_KEY, AN_KEY: ANTHROPIC_KEY }, classify });
  sdk = new OpenAI({ baseURL: gw.baseURL, apiKey: 'client-key-not-forwarded', maxRetries: 0 });
}

beforeAll(async () => {
  oa = await startOpenAIMock({ apiKey: OPENAI_KEY });
  an = await startAnthropicMock({ apiKey: ANTHROPIC_KEY });
  await restart(config());
});
afterEach(() => {
  oa.reset();
  an.reset();
});
afterAll(async () => {
  await gw.close();
  await oa.close();
  await an.close();
});

const user = (content: string) => [{ role: 'user' as const, content }];

describe('chat through the gateway', () => {
  it('routes an easy request to the cheapest lightweight model and says so in headers', async () => {
    const { data, response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('hello there') })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('echo: hello there');
    expect(response.headers.get('x-tierflow-model')).toBe('oa-mini');
    expect(response.headers.get('x-tierflow-provider')).toBe('oa');
    expect(response.headers.get('x-tierflow-tier')).toBe('lightweight');
    expect(response.headers.get('x-tierflow-score')).toBe('0.1000');
    expect(response.headers.get('x-tierflow-attempts')).toBe('1');
    expect(Number(response.headers.get('x-tierflow-cost-usd'))).toBeGreaterThan(0);
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    // What reached the provider: its model id, its key, never the client's key.
    expect(oa.lastRequest!.body.model).toBe('oa-mini-2026');
    expect(oa.lastRequest!.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    expect(JSON.stringify(oa.lastRequest!.headers)).not.toContain('client-key-not-forwarded');
  });

  it('routes a hard request to the flagship tier', async () => {
    const { response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('[hard] prove it') })
      .withResponse();
    expect(response.headers.get('x-tierflow-tier')).toBe('flagship');
    expect(response.headers.get('x-tierflow-model')).toBe('oa-large');
  });

  it('streams, hiding the usage chunk unless asked, and reports usage when asked', async () => {
    const stream = await sdk.chat.completions.create({
      model: 'auto',
      stream: true,
      messages: user('one two three'),
    });
    let text = '';
    let sawUsage = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) sawUsage = true;
    }
    expect(text).toBe('echo: one two three');
    expect(sawUsage).toBe(false);
    expect(oa.lastRequest!.body.stream_options).toEqual({ include_usage: true });

    const withUsage = await sdk.chat.completions.create({
      model: 'auto',
      stream: true,
      stream_options: { include_usage: true },
      messages: user('four'),
    });
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of withUsage) if (chunk.usage) usage = chunk.usage;
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('a streamed response ends with the exact cost in an HTTP trailer', async () => {
    oa.setResponse({ content: 'priced answer', usage: { prompt: 1000, completion: 200 } });
    const res = await request(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'auto', stream: true, messages: user('price me') }),
    });
    expect(res.headers.trailer).toBe('x-tierflow-cost-usd');
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    await res.body.text();
    // oa-mini: 1000 * 0.15 / 1M + 200 * 0.6 / 1M
    expect(Number(res.trailers['x-tierflow-cost-usd'])).toBeCloseTo(0.00015 + 0.00012, 10);
  });

  it('passes tools through and returns tool calls (Anthropic translated)', async () => {
    an.setResponse({ toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: { city: 'Paris' } }] });
    const r = await sdk.chat.completions.create({
      model: 'an-small',
      messages: user('weather in Paris?'),
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            parameters: { type: 'object', properties: { city: { type: 'string' } } },
          },
        },
      ],
    });
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    expect(r.choices[0]!.message.tool_calls?.[0]).toMatchObject({
      type: 'function',
      function: { name: 'get_weather' },
    });
    expect(
      JSON.parse(
        (r.choices[0]!.message.tool_calls![0] as { function: { arguments: string } }).function.arguments,
      ),
    ).toEqual({ city: 'Paris' });
    expect(an.lastRequest!.body.tools[0]).toMatchObject({
      name: 'get_weather',
      input_schema: { type: 'object' },
    });
  });

  it('an explicit model goes to its provider without classification', async () => {
    const { data, response } = await sdk.chat.completions
      .create({ model: 'an-big', messages: user('[hard] hi') })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('echo: [hard] hi');
    expect(response.headers.get('x-tierflow-provider')).toBe('an');
    expect(response.headers.get('x-tierflow-score')).toBe('explicit');
    expect(an.lastRequest!.headers['x-api-key']).toBe(ANTHROPIC_KEY);
    expect(oa.requests).toHaveLength(0);
  });

  it('ignores client-sent x-tierflow-* headers', async () => {
    const { response } = await sdk.chat.completions
      .create(
        { model: 'auto', messages: user('hi') },
        { headers: { 'x-tierflow-model': 'an-big', 'x-tierflow-tier': 'flagship' } },
      )
      .withResponse();
    expect(response.headers.get('x-tierflow-model')).toBe('oa-mini');
    expect(Object.keys(oa.lastRequest!.headers).some((h) => h.startsWith('x-tierflow'))).toBe(false);
  });

  it('lists virtual and configured models', async () => {
    const ids = [];
    for await (const m of sdk.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['auto', 'oa-mini', 'oa-large', 'an-small', 'an-big']));
  });
});

describe('failover', () => {
  it('non-streaming: a 503 moves to the next candidate', async () => {
    oa.failNext({ kind: 'status', status: 503 });
    const { data, response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('x') })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('echo: x');
    expect(response.headers.get('x-tierflow-provider')).toBe('an');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
  });

  it('streaming: a connection reset before headers moves on; the client sees one clean stream', async () => {
    oa.failNext({ kind: 'reset' });
    const stream = await sdk.chat.completions.create({ model: 'auto', stream: true, messages: user('a b') });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe('echo: a b');
    expect(an.requests).toHaveLength(1);
  });

  it('streaming: an error event before the first token fails over to the next candidate', async () => {
    oa.failNext({ kind: 'stream-error', afterEvents: 0 });
    const stream = await sdk.chat.completions.create({ model: 'auto', stream: true, messages: user('z') });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe('echo: z');
    expect(an.requests).toHaveLength(1);
  });

  it('streaming: with no candidate left, an early stream error becomes a clean HTTP error (Anthropic overloaded -> 503)', async () => {
    an.failNext({ kind: 'stream-error', afterEvents: 1, errorType: 'overloaded_error' });
    const err = (await sdk.chat.completions
      .create({ model: 'an-small', stream: true, messages: user('z') })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.status).toBe(503);
    expect(an.requests).toHaveLength(1);
  });

  it('a stall beyond the first-byte timeout fails over', async () => {
    oa.failNext({ kind: 'slow-first-byte', ms: 4000 });
    const t0 = Date.now();
    const { response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('slow') })
      .withResponse();
    expect(response.headers.get('x-tierflow-provider')).toBe('an');
    expect(Date.now() - t0).toBeLessThan(3900);
  });

  it('a client that goes away ends the attempt waiting for its answer at once, counted as neither failure nor success (JSON and stream)', async () => {
    await restart(config({ failover: { firstByteTimeoutMs: 5000, deadlineMs: 10_000 } }));
    try {
      for (const [i, stream] of [false, true].entries()) {
        oa.failNext({ kind: 'stall' });
        const body = JSON.stringify({ model: 'oa-mini', stream, messages: user('gone') });
        const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
        socket.on('error', () => {});
        socket.write(
          `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
            `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
        while (oa.requests.length < i + 1) await new Promise((r) => setTimeout(r, 10));
        const t0 = Date.now();
        socket.destroy();
        const counted = new RegExp(
          `tierflow_upstream_attempts_total\\{provider="oa",model="oa-mini",outcome="client_error"\\} ${i + 1}`,
        );
        let text = '';
        while (!counted.test(text) && Date.now() - t0 < 4000) {
          await new Promise((r) => setTimeout(r, 20));
          text = await (await fetch(`${gw.url}/metrics`)).text();
        }
        expect(text).toMatch(counted);
        // Ended by the client going away, not by the 5 s first-byte timeout.
        expect(Date.now() - t0).toBeLessThan(2000);
        expect(text).not.toMatch(/outcome="(timeout|reset)"\} [1-9]/);
      }
    } finally {
      await restart(config());
    }
  });

  it('the routing deadline ends an attempt still waiting for its answer: 504 deadline_exceeded (JSON and stream)', async () => {
    await restart(config({ failover: { firstByteTimeoutMs: 5000, deadlineMs: 400 } }));
    try {
      for (const stream of [false, true]) {
        oa.failNext({ kind: 'slow-first-byte', ms: 3000 });
        const t0 = Date.now();
        const res = await request(`${gw.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'oa-mini', stream, messages: user('late') }),
        });
        const body = (await res.body.json()) as { error: { code: string } };
        expect(res.statusCode).toBe(504);
        expect(body.error.code).toBe('deadline_exceeded');
        expect(res.headers['x-tierflow-attempts']).toBe('1');
        expect(Date.now() - t0).toBeLessThan(2500);
      }
      // Counted as the provider's timeout (what breakers and health see), not as a reset.
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      expect(text).toMatch(
        /tierflow_upstream_attempts_total\{provider="oa",model="oa-mini",outcome="timeout"\} 2/,
      );
      expect(text).not.toMatch(/outcome="reset"\} [1-9]/);
    } finally {
      await restart(config());
    }
  });

  it('429 with Retry-After: next candidate serves; the limited model sits out the wait', async () => {
    oa.failNext({ kind: 'status', status: 429, retryAfter: 30 });
    const first = await sdk.chat.completions.create({ model: 'auto', messages: user('a') }).withResponse();
    expect(first.response.headers.get('x-tierflow-provider')).toBe('an');
    const before = oa.requests.length;
    const second = await sdk.chat.completions.create({ model: 'auto', messages: user('b') }).withResponse();
    expect(second.response.headers.get('x-tierflow-model')).toBe('an-small');
    expect(oa.requests.filter((r) => r.body?.model === 'oa-mini-2026')).toHaveLength(before);
  });

  it('no failover on a 400: the provider error reaches the client as is', async () => {
    oa.failNext({ kind: 'status', status: 400 });
    const err = await sdk.chat.completions
      .create({ model: 'oa-large', messages: user('bad') })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(an.requests).toHaveLength(0);
  });

  it("a request the provider's translator refuses is the client's 400, not a 500", async () => {
    const err = (await sdk.chat.completions
      .create({ model: 'an-small', n: 2, messages: user('two answers please') })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.message).toMatch(/\bn\b/);
    expect(an.requests).toHaveLength(0);
  });

  it('a candidate whose translator refuses the request is skipped for the next one', async () => {
    const cfg = config();
    cfg.providers[0]!.models.push(model('an-small', 'lightweight', 5, 20)); // dearer: ranked second
    await restart(cfg);
    const { response } = await sdk.chat.completions
      .create({ model: 'an-small', n: 2, messages: user('two answers please') })
      .withResponse();
    expect(response.headers.get('x-tierflow-provider')).toBe('oa');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    expect(an.requests).toHaveLength(0);
    await restart(config());
  });

  it('when every candidate fails, the last error is returned with its status', async () => {
    oa.failNext({ kind: 'status', status: 500, times: 5 });
    an.failNext({ kind: 'status', status: 529, times: 5 });
    const err = (await sdk.chat.completions
      .create({ model: 'auto', messages: user('doomed') })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.status).toBeGreaterThanOrEqual(500);
    expect(err.headers?.get('x-tierflow-attempts')).toBe('3');
  });
});

describe('circuit breaker', () => {
  it('opens after failures (the model is skipped), probes after the reset timeout, closes on success', async () => {
    await restart(
      config({ breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 500 } }),
    );
    oa.failNext({ kind: 'status', status: 500, times: 2 });
    for (let i = 0; i < 2; i++) await sdk.chat.completions.create({ model: 'auto', messages: user('x') });
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(
      /tierflow_circuit_breaker_state\{provider="oa",model="oa-mini",tier="lightweight"\} 2/,
    );
    const seen = oa.requests.length;
    const skipped = await sdk.chat.completions.create({ model: 'auto', messages: user('y') }).withResponse();
    expect(skipped.response.headers.get('x-tierflow-model')).toBe('an-small');
    expect(skipped.response.headers.get('x-tierflow-attempts')).toBe('1');
    expect(oa.requests.length).toBe(seen);
    await new Promise((r) => setTimeout(r, 600));
    const probe = await sdk.chat.completions.create({ model: 'auto', messages: user('z') }).withResponse();
    expect(probe.response.headers.get('x-tierflow-model')).toBe('oa-mini');
    const after = await (await fetch(`${gw.url}/metrics`)).text();
    expect(after).toMatch(
      /tierflow_circuit_breaker_state\{provider="oa",model="oa-mini",tier="lightweight"\} 0/,
    );
    await restart(config());
  });
});

describe('hot reload', () => {
  it('applies a good edit and keeps the last good config on a bad one', async () => {
    gw.writeConfig(config({ extraModel: true }));
    await waitFor(
      async () =>
        (
          await sdk.chat.completions.create({ model: 'auto', messages: user('x') }).withResponse()
        ).response.headers.get('x-tierflow-model') === 'oa-new',
    );
    gw.writeConfig('providers: [ {name: broken');
    await new Promise((r) => setTimeout(r, 400));
    const { response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('x') })
      .withResponse();
    expect(response.headers.get('x-tierflow-model')).toBe('oa-new');
    gw.writeConfig(config());
    await waitFor(
      async () =>
        (
          await sdk.chat.completions.create({ model: 'auto', messages: user('x') }).withResponse()
        ).response.headers.get('x-tierflow-model') === 'oa-mini',
    );
  });
});

describe('bad input', () => {
  it('a bug on the request path is a 500 internal_error naming the request, not a dropped connection', async () => {
    const buggy = {
      exchange: () => {
        throw new Error('client bug');
      },
      close: async () => {},
    } as unknown as UpstreamClient;
    const broken = await startTestGateway(config(), {
      env: { OA_KEY: OPENAI_KEY, AN_KEY: ANTHROPIC_KEY },
      classify,
      gateway: { client: buggy },
    });
    try {
      const res = await request(`${broken.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'auto', messages: user('boom') }),
      });
      const body = (await res.body.json()) as { error: { code: string; message: string } };
      expect(res.statusCode).toBe(500);
      expect(body.error.code).toBe('internal_error');
      const id = res.headers['x-request-id'] as string;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(body.error.message).toContain(id);
    } finally {
      await broken.close();
    }
  });

  const post = (body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
    });

  it.each([
    ['{"model":"auto","messages":[', 400, 'invalid_json'],
    ['{"model":"auto"}', 400, 'missing_required_parameter'],
    ['{"model":"auto","messages":[{"role":"user","content":7}]}', 400, 'invalid_type'],
    ['{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}', 404, 'model_not_found'],
  ])('%s -> %i', async (body, status, code) => {
    const res = await post(body);
    expect(res.status).toBe(status);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const json = (await res.json()) as { error: { code: string; type: string; message: string } };
    expect(json.error.code).toBe(code);
    expect(json.error.message.length).toBeGreaterThan(10);
    expect(oa.requests).toHaveLength(0);
  });

  it('413 over the body limit', async () => {
    const res = await post(Buffer.alloc(33 * 1024 * 1024, 32));
    expect(res.status).toBe(413);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('request_too_large');
  });

  it('the SDK surfaces errors as its typed exceptions', async () => {
    const err = await sdk.chat.completions
      .create({ model: 'nope', messages: user('x') })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('unknown paths and methods get OpenAI-style errors', async () => {
    expect((await fetch(`${gw.url}/v1/audio/speech`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await fetch(`${gw.url}/v1/embeddings`)).status).toBe(405);
    expect((await fetch(`${gw.baseURL}/chat/completions`)).status).toBe(405);
  });
});

describe('metrics', () => {
  it('counts requests, tokens and cost, and never exposes keys', async () => {
    await sdk.chat.completions.create({ model: 'auto', messages: user('count me') });
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text).toMatch(
      /tierflow_requests_total\{mode="auto",policy="default",tier="lightweight",provider="oa",model="oa-mini",status_class="2xx"\} \d+/,
    );
    expect(text).toMatch(/tierflow_tokens_total\{provider="oa",model="oa-mini",kind="output"\} \d+/);
    expect(text).toMatch(
      /tierflow_cost_usd_total\{provider="oa",model="oa-mini",tier="lightweight"\} [0-9.e-]+/,
    );
    expect(text).toMatch(/tierflow_saved_usd_total\{policy="default"\} [0-9.e-]+/);
    expect(text).toMatch(/tierflow_decision_seconds_count \d+/);
    expect(text).not.toContain(OPENAI_KEY);
    expect(text).not.toContain(ANTHROPIC_KEY);
  });
});

describe('graceful shutdown', () => {
  it('lets an open stream finish and refuses new connections', async () => {
    oa.setResponse({ content: 'a b c d e f' });
    oa.failNext({ kind: 'cadence', ms: 60 });
    const stream = await sdk.chat.completions.create({
      model: 'auto',
      stream: true,
      messages: user('slow stream'),
    });
    const closing = gw.close(5000);
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    await closing;
    expect(text).toBe('a b c d e f');
    await expect(fetch(`${gw.url}/healthz`)).rejects.toThrow();
    await restart(config());
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition not reached in time');
}
