// The attempt engine's failover rules through the sidecar: the official openai SDK -> the Envoy
// harness (from the shipped bootstrap) -> TierFlow's ext_proc server -> two mock providers, the
// first failing. Envoy makes the first attempt; TierFlow makes the others.
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { silentLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import { compile } from '../helpers/config.js';
import { failoverConfig, KEY_A, KEY_B } from '../helpers/failover.js';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';
import { type SidecarUnderTest, startSidecar } from './sidecar.js';

let a: MockServer;
let b: MockServer;
let router: Router;
let metrics: Metrics;
let sidecar: SidecarUnderTest;
let sdk: OpenAI;
let upstream: UpstreamClient;

const user = (content: string) => [{ role: 'user' as const, content }];
const always = () => true;

function configure(failover: object = {}, keys: { a?: string } = {}) {
  router.setConfig(compile(failoverConfig({ a: a.url, b: b.url }, failover, keys)));
}

beforeAll(async () => {
  a = await startOpenAIMock({ apiKey: KEY_A });
  b = await startOpenAIMock({ apiKey: KEY_B });
  metrics = new Metrics({ defaultMetrics: false });
  router = new Router({
    config: compile(failoverConfig({ a: a.url, b: b.url })),
    health: new HealthRegistry(undefined, metrics.healthEvents()),
  });
  upstream = new UpstreamClient();
  sidecar = await startSidecar({ router, metrics, log: silentLogger, client: upstream });
  sdk = new OpenAI({ baseURL: `${sidecar.url}/v1`, apiKey: 'client-key', maxRetries: 0 });
});
afterEach(() => {
  a.reset();
  b.reset();
  router.health.close();
  configure();
});
afterAll(async () => {
  await sidecar?.close();
  await upstream?.close();
  router?.health.close();
  await a?.close();
  await b?.close();
});

describe('sidecar failover', () => {
  it("a stalled first attempt ends at the policy's first-byte timeout (Envoy per-try timeout), JSON and stream", async () => {
    a.failWhen(always, { kind: 'stall' });
    const { data, response } = await sdk.chat.completions
      .create({ model: 'shared', messages: user('named') })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('echo: named');
    expect(response.headers.get('x-tierflow-provider')).toBe('b');
    const stream = await sdk.chat.completions.create({ model: 'auto', stream: true, messages: user('s') });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe('echo: s');
    // Envoy's router timed the first attempt out (flag UT); the header never reached the provider.
    expect(sidecar.harness.accessLog.filter((l) => l.flags.includes('UT'))).toHaveLength(2);
    expect(a.requests.every((r) => r.headers['x-envoy-upstream-rq-per-try-timeout-ms'] === undefined)).toBe(
      true,
    );
    expect(a.requests.map((r) => r.body.model)).toEqual(['shared', 'a-mini']);
  });

  it('the per-try timeout does not cut a stream that started and then runs longer', async () => {
    a.failNext({ kind: 'cadence', ms: 150 });
    const stream = await sdk.chat.completions.create({
      model: 'auto',
      stream: true,
      messages: user('a fairly long answer with many words to stream slowly'),
    });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe('echo: a fairly long answer with many words to stream slowly');
    expect(b.requests).toHaveLength(0);
  });

  it('after a provider-wide 500 the next attempt goes to the other provider', async () => {
    a.failWhen(always, { kind: 'status', status: 500 });
    const { response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('hi') })
      .withResponse();
    expect(response.headers.get('x-tierflow-provider')).toBe('b');
    expect(response.headers.get('x-tierflow-attempts')).toBe('2');
    expect(a.requests).toHaveLength(1);
  });

  it("a provider refusing TierFlow's key: out of rotation, the client is served or told it is not its key", async () => {
    configure({}, { a: 'sk-wrong-key' });
    const { response } = await sdk.chat.completions
      .create({ model: 'auto', messages: user('hi') })
      .withResponse();
    expect(response.headers.get('x-tierflow-provider')).toBe('b');
    await sdk.chat.completions.create({ model: 'auto', messages: user('again') });
    expect(a.requests).toHaveLength(1);
    const text = await metrics.registry.metrics();
    expect(text).toContain('tierflow_provider_credentials_rejected{provider="a"} 1');
    const err = (await sdk.chat.completions
      .create({ model: 'a-mini', messages: user('only a') })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).not.toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.status).toBe(503);
  });

  it('a named model beyond its context window is a clear 400 before Envoy sends anything', async () => {
    const err = (await sdk.chat.completions
      .create({ model: 'a-small-context', messages: user('word '.repeat(5000)) })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.code).toBe('context_length_exceeded');
    expect(a.requests).toHaveLength(0);
  });

  it('the final error names every attempt', async () => {
    configure({ maxAttempts: 2 });
    a.failWhen(always, { kind: 'status', status: 503 });
    b.failWhen(always, { kind: 'status', status: 500 });
    const err = (await sdk.chat.completions
      .create({ model: 'auto', messages: user('doomed') })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.message).toContain('1. a/a-mini: http_5xx, HTTP 503');
    expect(err.message).toContain('2. b/b-mini: http_5xx, HTTP 500');
  });
});
