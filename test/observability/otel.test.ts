// OpenTelemetry end to end: a real `tierflow serve` and a real `tierflow sidecar` (behind the
// Envoy harness) with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP receiver in this test.
// The client's W3C trace context is continued: the request span is its child, each attempt's span
// id reaches the provider in `traceparent`; spans carry the GenAI semantic-convention attributes
// and TierFlow's; the GenAI client metrics arrive; no prompt, completion or key is ever exported.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { envoyBootstrap } from '../../src/extproc/envoy-config.js';
import { formatTraceparent, parseTraceparent } from '../../src/observe/tracing.js';
import { EnvoyHarness, harnessOptionsFromBootstrap } from '../extproc/envoy-harness.js';
import { type CliProcess, startCli } from '../helpers/cli.js';
import { model } from '../helpers/config.js';
import { startAnthropicMock } from '../mocks/anthropic-mock.js';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';

const PROMPT = 'Say hi to the purple elephant 7391';
const COMPLETION = 'Hello there, purple elephant friend';
const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const VIRTUAL_KEY = 'tf-otel-team-key-0123456789abcdef';

interface Received {
  path: string;
  body: any;
  raw: string;
  headers: Record<string, unknown>;
}

async function startReceiver(): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      received.push({ path: req.url!, body: JSON.parse(raw), raw, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, received };
}

type Span = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code: number };
  startTimeUnixNano: string;
  endTimeUnixNano: string;
};

