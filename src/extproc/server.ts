// The gRPC server for envoy.service.ext_proc.v3.ExternalProcessor: one bidirectional stream per
// HTTP request, driven by a per-stream StreamProcessor. Listens on a Unix socket and/or TCP, with
// message limits equal to the body limit we promise (plus the protobuf envelope), the standard
// grpc.health.v1 service, and a graceful shutdown that lets open streams finish.
import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { fastExtProcService } from './codec.js';
import { EXT_PROC_SERVICE, HEALTH_SERVICE, healthService } from './protos.js';
import type { ImmediateResponse, ProcessingRequest, ProcessingResponse, RequestKind } from './types.js';

export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;
/** Room for the ProcessingRequest envelope around a body of exactly the limit (headers, tags). */
export const MESSAGE_OVERHEAD = 1024 * 1024;
/** Owner and group may connect (Envoy shares the tierflow container's group); others may not. */
export const SOCKET_MODE = 0o660;

/** What the stream driver hands to a processor besides the message itself. */
export interface StreamIO {
  /**
   * Sends a message that is not an answer: only `override_message_timeout` (asks Envoy once per
   * message to wait longer, up to the filter's max_message_timeout) is allowed here.
   */
  extendTimeout(ms: number): void;
}

/**
 * Per-stream logic. onMessage is called once per ProcessingRequest, in order, and returns exactly
 * one answer (the matching member, or an immediate_response). The driver never calls onMessage
 * again before the previous answer is settled, so a processor sees a strictly sequential world.
 */
export interface StreamProcessor {
  onMessage(req: ProcessingRequest, io: StreamIO): ProcessingResponse | Promise<ProcessingResponse>;
  /** The gRPC stream ended: `end` (Envoy half-closed), `cancelled` (reset) or `error`. Called once. */
  onEnd(reason: 'end' | 'cancelled' | 'error'): void;
}

export type ProcessorFactory = () => StreamProcessor;

export interface ExtProcServerOptions {
  processor: ProcessorFactory;
  /** Unix socket path (the sidecar's shared emptyDir). A stale socket file is replaced. */
  socketPath?: string;
  /**
   * Mode of the socket after bind (default 0660). Connecting to a Unix socket needs write
   * permission; grpc-js creates it with the process umask (0755 under the usual 022), which only
   * the owner can connect to. In a pod Envoy runs as another UID with the same group.
   */
  socketMode?: number;
  /** TCP listener; host defaults to 127.0.0.1 (answers carry provider keys: never expose it). */
  tcp?: { host?: string; port: number };
  /** Largest request/response body we promise; message limits are this plus MESSAGE_OVERHEAD. */
  bodyLimit?: number;
  /** Called with a short reason when a processor throws (a bug); never with request data. */
  onInternalError?: (err: unknown) => void;
}

export interface BoundAddresses {
  socketPath?: string;
  tcpPort?: number;
}

type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' | 'UNKNOWN';

