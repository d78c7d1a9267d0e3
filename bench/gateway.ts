// Gateway overhead: the same open-loop load (1,000 req/s by default) against the upstream
// directly and through `tierflow serve`, side by side in one run; plus RSS idle and under load.
//   node bench/gateway.ts [--rate 1000] [--seconds 10] [--otel]
// --otel: the gateway exports traces and GenAI metrics (OTEL_EXPORTER_OTLP_ENDPOINT) to an OTLP
// receiver in this process, to compare with a run without it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { cpuMs, fmt, openLoop, rssMb, summarize } from './lib.ts';

const { values } = parseArgs({
  options: { rate: { type: 'string' }, seconds: { type: 'string' }, otel: { type: 'boolean' } },
});
const rate = Number(values.rate ?? 1000);
const seconds = Number(values.seconds ?? 10);
const node = process.execPath;

function startChild(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; first: string }> {
  const child = spawn(node, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (first) => {
      // Keep draining so the child never blocks on a full pipe.
      child.stdout!.resume();
      resolve({ child, first });
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
}

const upstream = await startChild(['bench/upstream-fixture.ts']);
const upstreamPort = JSON.parse(upstream.first).port as number;

const dir = mkdtempSync(join(tmpdir(), 'tierflow-bench-'));
const configFile = join(dir, 'tierflow.yaml');
const model = (name: string, tier: string, price: number) =>
  `      - { name: ${name}, tier: ${tier}, pricing: { inputPerMTok: ${price}, outputPerMTok: ${price * 4} }, contextWindow: 128000, maxOutputTokens: 4096 }`;
writeFileSync(
  configFile,
  `providers:
  - name: bench
    type: openai-compatible
    baseUrl: http://127.0.0.1:${upstreamPort}/v1
    models:
${model('bench-mini', 'lightweight', 0.1)}
${model('bench-large', 'flagship', 2)}
policies:
  - name: default
    virtualModels: [auto]
    tiers: [{ name: lightweight, maxScore: 0.5 }, { name: flagship }]
`,
);
const gatewayPort = await freePort();
const otlp = values.otel ? await startOtlpSink() : undefined;
const gatewayChild = spawn(
  node,
  [
    // The flags bin/tierflow.js sets in its shebang (spawning node directly skips the shebang).
    ...(process.env.BENCH_NODE_FLAGS ?? '--max-semi-space-size=4 --single-threaded-gc')
      .split(' ')
      .filter(Boolean),
    'bin/tierflow.js',
    'serve',
    '--config',
    configFile,
    '--port',
    String(gatewayPort),
  ],
  {
    stdio: ['ignore', process.env.BENCH_NODE_FLAGS ? 'inherit' : 'ignore', 'inherit'],
    env: {
      ...process.env,
      TIERFLOW_LOG_LEVEL: 'warn',
      ...(otlp ? { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url } : {}),
    },
  },
);
await waitHealthy(gatewayPort);
const gateway = { child: gatewayChild };

const prompt = 'Summarize the following text in two sentences. '.repeat(80); // ~4 KB
const payload = JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: prompt }] });
const direct = JSON.stringify({ model: 'bench-mini', messages: [{ role: 'user', content: prompt }] });
const agent = new Agent({ connections: 256, keepAliveTimeout: 60_000 });
const post = (port: number, path: string, body: string) => async () => {
  const res = await request(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
    dispatcher: agent,
  });
  await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
};

const idleRss = rssMb(gateway.child.pid!);
// Warm up both paths (JIT, pools).
await openLoop(500, 2000, post(upstreamPort, '/v1/chat/completions', direct));
await openLoop(500, 2000, post(gatewayPort, '/v1/chat/completions', payload));

const rounds: { direct: number[]; gateway: number[] } = { direct: [], gateway: [] };
let gatewayCpuMs = 0;
let loadRss = 0;
let errors = 0;
// Alternate short rounds so drift on a noisy machine hits both sides alike.
for (let round = 0; round < 4; round++) {
  const d = await openLoop(rate, (seconds * 1000) / 4, post(upstreamPort, '/v1/chat/completions', direct));
  const sampler = setInterval(() => (loadRss = Math.max(loadRss, rssMb(gateway.child.pid!))), 200);
  const cpu0 = cpuMs(gateway.child.pid!);
  const g = await openLoop(rate, (seconds * 1000) / 4, post(gatewayPort, '/v1/chat/completions', payload));
  gatewayCpuMs += cpuMs(gateway.child.pid!) - cpu0;
  clearInterval(sampler);
  rounds.direct.push(...d.latencies);
  rounds.gateway.push(...g.latencies);
  errors += d.errors + g.errors;
}
const sd = summarize(rounds.direct);
const sg = summarize(rounds.gateway);
console.log(`gateway overhead at ${rate} req/s, ${seconds}s per side, 4 KB prompt, JSON response (ms):`);
console.log(`  direct : p50 ${fmt(sd.p50)}  p90 ${fmt(sd.p90)}  p99 ${fmt(sd.p99)}  (n=${sd.n})`);
console.log(`  gateway: p50 ${fmt(sg.p50)}  p90 ${fmt(sg.p90)}  p99 ${fmt(sg.p99)}  (n=${sg.n})`);
console.log(`  overhead: p50 ${fmt(sg.p50 - sd.p50)}  p99 ${fmt(sg.p99 - sd.p99)}   errors ${errors}`);
console.log(
  `gateway CPU per request: ${fmt((gatewayCpuMs * 1000) / sg.n, 0)} µs (user+system, whole process)`,
);
console.log(`gateway RSS: idle ${fmt(idleRss, 1)} MB, under load (max) ${fmt(loadRss, 1)} MB`);
if (otlp) {
  await new Promise((r) => setTimeout(r, 6000)); // the last batch (OTEL_BSP_SCHEDULE_DELAY 5 s)
  console.log(`OTLP export: ${otlp.spans} spans in ${otlp.posts} requests, ${fmt(otlp.bytes / 1e6, 1)} MB`);
}

await agent.close();
gateway.child.kill('SIGTERM');
upstream.child.kill('SIGTERM');

/** Accepts OTLP/HTTP JSON posts and counts what arrived. */
async function startOtlpSink() {
  const { createServer } = await import('node:http');
  const sink = { url: '', posts: 0, spans: 0, bytes: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      sink.posts++;
      sink.bytes += body.length;
      if (req.url === '/v1/traces') sink.spans += (body.toString().match(/"spanId"/g) ?? []).length;
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  server.unref();
  sink.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return sink;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const res = await request(`http://127.0.0.1:${port}/healthz`);
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('gateway did not become healthy');
}
