// Fuzzing both planes: random bytes, truncated and mutated JSON, wrong types in every field,
// deep nesting, huge strings, invalid UTF-8 and hostile headers through the normal HTTP path,
// plus raw HTTP and chunked-encoding abuse against the gateway's socket. What must hold: no
// crash, no 5xx, every error OpenAI-shaped, memory bounded. Seeded, so a failure reproduces.
// Used by fuzz.test.ts (a few hundred cases) and scripts/security-fuzz.ts (full size).
import type { Planes } from './canary.js';
import { rawExchange } from '../helpers/raw-http.js';
import { seededRandom } from '../helpers/prng.js';

export interface FuzzCase {
  kind: string;
  body: Buffer;
  headers: Record<string, string>;
}

const MODELS = ['oa-mini', 'an-small', 'ge-flash', 'az-mini', 'br-lite', 'auto'];
const WRONG: unknown[] = [
  null,
  0,
  -1,
  1.5,
  1e308,
  true,
  '',
  'x',
  'x'.repeat(70_000),
  [],
  [null],
  {},
  { a: 1 },
  [[[]]],
  '\u0000\ud800',
];

function template(model: string, stream: boolean): Record<string, any> {
  return {
    model,
    stream,
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'ok' },
      { role: 'user', content: 'and now?' },
    ],
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }],
    tool_choice: 'auto',
    temperature: 0.5,
    top_p: 1,
    max_tokens: 50,
    stop: ['\n'],
    n: 1,
    response_format: { type: 'text' },
    stream_options: stream ? { include_usage: true } : undefined,
    user: 'u',
    seed: 1,
  };
}

/** Every path (as key lists) of the template, for "wrong type in every field". */
function paths(obj: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []) {
  if (typeof obj !== 'object' || obj === null) return out;
  for (const [k, v] of Object.entries(obj)) {
    const key = Array.isArray(obj) ? Number(k) : k;
    out.push([...prefix, key]);
    paths(v, [...prefix, key], out);
  }
  return out;
}

function setAt(obj: any, path: (string | number)[], value: unknown): void {
  let o = obj;
  for (const k of path.slice(0, -1)) o = o[k];
  o[path.at(-1)!] = value;
}

function deep(levels: number, rnd: () => number): string {
  const [open, close] = rnd() < 0.5 ? ['[', ']'] : ['{"a":', '}'];
  return open.repeat(levels) + (open === '[' ? '' : '1') + close.repeat(levels);
}

const JSON_TYPE = { 'content-type': 'application/json' };