/** grpc.health.v1.Health: Check and Watch over a small status table. */
export class HealthService {
  readonly #status = new Map<string, Status>();
  readonly #watchers = new Set<{
    service: string;
    call: grpc.ServerWritableStream<{ service?: string }, { status: Status }>;
  }>();

  constructor(services: string[]) {
    for (const s of ['', ...services]) this.#status.set(s, 'SERVING');
  }

  set(serving: boolean): void {
    for (const s of this.#status.keys()) this.#status.set(s, serving ? 'SERVING' : 'NOT_SERVING');
    for (const w of this.#watchers)
      w.call.write({ status: this.#status.get(w.service) ?? 'SERVICE_UNKNOWN' });
  }

  /** One service's status (e.g. ext_proc NOT_SERVING while there is no configuration). */
  setService(service: string, serving: boolean): void {
    if (!this.#status.has(service)) return;
    this.#status.set(service, serving ? 'SERVING' : 'NOT_SERVING');
    for (const w of this.#watchers)
      if (w.service === service) w.call.write({ status: this.#status.get(service)! });
  }

  status(service = ''): Status | undefined {
    return this.#status.get(service);
  }

  implementation(): grpc.UntypedServiceImplementation {
    return {
      Check: (
        call: grpc.ServerUnaryCall<{ service?: string }, { status: Status }>,
        cb: grpc.sendUnaryData<{ status: Status }>,
      ) => {
        const status = this.#status.get(call.request.service ?? '');
        if (status === undefined) cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
        else cb(null, { status });
      },
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, { status: Status }>) => {
        const service = call.request.service ?? '';
        const w = { service, call };
        this.#watchers.add(w);
        call.write({ status: this.#status.get(service) ?? 'SERVICE_UNKNOWN' });
        const drop = () => this.#watchers.delete(w);
        call.on('cancelled', drop);
        call.on('close', drop);
      },
    };
  }

  endWatches(): void {
    for (const w of this.#watchers) w.call.end();
    this.#watchers.clear();
  }
}

export function grpcServerOptions(bodyLimit: number): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': bodyLimit + MESSAGE_OVERHEAD,
    'grpc.max_send_message_length': bodyLimit + MESSAGE_OVERHEAD,
    // Envoy keeps one HTTP/2 connection with many streams; let it ping an idle connection.
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
    // Per-call channelz bookkeeping costs more than an ext_proc answer; nothing here reads it.
    'grpc.enable_channelz': 0,
  };
}

/** The last-resort answer when a processor throws: a clear local 500, never a failed stream. */
export function internalErrorResponse(
  message = 'TierFlow failed to process this request (internal error).',
): ProcessingResponse {
  const immediate: ImmediateResponse = {
    status: { code: 500 },
    headers: {
      set_headers: [{ header: { key: 'content-type', raw_value: Buffer.from('application/json') } }],
    },
    body: Buffer.from(
      JSON.stringify({ error: { message, type: 'api_error', param: null, code: 'tierflow_internal_error' } }),
    ),
    details: 'tierflow_internal_error',
  };
  return { immediate_response: immediate };
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown }).then === 'function';
}

/** Drives one Process stream: strict ordering, one answer per message, never a failed stream. */
export function driveStream(
  call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>,
  processor: StreamProcessor,
  onInternalError?: (err: unknown) => void,
  onClosed?: () => void,
): void {
  let busy = false;
  let ended = false;
  let halfClosed = false;
  let finished = false; // an immediate_response ended processing: ignore the rest
  const queue: ProcessingRequest[] = [];

  const io: StreamIO = {
    extendTimeout(ms: number) {
      if (ended) return;
      const seconds = Math.floor(ms / 1000);
      call.write({ override_message_timeout: { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) } });
    },
  };

  const finish = (reason: 'end' | 'cancelled' | 'error') => {
    if (ended) return;
    ended = true;
    queue.length = 0;
    try {
      processor.onEnd(reason);
    } catch (err) {
      onInternalError?.(err);
    }
    onClosed?.();
  };

  const write = (res: ProcessingResponse) => {
    if (ended) return;
    if (res.immediate_response) finished = true;
    call.write(res);
  };

  const next = (): void => {
    while (!busy && queue.length > 0 && !ended) {
      const req = queue.shift()!;
      if (finished) continue;
      let res: ProcessingResponse | Promise<ProcessingResponse>;
      try {
        res = processor.onMessage(req, io);
      } catch (err) {
        onInternalError?.(err);
        res = internalErrorResponse();
      }
      if (isPromise(res)) {
        busy = true;
        res
          .then(write, (err: unknown) => {
            onInternalError?.(err);
            write(internalErrorResponse());
          })
          .finally(() => {
            busy = false;
            next();
            if (halfClosed && !busy && queue.length === 0) closeOk();
          });
      } else {
        write(res);
      }
    }
  };

  const closeOk = () => {
    if (ended) return;
    call.end();
    finish('end');
  };

  call.on('data', (req: ProcessingRequest) => {
    queue.push(req);
    next();
  });
  call.on('end', () => {
    halfClosed = true;
    // grpc-js signals a reset as 'end' followed by 'cancelled': let a cancel win.
    setImmediate(() => {
      if (!busy && queue.length === 0) closeOk();
    });
  });
  call.on('cancelled', () => finish('cancelled'));
  call.on('error', () => finish('error'));
  call.on('close', () => finish(halfClosed ? 'end' : 'cancelled'));
}

export class ExtProcServer {
  readonly health = new HealthService([EXT_PROC_SERVICE]);
  readonly #server: grpc.Server;
  readonly #opts: ExtProcServerOptions;
  #active = 0;
  #bound: BoundAddresses = {};

  constructor(opts: ExtProcServerOptions) {
    if (!opts.socketPath && !opts.tcp)
      throw new Error('ext_proc server needs a Unix socket path and/or a TCP port');
    this.#opts = opts;
    this.#server = new grpc.Server(grpcServerOptions(opts.bodyLimit ?? DEFAULT_BODY_LIMIT));
    this.#server.addService(fastExtProcService(), {
      Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
        this.#active++;
        const done = () => void this.#active--;
        let processor: StreamProcessor;
        try {
          processor = opts.processor();
        } catch (err) {
          opts.onInternalError?.(err);
          processor = { onMessage: () => internalErrorResponse(), onEnd: () => {} };
        }
        driveStream(call, processor, opts.onInternalError, done);
      },
    });
    this.#server.addService(healthService(), this.health.implementation());
  }

  /** Open Process streams right now. */
  get activeStreams(): number {
    return this.#active;
  }

  get addresses(): BoundAddresses {
    return this.#bound;
  }

  async start(): Promise<BoundAddresses> {
    const creds = grpc.ServerCredentials.createInsecure();
    const bind = (addr: string) =>
      new Promise<number>((resolve, reject) =>
        this.#server.bindAsync(addr, creds, (err, port) => (err ? reject(err) : resolve(port))),
      );
    if (this.#opts.socketPath) {
      const p = path.resolve(this.#opts.socketPath);
      mkdirSync(path.dirname(p), { recursive: true });
      if (existsSync(p) && lstatSync(p).isSocket()) unlinkSync(p);
      await bind(`unix:${p}`);
      chmodSync(p, this.#opts.socketMode ?? SOCKET_MODE);
      this.#bound.socketPath = p;
    }
    if (this.#opts.tcp) {
      const host = this.#opts.tcp.host ?? '127.0.0.1';
      const h = host.includes(':') ? `[${host}]` : host;
      this.#bound.tcpPort = await bind(`${h}:${this.#opts.tcp.port}`);
    }
    return this.#bound;
  }

  /**
   * Graceful shutdown: health turns NOT_SERVING, listeners close, HTTP/2 GOAWAY stops new
   * streams, open streams run to their end; after graceMs whatever is left is cancelled.
   */
  async shutdown(graceMs = 30_000): Promise<void> {
    this.health.set(false);
    this.health.endWatches();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.#bound.socketPath && existsSync(this.#bound.socketPath)) {
      try {
        unlinkSync(this.#bound.socketPath);
      } catch {
        /* already gone */
      }
    }
  }
}

/**
 * A health-only server (for kubelet gRPC probes on the pod IP: never expose ext_proc there). By
 * default it listens on "::", which takes IPv4 too (IPv4-mapped), so probes work in IPv4, IPv6 and
 * dual-stack clusters; on a host without IPv6 it falls back to 0.0.0.0.
 */
export async function startHealthServer(
  health: HealthService,
  port: number,
  host?: string,
): Promise<{ port: number; close: () => Promise<void> }> {
  const server = new grpc.Server();
  server.addService(healthService(), health.implementation());
  const bindTo = (h: string) =>
    new Promise<number>((resolve, reject) =>
      server.bindAsync(
        `${h.includes(':') ? `[${h}]` : h}:${port}`,
        grpc.ServerCredentials.createInsecure(),
        (e, p) => (e ? reject(e) : resolve(p)),
      ),
    );
  const bound = host !== undefined ? await bindTo(host) : await bindTo('::').catch(() => bindTo('0.0.0.0'));
  return {
    port: bound,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

export type { RequestKind };
export { HEALTH_SERVICE, EXT_PROC_SERVICE };
