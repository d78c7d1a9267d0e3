// ext_proc overhead: TierFlow's sidecar processor beside a no-op ext_proc server (same protos,
// same server code, same Unix-socket transport, answers CONTINUE to everything), both driven by
// the same Envoy-like gRPC client in one run. Servers run in child processes (bench/extproc-server.mjs).
// A third server, rewrite-only, parses the request body and answers it with the model replaced
// and nothing else: the floor of what any router must do with the body, so the report can say how
// much of TierFlow's distance to the no-op is the rewrite itself (CPU, latency, throughput only).
//
//   npm run build && node_modules/.bin/node bench/extproc.ts [--seconds 3] [--rate 2000] [--quick]
//
// Imports the compiled code from dist/ (Node 24 runs this file's TypeScript natively; the
// src/ modules use .js import paths that only resolve once compiled).
//
// Per request (a 4 KB chat request, non-streaming JSON response) the client plays all four
// phases like Envoy: request_headers, request_body (BUFFERED), response_headers, response_body,
// each sent after the previous answer. Figures:
//   latency     closed loop, one request at a time: p50 / p99 per request
//   throughput  closed loop, 64 requests in flight, saturated: requests/s
//   open loop   fixed rate (default 2,000 req/s): p50 / p99 (from each request's actual send)
//   chunk cost  a streamed (SSE) response of many chunks, 16 in flight like Envoy: server CPU
//               per chunk and wall time per chunk
//   memory      server RSS idle and with 1,000 concurrent open streams (mid-response)
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import http2 from 'node:http2';
import net from 'node:net';
import { EXT_PROC_METHOD_PATH, extProcService } from '../dist/extproc/protos.js';
import { figure, fmt, summarize } from './lib.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    rate: { type: 'string' },
    quick: { type: 'boolean' },
    only: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log(`node bench/extproc.ts [options]   (after npm run build)
  --quick            1 s phases, 1 round, fewer requests
  --seconds N        length of the throughput and open-loop phases (default 3, 1 with --quick)
  --rate N           open-loop request rate per second (default 2000)
  --only LIST        a subset of: memory,latency,throughput,open,chunk,cpu
  TF_PROF=dir        write a CPU profile of each server process into dir`);
  process.exit(0);
}
const only = values.only;
const quick = values.quick === true;
const seconds = Number(values.seconds ?? (quick ? 1 : 3));
const rate = Number(values.rate ?? 2000);

// --- messages, serialized once with the real protos ---------------------------------------------
type Answer = {
  response?: string;
  request_body?: { response?: { clear_route_cache?: boolean; header_mutation?: unknown } };
  mode_override?: { response_body_mode?: string };
  response_body?: unknown;
};
type Method = { requestSerialize: (v: unknown) => Buffer; responseDeserialize: (b: Buffer) => Answer };
const method = (extProcService() as unknown as { Process: Method }).Process;
/** gRPC message framing: a zero compression flag and a big-endian length before each message. */
const frame = (b: Buffer) => {
  const h = Buffer.allocUnsafe(5);
  h[0] = 0;
  h.writeUInt32BE(b.length, 1);
  return Buffer.concat([h, b]);
};
const enc = (m: unknown) => frame(method.requestSerialize(m));
const hv = (key: string, v: string) => ({ key, raw_value: Buffer.from(v) });

function chatBody(stream: boolean): Buffer {
  const body = {
    model: 'auto',
    stream,
    messages: [
      { role: 'system', content: 'You are a careful assistant who answers concisely.' },
      {
        role: 'user',
        content: 'Summarize the following report and list three risks, step by step. '.repeat(58),
      },
    ],
  };
  return Buffer.from(JSON.stringify(body));
}
const jsonBody = chatBody(false);
const sseBody = chatBody(true);

const requestHeaders = (body: Buffer) =>
  enc({
    request_headers: {
      headers: {
        headers: [
          hv(':authority', '127.0.0.1:10000'),
          hv(':path', '/v1/chat/completions'),
          hv(':method', 'POST'),
          hv(':scheme', 'https'),
          hv('content-type', 'application/json'),
          hv('content-length', String(body.length)),
          hv('authorization', 'Bearer sk-app-placeholder'),
          hv('user-agent', 'OpenAI/Python 1.99.0'),
          hv('accept', 'application/json'),
          hv('x-forwarded-proto', 'http'),
          hv('x-request-id', '6f1a2b3c-4d5e-4f60-8172-93a4b5c6d7e8'),
        ],
      },
      end_of_stream: false,
    },
  });

