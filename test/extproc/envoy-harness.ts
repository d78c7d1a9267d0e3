// A stand-in for Envoy in front of an ext_proc server: an HTTP listener (what the app's
// OPENAI_BASE_URL points at) that, for every request, opens one real gRPC Process stream to the
// server under test, plays Envoy's side of the protocol exactly as docs/envoy-ext-proc.md
// describes, then forwards the request to the upstream the answers chose, the way Envoy's
// ext_proc -> dynamic_forward_proxy -> router chain would.
//
// It records every rule Envoy enforces or silently applies as a violation (tests assert there
// are none) and reacts as Envoy would: a rejected mutation or a spurious answer fails the request
// with a 500 local reply, an ignored field is ignored.
//
// Envoy's side, as sent: lower-case keys, values in raw_value bytes, pseudo-headers, one message
// per phase in order (headers, then the BUFFERED body once the headers answer came back), several
// STREAMED chunks in flight without waiting for answers, an empty last chunk with end_of_stream.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { EXT_PROC_METHOD_PATH, EXT_PROC_PROTO } from '../../src/extproc/protos.js';
import { envoyMessageType, envoyRoot, protobuf } from './envoy-protos.js';

// ---------------------------------------------------------------------------------------------
// Options

export type BodyMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL';
export type HeaderMode = 'DEFAULT' | 'SEND' | 'SKIP';
export interface Mode {
  request_header_mode: HeaderMode;
  response_header_mode: HeaderMode;
  request_body_mode: BodyMode;
  response_body_mode: BodyMode;
  request_trailer_mode: HeaderMode;
  response_trailer_mode: HeaderMode;
}

export interface RouteRule {
  /** All must match (exact value); no headers = catch-all. */
  headers?: { name: string; exact: string }[];
  cluster?: string;
  direct?: { status: number; body?: string };
  removeRequestHeaders?: string[];
}

export interface ClusterSpec {
  /** dynamic forward proxy: the upstream is :authority; tls picks https with SNI = host. */
  tls: boolean;
}

export interface HarnessOptions {
  /** gRPC target of the server under test: `unix:/path` or `127.0.0.1:port`. */
  extProc: string;
  processingMode?: Partial<Mode>;
  allowModeOverride?: boolean;
  allowAllRouting?: boolean;
  allowEnvoy?: boolean;
  failureModeAllow?: boolean;
  messageTimeoutMs?: number;
  /** 0: override_message_timeout is ignored (Envoy's default). */
  maxMessageTimeoutMs?: number;
  /** Listener per_connection_buffer_limit_bytes: larger BUFFERED bodies get 413. */
  bufferLimit?: number;
  /** ext_proc cluster max_receive_message_length. */
  maxMessageBytes?: number;
  routes?: RouteRule[];
  clusters?: Record<string, ClusterSpec>;
  receivingNamespaces?: string[];
  /** Splits each upstream body chunk before it is sent as STREAMED messages (not SSE-aligned). */
  rechunk?: (chunk: Buffer) => Buffer[];
  /** STREAMED: end with a separate empty chunk carrying end_of_stream (default true). */
  emptyLastChunk?: boolean;
  /** HCM normalize_path / merge_slashes / path_with_escaped_slashes_action (REJECT_REQUEST only). */
  paths?: { normalize: boolean; mergeSlashes: boolean; rejectEscapedSlashes: boolean };
  /** Keep a client-supplied x-request-id (Envoy may, and then ids repeat across requests). */
  preserveRequestId?: boolean;
  /** Redirect a TLS upstream authority somewhere else (tests have no TLS mocks). */
  upstreamOverride?: (
    authority: string,
    tls: boolean,
  ) => { host: string; port: number; tls: boolean } | undefined;
}

const DEFAULT_MODE: Mode = {
  request_header_mode: 'SEND',
  response_header_mode: 'SEND',
  request_body_mode: 'BUFFERED',
  response_body_mode: 'NONE',
  request_trailer_mode: 'SKIP',
  response_trailer_mode: 'SKIP',
};

export interface AccessLogEntry {
  method: string;
  path: string;
  status: number;
  upstream?: string;
  cluster?: string;
  flags: string[];
  metadata: Record<string, Record<string, unknown>>;
  messagesSent: number;
  answers: number;
  durationMs: number;
}

// ---------------------------------------------------------------------------------------------
// A header map like Envoy's: ordered, duplicates allowed, lower-case keys.

export class HeaderMapLite {
  entries: [string, string][] = [];
  get(k: string): string | undefined {
    return this.entries.find((e) => e[0] === k)?.[1];
  }
  getAll(k: string): string[] {
    return this.entries.filter((e) => e[0] === k).map((e) => e[1]);
  }
  set(k: string, v: string): void {
    const i = this.entries.findIndex((e) => e[0] === k);
    this.entries = this.entries.filter((e, j) => e[0] !== k || j === i);
    if (i >= 0) this.entries[this.entries.findIndex((e) => e[0] === k)] = [k, v];
    else this.entries.push([k, v]);
  }
  add(k: string, v: string): void {
    this.entries.push([k, v]);
  }
  remove(k: string): void {
    this.entries = this.entries.filter((e) => e[0] !== k);
  }
  toProto(): { headers: { key: string; raw_value: Buffer }[] } {
    return { headers: this.entries.map(([key, v]) => ({ key, raw_value: Buffer.from(v, 'latin1') })) };
  }
  plain(): Record<string, string> {
    const o: Record<string, string> = {};
    for (const [k, v] of this.entries)
      if (!k.startsWith(':')) o[k] = o[k] === undefined ? v : `${o[k]}, ${v}`;
    return o;
  }
}

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);
const VALID_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const VALID_VALUE = /^[^\0\r\n]*$/;

// ---------------------------------------------------------------------------------------------

type Decoded = { msg: protobuf.Message & Record<string, unknown>; obj: Record<string, any> };

const has = (m: unknown, k: string) =>
  m !== null && typeof m === 'object' && Object.prototype.hasOwnProperty.call(m, k);