/** `n` cases from `seed`: each kind in turn, with random choices inside. */
export function fuzzCases(seed: number, n: number): FuzzCase[] {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const base = () => template(pick(MODELS), rnd() < 0.4);
  const allPaths = paths(template('m', true));
  const out: FuzzCase[] = [];
  const kinds = [
    'random-bytes',
    'truncated',
    'mutated',
    'wrong-type',
    'deep',
    'huge-string',
    'invalid-utf8',
    'headers',
    'many-messages',
  ];
  for (let i = 0; i < n; i++) {
    const kind = kinds[i % kinds.length]!;
    const valid = Buffer.from(JSON.stringify(base()));
    let body: Buffer = valid;
    let headers: Record<string, string> = { ...JSON_TYPE };
    switch (kind) {
      case 'random-bytes': {
        const len = Math.floor(rnd() ** 3 * 100_000);
        body = Buffer.alloc(len);
        for (let j = 0; j < len; j++) body[j] = Math.floor(rnd() * 256);
        break;
      }
      case 'truncated':
        body = valid.subarray(0, Math.floor(rnd() * valid.length));
        break;
      case 'mutated': {
        body = Buffer.from(valid);
        const edits = 1 + Math.floor(rnd() * 8);
        for (let j = 0; j < edits; j++) {
          const at = Math.floor(rnd() * body.length);
          body[at] = pick([
            0x22,
            0x5c,
            0x7b,
            0x7d,
            0x5b,
            0x5d,
            0x2c,
            0x3a,
            0x00,
            0xff,
            Math.floor(rnd() * 256),
          ]);
        }
        break;
      }
      case 'wrong-type': {
        const req = base();
        const path = pick(allPaths);
        try {
          setAt(req, path, pick(WRONG));
        } catch {
          /* the path does not exist in this variant */
        }
        body = Buffer.from(JSON.stringify(req));
        break;
      }
      case 'deep': {
        const req = JSON.stringify(base());
        const levels = pick([100, 1_000, 10_000, 100_000]);
        const where = pick([
          '"x":',
          '"tools":[{"type":"function","function":{"name":"f","parameters":',
          '"stream_options":',
        ]);
        const nested = deep(levels, rnd);
        const suffix = where.startsWith('"tools"') ? '}}]' : '';
        body = Buffer.from(req.slice(0, -1) + ',' + where + nested + suffix + '}');
        break;
      }
      case 'huge-string': {
        const req = base();
        req.messages[4].content = 'a'.repeat(pick([1 << 16, 1 << 20, 4 << 20]));
        body = Buffer.from(JSON.stringify(req));
        break;
      }
      case 'invalid-utf8': {
        const marker = Buffer.from('and now?');
        const at = valid.indexOf(marker);
        const bad = Buffer.from([
          0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0xed, 0xa0, 0x80,
        ]);
        body =
          at === -1 ? valid : Buffer.concat([valid.subarray(0, at), bad, valid.subarray(at + marker.length)]);
        break;
      }
      case 'headers':
        headers = {
          ...pick<Record<string, string>>([
            { 'content-type': 'application/json; charset=latin1' },
            { 'content-type': 'text/plain' },
            {
              'content-type': 'application/json',
              'x-tierflow-model': 'forged',
              'x-tierflow-provider': 'forged',
            },
            { 'content-type': 'application/json', authorization: 'Bearer ' + 'x'.repeat(8000) },
            { 'content-type': 'application/json', authorization: 'Basic %%%' },
            { 'content-type': 'application/json', 'content-encoding': 'gzip' },
            { 'content-type': 'application/json', 'x-request-id': 'same-id' },
            { 'content-type': 'application/json', accept: '*/*', 'x-envoy-original-path': '/admin' },
          ]),
        };
        break;
      case 'many-messages': {
        const req = base();
        req.messages = Array.from({ length: pick([1_000, 20_000]) }, (_, j) => ({
          role: j % 2 ? 'assistant' : 'user',
          content: 'm' + j,
        }));
        body = Buffer.from(JSON.stringify(req));
        break;
      }
    }
    out.push({ kind, body, headers });
  }
  return out;
}