const completion = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1700000000,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'Here is a concise summary with three risks: '.repeat(8) },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: {
      prompt_tokens: 1012,
      completion_tokens: 96,
      total_tokens: 1108,
      prompt_tokens_details: { cached_tokens: 0 },
    },
  }),
);
const responseHeaders = (ct: string, len?: number) =>
  enc({
    response_headers: {
      headers: {
        headers: [
          hv(':status', '200'),
          hv('content-type', ct),
          ...(len !== undefined ? [hv('content-length', String(len))] : []),
          hv('date', 'Wed, 25 Nov 2026 10:00:00 GMT'),
          hv('openai-processing-ms', '512'),
          hv('x-request-id', 'req_abc123'),
          hv('x-envoy-upstream-service-time', '512'),
        ],
      },
      end_of_stream: false,
    },
  });

const JSON_FLOW = [
  requestHeaders(jsonBody),
  enc({ request_body: { body: jsonBody, end_of_stream: true } }),
  responseHeaders('application/json', completion.length),
  enc({ response_body: { body: completion, end_of_stream: true } }),
];
const SSE_START = [
  requestHeaders(sseBody),
  enc({ request_body: { body: sseBody, end_of_stream: true } }),
  responseHeaders('text/event-stream; charset=utf-8'),
];
const sseChunk = (i: number) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: `token${i} ` }, logprobs: null, finish_reason: null }] })}\n\n`;
const CHUNK_MSGS = Array.from({ length: 64 }, (_, i) =>
  enc({ response_body: { body: Buffer.from(sseChunk(i)), end_of_stream: false } }),
);
const FINISH_MSG = enc({
  response_body: {
    body: Buffer.from(
      `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] })}\n\n` +
        `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 1012, completion_tokens: 1000, total_tokens: 2012 } })}\n\ndata: [DONE]\n\n`,
    ),
    end_of_stream: false,
  },
});
const LAST_EMPTY = enc({ response_body: { body: Buffer.alloc(0), end_of_stream: true } });

// --- the Envoy-like client ---------------------------------------------------------------------
// gRPC spoken directly over node:http2, the way Envoy's own gRPC client does it: one HTTP/2
// connection, one stream per request, length-prefixed messages, 256 MiB flow-control windows
// (Envoy's defaults). grpc-js's client costs several times more CPU per call than the server
// under test, so it would measure itself.
const WINDOW = 256 * 1024 * 1024 - 1;
const REQUEST_HEADERS = {
  ':method': 'POST',
  ':path': EXT_PROC_METHOD_PATH,
  ':scheme': 'http',
  ':authority': 'tierflow_ext_proc',
  'content-type': 'application/grpc',
  te: 'trailers',
};

/** Counts complete gRPC messages in a response body, whatever the chunking. */
class Deframer {
  #pending: Buffer | undefined;
  messages: Buffer[] = [];
  push(chunk: Buffer): number {
    let buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    let n = 0;
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) break;
      if (this.keep) this.messages.push(buf.subarray(5, 5 + len));
      buf = buf.subarray(5 + len);
      n++;
    }
    this.#pending = buf.length > 0 ? buf : undefined;
    return n;
  }
  readonly keep: boolean;
  constructor(keep = false) {
    this.keep = keep;
  }
}

class EnvoyLike {
  readonly session: http2.ClientHttp2Session;
  constructor(socket: string) {
    this.session = http2.connect('http://tierflow_ext_proc', {
      createConnection: () => net.connect(socket),
      settings: { initialWindowSize: WINDOW },
    });
    this.session.on('connect', () => this.session.setLocalWindowSize(WINDOW));
    this.session.on('error', () => {});
  }

  open(): http2.ClientHttp2Stream {
    return this.session.request(REQUEST_HEADERS);
  }

  /** Messages (framed) one after the other, each after the previous answer; resolves with the answers. */
  flow(msgs: Buffer[], keep = false): Promise<Buffer[]> {
    const stream = this.open();
    const d = new Deframer(keep);
    let answered = 0;
    return new Promise((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => {
        answered += d.push(chunk);
        if (answered < msgs.length) {
          if (answered > 0 && !stream.writableEnded && answered === sent) stream.write(msgs[sent++]!);
        } else if (!stream.writableEnded) {
          stream.end();
          resolve(d.messages);
        }
      });
      stream.on('error', reject);
      stream.on('response', (h) => {
        if (h['grpc-status'] !== undefined && h['grpc-status'] !== '0')
          reject(new Error(`grpc-status ${h['grpc-status']}`));
      });
      let sent = 1;
      stream.write(msgs[0]!);
    });
  }

  /** A streamed response: the start phases, then `chunks` body chunks with `window` in flight. */
  stream(chunks: number, window: number): Promise<void> {
    const stream = this.open();
    const d = new Deframer();
    return new Promise((resolve, reject) => {
      let answered = 0;
      let sent = 0;
      const total = SSE_START.length + chunks + 2; // + finish/usage/[DONE] chunk + empty last chunk
      const next = () => {
        if (sent < SSE_START.length) {
          if (sent === answered) stream.write(SSE_START[sent++]!);
          return;
        }
        while (sent < total && sent - answered < window) {
          const i = sent - SSE_START.length;
          stream.write(
            i < chunks ? CHUNK_MSGS[i % CHUNK_MSGS.length]! : i === chunks ? FINISH_MSG : LAST_EMPTY,
          );
          sent++;
        }
      };
      stream.on('data', (chunk: Buffer) => {
        answered += d.push(chunk);
        if (answered === total) {
          stream.end();
          resolve();
        } else next();
      });
      stream.on('error', reject);
      next();
    });
  }

  close(): void {
    this.session.close();
  }
}

// --- servers -----------------------------------------------------------------------------------
interface Server {
  name: string;
  child: ChildProcess;
  client: EnvoyLike;
  stats(): Promise<{ cpuUs: number; rssMb: number; heapMb: number; streams: number }>;
}

async function startServer(kind: 'tierflow' | 'noop' | 'rewrite'): Promise<Server> {
  const socket = join(mkdtempSync(join(tmpdir(), 'tf-bench-')), `${kind}.sock`);
  const child = fork(new URL('./extproc-server.mjs', import.meta.url).pathname, [kind, socket], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    // The image's environment (Dockerfile): freed large buffers go back to the system.
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072' },
    // TF_PROF=dir writes a CPU profile of each server there.
    // Both servers run with the V8 flags the product's launcher and image set.
    execArgv: [
      '--expose-gc',
      '--max-semi-space-size=4',
      '--single-threaded-gc',
      ...(process.env.TF_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.TF_PROF}`] : []),
    ],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`${kind} server exited ${c}`)));
  });
  child.stdout!.resume();
  process.on('exit', () => child.kill());
  const stats = () =>
    new Promise<{ cpuUs: number; rssMb: number; heapMb: number; streams: number }>((resolve) => {
      child.once('message', (m) => resolve(m as never));
      child.send('stats');
    });
  return { name: kind, child, client: new EnvoyLike(socket), stats };
}