class RequestFailed extends Error {}

/** Per-request view of the gRPC stream: a FIFO of outstanding messages and their answers. */
class ProcStream {
  readonly call: grpc.ClientDuplexStream<Buffer, Decoded>;
  readonly waiting: { kind: string; resolve: (d: Decoded) => void; reject: (e: Error) => void }[] = [];
  closed = false;
  failed: string | undefined;
  sent = 0;
  answers = 0;
  #timer: NodeJS.Timeout | undefined;
  #overridden = false;

  constructor(
    private readonly h: EnvoyHarness,
    private readonly ctx: RequestCtx,
  ) {
    this.call = h.client.makeBidiStreamRequest(
      EXT_PROC_METHOD_PATH,
      (b: Buffer) => b,
      (buf: Buffer) => h.decodeResponse(buf),
    ) as grpc.ClientDuplexStream<Buffer, Decoded>;
    this.call.on('data', (d: Decoded) => this.#onAnswer(d));
    this.call.on('error', (e: grpc.ServiceError) =>
      this.#fail(`gRPC stream failed: ${e.code} ${e.details}`, e.code),
    );
    this.call.on('end', () => {
      this.closed = true;
      if (this.waiting.length > 0)
        this.#fail('ext_proc server closed the stream (OK) with answers outstanding', 0);
    });
  }

  send(kind: string, payload: Record<string, unknown>): Promise<Decoded> {
    if (this.closed || this.failed) return Promise.reject(new RequestFailed(this.failed ?? 'stream closed'));
    const bytes = this.h.encodeRequest({ [kind]: payload });
    this.sent++;
    return new Promise<Decoded>((resolve, reject) => {
      this.waiting.push({ kind, resolve, reject });
      if (!this.#timer) this.#arm(this.h.opts.messageTimeoutMs);
      this.call.write(bytes);
    });
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.h.violation(
        this.ctx,
        `message timeout (${ms} ms) waiting for the answer to ${this.waiting[0]?.kind}`,
      );
      this.#fail('message timeout', 'timeout');
    }, ms);
  }

