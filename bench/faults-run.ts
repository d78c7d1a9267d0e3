// Fault injection through both data planes (bench/faults.ts runs it; a test runs it small).
//
// Three providers on local mocks offer one model each; the policy always tries p1 first. p1 fails
// at random (30% 500, 10% 429, 5% reset, 5% stall); p2 sits behind a TCP proxy that is killed
// (listener closed, open connections destroyed) a third of the way in and restarted at two
// thirds; p3 is healthy. Half the requests stream. Every reply carries its provider's tag and a
// per-request nonce, so a stream that switched providers after its first byte, or an answer
// meant for another request, shows in the content.
import { createServer, type Server, type Socket, connect } from 'node:net';
import { Agent, request } from 'undici';
import { HealthRegistry } from '../src/core/health/registry.js';
import { Router } from '../src/core/router.js';
import { envoyBootstrap } from '../src/extproc/envoy-config.js';
import { sidecarProcessor } from '../src/extproc/processor.js';
import { ExtProcServer } from '../src/extproc/server.js';
import { createGateway } from '../src/gateway/server.js';
import { silentLogger } from '../src/observe/log.js';
import { Metrics } from '../src/observe/metrics.js';
import { UpstreamClient } from '../src/pipeline/client.js';
import { compile, model } from '../test/helpers/config.js';
import { EnvoyHarness, harnessOptionsFromBootstrap } from '../test/extproc/envoy-harness.js';
import { tempSocket } from '../test/extproc/helpers.js';
import { startAnthropicMock } from '../test/mocks/anthropic-mock.js';
import type { MockServer, RecordedRequest } from '../test/mocks/faults.js';
import { startOpenAIMock } from '../test/mocks/openai-mock.js';
import { seededRandom } from '../test/helpers/prng.js';

export interface FaultRunOptions {
  requests: number;
  concurrency: number;
  /** ms a client waits for the whole answer before counting the request as hung. */
  clientTimeoutMs: number;
  firstByteTimeoutMs: number;
  seed: number;
}

export interface FaultReport {
  plane: 'gateway' | 'sidecar';
  requests: number;
  answered: number;
  /** A non-2xx answer with an OpenAI-style error body. */
  failedWithError: number;
  /** No answer, a broken one, or none within clientTimeoutMs. */
  lostOrHung: number;
  /** Content from more than one provider, or another request's answer. */
  switchedAfterFirstByte: number;
  /** The x-tierflow-provider header disagrees with the content. */
  wrongProviderHeader: number;
  upstreamCallsPerRequest: number;
  p50Ms: number;
  p99Ms: number;
  byProvider: Record<string, number>;
}

/** A TCP front for a provider that can be killed and restarted on the same port. */
class KillableProxy {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;
  readonly target: number;
  constructor(target: number) {
    this.target = target;
  }