const gc = (s: Server) =>
  new Promise<void>((resolve) => {
    s.child.once('message', () => resolve());
    s.child.send('gc');
  });

// --- measurements ------------------------------------------------------------------------------
async function latency(s: Server, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await s.client.flow(JSON_FLOW);
    out.push(performance.now() - t);
  }
  return out;
}

async function throughput(s: Server, concurrency: number, ms: number): Promise<number> {
  let done = 0;
  const until = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < until) {
      await s.client.flow(JSON_FLOW);
      done++;
    }
  };
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (done * 1000) / (performance.now() - t);
}

async function openLoop(s: Server, perSec: number, ms: number) {
  const lat: number[] = [];
  let errors = 0;
  const total = Math.floor((perSec * ms) / 1000);
  const start = performance.now();
  const pending: Promise<void>[] = [];
  let i = 0;
  while (i < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - start) * perSec) / 1000) + 1);
    for (; i < due; i++) {
      const t = performance.now();
      pending.push(
        s.client.flow(JSON_FLOW).then(
          () => void lat.push(performance.now() - t),
          () => void errors++,
        ),
      );
    }
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(pending);
  return { lat, errors, achieved: (total * 1000) / (performance.now() - start) };
}

async function chunkCost(s: Server, streams: number, chunks: number) {
  const before = await s.stats();
  const t = performance.now();
  for (let i = 0; i < streams; i++) await s.client.stream(chunks, 16);
  const wall = performance.now() - t;
  const after = await s.stats();
  const n = streams * (chunks + 2);
  return { cpuUsPerChunk: (after.cpuUs - before.cpuUs) / n, wallUsPerChunk: (wall * 1000) / n };
}