const attr = (span: Span, key: string) => {
  const v = span.attributes.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  if ('intValue' in v) return Number(v.intValue);
  if ('arrayValue' in v)
    return (v.arrayValue as { values: { stringValue: string }[] }).values.map((x) => x.stringValue);
  return Object.values(v)[0];
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('OpenTelemetry export', () => {
  let alpha: MockServer;
  let beta: MockServer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let gateway: CliProcess;
  let sidecar: CliProcess;
  let plain: CliProcess;
  let harness: EnvoyHarness;
  let envoyUrl: string;

  const spans = () =>
    receiver.received
      .filter((r) => r.path === '/v1/traces')
      .flatMap((r) =>
        r.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)),
      ) as Span[];
  const waitForSpans = async (traceId: string, n: number) => {
    for (let i = 0; i < 100; i++) {
      const found = spans().filter((s) => s.traceId === traceId);
      if (found.length >= n) return found;
      await sleep(50);
    }
    throw new Error(`fewer than ${n} spans of ${traceId}: ${JSON.stringify(spans().map((s) => s.name))}`);
  };

  beforeAll(async () => {
    alpha = await startOpenAIMock({ apiKey: 'sk-alpha-secret' });
    beta = await startAnthropicMock({ apiKey: 'sk-beta-secret' });
    receiver = await startReceiver();
    const file = join(mkdtempSync(join(tmpdir(), 'tierflow-otel-')), 'tierflow.yaml');
    writeFileSync(
      file,
      stringify({
        providers: [
          {
            name: 'alpha',
            type: 'openai',
            baseUrl: alpha.url,
            credentials: { apiKey: 'sk-alpha-secret' },
            models: [
              model('alpha-mini', 'lightweight', 0.15, 0.6),
              model('alpha-large', 'flagship', 2.5, 10),
            ],
          },
          {
            name: 'beta',
            type: 'anthropic',
            baseUrl: beta.url,
            credentials: { apiKey: 'sk-beta-secret' },
            models: [model('beta-small', 'lightweight', 0.8, 4), model('beta-big', 'flagship', 3, 15)],
          },
        ],
        policies: [
          {
            name: 'default',
            virtualModels: ['auto'],
            tiers: [{ name: 'lightweight', maxScore: 0.5 }, { name: 'flagship' }],
          },
        ],
        virtualKeys: [{ name: 'team', key: VIRTUAL_KEY }],
      }),
    );
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20collector-token',
      OTEL_SERVICE_NAME: 'tierflow-test',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_METRIC_EXPORT_INTERVAL: '200',
    };
    [gateway, sidecar, plain] = await Promise.all([
      startCli(['serve', '--port', '0', '--config', file], 'tierflow gateway listening', otel),
      startCli(
        ['sidecar', '--config', file, '--socket', 'none', '--port', '0'],
        'tierflow sidecar listening',
        otel,
      ),
      startCli(['serve', '--port', '0', '--config', file], 'tierflow gateway listening'),
    ]);
    harness = new EnvoyHarness(
      harnessOptionsFromBootstrap(
        envoyBootstrap({ extProcSocket: '/unused' }),
        `127.0.0.1:${sidecar.ready.tcpPort as number}`,
      ),
    );
    envoyUrl = await harness.listen();
  }, 60_000);

  afterAll(async () => {
    await harness?.close();
    await Promise.all([gateway?.stop(), sidecar?.stop(), plain?.stop()]);
    await alpha?.close();
    await beta?.close();
    await new Promise((r) => receiver?.server.close(r));
  });

  const sdk = (baseURL: string) => new OpenAI({ baseURL, apiKey: VIRTUAL_KEY, maxRetries: 0 });
  const traced = (traceId: string) => ({
    headers: { traceparent: formatTraceparent(traceId, CLIENT_SPAN, true) },
  });

  it('gateway: a streamed request that failed over is one trace, continued from the client to each provider', async () => {
    alpha.failNext({ kind: 'status', status: 500 });
    beta.setResponse({ content: COMPLETION, usage: { prompt: 42, completion: 7 } });
    const stream = await sdk(gateway.ready.url as string).chat.completions.create(
      { model: 'auto', stream: true, messages: [{ role: 'user', content: PROMPT }] },
      traced(CLIENT_TRACE),
    );
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe(COMPLETION);

    const trace = await waitForSpans(CLIENT_TRACE, 5);
    const root = trace.find((s) => s.kind === 2)!;
    expect(root).toMatchObject({ name: 'chat auto', parentSpanId: CLIENT_SPAN });
    expect(attr(root, 'gen_ai.operation.name')).toBe('chat');
    expect(attr(root, 'gen_ai.request.model')).toBe('auto');
    expect(attr(root, 'gen_ai.response.model')).toBe('beta-small');
    expect(attr(root, 'gen_ai.provider.name')).toBe('anthropic');
    expect(attr(root, 'gen_ai.usage.input_tokens')).toBe(42);
    expect(attr(root, 'gen_ai.usage.output_tokens')).toBe(7);
    expect(attr(root, 'tierflow.policy')).toBe('default');
    expect(attr(root, 'tierflow.tier')).toBe('lightweight');
    expect(attr(root, 'tierflow.score')).toEqual(expect.any(Number));
    expect(attr(root, 'tierflow.attempts')).toBe(2);
    expect(attr(root, 'tierflow.cost_usd')).toBeGreaterThan(0);
    expect(attr(root, 'tierflow.virtual_key')).toBe('team');

    const route = trace.find((s) => s.name === 'tierflow.route')!;
    expect(route.parentSpanId).toBe(root.spanId);
    expect(attr(route, 'tierflow.candidates')).toEqual(
      expect.arrayContaining(['alpha/alpha-mini', 'beta/beta-small']),
    );

    const attempts = trace
      .filter((s) => s.kind === 3)
      .sort((a, b) => a.startTimeUnixNano.localeCompare(b.startTimeUnixNano));
    expect(attempts.map((s) => s.name)).toEqual(['chat alpha-mini', 'chat beta-small']);
    expect(attempts.every((s) => s.parentSpanId === root.spanId)).toBe(true);
    expect(attr(attempts[0]!, 'error.type')).toBe('http_5xx');
    expect(attempts[0]!.status?.code).toBe(2);
    expect(attr(attempts[0]!, 'gen_ai.provider.name')).toBe('openai');
    expect(attr(attempts[1]!, 'gen_ai.usage.output_tokens')).toBe(7);
    expect(attr(attempts[1]!, 'tierflow.outcome')).toBe('success');
    // each provider saw the trace, with its attempt's span as parent
    const sent = [alpha.lastRequest!, beta.lastRequest!].map((r) =>
      parseTraceparent(r.headers.traceparent as string),
    );
    expect(sent).toEqual([
      { traceId: CLIENT_TRACE, spanId: attempts[0]!.spanId, sampled: true },
      { traceId: CLIENT_TRACE, spanId: attempts[1]!.spanId, sampled: true },
    ]);

    const stream2 = trace.find((s) => s.name === 'tierflow.stream')!;
    expect(stream2.parentSpanId).toBe(attempts[1]!.spanId);
    expect(BigInt(stream2.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(stream2.startTimeUnixNano));
  });

  it('sidecar: the Envoy-made attempt carries the trace to the provider, and the spans are exported', async () => {
    const traceId = 'aaf92f3577b34da6a3ce929d0e0e4700';
    alpha.setResponse({ content: COMPLETION, usage: { prompt: 30, completion: 5 } });
    const r = await sdk(`${envoyUrl}/v1`).chat.completions.create(
      { model: 'auto', messages: [{ role: 'user', content: PROMPT }] },
      traced(traceId),
    );
    expect(r.choices[0]!.message.content).toBe(COMPLETION);
    const trace = await waitForSpans(traceId, 3);
    const root = trace.find((s) => s.kind === 2)!;
    expect(root.parentSpanId).toBe(CLIENT_SPAN);
    expect(attr(root, 'gen_ai.usage.input_tokens')).toBe(30);
    const attempt = trace.find((s) => s.kind === 3)!;
    expect(attr(attempt, 'gen_ai.request.model')).toBe('alpha-mini');
    expect(parseTraceparent(alpha.lastRequest!.headers.traceparent as string)).toEqual({
      traceId,
      spanId: attempt.spanId,
      sampled: true,
    });
    expect(harness.violations).toEqual([]);
  });

  it('starts a new trace without a client traceparent, and reports a rejected request as an error span', async () => {
    const err = await sdk(gateway.ready.url as string)
      .chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: PROMPT }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    for (let i = 0; i < 100 && !spans().some((s) => attr(s, 'tierflow.mode') === 'rejected'); i++)
      await sleep(50);
    const rejected = spans().find((s) => attr(s, 'tierflow.mode') === 'rejected')!;
    expect(rejected.parentSpanId).toBeUndefined();
    expect(rejected.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(attr(rejected, 'http.response.status_code')).toBe(404);
  });

  it('exports gen_ai.client.token.usage and gen_ai.client.operation.duration', async () => {
    const metrics = async () => {
      for (let i = 0; i < 100; i++) {
        const m = receiver.received
          .filter((r) => r.path === '/v1/metrics')
          .flatMap((r) =>
            r.body.resourceMetrics.flatMap((rm: any) => rm.scopeMetrics.flatMap((sm: any) => sm.metrics)),
          );
        const names = new Set(m.map((x: any) => x.name));
        if (names.has('gen_ai.client.token.usage') && names.has('gen_ai.client.operation.duration')) return m;
        await sleep(50);
      }
      throw new Error('no GenAI metrics received');
    };
    const all = await metrics();
    // cumulative points, from both processes: any export holding the gateway's numbers will do
    const tokens = all.filter((m: any) => m.name === 'gen_ai.client.token.usage');
    expect(tokens[0].unit).toBe('{token}');
    const points = tokens.flatMap((m: any) =>
      m.histogram.dataPoints.map((p: any) => ({
        type: attr(p, 'gen_ai.token.type'),
        provider: attr(p, 'gen_ai.provider.name'),
        sum: p.sum,
      })),
    );
    expect(points).toEqual(expect.arrayContaining([{ type: 'input', provider: 'anthropic', sum: 42 }]));
    expect(points).toEqual(expect.arrayContaining([{ type: 'output', provider: 'anthropic', sum: 7 }]));
    const duration = all.filter((m: any) => m.name === 'gen_ai.client.operation.duration');
    expect(duration[0].unit).toBe('s');
    const failed = duration
      .flatMap((m: any) => m.histogram.dataPoints)
      .filter((p: any) => attr(p, 'error.type'));
    expect(failed.map((p: any) => [attr(p, 'error.type'), attr(p, 'gen_ai.request.model')])).toContainEqual([
      'http_5xx',
      'alpha-mini',
    ]);
  });

  it('never exports prompts, completions or keys; sends the configured collector headers', () => {
    expect(receiver.received.length).toBeGreaterThan(0);
    for (const r of receiver.received) {
      expect(r.raw).not.toContain('purple elephant');
      expect(r.raw).not.toContain('sk-alpha-secret');
      expect(r.raw).not.toContain('sk-beta-secret');
      expect(r.raw).not.toContain(VIRTUAL_KEY);
      expect(r.headers.authorization).toBe('Bearer collector-token');
      expect(r.headers['content-type']).toBe('application/json');
    }
    const resource =
      receiver.received[0]!.body.resourceSpans?.[0]?.resource ??
      receiver.received[0]!.body.resourceMetrics[0].resource;
    expect(attr(resource, 'service.name')).toBe('tierflow-test');
  });

  it('without an OTLP endpoint: no traceparent to the provider, nothing exported', async () => {
    const traceId = 'bbf92f3577b34da6a3ce929d0e0e4700';
    alpha.reset();
    await sdk(plain.ready.url as string).chat.completions.create(
      { model: 'auto', messages: [{ role: 'user', content: 'hi' }] },
      traced(traceId),
    );
    expect(alpha.lastRequest!.headers.traceparent).toBeUndefined();
    await sleep(400);
    expect(spans().filter((s) => s.traceId === traceId)).toEqual([]);
    expect(plain.output()).not.toMatch(/OpenTelemetry/);
    expect(gateway.output()).toMatch(/OpenTelemetry export on/);
  });
});

describe('traceparent parsing', () => {
  it('accepts a valid header and refuses invalid ones', () => {
    expect(parseTraceparent(`00-${CLIENT_TRACE}-${CLIENT_SPAN}-00`)).toEqual({
      traceId: CLIENT_TRACE,
      spanId: CLIENT_SPAN,
      sampled: false,
    });
    for (const bad of [
      undefined,
      '',
      `ff-${CLIENT_TRACE}-${CLIENT_SPAN}-01`,
      `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`,
      `00-${CLIENT_TRACE}-${'0'.repeat(16)}-01`,
      `00-${CLIENT_TRACE}-${CLIENT_SPAN}`,
      `00-xyz-${CLIENT_SPAN}-01`,
    ])
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
  });
});
