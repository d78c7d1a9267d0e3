// Gateway: TierFlow beside its physical limit, side by side in one run (order rotated per round):
//   upstream  the mock provider alone (bench/upstream-fixture.ts), called directly
//   bare      a bare Node pass-through proxy to the same mock (bench/bare-proxy.mjs): node:http in,
//             an undici Pool out, bodies piped, nothing parsed. The floor for a Node gateway.
//   tierflow  `tierflow serve`, `model: "auto"` (parse, classify, select, translate, account)
//   portkey   Portkey's open-source gateway from npm, when it can be installed (a TypeScript peer);
//             installed on demand into node_modules/.cache, never a dependency; --no-peer skips it
//
//   node bench/gateway.ts [--quick] [--seconds 3] [--rounds 3] [--rate 1000] [--no-peer] [--no-big] [--otel]
//
// Figures (each server first warmed up with 3000 requests, 8000 without --quick): closed-loop
// throughput at 32 in flight and the server's CPU per request (user+system of its process);
// open-loop latency at --rate req/s as overhead over calling the upstream directly; RSS idle,
// after the load, and after large (30 MB) request bodies.
// --otel: TierFlow exports traces and GenAI metrics to an OTLP receiver in this process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { cpuMs, figure, fmt, openLoop, rssMb, summarize } from './lib.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    'no-peer': { type: 'boolean' },
    'no-big': { type: 'boolean' },
    otel: { type: 'boolean' },
  },
});
const quick = values.quick === true;
const rate = Number(values.rate ?? 1000);
const seconds = Number(values.seconds ?? (quick ? 1.5 : 3));
const rounds = Number(values.rounds ?? (quick ? 1 : 3));
const CONCURRENCY = 32;
const node = process.execPath;
// The flags bin/tierflow.js sets in its shebang (spawning node directly skips the shebang).
const NODE_FLAGS = (
  process.env.BENCH_NODE_FLAGS ?? '--max-semi-space-size=4 --single-threaded-gc --expose-gc'
)
  .split(' ')
  .filter(Boolean);

// The image's environment (Dockerfile): freed large buffers go back to the system.
const RUNTIME_ENV = { MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072' };
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGTERM');
});

/** Starts a child whose first stdout line is JSON with its port. */
function startChild(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(node, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...RUNTIME_ENV, ...env },
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (first) => {
      child.stdout!.resume(); // keep draining so the child never blocks on a full pipe
      resolve({ child, port: JSON.parse(first).port as number });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)));
  });
}

// --- the processes ---------------------------------------------------------------------------------
const upstream = await startChild(['bench/upstream-fixture.ts']);
const upstreamOrigin = `http://127.0.0.1:${upstream.port}`;
const bare = await startChild([...NODE_FLAGS, 'bench/bare-proxy.mjs', upstreamOrigin]);

const dir = mkdtempSync(join(tmpdir(), 'tierflow-bench-'));
const configFile = join(dir, 'tierflow.yaml');
const model = (name: string, tier: string, price: number, contextWindow = 128000) =>
  `      - { name: ${name}, tier: ${tier}, pricing: { inputPerMTok: ${price}, outputPerMTok: ${price * 4} }, contextWindow: ${contextWindow}, maxOutputTokens: 4096 }`;
writeFileSync(
  configFile,
  `providers:
  - name: bench
    type: openai-compatible
    baseUrl: ${upstreamOrigin}/v1
    models:
${model('bench-mini', 'lightweight', 0.1)}
${model('bench-large', 'flagship', 2)}
${model('bench-long', 'flagship', 3, 20_000_000)}
policies:
  - name: default
    virtualModels: [auto]
    tiers: [{ name: lightweight, maxScore: 0.5 }, { name: flagship }]
`,
);
const otlp = values.otel ? await startOtlpSink() : undefined;
const tierflowPort = await freePort();
const tierflowChild = spawn(
  node,
  [...NODE_FLAGS, 'bin/tierflow.js', 'serve', '--config', configFile, '--port', String(tierflowPort)],
  {
    // stdout a pipe drained here, as in a container (a log collector reads it).
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      ...RUNTIME_ENV,
      // The per-request log line is part of the product: benchmarked at the default level.
      TIERFLOW_LOG_LEVEL: process.env.TIERFLOW_LOG_LEVEL ?? 'info',
      ...(otlp ? { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url } : {}),
    },
  },
);
children.push(tierflowChild);
tierflowChild.stdout!.resume();
await waitUp(`http://127.0.0.1:${tierflowPort}/healthz`);

