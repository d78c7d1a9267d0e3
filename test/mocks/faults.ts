// Shared machinery for the mock provider servers (openai-mock.ts, anthropic-mock.ts): a real
// node:http server on 127.0.0.1 (port 0), request recording, scripted replies and injectable
// faults. Provider modules only render their wire format.
//
// Faults (`mock.failNext(fault)` for the next N requests, `mock.failWhen(pred, fault)` for
// matching requests):
//   {kind:'status', status, body?, headers?, retryAfter?}  error answer (provider-shaped default body)
//   {kind:'reset'}                                        socket destroyed before any response byte
//   {kind:'reset-mid-stream', afterEvents?}               200 + N SSE events (JSON: half the body), then socket destroyed
//   {kind:'stream-error', afterEvents?, errorType?, message?}  200 + N events, then the provider's error event
//   {kind:'stall'}                                        request read, never answered (until the client or close() gives up)
//   {kind:'delay', ms}                                    the normal answer, started after ms (headers included)
//   {kind:'slow-first-byte', ms}                          headers at once, first body byte after ms
//   {kind:'cadence', ms}                                  the normal answer, SSE events ms apart
import { once } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string>; retryAfter?: number }
  | { kind: 'reset' }
  | { kind: 'reset-mid-stream'; afterEvents?: number }
  | { kind: 'stream-error'; afterEvents?: number; errorType?: string; message?: string }
  | { kind: 'stall' }
  | { kind: 'delay'; ms: number }
  | { kind: 'slow-first-byte'; ms: number }
  | { kind: 'cadence'; ms: number };

export interface RecordedRequest {
  method: string;
  /** Path with query string, e.g. /v1/chat/completions */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body (undefined when empty or not JSON). */
  body: any;
  raw: Buffer;
  /** Date.now() when the body was complete. */
  at: number;
}

/** What the mock answers with. Anything left out is derived from the request. */
export interface MockReply {
  /** Assistant text. Default: `echo: <text of the last user message>`. Empty string: no text. */
  content?: string;
  /** How the text is cut into stream deltas. Default: one delta per word (with its trailing space). */
  chunks?: string[];
  toolCalls?: { id?: string; name: string; arguments: string | Record<string, unknown> }[];
  /** Provider-native stop value (OpenAI finish_reason / Anthropic stop_reason). Default derived. */
  stop?: string;
  usage?: { prompt?: number; completion?: number; cached?: number; cacheWrite?: number };
  /** Model name reported back. Default: the requested model. */
  model?: string;
}

export type ReplyScript = MockReply | ((req: RecordedRequest) => MockReply);

interface FaultRule {
  fault: Fault;
  remaining: number;
  match?: (req: RecordedRequest) => boolean;
}

export interface MockServer {
  /** Base URL to configure as the provider's baseUrl, e.g. http://127.0.0.1:41234/v1 */
  readonly url: string;
  readonly port: number;
  /** Every request received, in arrival order (faulted ones included). */
  readonly requests: RecordedRequest[];
  readonly lastRequest: RecordedRequest | undefined;
  /** Apply `fault` to the next `times` requests (default 1; Infinity for all). Queued faults run in order. */
  failNext(fault: Fault & { times?: number }): void;
  /** Apply `fault` to requests matching `pred` (default: every matching request). Checked before failNext. */
  failWhen(pred: (req: RecordedRequest) => boolean, fault: Fault, times?: number): void;
  /** Script the successful answers (persistent until reset or the next call; undefined = default echo). */
  setResponse(reply: ReplyScript | undefined): void;
  /** Forget requests, faults and the scripted reply. */
  reset(): void;
  close(): Promise<void>;
}

/** Context a provider renderer gets for one request. */
export interface RenderContext {
  req: RecordedRequest;
  res: ServerResponse;
  reply: MockReply;
  fault: Fault | undefined;
  /** Write SSE events honouring cadence / slow-first-byte / reset-mid-stream / stream-error faults. */
  writeEvents(
    events: string[],
    errorEvent: (f: Extract<Fault, { kind: 'stream-error' }>) => string,
  ): Promise<void>;
  /** Write a JSON body honouring slow-first-byte / reset-mid-stream faults. */
  writeJson(status: number, body: unknown, headers?: Record<string, string>): Promise<void>;
}

export interface ProviderBehaviour {
  /** Route + validate: return an error [status, body] to send, or undefined to go on. */
  validate(req: RecordedRequest): [number, unknown] | undefined;
  /** Default body for a status fault. */
  errorBody(status: number): unknown;
  render(ctx: RenderContext): Promise<void>;
  /** Path prefix of `url`, e.g. /v1 */
  basePath: string;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Text of the last user message, for echo replies (OpenAI and Anthropic shapes). */
export function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { role?: unknown; content?: unknown };
    if (m?.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    if (Array.isArray(m.content)) {
      const texts: string[] = [];
      for (const p of m.content as Record<string, unknown>[]) {
        if (p?.type === 'text' && typeof p.text === 'string') texts.push(p.text);
        else if (p?.type === 'tool_result') texts.push(`[tool_result ${String(p.tool_use_id)}]`);
        else if (p?.type === 'image' || p?.type === 'image_url') texts.push('[image]');
      }
      return texts.join(' ');
    }
    return '';
  }
  return '';
}

