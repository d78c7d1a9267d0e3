// undici keep-alive pools to providers: one Agent, one pool per origin.
import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';
import type { UpstreamRequest } from '../core/providers/types.js';
import { type OnHeaders, WholeAnswerHandler } from './whole-answer.js';

// undici's main entry also builds fetch, WebSocket and cache stores (~13 MB of RSS); the data
// plane needs only the Agent and its request API, so it loads those two modules alone.
const require = createRequire(import.meta.url);
const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
const { request } = require('undici/lib/api/index.js') as {
  request: (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
};

// Origin and path of an upstream URL, read once per URL object (translators reuse one per model).
const TARGETS = new WeakMap<URL, { origin: string; path: string }>();

function targetOf(url: URL): { origin: string; path: string } {
  let t = TARGETS.get(url);
  if (!t) TARGETS.set(url, (t = { origin: url.origin, path: url.pathname + url.search }));
  return t;
}

export interface SendOptions {
  signal?: AbortSignal;
  /** Until response headers arrive. */
  headersTimeoutMs: number;
  /** Longest silence between body chunks. */
  bodyTimeoutMs: number;
}

/**
 * What one request may hold of a non-streamed answer (the largest real ones are embeddings of
 * thousands of inputs as JSON floats, around 100 MB): beyond it the attempt fails over, so a
 * broken upstream cannot grow TierFlow's memory without bound.
 */
export const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

export class UpstreamClient {
  readonly #agent: UndiciAgent;
  /** The most a non-streamed answer may hold (see MAX_ANSWER_BYTES). */
  readonly maxAnswerBytes: number;

  constructor(
    options: { connectTimeoutMs?: number; connectionsPerOrigin?: number; maxAnswerBytes?: number } = {},
  ) {
    this.maxAnswerBytes = options.maxAnswerBytes ?? MAX_ANSWER_BYTES;
    this.#agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      connections: options.connectionsPerOrigin ?? 512,
      connect: { timeout: options.connectTimeoutMs ?? 10_000 },
    });
  }

  send(req: UpstreamRequest, options: SendOptions): Promise<Dispatcher.ResponseData> {
    const target = targetOf(req.url);
    return request.call(this.#agent, {
      origin: target.origin,
      path: target.path,
      method: req.method,
      headers: req.headers,
      body: req.method === 'GET' ? undefined : req.body,
      signal: options.signal,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
    });
  }

  /**
   * A non-streamed exchange, its answer read whole without a response stream
   * (./whole-answer.ts). `abort()` on the handler ends it (deadline, client gone).
   */
  exchange(
    req: UpstreamRequest,
    options: Omit<SendOptions, 'signal'>,
    onHeaders: OnHeaders,
    errorBodyLimit: number,
  ): WholeAnswerHandler {
    const target = targetOf(req.url);
    const handler = new WholeAnswerHandler(onHeaders, errorBodyLimit, this.maxAnswerBytes);
    try {
      this.#agent.dispatch(
        {
          origin: target.origin,
          path: target.path,
          method: req.method,
          headers: req.headers,
          body: req.method === 'GET' ? undefined : req.body,
          headersTimeout: options.headersTimeoutMs,
          bodyTimeout: options.bodyTimeoutMs,
        },
        handler,
      );
    } catch (err) {
      handler.onResponseError(undefined as never, err as Error);
    }
    return handler;
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

export type TransportFailure = 'connect_error' | 'timeout' | 'reset' | 'local_error';

/**
 * This process ran out of something (descriptors, memory, socket buffers, ephemeral ports): the
 * provider never saw the request, so its health must not pay for it.
 */
const LOCAL_RESOURCE_CODES = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL']);

/** Maps an undici / socket error to the failure kind failover and breakers care about. */
export function transportFailure(err: unknown): TransportFailure {
  const e = err as { code?: string; name?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? '';
  if (LOCAL_RESOURCE_CODES.has(code) || LOCAL_RESOURCE_CODES.has(e?.cause?.code ?? '')) return 'local_error';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || e?.name === 'TimeoutError')
    return 'timeout';
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'ECONNREFUSED' ||
    code === 'ENOTFOUND' ||
    code === 'EAI_AGAIN' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH'
  ) {
    return 'connect_error';
  }
  return 'reset';
}