async function memory(s: Server, n: number) {
  await gc(s);
  const idle = await s.stats();
  const calls: http2.ClientHttp2Stream[] = [];
  const open = async () => {
    const call = s.client.open();
    calls.push(call);
    await new Promise<void>((resolve, reject) => {
      let answered = 0;
      const d = new Deframer();
      const msgs = [...SSE_START, CHUNK_MSGS[0]!];
      call.on('data', (chunk: Buffer) => {
        const got = d.push(chunk);
        answered += got;
        if (got > 0 && answered < msgs.length) call.write(msgs[answered]!);
        else if (answered >= msgs.length) resolve();
      });
      call.on('error', reject);
      call.write(msgs[0]!);
    });
  };
  for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: Math.min(100, n - i) }, open));
  await new Promise((r) => setTimeout(r, 200));
  await gc(s); // what the open streams hold, not the garbage their set-up left behind
  const loaded = await s.stats();
  for (const c of calls) c.close(http2.constants.NGHTTP2_CANCEL);
  return {
    idleMb: idle.rssMb,
    loadedMb: loaded.rssMb,
    heapIdleMb: idle.heapMb,
    heapLoadedMb: loaded.heapMb,
    streams: loaded.streams,
  };
}

// --- run ---------------------------------------------------------------------------------------
// --only PHASES (comma-separated: memory,latency,throughput,open,chunk,cpu) runs a subset (profiling).
const want = (phase: string) => !only || only.split(',').includes(phase);
const noop = await startServer('noop');
const tierflow = await startServer('tierflow');
const rewrite = await startServer('rewrite');
const servers = [noop, tierflow];
/** The servers of the per-request phases (latency, throughput, CPU). */
const requestServers = [noop, rewrite, tierflow];

// Memory first, on fresh processes: idle, then 1,000 streams held open mid-response.
const mem: Record<string, Awaited<ReturnType<typeof memory>>> = {};
if (want('memory')) for (const s of servers) mem[s.name] = await memory(s, 1000);

// Correctness: TierFlow really decided, rewrote and translated (not a pass-through).
{
  const answers = (await tierflow.client.flow(JSON_FLOW, true)).map((b) => method.responseDeserialize(b));
  const body = answers[1]?.request_body?.response;
  if (
    !body?.clear_route_cache ||
    !body.header_mutation ||
    answers[2]?.mode_override?.response_body_mode !== 'BUFFERED' ||
    !answers[3]?.response_body
  ) {
    throw new Error(
      'TierFlow did not answer the bench flow as expected: ' + JSON.stringify(answers).slice(0, 400),
    );
  }
  const n = (await noop.client.flow(JSON_FLOW, true)).map((b) => method.responseDeserialize(b));
  if (
    n.length !== 4 ||
    n.some(
      (a: { response?: string }, i: number) =>
        a.response !== ['request_headers', 'request_body', 'response_headers', 'response_body'][i],
    )
  ) {
    throw new Error('no-op answered unexpectedly');
  }
  const w = (await rewrite.client.flow(JSON_FLOW, true)).map((b) => method.responseDeserialize(b));
  if (!(w[1]?.request_body?.response as { body_mutation?: unknown } | undefined)?.body_mutation)
    throw new Error('rewrite-only did not answer the request body with a body');
}

// Warm-up (JIT) for all.
for (const s of requestServers) {
  await latency(s, quick ? 300 : 2000);
  await s.client.stream(500, 16);
}

const rounds = quick ? 1 : 3;
const perRound = quick ? 500 : 1500;
const lat: Record<string, number[]> = { noop: [], rewrite: [], tierflow: [] };
const tput: Record<string, number[]> = { noop: [], rewrite: [], tierflow: [] };
for (let r = 0; r < rounds; r++) {
  // alternate the servers so all see the same background load
  if (want('latency')) for (const s of requestServers) lat[s.name]!.push(...(await latency(s, perRound)));
  if (want('throughput'))
    for (const s of requestServers) tput[s.name]!.push(await throughput(s, 64, seconds * 1000));
}
const open: Record<string, Awaited<ReturnType<typeof openLoop>>> = {};
if (want('open')) for (const s of servers) open[s.name] = await openLoop(s, rate, seconds * 1000);
const chunk: Record<string, Awaited<ReturnType<typeof chunkCost>>> = {};
if (want('chunk')) for (const s of servers) chunk[s.name] = await chunkCost(s, quick ? 5 : 20, 1000);
const cpu: Record<string, number> = {};
if (want('cpu')) {
  // Several interleaved rounds, the median per server: one round is about a second of work, and
  // one old-generation collection more or less in it moves the figure by 10% or more.
  const perServer: Record<string, number[]> = { noop: [], rewrite: [], tierflow: [] };
  for (let r = 0; r < (quick ? 1 : 5); r++) {
    for (const s of requestServers) {
      const before = await s.stats();
      const n = quick ? 2000 : 6000;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let i = 0; i < n / 16; i++) await s.client.flow(JSON_FLOW);
        }),
      );
      perServer[s.name]!.push(((await s.stats()).cpuUs - before.cpuUs) / n);
    }
  }
  for (const s of requestServers) cpu[s.name] = summarize(perServer[s.name]!).p50;
}
const endRss: Record<string, number> = {};
for (const s of servers) endRss[s.name] = (await s.stats()).rssMb;