/** Split text into word deltas ("a b c" -> ["a ", "b ", "c"]). */
export function wordChunks(text: string): string[] {
  if (text === '') return [];
  return text.match(/\S+\s*|\s+/g) ?? [text];
}

/** Default reply for a request: echo of the last user text. */
export function defaultReply(req: RecordedRequest): MockReply {
  return { content: `echo: ${lastUserText(req.body?.messages ?? responsesInputMessages(req.body?.input))}` };
}

/** A Responses API `input` (string or items) as chat-shaped messages, for echo replies. */
function responsesInputMessages(input: unknown): unknown {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  if (!Array.isArray(input)) return undefined;
  return input.map((item: { role?: unknown; content?: unknown }) => ({
    role: item?.role,
    content: Array.isArray(item?.content)
      ? item.content.map((p: { type?: unknown; text?: unknown }) =>
          p?.type === 'input_text' ? { type: 'text', text: p.text } : p,
        )
      : item?.content,
  }));
}

export async function startMockServer(behaviour: ProviderBehaviour): Promise<MockServer> {
  const requests: RecordedRequest[] = [];
  let queue: FaultRule[] = [];
  let rules: FaultRule[] = [];
  let script: ReplyScript | undefined;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let closing = false;

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const takeFault = (req: RecordedRequest): Fault | undefined => {
    for (const r of rules) {
      if (r.remaining > 0 && r.match!(req)) {
        r.remaining--;
        return r.fault;
      }
    }
    const head = queue[0];
    if (head === undefined) return undefined;
    head.remaining--;
    if (head.remaining <= 0) queue.shift();
    return head.fault;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const raw = Buffer.concat(parts);
    let body: unknown;
    try {
      body = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : undefined;
    } catch {
      body = undefined;
    }
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      body,
      raw,
      at: Date.now(),
    };
    requests.push(rec);
    const fault = takeFault(rec);
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'stall') return; // answered by nobody; close() destroys the socket
    if (fault?.kind === 'delay') await wait(fault.ms);
    if (closing) return;
    if (fault?.kind === 'status') {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        ...(fault.headers ?? {}),
      };
      if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
      const b = fault.body ?? behaviour.errorBody(fault.status);
      res.writeHead(fault.status, headers);
      res.end(typeof b === 'string' ? b : JSON.stringify(b));
      return;
    }
    const invalid = behaviour.validate(rec);
    if (invalid) {
      res.writeHead(invalid[0], { 'content-type': 'application/json' });
      res.end(JSON.stringify(invalid[1]));
      return;
    }
    const scripted = typeof script === 'function' ? script(rec) : script;
    const reply: MockReply = { ...defaultReply(rec), ...(scripted ?? {}) };

    const ctx: RenderContext = {
      req: rec,
      res,
      reply,
      fault,
      async writeEvents(events, errorEvent) {
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
        });
        res.flushHeaders();
        if (fault?.kind === 'slow-first-byte') await wait(fault.ms);
        const cut =
          fault?.kind === 'reset-mid-stream' || fault?.kind === 'stream-error'
            ? (fault.afterEvents ?? 2)
            : Infinity;
        for (let i = 0; i < events.length; i++) {
          if (closing || res.destroyed) return;
          if (i === cut) {
            if (fault?.kind === 'stream-error') res.end(errorEvent(fault));
            else {
              // Let the events written so far reach the client before the connection drops (a
              // destroy right behind them may overtake them, and the client would see no byte).
              await wait(20);
              res.socket?.destroy();
            }
            return;
          }
          res.write(events[i]);
          if (fault?.kind === 'cadence' && i < events.length - 1) await wait(fault.ms);
        }
        if (cut !== Infinity && cut >= events.length && fault?.kind === 'stream-error') {
          res.end(errorEvent(fault));
          return;
        }
        res.end();
      },
      async writeJson(status, payload, headers = {}) {
        const text = Buffer.from(JSON.stringify(payload));
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.flushHeaders();
        if (fault?.kind === 'slow-first-byte') await wait(fault.ms);
        if (closing || res.destroyed) return;
        if (fault?.kind === 'reset-mid-stream') {
          res.write(text.subarray(0, text.length >> 1));
          await wait(5);
          res.socket?.destroy();
          return;
        }
        res.end(text);
      },
    };
    await behaviour.render(ctx);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `mock failure: ${String(err)}`, type: 'mock_error' } }));
      } else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}${behaviour.basePath}`,
    port,
    requests,
    get lastRequest() {
      return requests[requests.length - 1];
    },
    failNext(f) {
      const { times = 1, ...fault } = f as Fault & { times?: number };
      queue.push({ fault: fault as Fault, remaining: times });
    },
    failWhen(pred, fault, times = Infinity) {
      rules.push({ fault, remaining: times, match: pred });
    },
    setResponse(reply) {
      script = reply;
    },
    reset() {
      requests.length = 0;
      queue = [];
      rules = [];
      script = undefined;
    },
    async close() {
      closing = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