const peer = values['no-peer'] ? { skipped: '--no-peer' } : await startPortkey();

const prompt = 'Summarize the following text in two sentences. '.repeat(80); // ~4 KB
const chat = (m: string) => JSON.stringify({ model: m, messages: [{ role: 'user', content: prompt }] });
const JSON_HEADERS = { 'content-type': 'application/json' };

interface Target {
  name: string;
  url: string;
  body: string;
  headers: Record<string, string>;
  pid?: number;
}
const targets: Record<string, Target> = {
  upstream: {
    name: 'upstream',
    url: `${upstreamOrigin}/v1/chat/completions`,
    body: chat('bench-mini'),
    headers: JSON_HEADERS,
  },
  bare: {
    name: 'bare proxy',
    url: `http://127.0.0.1:${bare.port}/v1/chat/completions`,
    body: chat('bench-mini'),
    headers: JSON_HEADERS,
    pid: bare.child.pid,
  },
  tierflow: {
    name: 'TierFlow',
    url: `http://127.0.0.1:${tierflowPort}/v1/chat/completions`,
    body: chat('auto'),
    headers: JSON_HEADERS,
    pid: tierflowChild.pid,
  },
};
if ('port' in peer) {
  targets.portkey = {
    name: 'Portkey',
    url: `http://127.0.0.1:${peer.port}/v1/chat/completions`,
    body: chat('bench-mini'),
    headers: {
      ...JSON_HEADERS,
      'x-portkey-provider': 'openai',
      'x-portkey-custom-host': `${upstreamOrigin}/v1`,
      authorization: 'Bearer sk-bench',
    },
    pid: peer.child.pid,
  };
}
const servers = Object.keys(targets).filter((k) => k !== 'upstream');

const agent = new Agent({ connections: 256, keepAliveTimeout: 60_000, pipelining: 1 });
const post =
  (t: Target, body = t.body) =>
  async () => {
    const res = await request(t.url, { method: 'POST', body, headers: t.headers, dispatcher: agent });
    await res.body.dump({ limit: 1 << 20 });
    if (res.statusCode !== 200) throw new Error(`${t.name}: status ${res.statusCode}`);
  };

/** Closed loop: `concurrency` requests always in flight for `ms`; requests/s, latencies, server CPU. */
async function closedLoop(t: Target, concurrency: number, ms: number) {
  const latencies: number[] = [];
  let errors = 0;
  const send = post(t);
  const until = performance.now() + ms;
  const cpu0 = t.pid ? cpuMs(t.pid) : 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const s = performance.now();
        try {
          await send();
          latencies.push(performance.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = performance.now() - t0;
  const cpuUsPerReq = t.pid ? ((cpuMs(t.pid) - cpu0) * 1000) / Math.max(1, latencies.length) : NaN;
  return { rps: (latencies.length * 1000) / elapsed, latencies, errors, cpuUsPerReq };
}

/** `requests` requests, 32 in flight, results not kept. */
async function warmUp(t: Target, requests: number) {
  const send = post(t);
  let left = requests;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left-- > 0) await send().catch(() => {});
    }),
  );
}

const rotate = <T>(xs: T[], r: number) => xs.map((_, i) => xs[(i + r) % xs.length]!);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

// --- run ------------------------------------------------------------------------------------------
const rssIdle: Record<string, number> = {};
for (const k of servers) rssIdle[k] = rssMb(targets[k]!.pid!);

// Warm-up (JIT, pools) by request count, not time: a Node server needs a few thousand requests
// before its CPU per request settles (measured in 1 s phases from a cold start: the bare proxy
// 947 -> ~130 us, TierFlow 2768 -> ~330 us over 5-6 s), and on a loaded machine a fixed time
// gets far fewer requests through, so the figures measured the JIT warming up.
const WARM_UP_REQUESTS = quick ? 3000 : 8000;
for (const k of ['upstream', ...servers]) await warmUp(targets[k]!, WARM_UP_REQUESTS);

const tput: Record<string, { rps: number[]; cpu: number[]; p99: number[]; errors: number }> = {};
for (const k of ['upstream', ...servers]) tput[k] = { rps: [], cpu: [], p99: [], errors: 0 };
for (let r = 0; r < rounds; r++) {
  for (const k of rotate(['upstream', ...servers], r)) {
    const res = await closedLoop(targets[k]!, CONCURRENCY, seconds * 1000);
    tput[k]!.rps.push(res.rps);
    tput[k]!.cpu.push(res.cpuUsPerReq);
    tput[k]!.p99.push(summarize(res.latencies).p99);
    tput[k]!.errors += res.errors;
  }
}