// --- report --------------------------------------------------------------------------------------
const row = (label: string, n: string, t: string, ratio: string, goal: string) =>
  console.log(`${label.padEnd(34)} ${n.padStart(12)} ${t.padStart(12)} ${ratio.padStart(9)}  ${goal}`);
console.log(
  `\next_proc: TierFlow vs a no-op server (Node ${process.versions.node}, ${rounds} round(s), ${seconds}s phases, ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(2)})\n`,
);
row('', 'no-op', 'TierFlow', 'ratio', 'goal');
if (want('latency')) {
  const L = { noop: summarize(lat.noop!), tierflow: summarize(lat.tierflow!) };
  row(
    'latency p50 (ms, 1 in flight)',
    fmt(L.noop.p50),
    fmt(L.tierflow.p50),
    fmt(L.tierflow.p50 / L.noop.p50, 2),
    '<= 1.25x',
  );
  row(
    'latency p99 (ms, 1 in flight)',
    fmt(L.noop.p99),
    fmt(L.tierflow.p99),
    fmt(L.tierflow.p99 / L.noop.p99, 2),
    '<= 1.25x',
  );
}
if (want('throughput')) {
  const T = { noop: Math.max(...tput.noop!), tierflow: Math.max(...tput.tierflow!) };
  row(
    'throughput (req/s, 64 in flight)',
    fmt(T.noop, 0),
    fmt(T.tierflow, 0),
    fmt(T.tierflow / T.noop, 2),
    '>= 0.80x',
  );
}
if (want('open')) {
  const O = { noop: summarize(open.noop!.lat), tierflow: summarize(open.tierflow!.lat) };
  row(`open loop ${rate}/s p50 (ms)`, fmt(O.noop.p50), fmt(O.tierflow.p50), '', '');
  row(`open loop ${rate}/s p99 (ms)`, fmt(O.noop.p99), fmt(O.tierflow.p99), '', 'TierFlow <= 1 ms');
  row(
    '  achieved rate (req/s), errors',
    `${fmt(open.noop!.achieved, 0)}, ${open.noop!.errors}`,
    `${fmt(open.tierflow!.achieved, 0)}, ${open.tierflow!.errors}`,
    '',
    '',
  );
}
if (want('chunk')) {
  row(
    'streamed chunk: server CPU (us)',
    fmt(chunk.noop!.cpuUsPerChunk, 1),
    fmt(chunk.tierflow!.cpuUsPerChunk, 1),
    '',
    'TierFlow <= 30 us',
  );
  row(
    'streamed chunk: wall time (us)',
    fmt(chunk.noop!.wallUsPerChunk, 1),
    fmt(chunk.tierflow!.wallUsPerChunk, 1),
    '',
    '',
  );
}
if (want('cpu'))
  row(
    'server CPU per request (us)',
    fmt(cpu.noop!, 1),
    fmt(cpu.tierflow!, 1),
    fmt(cpu.tierflow! / cpu.noop!, 2),
    '',
  );
if (want('memory')) {
  row('RSS idle (MB)', fmt(mem.noop!.idleMb, 1), fmt(mem.tierflow!.idleMb, 1), '', '');
  row(
    `RSS, ${mem.tierflow!.streams} open streams (MB)`,
    fmt(mem.noop!.loadedMb, 1),
    fmt(mem.tierflow!.loadedMb, 1),
    '',
    'TierFlow <= 120 MB',
  );
  // Live JS heap after gc(): what the streams really hold, whatever the allocator keeps as RSS.
  row(
    `JS heap used idle -> ${mem.tierflow!.streams} streams (MB)`,
    `${fmt(mem.noop!.heapIdleMb, 1)} -> ${fmt(mem.noop!.heapLoadedMb, 1)}`,
    `${fmt(mem.tierflow!.heapIdleMb, 1)} -> ${fmt(mem.tierflow!.heapLoadedMb, 1)}`,
    '',
    '',
  );
}
row('RSS after the whole run (MB)', fmt(endRss.noop!, 1), fmt(endRss.tierflow!, 1), '', '');

