// End to end through the sidecar: the official openai SDK -> the Envoy harness (configured from
// the bootstrap we ship) -> TierFlow's ext_proc server -> mock OpenAI and Anthropic providers.
import { request } from 'node:http';
import { createServer } from 'node:net';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { envoyBootstrap } from '../../src/extproc/envoy-config.js';
import { sidecarProcessor } from '../../src/extproc/processor.js';
import { ExtProcServer } from '../../src/extproc/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import type { AttemptDeps } from '../../src/pipeline/send.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import { compile, model, sampleFile } from '../helpers/config.js';
import { startAnthropicMock } from '../mocks/anthropic-mock.js';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';
import { EnvoyHarness, harnessOptionsFromBootstrap } from './envoy-harness.js';
import { tempSocket } from './helpers.js';

let alpha: MockServer;
let beta: MockServer;
let router: Router;
let deps: AttemptDeps;
let metrics: Metrics;
let server: ExtProcServer;
let harness: EnvoyHarness;
let client: OpenAI;
let upstream: UpstreamClient;
let base: string;
let deadPort: number;

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function config(alphaUrl = alpha.url) {
  return compile(sampleFile({ alpha: alphaUrl, beta: beta.url }));
}

beforeAll(async () => {
  alpha = await startOpenAIMock({ apiKey: 'sk-alpha-secret' });
  beta = await startAnthropicMock({ apiKey: 'sk-beta-secret' });
  deadPort = await closedPort();
  metrics = new Metrics({ defaultMetrics: false });
  router = new Router({ config: config(), health: new HealthRegistry() });
  upstream = new UpstreamClient();
  const socketPath = tempSocket();
  deps = { router, metrics, log: silentLogger, client: upstream };
  server = new ExtProcServer({ processor: sidecarProcessor(deps), socketPath });
  await server.start();
  const bootstrap = envoyBootstrap({ extProcSocket: socketPath });
  harness = new EnvoyHarness({
    ...harnessOptionsFromBootstrap(bootstrap, `unix:${socketPath}`),
    // Envoy cuts upstream bytes wherever the network does: never at SSE event boundaries.
    rechunk: (c) => (c.length > 7 ? [c.subarray(0, 5), c.subarray(5, 6), c.subarray(6)] : [c]),
  });
  base = await harness.listen();
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-client-dummy', maxRetries: 0 });
});

afterAll(async () => {
  await harness?.close();
  await server?.shutdown(1000);
  await upstream?.close();
  router?.health.close();
  await alpha?.close();
  await beta?.close();
});

beforeEach(() => {
  // Fresh breakers and latency stats per test: one test's injected failures must not open
  // another's breakers.
  router.health.close();
  router = new Router({ config: config(), health: new HealthRegistry() });
  deps.router = router;
});

afterEach(() => {
  // Every request of every test obeyed the protocol rules Envoy enforces.
  expect(harness.violations).toEqual([]);
  expect(harness.grpcErrors).toEqual([]);
  alpha.reset();
  beta.reset();
});

const hello = [{ role: 'user' as const, content: 'Say hello.' }];