  async start(): Promise<void> {
    const server = createServer((client) => {
      const up = connect(this.target, '127.0.0.1');
      this.#sockets.add(client).add(up);
      const drop = () => {
        client.destroy();
        up.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(up);
      };
      client.pipe(up).pipe(client);
      client.on('error', drop).on('close', drop);
      up.on('error', drop).on('close', drop);
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Like a killed process: the port refuses connections and every open connection breaks. */
  async kill(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    for (const sock of this.#sockets) sock.destroy();
    this.#sockets.clear();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

const TAG = /\[(p[123])#(\d+)\]/g;

function replyFor(tag: string) {
  return (req: RecordedRequest) => {
    const text = JSON.stringify(req.body.messages ?? []);
    const nonce = /nonce (\d+)/.exec(text)?.[1] ?? '?';
    const words = Array.from({ length: 12 }, (_, i) => `[${tag}#${nonce}] word${i}`);
    return { content: words.join(' '), chunks: words.map((w, i) => (i ? ` ${w}` : w)) };
  };
}

export async function runFaults(
  plane: 'gateway' | 'sidecar',
  options: FaultRunOptions,
): Promise<FaultReport> {
  const random = seededRandom(options.seed);
  const p1 = await startOpenAIMock({ apiKey: 'sk-p1' });
  const p2 = await startOpenAIMock({ apiKey: 'sk-p2' });
  const p3 = await startAnthropicMock({ apiKey: 'sk-p3' });
  const mocks: Record<string, MockServer> = { p1, p2, p3 };
  p1.setResponse(replyFor('p1'));
  p2.setResponse(replyFor('p2'));
  p3.setResponse(replyFor('p3'));
  const draws = new WeakMap<RecordedRequest, number>();
  const draw = (r: RecordedRequest) => {
    let d = draws.get(r);
    if (d === undefined) draws.set(r, (d = random()));
    return d;
  };
  p1.failWhen((r) => draw(r) < 0.3, { kind: 'status', status: 500 }, Infinity);
  p1.failWhen((r) => draw(r) >= 0.3 && draw(r) < 0.4, { kind: 'status', status: 429 }, Infinity);
  p1.failWhen((r) => draw(r) >= 0.4 && draw(r) < 0.45, { kind: 'reset' }, Infinity);
  p1.failWhen((r) => draw(r) >= 0.45 && draw(r) < 0.5, { kind: 'stall' }, Infinity);
  const proxy = new KillableProxy(p2.port);
  await proxy.start();

  const m = (name: string) => model(name, 'lightweight', 0.1, 0.2);
  const config = compile({
    providers: [
      { name: 'p1', type: 'openai', baseUrl: p1.url, credentials: { apiKey: 'sk-p1' }, models: [m('m1')] },
      {
        name: 'p2',
        type: 'openai',
        baseUrl: `http://127.0.0.1:${proxy.port}/v1`,
        credentials: { apiKey: 'sk-p2' },
        models: [{ ...m('m2'), pricing: { inputPerMTok: 0.2, outputPerMTok: 0.4 } }],
      },
      {
        name: 'p3',
        type: 'anthropic',
        baseUrl: p3.url,
        credentials: { apiKey: 'sk-p3' },
        models: [{ ...m('m3'), pricing: { inputPerMTok: 0.3, outputPerMTok: 0.6 } }],
      },
    ],
    policies: [
      {
        name: 'default',
        virtualModels: ['auto'],
        tiers: [{ name: 'lightweight', models: ['p1/m1', 'p2/m2', 'p3/m3'] }],
        objective: { cost: 1, latency: 0 },
        failover: { maxAttempts: 3, firstByteTimeoutMs: options.firstByteTimeoutMs, deadlineMs: 30_000 },
      },
    ],
  });
  const metrics = new Metrics({ defaultMetrics: false });
  const router = new Router({ config, health: new HealthRegistry() });
  const upstream = new UpstreamClient();
  const deps = { router, metrics, log: silentLogger, client: upstream };
  let base: string;
  const closers: (() => Promise<unknown> | void)[] = [];
  if (plane === 'gateway') {
    const gw = createGateway(deps);
    const addr = await gw.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${addr.port}`;
    closers.push(() => gw.close(1000));
  } else {
    const socketPath = tempSocket();
    const server = new ExtProcServer({ processor: sidecarProcessor(deps), socketPath });
    await server.start();
    const harness = new EnvoyHarness(
      harnessOptionsFromBootstrap(envoyBootstrap({ extProcSocket: socketPath }), `unix:${socketPath}`),
    );
    base = await harness.listen();
    closers.push(
      () => harness.close(),
      () => server.shutdown(1000),
    );
  }

  const client = new Agent({ connections: options.concurrency * 2 });
  const latencies: number[] = [];
  const report: FaultReport = {
    plane,
    requests: options.requests,
    answered: 0,
    failedWithError: 0,
    lostOrHung: 0,
    switchedAfterFirstByte: 0,
    wrongProviderHeader: 0,
    upstreamCallsPerRequest: 0,
    p50Ms: 0,
    p99Ms: 0,
    byProvider: {},
  };

  const one = async (i: number): Promise<void> => {
    const stream = i % 2 === 1;
    const body = JSON.stringify({
      model: 'auto',
      stream,
      messages: [{ role: 'user', content: `nonce ${i}: say something` }],
    });
    const t0 = performance.now();
    let status: number;
    let text = '';
    let provider: string | undefined;
    try {
      const res = await request(`${base}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: client,
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(options.clientTimeoutMs),
      });
      status = res.statusCode;
      provider = res.headers['x-tierflow-provider'] as string | undefined;
      const raw = await res.body.text();
      if (status !== 200) {
        const err = JSON.parse(raw) as { error?: { message?: string; type?: string } };
        if (err.error?.message && err.error.type) report.failedWithError++;
        else report.lostOrHung++;
        return;
      }
      if (stream) {
        if (!raw.trimEnd().endsWith('data: [DONE]')) {
          report.lostOrHung++;
          return;
        }
        for (const line of raw.split('\n')) {
          if (!line.startsWith('data: {')) continue;
          const ev = JSON.parse(line.slice(6)) as {
            choices?: { delta?: { content?: string } }[];
            error?: unknown;
          };
          if (ev.error) {
            report.lostOrHung++; // an in-band error: the stream broke after it started
            return;
          }
          text += ev.choices?.[0]?.delta?.content ?? '';
        }
      } else {
        text = (JSON.parse(raw) as { choices: { message: { content: string } }[] }).choices[0]!.message
          .content;
      }
    } catch {
      report.lostOrHung++;
      return;
    }
    latencies.push(performance.now() - t0);
    const tags = new Set([...text.matchAll(TAG)].map((x) => `${x[1]}#${x[2]}`));
    const expected = replyFor(provider ?? '?')({ body: { messages: [{ content: `nonce ${i}` }] } } as never);
    if (tags.size !== 1 || text !== expected.content) report.switchedAfterFirstByte++;
    else if (![...tags][0]!.startsWith(`${provider}#`)) report.wrongProviderHeader++;
    report.answered++;
    if (provider) report.byProvider[provider] = (report.byProvider[provider] ?? 0) + 1;
  };

  let next = 0;
  let killed = false;
  let restarted = false;
  const worker = async () => {
    while (next < options.requests) {
      const i = next++;
      if (!killed && i >= options.requests / 3) {
        killed = true;
        await proxy.kill();
      } else if (killed && !restarted && i >= (2 * options.requests) / 3) {
        restarted = true;
        await proxy.start();
      }
      await one(i);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));

  latencies.sort((x, y) => x - y);
  report.p50Ms = Math.round(latencies[Math.floor(latencies.length * 0.5)] ?? NaN);
  report.p99Ms = Math.round(
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? NaN,
  );
  const calls = Object.values(mocks).reduce((n, mk) => n + mk.requests.length, 0);
  report.upstreamCallsPerRequest = Number((calls / options.requests).toFixed(3));

  await client.close();
  for (const c of closers) await c();
  await upstream.close();
  router.health.close();
  await proxy.kill();
  for (const mk of Object.values(mocks)) await mk.close();
  return report;
}