// Open loop at a fixed rate (the peer is left out: it saturates below 1,000 req/s on 2 cores).
const openKeys = ['upstream', 'bare', 'tierflow'];
const lat: Record<string, number[]> = {};
let openErrors = 0;
for (const k of openKeys) lat[k] = [];
for (let r = 0; r < rounds; r++) {
  for (const k of rotate(openKeys, r)) {
    const res = await openLoop(rate, seconds * 1000, post(targets[k]!));
    lat[k]!.push(...res.latencies);
    openErrors += res.errors;
  }
}
const rssLoad: Record<string, number> = {};
for (const k of servers) rssLoad[k] = rssMb(targets[k]!.pid!);

// Large bodies: what a gateway keeps after a few 30 MB requests (one at a time).
const BIG = 30 * 1024 * 1024;
const bigBody = (m: string) =>
  JSON.stringify({
    model: m,
    messages: [{ role: 'user', content: 'All work and no play. '.repeat(BIG / 23) }],
  });
const rssBig: Record<string, number> = {};
const rssSettled: Record<string, number> = {};
const bigKeys = values['no-big'] ? [] : ['bare', 'tierflow'];
const bigBodies: Record<string, string> = { bare: bigBody('bench-mini'), tierflow: bigBody('auto') };
for (const k of bigKeys) {
  for (let i = 0; i < (quick ? 2 : 4); i++) await post(targets[k]!, bigBodies[k])();
  rssBig[k] = rssMb(targets[k]!.pid!);
}
await new Promise((r) => setTimeout(r, 2000));
for (const k of bigKeys) rssSettled[k] = rssMb(targets[k]!.pid!);

// --- report ---------------------------------------------------------------------------------------
const T = Object.fromEntries(
  Object.entries(tput).map(([k, v]) => [k, { rps: median(v.rps), cpu: median(v.cpu), p99: median(v.p99) }]),
);
const L = Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, summarize(v)]));
const cols = ['upstream', ...servers];
const head = (label: string) => label.padEnd(38) + cols.map((k) => targets[k]!.name.padStart(12)).join('');
const row = (label: string, f: (k: string) => string) =>
  console.log(label.padEnd(38) + cols.map((k) => f(k).padStart(12)).join(''));
console.log(
  `\ngateway: TierFlow vs a bare Node proxy and a peer, same mock upstream (Node ${process.versions.node}, ` +
    `${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(2)}, ${rounds} round(s) of ${seconds}s, 4 KB prompt)`,
);
if ('skipped' in peer) console.log(`  Portkey column skipped: ${peer.skipped}`);
console.log(head(''));
row(`throughput, ${CONCURRENCY} in flight (req/s)`, (k) => fmt(T[k]!.rps, 0));
row(`  latency p99 at ${CONCURRENCY} in flight (ms)`, (k) => fmt(T[k]!.p99, 1));
row('  server CPU per request (us)', (k) => (k === 'upstream' ? '' : fmt(T[k]!.cpu, 0)));
row(`open loop ${rate}/s p50 (ms)`, (k) => (L[k] ? fmt(L[k].p50) : ''));
row(`open loop ${rate}/s p99 (ms)`, (k) => (L[k] ? fmt(L[k].p99) : ''));
row('  p99 overhead over upstream (ms)', (k) =>
  L[k] && k !== 'upstream' ? fmt(L[k].p99 - L.upstream!.p99) : '',
);
row('RSS idle (MB)', (k) => (rssIdle[k] ? fmt(rssIdle[k], 1) : ''));
row('RSS after the load (MB)', (k) => (rssLoad[k] ? fmt(rssLoad[k], 1) : ''));
row(`RSS after ${quick ? 2 : 4} x 30 MB bodies (MB)`, (k) => (rssBig[k] ? fmt(rssBig[k], 1) : ''));
row('  2 s later (MB)', (k) => (rssSettled[k] ? fmt(rssSettled[k], 1) : ''));
const errors = Object.values(tput).reduce((n, v) => n + v.errors, 0) + openErrors;
console.log(`errors: ${errors}`);