  #onAnswer(d: Decoded): void {
    const { msg, obj } = d;
    if (this.failed || this.ctx.processingComplete) {
      return; // Envoy ignores messages after processing completed
    }
    if (has(msg, 'override_message_timeout')) {
      const kindSet = [
        'request_headers',
        'response_headers',
        'request_body',
        'response_body',
        'request_trailers',
        'response_trailers',
        'immediate_response',
      ].find((k) => has(msg, k));
      if (kindSet)
        this.h.violation(
          this.ctx,
          `override_message_timeout sent together with ${kindSet}: Envoy ignores the answer`,
        );
      const dur = obj.override_message_timeout as { seconds?: string | number; nanos?: number };
      const ms = Number(dur.seconds ?? 0) * 1000 + (dur.nanos ?? 0) / 1e6;
      const max = this.h.opts.maxMessageTimeoutMs;
      if (max <= 0)
        this.h.violation(
          this.ctx,
          'override_message_timeout without max_message_timeout configured: ignored',
        );
      else if (ms > max)
        this.h.violation(
          this.ctx,
          `override_message_timeout ${ms} ms above max_message_timeout ${max} ms: ignored`,
        );
      else if (this.#timer && !this.#overridden) {
        this.#overridden = true;
        this.#arm(ms);
      }
      return;
    }
    const head = this.waiting.shift();
    if (!head) {
      this.h.violation(this.ctx, `spurious message (${String(obj.response)}) with nothing outstanding`);
      return;
    }
    this.answers++;
    this.#overridden = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.waiting.length > 0) this.#arm(this.h.opts.messageTimeoutMs);
    const member = obj.response as string | undefined;
    if (member !== head.kind && member !== 'immediate_response') {
      this.h.violation(this.ctx, `answer of the wrong kind: got ${member ?? 'nothing'} for ${head.kind}`);
      // Envoy: spurious message -> stop talking to the processor for this request.
      this.#fail(`spurious ${member ?? 'empty'} answer`, 'spurious');
      head.reject(new RequestFailed('spurious'));
      return;
    }
    head.resolve(d);
  }

  #fail(reason: string, code: number | string): void {
    if (this.failed) return;
    this.failed = reason;
    clearTimeout(this.#timer);
    if (code !== 0 && !this.ctx.processingComplete && code !== 'spurious') {
      // a gRPC error with answers outstanding: Envoy answers the client itself (fail closed)
      if (code !== grpc.status.CANCELLED && typeof code === 'number') this.h.grpcErrors.push(reason);
    }
    const err = new RequestFailed(reason);
    (err as RequestFailed & { code?: number | string }).code = code;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  end(): void {
    clearTimeout(this.#timer);
    if (!this.closed) {
      this.closed = true;
      this.call.end();
    }
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.closed = true;
    this.call.cancel();
  }
}

interface RequestCtx {
  id: number;
  log: AccessLogEntry;
  processingComplete: boolean;
  decMode: Mode;
  encMode: Mode;
  routeCached: RouteRule | undefined;
  routeCleared: boolean;
}

export class EnvoyHarness {
  readonly opts: Required<Omit<HarnessOptions, 'rechunk' | 'upstreamOverride' | 'processingMode' | 'paths'>> &
    Pick<HarnessOptions, 'rechunk' | 'upstreamOverride' | 'paths'> & { processingMode: Mode };
  readonly client: grpc.Client;
  readonly violations: string[] = [];
  readonly grpcErrors: string[] = [];
  readonly accessLog: AccessLogEntry[] = [];
  server: http.Server | undefined;
  port = 0;
  #nextId = 1;
  readonly #reqType: protobuf.Type;
  readonly #resType: protobuf.Type;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 2048 });
  readonly #tlsAgent = new https.Agent({ keepAlive: true, maxSockets: 2048 });

  constructor(options: HarnessOptions) {
    const bufferLimit = options.bufferLimit ?? 32 * 1024 * 1024;
    this.opts = {
      extProc: options.extProc,
      processingMode: { ...DEFAULT_MODE, ...options.processingMode },
      paths: options.paths,
      allowModeOverride: options.allowModeOverride ?? true,
      allowAllRouting: options.allowAllRouting ?? true,
      allowEnvoy: options.allowEnvoy ?? false,
      failureModeAllow: options.failureModeAllow ?? false,
      messageTimeoutMs: options.messageTimeoutMs ?? 5000,
      maxMessageTimeoutMs: options.maxMessageTimeoutMs ?? 0,
      bufferLimit,
      maxMessageBytes: options.maxMessageBytes ?? bufferLimit + 1024 * 1024,
      routes: options.routes ?? [{ cluster: 'dfp_plain' }],
      clusters: options.clusters ?? { dfp_plain: { tls: false } },
      receivingNamespaces: options.receivingNamespaces ?? ['tierflow'],
      emptyLastChunk: options.emptyLastChunk ?? true,
      preserveRequestId: options.preserveRequestId ?? false,
      rechunk: options.rechunk,
      upstreamOverride: options.upstreamOverride,
    };
    envoyRoot([EXT_PROC_PROTO]);
    this.#reqType = envoyMessageType('envoy.service.ext_proc.v3.ProcessingRequest');
    this.#resType = envoyMessageType('envoy.service.ext_proc.v3.ProcessingResponse');
    this.client = new grpc.Client(this.opts.extProc, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': this.opts.maxMessageBytes,
      'grpc.max_send_message_length': this.opts.maxMessageBytes,
      // Envoy's HTTP/2 windows are 256 MiB by default; Node's 64 KiB would throttle our answers.
      'grpc-node.flow_control_window': 256 * 1024 * 1024,
    });
  }

  // --- wire ------------------------------------------------------------------------------------

  encodeRequest(obj: Record<string, unknown>): Buffer {
    const err = this.#reqType.verify(obj);
    if (err) throw new Error(`harness bug: bad ProcessingRequest: ${err}`);
    return Buffer.from(this.#reqType.encode(this.#reqType.fromObject(obj)).finish());
  }

  decodeResponse(buf: Buffer): Decoded {
    const msg = this.#resType.decode(buf) as protobuf.Message & Record<string, unknown>;
    const obj = this.#resType.toObject(msg, { enums: String, longs: String, oneofs: true, defaults: false });
    return { msg, obj };
  }

  violation(ctx: RequestCtx | undefined, text: string): void {
    this.violations.push(ctx ? `#${ctx.id} ${ctx.log.method} ${ctx.log.path}: ${text}` : text);
  }

  // --- lifecycle -----------------------------------------------------------------------------

  async listen(port = 0): Promise<string> {
    this.server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.violation(undefined, `harness error: ${(err as Error).stack ?? String(err)}`);
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    this.client.close();
    this.#agent.destroy();
    this.#tlsAgent.destroy();
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((r) => this.server!.close(() => r()));
    }
  }

  // --- one HTTP request ------------------------------------------------------------------------

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const ctx: RequestCtx = {
      id: this.#nextId++,
      log: {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        status: 0,
        flags: [],
        metadata: {},
        messagesSent: 0,
        answers: 0,
        durationMs: 0,
      },
      processingComplete: false,
      decMode: { ...this.opts.processingMode },
      encMode: { ...this.opts.processingMode },
      routeCached: undefined,
      routeCleared: false,
    };
    const headers = new HeaderMapLite();
    const path = normalizedPath(req.url ?? '/', this.opts.paths);
    if (path === undefined) {
      // Envoy's local reply for path_with_escaped_slashes_action: REJECT_REQUEST.
      ctx.log.status = 400;
      ctx.log.flags.push('escaped_slashes');
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('Bad Request');
      req.resume();
      this.accessLog.push(ctx.log);
      return;
    }
    headers.add(':authority', req.headers.host ?? '');
    headers.add(':path', path);
    headers.add(':method', req.method ?? 'GET');
    headers.add(':scheme', 'http');
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i]!.toLowerCase();
      if (k === 'host' || HOP.has(k)) continue;
      headers.add(k, req.rawHeaders[i + 1]!);
    }
    headers.set('x-forwarded-proto', 'http');
    if (!this.opts.preserveRequestId || !headers.get('x-request-id'))
      headers.set('x-request-id', randomUUID());

    const body = await readBody(req, this.opts.bufferLimit + 1);
    const hasBody = body.length > 0 || req.headers['transfer-encoding'] !== undefined;
    // Envoy computes the route once before our filter runs (and caches it).
    ctx.routeCached = this.#route(headers);

    const stream = new ProcStream(this, ctx);
    let clientGone = false;
    res.on('close', () => {
      if (!res.writableFinished) {
        clientGone = true;
        stream.cancel();
      }
    });
    const finishLog = (status: number) => {
      ctx.log.status = status;
      ctx.log.durationMs = performance.now() - started;
      ctx.log.messagesSent = stream.sent;
      ctx.log.answers = stream.answers;
      this.accessLog.push(ctx.log);
    };
    const localReply = (status: number, text: string, extra?: Record<string, string>) => {
      ctx.processingComplete = true;
      stream.end();
      if (!res.headersSent) {
        const b = Buffer.from(text);
        res.writeHead(status, { 'content-type': 'text/plain', 'content-length': String(b.length), ...extra });
        res.end(b);
      } else res.destroy();
      finishLog(status);
    };
    const onProcError = (err: unknown): boolean => {
      // true: the request was answered locally (fail closed / timeout); false: carry on without ext_proc
      const code = (err as { code?: unknown }).code;
      if (code === 'spurious') {
        ctx.processingComplete = true;
        return false;
      }
      if (code === 'timeout') {
        if (this.opts.failureModeAllow) return false;
        localReply(504, '');
        return true;
      }
      if (this.opts.failureModeAllow) {
        ctx.processingComplete = true;
        return false;
      }
      localReply(500, '');
      return true;
    };

    // ---- request headers
    const send = async (
      kind: string,
      payload: Record<string, unknown>,
    ): Promise<Decoded | 'done' | 'skip'> => {
      if (ctx.processingComplete || stream.failed) return 'skip';
      try {
        const d = await stream.send(kind, payload);
        if (clientGone) return 'done';
        const imm = d.obj.immediate_response as Record<string, any> | undefined;
        this.#collectMetadata(ctx, d);
        if (imm) {
          this.#checkNoModeOverrideOutsideHeaders(ctx, d, kind, true);
          ctx.processingComplete = true;
          stream.end();
          this.#sendImmediate(ctx, d, res, finishLog);
          return 'done';
        }
        return d;
      } catch (err) {
        if (clientGone) return 'done';
        return onProcError(err) ? 'done' : 'skip';
      }
    };

    let reqBody = body;
    if (ctx.decMode.request_header_mode !== 'SKIP') {
      const r = await send('request_headers', { headers: headers.toProto(), end_of_stream: !hasBody });
      if (r === 'done') return;
      if (r !== 'skip') {
        const err = this.#applyCommon(ctx, r, 'request_headers', headers, undefined);
        if (err) return localReply(500, err);
        const common = (r.obj.request_headers as Record<string, any>).response ?? {};
        if (common.status === 'CONTINUE_AND_REPLACE') {
          if (has(r.msg.request_headers && (r.msg.request_headers as any).response, 'body_mutation')) {
            reqBody = applyBodyMutation(reqBody, common.body_mutation);
            headers.remove('content-length');
          }
          ctx.decMode.request_body_mode = 'NONE';
        }
      }
    }
    if (
      body.length > this.opts.bufferLimit &&
      ctx.decMode.request_body_mode === 'BUFFERED' &&
      !ctx.processingComplete
    ) {
      return localReply(413, 'Payload Too Large');
    }

    // ---- request body
    if (hasBody && !ctx.processingComplete && !stream.failed) {
      if (ctx.decMode.request_body_mode === 'BUFFERED') {
        const r = await send('request_body', { body, end_of_stream: true });
        if (r === 'done') return;
        if (r !== 'skip') {
          const err = this.#applyCommon(ctx, r, 'request_body', headers, true);
          if (err) return localReply(500, err);
          const commonMsg = (r.msg.request_body as any)?.response;
          if (has(commonMsg, 'body_mutation')) {
            const next = applyBodyMutation(reqBody, (r.obj.request_body as any).response.body_mutation);
            const cl = headers.get('content-length');
            if (cl !== undefined && Number(cl) !== next.length) {
              this.violation(
                ctx,
                `content-length ${cl} does not match the replaced BUFFERED body (${next.length} bytes)`,
              );
              return localReply(500, 'mismatch between content length and the length of the mutated body');
            }
            reqBody = next;
          }
        }
      } else if (ctx.decMode.request_body_mode === 'STREAMED') {
        const r = await send('request_body', { body, end_of_stream: true });
        if (r === 'done') return;
        if (r !== 'skip') {
          this.#checkStreamedAnswer(ctx, r, 'request_body');
          const bm = (r.obj.request_body as any)?.response?.body_mutation;
          if (bm) reqBody = applyBodyMutation(reqBody, bm);
          headers.remove('content-length');
        }
      }
    }

    // ---- route and forward
    const route = ctx.routeCleared ? this.#route(headers) : ctx.routeCached;
    if (!route) return localReply(404, '');
    if (route.direct) return localReply(route.direct.status, route.direct.body ?? '');
    const cluster = route.cluster ? this.opts.clusters[route.cluster] : undefined;
    if (!cluster) return localReply(503, 'no healthy upstream');
    ctx.log.cluster = route.cluster;
    for (const h of route.removeRequestHeaders ?? []) headers.remove(h);
    const authority = headers.get(':authority') ?? '';
    const [host, portStr] = splitHostPort(authority, cluster.tls ? 443 : 80);
    let target = { host, port: portStr, tls: cluster.tls };
    target = this.opts.upstreamOverride?.(authority, cluster.tls) ?? target;
    ctx.log.upstream = `${target.host}:${target.port}`;

    // The router consumes x-envoy-upstream-rq-per-try-timeout-ms (never forwarded). With the route
    // timeout at 0s it bounds each try until the response starts; on expiry Envoy answers a local
    // 504 "upstream request timeout" (flag UT) through the filter chain, like its 503s.
    const perTry = Number(headers.get('x-envoy-upstream-rq-per-try-timeout-ms'));
    headers.remove('x-envoy-upstream-rq-per-try-timeout-ms');
    const upHeaders: Record<string, string | string[]> = {};
    for (const [k, v] of headers.entries) {
      if (k.startsWith(':') || HOP.has(k)) continue;
      const prev = upHeaders[k];
      upHeaders[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    upHeaders.host = authority;
    if (reqBody.length > 0 || hasBody) upHeaders['content-length'] = String(reqBody.length);

    const upstreamStart = performance.now();
    const upRes = await new Promise<http.IncomingMessage | { error: string }>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const mod = target.tls ? https : http;
      const r = mod.request(
        {
          host: target.host,
          port: target.port,
          method: headers.get(':method') ?? 'GET',
          path: headers.get(':path') ?? '/',
          headers: upHeaders,
          agent: target.tls ? this.#tlsAgent : this.#agent,
          servername: target.tls ? target.host : undefined,
        },
        (up) => {
          clearTimeout(timer);
          resolve(up);
        },
      );
      if (perTry > 0) {
        timer = setTimeout(() => {
          r.destroy();
          resolve({ error: 'per_try_timeout' });
        }, perTry);
      }
      r.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const reason =
          e.code === 'ECONNREFUSED'
            ? 'remote connection failure, transport failure reason: delayed connect error: 111'
            : 'connection termination';
        resolve({ error: reason });
      });
      res.on('close', () => {
        if (!res.writableFinished) r.destroy();
      });
      r.end(reqBody);
    });

    // ---- response headers
    const respHeaders = new HeaderMapLite();
    let upstreamBody: AsyncIterable<Buffer>;
    if ('error' in upRes) {
      // Envoy's own local reply for a connect failure or a reset before headers, or a per-try timeout.
      const timedOut = upRes.error === 'per_try_timeout';
      const text = timedOut
        ? 'upstream request timeout'
        : `upstream connect error or disconnect/reset before headers. reset reason: ${upRes.error}`;
      respHeaders.add(':status', timedOut ? '504' : '503');
      respHeaders.add('content-length', String(Buffer.byteLength(text)));
      respHeaders.add('content-type', 'text/plain');
      ctx.log.flags.push(timedOut ? 'UT' : upRes.error.startsWith('remote') ? 'UF' : 'UC');
      upstreamBody = (async function* () {
        yield Buffer.from(text);
      })();
    } else {
      respHeaders.add(':status', String(upRes.statusCode ?? 502));
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) {
        const k = upRes.rawHeaders[i]!.toLowerCase();
        if (HOP.has(k)) continue;
        respHeaders.add(k, upRes.rawHeaders[i + 1]!);
      }
      respHeaders.add('x-envoy-upstream-service-time', String(Math.round(performance.now() - upstreamStart)));
      upstreamBody = upRes;
    }
    const destroyUpstream = () => {
      if (!('error' in upRes)) upRes.destroy();
    };

    let encBodyMode: BodyMode = ctx.processingComplete ? 'NONE' : ctx.encMode.response_body_mode;
    if (!ctx.processingComplete && !stream.failed && ctx.encMode.response_header_mode !== 'SKIP') {
      const r = await send('response_headers', { headers: respHeaders.toProto(), end_of_stream: false });
      if (r === 'done') return destroyUpstream();
      if (r !== 'skip') {
        const err = this.#applyCommon(ctx, r, 'response_headers', respHeaders, undefined);
        if (err) {
          destroyUpstream();
          return localReply(500, err);
        }
        encBodyMode = ctx.encMode.response_body_mode;
      } else encBodyMode = 'NONE';
    }
    if (ctx.processingComplete || stream.failed) encBodyMode = 'NONE';

    const writeHead = (h: HeaderMapLite) => {
      const status = Number(h.get(':status') ?? 200);
      const out: [string, string][] = h.entries.filter(([k]) => !k.startsWith(':'));
      res.writeHead(status, out.flat());
      ctx.log.status = status;
      return status;
    };

    // The provider resets after its response headers: Envoy's router has already started the
    // response (even when a BUFFERED filter holds the headers), so it resets the client stream.
    const upstreamReset = (status: number) => {
      ctx.log.flags.push(clientGone ? 'DC' : 'UR');
      ctx.processingComplete = true;
      stream.cancel();
      res.destroy();
      finishLog(status);
    };

    if (encBodyMode === 'NONE') {
      stream.end();
      const status = writeHead(respHeaders);
      try {
        for await (const c of upstreamBody) res.write(c);
      } catch {
        return upstreamReset(status);
      }
      res.end();
      finishLog(status);
      return;
    }

    if (encBodyMode === 'BUFFERED') {
      const chunks: Buffer[] = [];
      try {
        for await (const c of upstreamBody) chunks.push(c as Buffer);
      } catch {
        return upstreamReset(Number(respHeaders.get(':status') ?? 0));
      }
      const whole = Buffer.concat(chunks);
      const r = await send('response_body', { body: whole, end_of_stream: true });
      if (r === 'done') return;
      let out: Buffer = whole;
      if (r !== 'skip') {
        const err = this.#applyCommon(ctx, r, 'response_body', respHeaders, true);
        if (err) return localReply(500, err);
        const commonMsg = (r.msg.response_body as any)?.response;
        if (has(commonMsg, 'body_mutation')) {
          const next = applyBodyMutation(whole, (r.obj.response_body as any).response.body_mutation);
          const cl = respHeaders.get('content-length');
          if (cl !== undefined && Number(cl) !== next.length) {
            this.violation(
              ctx,
              `content-length ${cl} does not match the replaced BUFFERED response body (${next.length} bytes)`,
            );
            return localReply(500, 'mismatch between content length and the length of the mutated body');
          }
          out = next;
        }
      }
      stream.end();
      const status = writeHead(respHeaders);
      res.end(out);
      finishLog(status);
      return;
    }

    // STREAMED: headers go downstream now (content-length stripped), chunks flow with several in flight.
    respHeaders.remove('content-length');
    const status = writeHead(respHeaders);
    type Item = { body: Buffer; end: boolean; answer: Promise<Decoded | 'done' | 'skip'> };
    const items: Item[] = [];
    let wake: (() => void) | undefined;
    const sendStreamed = async (b: Buffer, end: boolean): Promise<Decoded | 'done' | 'skip'> => {
      try {
        const d = await stream.send('response_body', { body: b, end_of_stream: end });
        this.#collectMetadata(ctx, d);
        if (d.obj.immediate_response) {
          this.violation(
            ctx,
            'immediate_response after response headers went downstream: Envoy can only reset the stream',
          );
          ctx.processingComplete = true;
          res.destroy();
          return 'done';
        }
        return d;
      } catch (err) {
        if (clientGone) return 'done';
        const code = (err as { code?: unknown }).code;
        if (code === 'spurious' || this.opts.failureModeAllow) return 'skip';
        // fail closed after headers were sent: Envoy resets the downstream stream
        ctx.processingComplete = true;
        res.destroy();
        return 'done';
      }
    };
    const push = (b: Buffer, end: boolean) => {
      const answer: Item['answer'] =
        ctx.processingComplete || stream.failed ? Promise.resolve('skip') : sendStreamed(b, end);
      answer.catch(() => {});
      items.push({ body: b, end, answer });
      wake?.();
    };
    const writer = (async () => {
      // answers are consumed strictly in order, each applied to its own chunk
      for (let i = 0; ; i++) {
        while (items.length <= i) await new Promise<void>((r) => (wake = r));
        const item = items[i]!;
        const r = await item.answer;
        if (r === 'done') return;
        let out = item.body;
        if (r !== 'skip') {
          this.#checkStreamedAnswer(ctx, r, 'response_body');
          const bm = (r.obj.response_body as any)?.response?.body_mutation;
          if (bm) out = applyBodyMutation(item.body, bm);
        }
        if (out.length > 0 && !res.destroyed) res.write(out);
        if (item.end) return;
      }
    })();
    let held: Buffer | undefined;
    try {
      for await (const c of upstreamBody) {
        const pieces = this.opts.rechunk ? this.opts.rechunk(c as Buffer) : [c as Buffer];
        for (const p of pieces) {
          if (this.opts.emptyLastChunk) push(p, false);
          else {
            if (held) push(held, false);
            held = p;
          }
        }
        if (clientGone) break;
      }
    } catch {
      wake?.();
      return upstreamReset(status);
    }
    if (clientGone) {
      // Downstream reset: Envoy resets the ext_proc stream too (no end_of_stream is ever sent).
      ctx.log.flags.push('DC');
      stream.cancel();
      return finishLog(status);
    }
    if (this.opts.emptyLastChunk) push(Buffer.alloc(0), true);
    else push(held ?? Buffer.alloc(0), true);
    await writer;
    stream.end();
    if (!res.destroyed) res.end();
    finishLog(status);
  }

  // --- rules ---------------------------------------------------------------------------------

  /** Applies a headers/body CommonResponse; returns a local-reply reason when Envoy would fail the request. */
  #applyCommon(
    ctx: RequestCtx,
    d: Decoded,
    kind: string,
    headers: HeaderMapLite,
    buffered: boolean | undefined,
  ): string | undefined {
    const isHeaders = kind === 'request_headers' || kind === 'response_headers';
    const memberMsg = d.msg[kind] as Record<string, unknown> | undefined;
    const commonMsg = memberMsg && (memberMsg.response as Record<string, unknown> | undefined);
    const common = ((d.obj[kind] as Record<string, any>) ?? {}).response ?? {};
    this.#checkModeOverride(ctx, d, kind, isHeaders);
    if (common.clear_route_cache && !has(commonMsg, 'header_mutation')) {
      this.violation(
        ctx,
        `clear_route_cache without a header_mutation in the ${kind} answer: Envoy ignores it`,
      );
    }
    if (!isHeaders && !buffered && has(commonMsg, 'header_mutation')) {
      this.violation(ctx, `header_mutation in a STREAMED ${kind} answer is ignored (headers are gone)`);
    }
    if (has(commonMsg, 'header_mutation')) {
      try {
        this.#applyMutation(
          ctx,
          common.header_mutation ?? {},
          (commonMsg as any).header_mutation,
          headers,
          kind,
          common.status === 'CONTINUE_AND_REPLACE',
        );
      } catch (e) {
        if (e instanceof MutationFailure) {
          this.violation(ctx, `${kind} header mutation rejected: ${e.message}`);
          return e.message;
        }
        throw e;
      }
      if (common.clear_route_cache && kind.startsWith('request')) ctx.routeCleared = true;
    }
    if (has(commonMsg, 'trailers')) this.violation(ctx, `${kind} answer sets trailers (unsupported)`);
    return undefined;
  }

  #checkModeOverride(ctx: RequestCtx, d: Decoded, kind: string, isHeaders: boolean): void {
    if (!has(d.msg, 'mode_override')) return;
    if (!isHeaders) {
      this.violation(
        ctx,
        `mode_override in a ${kind} answer: Envoy honours it only in answer to a headers message`,
      );
      return;
    }
    if (!this.opts.allowModeOverride) {
      this.violation(ctx, 'mode_override while allow_mode_override is false: ignored');
      return;
    }
    const mm = d.msg.mode_override as Record<string, unknown>;
    const fields = [
      'request_header_mode',
      'response_header_mode',
      'request_body_mode',
      'response_body_mode',
      'request_trailer_mode',
      'response_trailer_mode',
    ];
    const missing = fields.filter((f) => !has(mm, f));
    if (missing.length > 0)
      this.violation(
        ctx,
        `mode_override in the ${kind} answer lacks ${missing.join(', ')} (body modes left unset mean NONE)`,
      );
    const mo = d.obj.mode_override as Mode;
    const full: Mode = {
      request_header_mode: mo.request_header_mode ?? 'DEFAULT',
      response_header_mode: mo.response_header_mode ?? 'DEFAULT',
      request_body_mode: mo.request_body_mode ?? 'NONE',
      response_body_mode: mo.response_body_mode ?? 'NONE',
      request_trailer_mode: mo.request_trailer_mode ?? 'DEFAULT',
      response_trailer_mode: mo.response_trailer_mode ?? 'DEFAULT',
    };
    ctx.decMode = { ...full };
    ctx.encMode = { ...full };
    if (full.request_header_mode === 'SKIP') ctx.decMode.request_header_mode = 'SKIP';
  }

  #checkNoModeOverrideOutsideHeaders(ctx: RequestCtx, d: Decoded, kind: string, immediate: boolean): void {
    if (immediate && has(d.msg, 'mode_override'))
      this.violation(
        ctx,
        `mode_override together with immediate_response (answer to ${kind}) is meaningless`,
      );
  }

  #checkStreamedAnswer(ctx: RequestCtx, d: Decoded, kind: string): void {
    this.#applyCommon(ctx, d, kind, new HeaderMapLite(), false);
  }

  #applyMutation(
    ctx: RequestCtx,
    mut: Record<string, any>,
    mutMsg: Record<string, unknown>,
    headers: HeaderMapLite,
    kind: string,
    replacing: boolean,
  ): void {
    for (const name of (mut.remove_headers as string[] | undefined) ?? []) {
      if (!VALID_NAME.test(name.toLowerCase().replace(/^:/, '')))
        throw new MutationFailure('Invalid character in remove_headers mutation.');
      if (name !== name.toLowerCase()) this.violation(ctx, `remove_headers key not lower-case: ${name}`);
      const n = name.toLowerCase();
      if (n.startsWith(':') || n === 'host') {
        this.violation(ctx, `remove_headers ${n}: pseudo-headers and host cannot be removed (ignored)`);
        continue;
      }
      if (!this.#allowed(n)) {
        this.violation(ctx, `remove_headers ${n} rejected by mutation rules (ignored)`);
        continue;
      }
      headers.remove(n);
    }
    const setMsgs = ((mutMsg as any).set_headers as Record<string, unknown>[] | undefined) ?? [];
    const sets = (mut.set_headers as Record<string, any>[] | undefined) ?? [];
    sets.forEach((sh, i) => {
      const shMsg = setMsgs[i] ?? {};
      const hMsg = (shMsg as any).header as Record<string, unknown> | undefined;
      if (!sh.header) return;
      const key: string = sh.header.key ?? '';
      const value: string | undefined = sh.header.value;
      const raw: Buffer | undefined = sh.header.raw_value;
      if (value && raw && raw.length > 0) {
        this.violation(ctx, `header ${key}: both value and raw_value are set (Envoy fails the request)`);
        throw new MutationFailure('Only one of value or raw_value in the HeaderValue message should be set.');
      }
      if (has(hMsg, 'value'))
        this.violation(ctx, `header ${key}: value is set; Envoy (1.32+) reads raw_value only`);
      if (has(shMsg, 'append_action'))
        this.violation(ctx, `header ${key}: append_action is ignored by ext_proc (use append)`);
      if (has(shMsg, 'keep_empty_value'))
        this.violation(ctx, `header ${key}: keep_empty_value is not honoured by ext_proc`);
      if (key !== key.toLowerCase()) this.violation(ctx, `header key not lower-case: ${key}`);
      const v = raw ? Buffer.from(raw).toString('latin1') : '';
      if (!VALID_NAME.test(key.toLowerCase().replace(/^:/, '')) || !VALID_VALUE.test(v)) {
        throw new MutationFailure('Invalid character in set_headers mutation.');
      }
      const n = key.toLowerCase();
      if (n === 'host') this.violation(ctx, 'sets host: set :authority instead');
      if (!this.#allowed(n) && !(replacing && n === ':method')) {
        this.violation(
          ctx,
          `set ${n} rejected by mutation rules (ignored; needs ${n.startsWith('x-envoy') ? 'allow_envoy' : 'allow_all_routing'})`,
        );
        return;
      }
      if (n === ':scheme' && v !== 'http' && v !== 'https') throw new MutationFailure(`Invalid :scheme ${v}`);
      if (n === ':status' && !(Number(v) >= 200 && Number(v) <= 599))
        throw new MutationFailure(`Invalid :status ${v}`);
      if (
        n.startsWith(':') &&
        kind.startsWith('request') &&
        ![':path', ':authority', ':method', ':scheme'].includes(n)
      ) {
        this.violation(ctx, `sets unknown pseudo-header ${n}`);
      }
      const append = sh.append?.value === true;
      if (append) headers.add(n, v);
      else headers.set(n, v);
    });
  }

  #allowed(name: string): boolean {
    if (!this.opts.allowAllRouting && [':authority', 'host', ':method', ':scheme'].includes(name))
      return false;
    if (!this.opts.allowEnvoy && name.startsWith('x-envoy-')) return false;
    return true;
  }

  #collectMetadata(ctx: RequestCtx, d: Decoded): void {
    if (!has(d.msg, 'dynamic_metadata')) return;
    const fields = (d.obj.dynamic_metadata as { fields?: Record<string, any> }).fields ?? {};
    for (const [ns, v] of Object.entries(fields)) {
      if (!this.opts.receivingNamespaces.includes(ns)) {
        this.violation(ctx, `dynamic_metadata namespace ${ns} is not in receiving_namespaces (dropped)`);
        continue;
      }
      if (!v.structValue) {
        this.violation(ctx, `dynamic_metadata ${ns} is not a struct (Envoy reads struct_value only)`);
        continue;
      }
      ctx.log.metadata[ns] = { ...(ctx.log.metadata[ns] ?? {}), ...structToJs(v.structValue) };
    }
  }

  #sendImmediate(
    ctx: RequestCtx,
    d: Decoded,
    res: http.ServerResponse,
    finishLog: (s: number) => void,
  ): void {
    const imm = d.obj.immediate_response as Record<string, any>;
    const immMsg = d.msg.immediate_response as Record<string, unknown>;
    if (!has(immMsg, 'status')) this.violation(ctx, 'immediate_response without status (required)');
    const raw = imm.status?.code;
    let code = typeof raw === 'number' ? raw : Number(statusEnumValue(raw));
    if (!(code >= 200)) {
      this.violation(ctx, `immediate_response status ${String(raw)} invalid: Envoy uses 500`);
      code = 500;
    }
    const h = new HeaderMapLite();
    const body: Buffer = imm.body ? Buffer.from(imm.body) : Buffer.alloc(0);
    if (body.length > 0) h.set('content-type', 'text/plain');
    if (has(immMsg, 'headers')) {
      try {
        this.#applyMutation(
          ctx,
          imm.headers ?? {},
          immMsg.headers as Record<string, unknown>,
          h,
          'immediate_response',
          false,
        );
      } catch (e) {
        this.violation(ctx, `immediate_response headers rejected: ${(e as Error).message}`);
      }
    }
    if (h.get('content-length') !== undefined && Number(h.get('content-length')) !== body.length) {
      this.violation(ctx, 'immediate_response content-length does not match its body');
    }
    h.set('content-length', String(body.length));
    if (res.headersSent) {
      this.violation(ctx, 'immediate_response after response headers went downstream');
      res.destroy();
      return;
    }
    const out = h.entries.filter(([k]) => !k.startsWith(':'));
    res.writeHead(code, out.flat());
    res.end(body);
    finishLog(code);
  }

  #route(headers: HeaderMapLite): RouteRule | undefined {
    for (const r of this.opts.routes) {
      if ((r.headers ?? []).every((m) => headers.get(m.name.toLowerCase()) === m.exact)) return r;
    }
    return undefined;
  }
}