/** Raw HTTP/1.1 abuse of the gateway's socket (the sidecar's socket is Envoy's, not ours). */
export function rawAbuseCases(): { name: string; bytes: string | Buffer }[] {
  const body = JSON.stringify({ model: 'oa-mini', messages: [{ role: 'user', content: 'hi' }] });
  const head = 'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n';
  return [
    { name: 'garbage', bytes: '\x00\x01\x02 GARBAGE\r\n\r\n' },
    { name: 'http/0.9', bytes: 'GET /\r\n' },
    { name: 'unknown method', bytes: 'BREW /v1/chat/completions HTTP/1.1\r\nhost: x\r\n\r\n' },
    { name: 'space in header name', bytes: 'GET /v1/models HTTP/1.1\r\nhost: x\r\nx y: 1\r\n\r\n' },
    {
      name: 'bare LF header injection',
      bytes: 'GET /v1/models HTTP/1.1\r\nhost: x\r\nx-a: 1\ninjected: 2\r\n\r\n',
    },
    { name: 'NUL in header value', bytes: 'GET /v1/models HTTP/1.1\r\nhost: x\r\nx-a: a\x00b\r\n\r\n' },
    { name: 'obs-fold', bytes: 'GET /v1/models HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n  folded\r\n\r\n' },
    {
      name: 'CL + TE smuggling',
      bytes: `${head}content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`,
    },
    { name: 'two content-lengths', bytes: `${head}content-length: 3\r\ncontent-length: 30\r\n\r\nabc` },
    { name: 'negative content-length', bytes: `${head}content-length: -1\r\n\r\n` },
    { name: 'bad chunk size', bytes: `${head}transfer-encoding: chunked\r\n\r\nzz\r\n${body}\r\n0\r\n\r\n` },
    { name: 'huge chunk size', bytes: `${head}transfer-encoding: chunked\r\n\r\nffffffffffffffff\r\nab\r\n` },
    {
      name: 'chunk extension flood',
      bytes: `${head}transfer-encoding: chunked\r\n\r\n2;${'e=x;'.repeat(5000)}\r\nab\r\n0\r\n\r\n`,
    },
    {
      name: 'valid chunked',
      bytes: `${head}transfer-encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    },
    { name: 'TE gzip', bytes: `${head}transfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n` },
    {
      name: 'huge header',
      bytes: `GET /v1/models HTTP/1.1\r\nhost: x\r\nx-a: ${'a'.repeat(100_000)}\r\n\r\n`,
    },
    { name: 'many headers', bytes: `GET /v1/models HTTP/1.1\r\nhost: x\r\n${'x-a: 1\r\n'.repeat(3000)}\r\n` },
    { name: 'absolute URI', bytes: 'GET http://evil.example/v1/models HTTP/1.1\r\nhost: x\r\n\r\n' },
    { name: 'path traversal', bytes: 'GET /v1/../../etc/passwd HTTP/1.1\r\nhost: x\r\n\r\n' },
    {
      name: 'expect 100',
      bytes: `${head}expect: 100-continue\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    },
    { name: 'expect other', bytes: `${head}expect: 200-ok\r\ncontent-length: ${body.length}\r\n\r\n${body}` },
    {
      name: 'pipelined',
      bytes: `GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n${head}content-length: ${body.length}\r\n\r\n${body}GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
    },
  ];
}

export interface FuzzReport {
  requests: number;
  byStatus: Record<string, number>;
  /** Answers with a 5xx status (or a broken connection), which must not happen. */
  serverErrors: string[];
  /** Error answers that are not OpenAI-shaped JSON. */
  misshapen: string[];
  rssMiB: { before: number; peak: number; after: number };
}

function openAIShaped(body: string): boolean {
  try {
    const e = (JSON.parse(body) as { error?: { message?: unknown; type?: unknown } }).error;
    return typeof e?.message === 'string' && typeof e.type === 'string';
  } catch {
    return false;
  }
}

/** Sends the cases to one plane, a few at a time; reports what must not happen. */
export async function runFuzz(
  base: string,
  plane: string,
  cases: FuzzCase[],
  concurrency = 4,
): Promise<FuzzReport> {
  const report: FuzzReport = {
    requests: 0,
    byStatus: {},
    serverErrors: [],
    misshapen: [],
    rssMiB: { before: rss(), peak: 0, after: 0 },
  };
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      const c = cases[i]!;
      let status = 0;
      let text = '';
      try {
        const res = await fetch(`${base}/v1/chat/completions`, {
          method: 'POST',
          headers: c.headers,
          body: c.body,
        });
        status = res.status;
        text = await res.text();
      } catch (err) {
        report.serverErrors.push(`${plane} #${i} ${c.kind}: connection failed: ${(err as Error).message}`);
      }
      report.requests++;
      report.byStatus[status] = (report.byStatus[status] ?? 0) + 1;
      if (status >= 500)
        report.serverErrors.push(`${plane} #${i} ${c.kind}: ${status} ${text.slice(0, 200)}`);
      if (status >= 400 && !openAIShaped(text))
        report.misshapen.push(`${plane} #${i} ${c.kind}: ${status} ${text.slice(0, 200)}`);
      if (i % 50 === 0) report.rssMiB.peak = Math.max(report.rssMiB.peak, rss());
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  report.rssMiB.after = rss();
  report.rssMiB.peak = Math.max(report.rssMiB.peak, report.rssMiB.after);
  return report;
}

/** Raw abuse against the gateway: every answer OpenAI-shaped, never a 5xx. */
export async function runRawAbuse(port: number): Promise<FuzzReport> {
  const report: FuzzReport = {
    requests: 0,
    byStatus: {},
    serverErrors: [],
    misshapen: [],
    rssMiB: { before: rss(), peak: 0, after: 0 },
  };
  for (const c of rawAbuseCases()) {
    const res = await rawExchange(port, c.bytes, { waitMs: 5000 });
    report.requests++;
    report.byStatus[res.status] = (report.byStatus[res.status] ?? 0) + 1;
    if (res.status >= 500) report.serverErrors.push(`raw ${c.name}: ${res.status}`);
    if (res.status >= 400 && !openAIShaped(res.body))
      report.misshapen.push(`raw ${c.name}: ${res.status} ${res.body.slice(0, 200)}`);
  }
  report.rssMiB.after = report.rssMiB.peak = rss();
  return report;
}

function rss(): number {
  return Math.round(process.memoryUsage().rss / (1 << 20));
}

export type { Planes };