describe('sidecar end to end (openai SDK -> Envoy harness -> TierFlow -> providers)', () => {
  it('non-streaming auto request to the OpenAI provider, with x-tierflow-* headers and provider auth', async () => {
    const { data, response } = await client.chat.completions
      .create(
        { model: 'auto', messages: hello },
        { headers: { 'x-tierflow-model': 'evil', 'x-tierflow-cluster': 'plain' } },
      )
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('echo: Say hello.');
    expect(response.headers.get('x-tierflow-model')).toBe('alpha-mini');
    expect(response.headers.get('x-tierflow-provider')).toBe('alpha');
    expect(response.headers.get('x-tierflow-tier')).toBe('lightweight');
    expect(response.headers.get('x-tierflow-attempts')).toBe('1');
    expect(Number(response.headers.get('x-tierflow-cost-usd'))).toBeGreaterThan(0);
    expect(response.headers.get('x-tierflow-score')).toMatch(/^\d\.\d{4}$/);
    const seen = alpha.lastRequest!;
    expect(seen.headers.authorization).toBe('Bearer sk-alpha-secret');
    expect(Object.keys(seen.headers).filter((k) => k.startsWith('x-tierflow-'))).toEqual([]);
    expect(seen.body.model).toBe('alpha-mini');
    const log = harness.accessLog.at(-1)!;
    expect(log.metadata.tierflow).toMatchObject({ model: 'alpha-mini', provider: 'alpha', attempts: 1 });
    expect(log.messagesSent).toBe(4); // all four phases
  });

  it('translates to and from Anthropic, non-streaming and streaming, with usage', async () => {
    beta.setResponse({ content: 'Bonjour from Claude', usage: { prompt: 11, completion: 4 } });
    const r = await client.chat.completions.create({ model: 'beta-small', messages: hello, max_tokens: 50 });
    expect(r.choices[0]!.message.content).toBe('Bonjour from Claude');
    expect(r.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 4 });
    expect(beta.lastRequest!.headers['x-api-key']).toBe('sk-beta-secret');
    expect(beta.lastRequest!.headers.authorization).toBeUndefined();
    expect(beta.lastRequest!.path).toBe('/v1/messages');

    const stream = await client.chat.completions.create({
      model: 'beta-small',
      messages: hello,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Bonjour from Claude');
    expect(usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 4 });
    const log = harness.accessLog.at(-1)!;
    expect(log.metadata.tierflow).toMatchObject({ provider: 'beta', completion_tokens: 4 });
  });

  it('streams from the OpenAI provider chunk by chunk', async () => {
    alpha.setResponse({ content: 'one two three four five' });
    const stream = await client.chat.completions.create({
      model: 'alpha-mini',
      messages: hello,
      stream: true,
    });
    const parts: string[] = [];
    for await (const chunk of stream) parts.push(chunk.choices[0]?.delta?.content ?? '');
    expect(parts.join('')).toBe('one two three four five');
    expect(parts.filter(Boolean).length).toBeGreaterThan(3);
    // the client did not ask for usage: the injected usage chunk is not shown to it
    expect(alpha.lastRequest!.body.stream_options).toEqual({ include_usage: true });
  });

  it('fails over on a 503 before anything reached the client (immediate_response from the next candidate)', async () => {
    alpha.failNext({ kind: 'status', status: 503 });
    beta.setResponse({ content: 'from the fallback' });
    const { data, response } = await client.chat.completions
      .create({ model: 'auto', messages: hello })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('from the fallback');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    expect(response.headers.get('x-tierflow-provider')).toBe('beta');
    const fails = await metrics.failovers.get();
    expect(fails.values.some((v) => v.labels.provider === 'alpha' && v.labels.reason === 'http_5xx')).toBe(
      true,
    );
    const attempts = await metrics.attempts.get();
    expect(attempts.values.some((v) => v.labels.provider === 'beta' && v.labels.outcome === 'success')).toBe(
      true,
    );
  });

  it('fails over a streaming request on 429: the whole SSE stream arrives in one immediate_response', async () => {
    alpha.failNext({ kind: 'status', status: 429, retryAfter: 0 });
    beta.setResponse({ content: 'streamed fallback answer' });
    const stream = await client.chat.completions.create({ model: 'auto', messages: hello, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe('streamed fallback answer');
    expect(harness.accessLog.at(-1)!.status).toBe(200);
  });

  it("fails over on Envoy's own 503 when the provider cannot be reached", async () => {
    router.setConfig(config(`http://127.0.0.1:${deadPort}/v1`));
    beta.setResponse({ content: 'reachable one' });
    const { data, response } = await client.chat.completions
      .create({ model: 'auto', messages: hello })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('reachable one');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    expect(harness.accessLog.at(-1)!.flags).toContain('UF');
    const attempts = await metrics.attempts.get();
    expect(
      attempts.values.some((v) => v.labels.provider === 'alpha' && v.labels.outcome === 'connect_error'),
    ).toBe(true);
  });

  it('answers with the last error when every candidate fails, and does not retry a 400', async () => {
    alpha.failNext({ kind: 'status', status: 500, times: 5 });
    beta.failNext({ kind: 'status', status: 529, times: 5 });
    await expect(client.chat.completions.create({ model: 'auto', messages: hello })).rejects.toMatchObject({
      status: expect.any(Number),
    });
    const status = harness.accessLog.at(-1)!.status;
    expect(status).toBeGreaterThanOrEqual(500);

    alpha.reset();
    const before = alpha.requests.length;
    alpha.failNext({ kind: 'status', status: 400 });
    const err = await client.chat.completions
      .create({ model: 'alpha-mini', messages: hello })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({
      type: expect.any(String),
    });
    expect(alpha.requests.length - before).toBe(1);
  });

  it('answers bad input locally with an OpenAI-style 4xx and never calls a provider', async () => {
    const before = alpha.requests.length + beta.requests.length;
    const bad = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":"auto",',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    await expect(client.chat.completions.create({ model: 'auto', messages: [] })).rejects.toBeInstanceOf(
      OpenAI.BadRequestError,
    );
    await expect(
      client.chat.completions.create({ model: 'no-such-model', messages: hello }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const get = await fetch(`${base}/v1/chat/completions`);
    expect(get.status).toBe(405);
    const empty = await fetch(`${base}/v1/chat/completions`, { method: 'POST' });
    expect(empty.status).toBe(400);
    expect(alpha.requests.length + beta.requests.length).toBe(before);
  });

  it('lists models locally and passes other OpenAI paths to the provider with its key', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(
      expect.arrayContaining(['auto', 'alpha-mini', 'beta-small']),
    );
    const res = await fetch(`${base}/v1/moderations`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer sk-client-dummy',
        'x-tierflow-x': '1',
      },
      body: JSON.stringify({ model: 'alpha-mini', input: 'hi' }),
    });
    expect(res.headers.get('x-tierflow-provider')).toBe('alpha');
    const seen = alpha.lastRequest!;
    expect(seen.path).toBe('/v1/moderations');
    expect(seen.method).toBe('POST');
    expect(seen.headers.authorization).toBe('Bearer sk-alpha-secret');
    expect(seen.headers['x-tierflow-x']).toBeUndefined();
    expect(seen.body).toEqual({ model: 'alpha-mini', input: 'hi' });
    const unknown = await fetch(`${base}/healthz`);
    expect(unknown.status).toBe(404);
  });

  it('never lets a pass-through path leave the provider base path (normalised, allow-listed)', async () => {
    const before = alpha.requests.length;
    const raw = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const u = new URL(base);
        const r = request(
          {
            host: u.hostname,
            port: u.port,
            path,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
          },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        r.on('error', reject);
        r.end('{"model":"alpha-mini","input":"x"}');
      });
    for (const path of [
      '/v1/../../etc/passwd',
      '/v1/embeddings/../../../etc/passwd',
      '/v1/%2e%2e/%2E%2E/etc/passwd',
      '/v1/files%2F..%2F..%2Fadmin',
      '/v1/files/..%5c..%5cadmin',
      '/v1/internal/admin',
      '/v1/embeddings/.hidden',
    ]) {
      const res = await raw(path);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
    }
    expect(alpha.requests.length).toBe(before);
    // Repeated slashes are merged into an allowed path, which then passes under the base path.
    await raw('/v1//moderations');
    expect(alpha.requests.length).toBe(before + 1);
    expect(alpha.lastRequest!.path).toBe('/v1/moderations');
  });

  it('keeps per-request state per stream even when clients repeat x-request-id', async () => {
    alpha.setResponse((req) => ({
      content: `answer to ${JSON.stringify(req.body.messages.at(-1).content)}`,
    }));
    const ask = (q: string) =>
      client.chat.completions.create(
        { model: 'alpha-mini', messages: [{ role: 'user', content: q }] },
        { headers: { 'x-request-id': 'same-id' } },
      );
    const [a, b] = await Promise.all([ask('first'), ask('second')]);
    expect(a.choices[0]!.message.content).toBe('answer to "first"');
    expect(b.choices[0]!.message.content).toBe('answer to "second"');
  });

  it('translates an Anthropic 400 into an OpenAI-style error without failover', async () => {
    const before = beta.requests.length;
    beta.failNext({ kind: 'status', status: 400 });
    const err = (await client.chat.completions
      .create({ model: 'beta-small', messages: hello })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.error).toMatchObject({ message: expect.any(String), type: expect.any(String) });
    expect(beta.requests.length - before).toBe(1);
    expect(err.headers?.get('x-tierflow-provider')).toBe('beta');
  });

  it("a request a provider's translator refuses goes to the next candidate, or is the client's 400", async () => {
    // beta-small (Anthropic) alone: Anthropic has no `n`, so the answer is a 400, never a 500.
    const err = (await client.chat.completions
      .create({ model: 'beta-small', n: 2, messages: hello })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(beta.requests).toHaveLength(0);
    // The same model offered by the OpenAI provider too (dearer, so second): it serves.
    const file = sampleFile({ alpha: alpha.url, beta: beta.url });
    file.providers[0]!.models.push(model('beta-small', 'lightweight', 5, 20));
    router.setConfig(compile(file));
    const { response } = await client.chat.completions
      .create({ model: 'beta-small', n: 2, messages: hello })
      .withResponse();
    expect(response.headers.get('x-tierflow-provider')).toBe('alpha');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    expect(beta.requests).toHaveLength(0);
  });

  it('ends a stream that breaks mid-way with an error event, never switching provider after bytes went out', async () => {
    beta.setResponse({ content: 'one two three four five six' });
    beta.failNext({ kind: 'stream-error', afterEvents: 4 });
    const alphaBefore = alpha.requests.length;
    const stream = await client.chat.completions.create({
      model: 'beta-small',
      messages: hello,
      stream: true,
    });
    let text = '';
    const err = await (async () => {
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(alpha.requests.length).toBe(alphaBefore);
    const attempts = await metrics.attempts.get();
    expect(
      attempts.values.some((v) => v.labels.provider === 'beta' && v.labels.outcome === 'stream_error'),
    ).toBe(true);
    void text;
  });

  it('asks Envoy for more time (override_message_timeout) while a slow fallback answers', async () => {
    const socketPath = tempSocket();
    const slowServer = new ExtProcServer({
      processor: sidecarProcessor(deps, { maxMessageTimeoutMs: 10_000 }),
      socketPath,
    });
    await slowServer.start();
    const opts = harnessOptionsFromBootstrap(
      envoyBootstrap({ extProcSocket: socketPath, messageTimeoutMs: 300, maxMessageTimeoutMs: 10_000 }),
      `unix:${socketPath}`,
    );
    const h = new EnvoyHarness(opts);
    const hb = await h.listen();
    try {
      alpha.failNext({ kind: 'status', status: 503 });
      beta.failNext({ kind: 'delay', ms: 800 });
      beta.setResponse({ content: 'slow but fine' });
      const c = new OpenAI({ baseURL: `${hb}/v1`, apiKey: 'x', maxRetries: 0 });
      const r = await c.chat.completions.create({ model: 'auto', messages: hello });
      expect(r.choices[0]!.message.content).toBe('slow but fine');
      expect(h.violations).toEqual([]);
    } finally {
      await h.close();
      await slowServer.shutdown(500);
    }
  });

  it('requires a virtual key when the config has virtual keys', async () => {
    const file = sampleFile({ alpha: alpha.url, beta: beta.url }) as unknown as Record<string, unknown>;
    file.virtualKeys = [{ name: 'app', key: 'tf-app-key' }];
    router.setConfig(compile(file));
    await expect(client.chat.completions.create({ model: 'auto', messages: hello })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    const ok = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'tf-app-key', maxRetries: 0 });
    const r = await ok.chat.completions.create({ model: 'auto', messages: hello });
    expect(r.choices[0]!.message.content).toBe('echo: Say hello.');
    // the virtual key never reaches the provider
    expect(alpha.lastRequest!.headers.authorization).toBe('Bearer sk-alpha-secret');
  });

  it('with virtual keys: models shows what the key may use; limits in x-ratelimit-* headers, Retry-After on the 429', async () => {
    const file = sampleFile({ alpha: alpha.url, beta: beta.url }) as unknown as Record<string, unknown>;
    file.virtualKeys = [{ name: 'app', key: 'tf-app-key', allowedModels: ['auto', 'alpha-mini'], rpm: 2 }];
    router.setConfig(compile(file));
    await expect(client.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(client.models.retrieve('auto')).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const app = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'tf-app-key', maxRetries: 0 });
    expect((await app.models.list()).data.map((m) => m.id).sort()).toEqual(['alpha-mini', 'auto']);
    expect((await app.models.retrieve('alpha-mini')).owned_by).toBe('alpha');
    await expect(app.models.retrieve('beta-small')).rejects.toBeInstanceOf(OpenAI.NotFoundError);

    const { response } = await app.chat.completions.create({ model: 'auto', messages: hello }).withResponse();
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    const stream = await app.chat.completions
      .create({ model: 'alpha-mini', messages: hello, stream: true })
      .withResponse();
    expect(stream.response.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    for await (const _ of stream.data) void _;
    const err = await app.chat.completions.create({ model: 'auto', messages: hello }).then(
      () => undefined,
      (e: unknown) => e as InstanceType<typeof OpenAI.RateLimitError>,
    );
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(Number(err!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(err!.headers.get('x-ratelimit-remaining-requests')).toBe('0');
  });

  it('passed-through requests count against the key: rpm, then a spent budget refuses them', async () => {
    const file = sampleFile({ alpha: alpha.url, beta: beta.url }) as unknown as Record<string, unknown>;
    file.virtualKeys = [
      { name: 'rated', key: 'tf-rated-key', rpm: 2 },
      { name: 'spender', key: 'tf-spender-key', budget: { usd: 0.000001, period: 'day' } },
    ];
    router.setConfig(compile(file));
    const moderate = (key: string) =>
      fetch(`${base}/v1/moderations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'alpha-mini', input: 'hi' }),
      });
    const before = alpha.requests.length;
    const rated = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'tf-rated-key', maxRetries: 0 });
    await rated.chat.completions.create({ model: 'alpha-mini', messages: hello });
    const second = await moderate('tf-rated-key');
    expect(second.headers.get('x-tierflow-provider')).toBe('alpha');
    expect(second.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(second.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const third = await moderate('tf-rated-key');
    expect(third.status).toBe(429);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // The refused one never reached the provider; the pass-through also counts for routed requests.
    expect(alpha.requests.length).toBe(before + 2);
    await expect(
      rated.chat.completions.create({ model: 'alpha-mini', messages: hello }),
    ).rejects.toBeInstanceOf(OpenAI.RateLimitError);

    const spender = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'tf-spender-key', maxRetries: 0 });
    await spender.chat.completions.create({ model: 'alpha-mini', messages: hello });
    expect(router.keyUsage().find((k) => k.name === 'spender')!.spentUsd).toBeGreaterThan(0.000001);
    const broke = await moderate('tf-spender-key');
    expect(broke.status).toBe(429);
    expect(((await broke.json()) as { error: { code: string } }).error.code).toBe('budget_exceeded');
    expect(alpha.requests.length).toBe(before + 3);
  });

  it('cleans up when the client goes away mid-stream', async () => {
    const clientErrors = async () =>
      (await metrics.attempts.get()).values.find(
        (v) => v.labels.provider === 'alpha' && v.labels.outcome === 'client_error',
      )?.value ?? 0;
    const before = await clientErrors();
    alpha.setResponse({ content: 'a b c d e f g h i j k l m n o p' });
    alpha.failNext({ kind: 'cadence', ms: 30 });
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'alpha-mini', messages: hello, stream: true },
      { signal: ac.signal },
    );
    let n = 0;
    await (async () => {
      for await (const c of stream) {
        if (c.choices[0]?.delta?.content && ++n === 2) ac.abort();
      }
    })().catch(() => {});
    for (let i = 0; i < 100 && server.activeStreams > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(server.activeStreams).toBe(0);
    expect(await clientErrors()).toBe(before + 1);
  });

  it('serves 500 concurrent streams', async () => {
    alpha.setResponse({ content: 'a b c d e f g h' });
    const one = async () => {
      const s = await client.chat.completions.create({ model: 'alpha-mini', messages: hello, stream: true });
      let t = '';
      for await (const c of s) t += c.choices[0]?.delta?.content ?? '';
      return t;
    };
    const results = await Promise.all(Array.from({ length: 500 }, one));
    expect(results.every((t) => t === 'a b c d e f g h')).toBe(true);
    // every ext_proc stream is closed shortly after its response (none leaks)
    for (let i = 0; i < 100 && server.activeStreams > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(server.activeStreams).toBe(0);
  }, 60_000);
});

describe('sidecar conversation stickiness', () => {
  it('keeps the short follow-up of a flagship conversation on the flagship tier', async () => {
    const file = sampleFile({ alpha: alpha.url, beta: beta.url });
    file.policies[0]!.stickiness = { mode: 'tier' };
    router = new Router({
      config: compile(file),
      health: new HealthRegistry(),
      // the score of the newest message only, as for a real short follow-up
      classify: (req) => ({
        score: JSON.stringify(req.messages[req.messages.length - 1]).includes('[hard]') ? 0.9 : 0.1,
        reasons: ['test'],
      }),
    });
    deps.router = router;
    const history: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'Prove that there are infinitely many primes. [hard]' },
    ];
    const first = await client.chat.completions.create({ model: 'auto', messages: history }).withResponse();
    expect(first.response.headers.get('x-tierflow-tier')).toBe('flagship');
    history.push(
      { role: 'assistant', content: first.data.choices[0]!.message.content ?? '' },
      { role: 'user', content: 'Shorter please.' },
    );
    const second = await client.chat.completions.create({ model: 'auto', messages: history }).withResponse();
    expect(second.response.headers.get('x-tierflow-tier')).toBe('flagship');
    expect(second.response.headers.get('x-tierflow-sticky')).toBe('tier');
    expect(alpha.lastRequest!.body).toMatchObject({ model: 'alpha-large' });
  });
});