class MutationFailure extends Error {}

function applyBodyMutation(
  current: Buffer,
  bm: { body?: Buffer | Uint8Array; clear_body?: boolean } | undefined,
): Buffer {
  if (!bm) return current;
  if (bm.clear_body) return Buffer.alloc(0);
  if (bm.body !== undefined) return Buffer.from(bm.body);
  return current;
}

async function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n <= max) chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

function splitHostPort(authority: string, defPort: number): [string, number] {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(authority) ?? /^([^:]+)(?::(\d+))?$/.exec(authority);
  if (!m) return [authority, defPort];
  return [m[1]!, m[2] ? Number(m[2]) : defPort];
}

let statusEnum: protobuf.Enum | undefined;
function statusEnumValue(name: unknown): number {
  statusEnum ??= envoyRoot().lookupEnum('envoy.type.v3.StatusCode');
  return typeof name === 'string' ? (statusEnum.values[name] ?? NaN) : NaN;
}

function structToJs(s: { fields?: Record<string, any> }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.fields ?? {})) out[k] = valueToJs(v);
  return out;
}
function valueToJs(v: Record<string, any>): unknown {
  if ('stringValue' in v) return v.stringValue;
  if ('numberValue' in v) return v.numberValue;
  if ('boolValue' in v) return v.boolValue;
  if ('structValue' in v) return structToJs(v.structValue);
  if ('listValue' in v) return (v.listValue.values ?? []).map(valueToJs);
  return null;
}