// The floor of the body rewrite: how far from the no-op a server gets that does nothing else.
const floorRows: Array<[string, number, number, number]> = [];
if (want('cpu')) floorRows.push(['server CPU per request (us)', cpu.noop!, cpu.rewrite!, cpu.tierflow!]);
if (want('latency'))
  floorRows.push([
    'latency p50 (ms, 1 in flight)',
    summarize(lat.noop!).p50,
    summarize(lat.rewrite!).p50,
    summarize(lat.tierflow!).p50,
  ]);
if (want('throughput'))
  floorRows.push([
    'throughput (req/s, 64 in flight)',
    Math.max(...tput.noop!),
    Math.max(...tput.rewrite!),
    Math.max(...tput.tierflow!),
  ]);
if (floorRows.length > 0) {
  console.log('\nrewrite-only: parses the body and replaces the model, nothing else (ratios to the no-op)\n');
  console.log(
    `${''.padEnd(34)} ${'no-op'.padStart(12)} ${'rewrite-only'.padStart(18)} ${'TierFlow'.padStart(18)}`,
  );
  for (const [label, n, w, t] of floorRows) {
    const digits = n >= 100 ? 0 : n >= 10 ? 1 : 3;
    console.log(
      `${label.padEnd(34)} ${fmt(n, digits).padStart(12)} ${`${fmt(w, digits)} (${fmt(w / n, 2)}x)`.padStart(18)} ${`${fmt(t, digits)} (${fmt(t / n, 2)}x)`.padStart(18)}`,
    );
  }
}

// The summary table of `npm run bench` (bench/run.ts).
if (want('cpu'))
  figure({
    plane: 'sidecar',
    what: 'server CPU per request (us)',
    value: fmt(cpu.tierflow!, 0),
    reference: `no-op ${fmt(cpu.noop!, 0)}`,
    ratio: cpu.tierflow! / cpu.noop!,
    goal: '<= 1.5x no-op',
    ok: cpu.tierflow! / cpu.noop! <= 1.5,
  });
if (want('cpu'))
  figure({
    plane: 'sidecar',
    what: 'rewrite-only server (parses the body, replaces the model): CPU per request (us)',
    value: fmt(cpu.rewrite!, 0),
    reference: `no-op ${fmt(cpu.noop!, 0)}`,
    ratio: cpu.rewrite! / cpu.noop!,
  });
if (want('latency')) {
  const a = summarize(lat.noop!).p50;
  const b = summarize(lat.tierflow!).p50;
  figure({
    plane: 'sidecar',
    what: 'latency p50, 1 in flight (ms)',
    value: fmt(b),
    reference: `no-op ${fmt(a)}`,
    ratio: b / a,
    goal: '<= 1.25x no-op',
    ok: b / a <= 1.25,
  });
}
if (want('throughput')) {
  const a = Math.max(...tput.noop!);
  const b = Math.max(...tput.tierflow!);
  figure({
    plane: 'sidecar',
    what: 'throughput, 64 in flight (req/s)',
    value: fmt(b, 0),
    reference: `no-op ${fmt(a, 0)}`,
    ratio: b / a,
    goal: '>= 0.80x no-op',
    ok: b / a >= 0.8,
  });
}
if (want('chunk'))
  figure({
    plane: 'sidecar',
    what: 'server CPU per streamed chunk (us)',
    value: fmt(chunk.tierflow!.cpuUsPerChunk, 1),
    reference: `no-op ${fmt(chunk.noop!.cpuUsPerChunk, 1)}`,
    goal: '<= 30 us',
    ok: chunk.tierflow!.cpuUsPerChunk <= 30,
  });
if (want('memory'))
  figure({
    plane: 'sidecar',
    what: `RSS at ${mem.tierflow!.streams} open streams (MB)`,
    value: fmt(mem.tierflow!.loadedMb, 0),
    reference: `no-op ${fmt(mem.noop!.loadedMb, 0)}`,
    goal: '<= 120 MB',
    ok: mem.tierflow!.loadedMb <= 120,
  });

for (const s of requestServers) {
  s.client.close();
  s.child.send('stop');
}
await Promise.all(requestServers.map((s) => new Promise((r) => s.child.once('exit', r))));