const tf = T.tierflow!;
const b = T.bare!;
const overhead = (k: string) => L[k]!.p99 - L.upstream!.p99;
figure({
  plane: 'gateway',
  what: `throughput, ${CONCURRENCY} in flight, model auto (req/s)`,
  value: fmt(tf.rps, 0),
  reference: `bare proxy ${fmt(b.rps, 0)}`,
  ratio: tf.rps / b.rps,
  goal: '>= 0.70x bare',
  ok: tf.rps / b.rps >= 0.7,
});
if (T.portkey) {
  figure({
    plane: 'gateway',
    what: `throughput vs the peer (req/s)`,
    value: fmt(tf.rps, 0),
    reference: `Portkey ${fmt(T.portkey.rps, 0)}`,
    ratio: tf.rps / T.portkey.rps,
    goal: '>= 3x Portkey',
    ok: tf.rps / T.portkey.rps >= 3,
  });
} else {
  figure({
    plane: 'gateway',
    what: 'throughput vs the peer',
    value: '-',
    reference: `Portkey skipped: ${peer.skipped}`,
  });
}
figure({
  plane: 'gateway',
  what: 'CPU per proxied request (us)',
  value: fmt(tf.cpu, 0),
  reference: `bare proxy ${fmt(b.cpu, 0)}${T.portkey ? `, Portkey ${fmt(T.portkey.cpu, 0)}` : ''}`,
  ratio: tf.cpu / b.cpu,
});
figure({
  plane: 'gateway',
  what: `p99 overhead at ${rate} req/s (ms)`,
  value: fmt(overhead('tierflow'), 2),
  reference: `bare proxy ${fmt(overhead('bare'), 2)}`,
  goal: '<= 2 ms',
  ok: overhead('tierflow') <= 2,
});
figure({
  plane: 'gateway',
  what: 'RSS idle / after load (MB)',
  value: `${fmt(rssIdle.tierflow!, 0)} / ${fmt(rssLoad.tierflow!, 0)}`,
  reference: `bare proxy ${fmt(rssIdle.bare!, 0)} / ${fmt(rssLoad.bare!, 0)}`,
});
if (rssSettled.tierflow !== undefined)
  figure({
    plane: 'gateway',
    what: 'RSS 2 s after 30 MB bodies (MB)',
    value: fmt(rssSettled.tierflow, 0),
    reference: `bare proxy ${fmt(rssSettled.bare!, 0)}`,
    goal: '<= RSS before them + 20 MB',
    ok: rssSettled.tierflow <= rssLoad.tierflow! + 20,
  });
if (otlp) {
  await new Promise((r) => setTimeout(r, 6000)); // the last batch (OTEL_BSP_SCHEDULE_DELAY 5 s)
  console.log(`OTLP export: ${otlp.spans} spans in ${otlp.posts} requests, ${fmt(otlp.bytes / 1e6, 1)} MB`);
}

await agent.close();
// Wait for the servers to exit (TierFlow logs its shutdown into the pipe this process drains).
await Promise.all(
  children.map(
    (c) =>
      new Promise<void>((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) return resolve();
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
        setTimeout(resolve, 5000).unref();
      }),
  ),
);
process.exit(0);

// --- helpers --------------------------------------------------------------------------------------

/**
 * Portkey's gateway from npm, installed on demand under node_modules/.cache (not a dependency,
 * nothing committed). Skipped with the reason when it cannot be installed or started.
 */
async function startPortkey(): Promise<{ child: ChildProcess; port: number } | { skipped: string }> {
  const version = '1.15.2';
  const prefix = join('node_modules', '.cache', 'tierflow-bench', 'portkey');
  const entry = join(prefix, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
  if (!existsSync(entry)) {
    mkdirSync(prefix, { recursive: true });
    writeFileSync(join(prefix, 'package.json'), '{"private":true}\n');
    console.log(`installing @portkey-ai/gateway@${version} into ${prefix} (once) ...`);
    const r = spawnSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--ignore-scripts', `@portkey-ai/gateway@${version}`],
      { cwd: prefix, stdio: 'ignore', timeout: 180_000 },
    );
    if (r.status !== 0 || !existsSync(entry))
      return { skipped: 'npm install @portkey-ai/gateway failed (offline?)' };
  }
  const port = await freePort();
  const child = spawn(node, [entry, `--port=${port}`, '--headless'], {
    stdio: 'ignore',
    env: { ...process.env, NODE_ENV: 'production' },
  });
  children.push(child);
  try {
    await waitUp(`http://127.0.0.1:${port}/`);
  } catch {
    return { skipped: 'Portkey did not start' };
  }
  return { child, port };
}

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

async function waitUp(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      const res = await request(url);
      await res.body.dump();
      if (res.statusCode < 500) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not come up`);
}