// ---------------------------------------------------------------------------------------------
// Options from a shipped Envoy bootstrap: the harness then follows exactly what our config says.

/**
 * The request path as Envoy's HTTP connection manager hands it to filters: escaped slashes
 * rejected (undefined), RFC 3986 dot segments removed (`%2e` counts as a dot, `\\` as a slash, as
 * in Envoy's canonicaliser), repeated slashes merged. The query is left alone.
 */
export function normalizedPath(raw: string, o: HarnessOptions['paths']): string | undefined {
  if (!o) return raw;
  const q = raw.indexOf('?');
  let path = q === -1 ? raw : raw.slice(0, q);
  const query = q === -1 ? '' : raw.slice(q);
  if (o.rejectEscapedSlashes && /%2f|%5c/i.test(path)) return undefined;
  if (o.normalize) {
    path = path.replace(/%2e/gi, '.').replaceAll('\\', '/');
    const out: string[] = [];
    const segments = path.split('/');
    segments.forEach((seg, i) => {
      const last = i === segments.length - 1;
      if (seg === '.') {
        if (last) out.push('');
      } else if (seg === '..') {
        if (out.length > 1) out.pop();
        if (last) out.push('');
      } else out.push(seg);
    });
    path = out.join('/') || '/';
    if (!path.startsWith('/')) path = '/' + path;
  }
  if (o.mergeSlashes) path = path.replace(/\/{2,}/g, '/');
  return path + query;
}

export function harnessOptionsFromBootstrap(bootstrap: any, extProc: string): HarnessOptions {
  const listener = bootstrap.static_resources.listeners[0];
  const hcm = listener.filter_chains[0].filters[0].typed_config;
  const ep = hcm.http_filters.find((f: any) => f.name === 'envoy.filters.http.ext_proc').typed_config;
  const dur = (s: string | undefined) => (s ? Math.round(parseFloat(s) * 1000) : 0);
  const pm = ep.processing_mode ?? {};
  const routes: RouteRule[] = [];
  for (const r of hcm.route_config.virtual_hosts[0].routes) {
    routes.push({
      headers: (r.match.headers ?? []).map((h: any) => ({ name: h.name, exact: h.string_match.exact })),
      cluster: r.route?.cluster,
      direct: r.direct_response
        ? { status: r.direct_response.status, body: r.direct_response.body?.inline_string }
        : undefined,
      removeRequestHeaders: r.request_headers_to_remove,
    });
  }
  const clusters: Record<string, ClusterSpec> = {};
  for (const c of bootstrap.static_resources.clusters) {
    if (c.cluster_type?.name === 'envoy.clusters.dynamic_forward_proxy')
      clusters[c.name] = { tls: !!c.transport_socket };
  }
  const ec = bootstrap.static_resources.clusters.find(
    (c: any) => c.name === ep.grpc_service.envoy_grpc.cluster_name,
  );
  void ec;
  return {
    extProc,
    processingMode: {
      request_header_mode: pm.request_header_mode ?? 'DEFAULT',
      response_header_mode: pm.response_header_mode ?? 'DEFAULT',
      request_body_mode: pm.request_body_mode ?? 'NONE',
      response_body_mode: pm.response_body_mode ?? 'NONE',
      request_trailer_mode: pm.request_trailer_mode ?? 'DEFAULT',
      response_trailer_mode: pm.response_trailer_mode ?? 'DEFAULT',
    },
    allowModeOverride: !!ep.allow_mode_override,
    allowAllRouting: !!ep.mutation_rules?.allow_all_routing,
    allowEnvoy: !!ep.mutation_rules?.allow_envoy,
    failureModeAllow: !!ep.failure_mode_allow,
    messageTimeoutMs: dur(ep.message_timeout) || 200,
    maxMessageTimeoutMs: dur(ep.max_message_timeout),
    bufferLimit: listener.per_connection_buffer_limit_bytes,
    maxMessageBytes: ep.grpc_service.envoy_grpc.max_receive_message_length,
    receivingNamespaces: ep.metadata_options?.receiving_namespaces?.untyped ?? [],
    routes,
    clusters,
    paths: {
      normalize: hcm.normalize_path === true,
      mergeSlashes: hcm.merge_slashes === true,
      rejectEscapedSlashes: hcm.path_with_escaped_slashes_action === 'REJECT_REQUEST',
    },
  };
}
