// send: drives the attempt engine over undici into a ResponseSink. The gateway runs every
// attempt of a request here; the sidecar runs the attempts after Envoy's first one here (into a
// buffer answered as one immediate_response). Failover decisions are the engine's (engine.ts).
import type { Dispatcher } from 'undici';
import { promptCostEstimateUsd } from '../core/accounting.js';
import { ApiError } from '../core/errors.js';
import { unreadableAnswerError } from '../core/providers/shared/upstream-error.js';
import type { ClientResponseStart, UpstreamHeaders } from '../core/providers/types.js';
import { COST_HEADER, tierflowHeaders } from '../core/response-headers.js';
import { type TransportFailure, transportFailure, type UpstreamClient } from './client.js';
import { AnswerTooLargeError, type WholeAnswer, type WholeAnswerHandler } from './whole-answer.js';
import type { Attempt, RequestAttempts } from './engine.js';
import { releaseMessages } from './plan.js';
import { costOf, type DataPlaneDeps, type RequestOutcome } from './record.js';

/** Where the response goes: an HTTP response (gateway) or a buffer (ext_proc immediate_response). */
export interface ResponseSink {
  /**
   * Commits status and headers; after this no failover is possible. `headers` is a fresh object
   * the sink may add its own headers to.
   */
  start(status: number, headers: Record<string, string>): void;
  /** Resolves when the chunk may be followed by the next (backpressure). */
  write(chunk: Buffer): void | Promise<void>;
  /** `trailers`: values known only at the end (the exact cost of a streamed response). */
  end(trailers?: Record<string, string>): void;
  /** Aborted when the client went away. */
  readonly signal?: AbortSignal;
  /**
   * Optional, cheaper than a listener on `signal` for each attempt: `gone` is called once if the
   * client goes away while it is set (undefined unsets it).
   */
  onGone?(gone: ((reason: Error) => void) | undefined): void;
}

/** What the data planes need to run attempts: the pipeline's dependencies and the undici client. */
export interface AttemptDeps extends DataPlaneDeps {
  client: UpstreamClient;
}

const MAX_ERROR_BODY = 1 << 20;

const EMPTY = Buffer.alloc(0);

/** Runs attempts until one serves the request or none may follow; answers the client either way. */
export async function runAttempts(
  run: RequestAttempts,
  client: UpstreamClient,
  sink: ResponseSink,
): Promise<RequestOutcome> {
  const { plan } = run;
  for (;;) {
    if (sink.signal?.aborted) return clientGone(run);
    if (run.waitMs > 0) await sleep(run.waitMs, sink.signal);
    if (sink.signal?.aborted) return clientGone(run);
    const attempt = run.next();
    if (!attempt) break;
    let served: RequestOutcome | undefined;
    try {
      served = await send(attempt, client, sink);
    } finally {
      // Whatever happened (a bug included), the breaker's slot is never left taken.
      if (!attempt.settled) attempt.abandoned();
    }
    if (served) return served;
  }
  const error = run.error();
  const headers = tierflowHeaders(plan, undefined, run.attempts.length, undefined);
  if (run.retryAfter && error.status === 429) headers['retry-after'] = run.retryAfter;
  if (!sink.signal?.aborted) await sendError(sink, error, headers);
  return { status: error.status, attempts: run.attempts, error };
}

function clientGone(run: RequestAttempts): RequestOutcome {
  return {
    status: 499,
    attempts: run.attempts,
    error: new ApiError(499, 'client closed the request', 'api_error', 'client_closed'),
  };
}

/** One attempt over undici: the outcome once it answered the client, undefined to fail over. */
async function send(
  attempt: Attempt,
  client: UpstreamClient,
  sink: ResponseSink,
): Promise<RequestOutcome | undefined> {
  const { run, translator, tracker } = attempt;
  const { plan } = run;
  const model = attempt.model;
  const remaining = run.remainingMs();
  // The deadline and the client going away end the exchange: a non-streamed answer is read
  // whole from undici's dispatch (no response stream) and ended through its handler; a stream
  // goes through request() and its body, ended by a controller made for streams only.
  let whole: WholeAnswerHandler | undefined;
  let abort: AbortController | undefined;
  let pastDeadline = false;
  const stop = (reason: Error) => {
    abort?.abort(reason);
    whole?.abort(reason);
  };
  const timer = setTimeout(() => {
    pastDeadline = true;
    stop(DEADLINE);
  }, remaining);
  // A sink with onGone calls `stop` itself; otherwise a listener on its signal. No options
  // object: a signal aborts once, the listener is removed in `finally`, and Node validates an
  // options object on every call (2% of the gateway's CPU per request).
  const onClientGone = sink.onGone ? undefined : () => stop(sink.signal!.reason as Error);
  if (onClientGone) sink.signal?.addEventListener('abort', onClientGone);
  else sink.onGone!(stop);
  const served = (status: number, error?: ApiError): RequestOutcome => ({
    status,
    attempts: run.attempts,
    served: model,
    usage: translator.usage,
    cost: costOf(plan, model, translator.usage),
    ...(error ? { error } : {}),
  });
  const transport = (err: unknown): undefined => {
    if (sink.signal?.aborted) return void attempt.abandoned();
    if (pastDeadline) {
      attempt.failedTransport('timeout', `no answer before the routing deadline`, true);
      return;
    }
    const kind: TransportFailure = transportFailure(err);
    attempt.failedTransport(kind, transportDetail(err, kind, plan.firstByteTimeoutMs));
  };
  /** An error status with its (possibly empty) body: fail over, or answer the client's mistake. */
  const failedStatus = async (status: number, headers: UpstreamHeaders, body: Buffer) => {
    const { failover, error } = attempt.failedStatus(status, headers, body);
    if (failover) return undefined;
    clearTimeout(timer);
    attempt.commit();
    await sendError(sink, error, tierflowHeaders(plan, model, attempt.number, 0));
    return served(error.status, error);
  };
  /** A 2xx answer that cannot be served: fail over (5xx), or answer the client's mistake (4xx). */
  const refused = async (err: ApiError) => {
    if (attempt.bodyRefused(err)) return undefined;
    clearTimeout(timer);
    attempt.commit();
    await sendError(sink, err, tierflowHeaders(plan, model, attempt.number, 0));
    return served(err.status, err);
  };
  /** A read that failed: an answer too large to hold is refused, anything else is transport. */
  const unread = (err: unknown) =>
    err instanceof AnswerTooLargeError
      ? refused(
          unreadableAnswerError(
            model,
            `sent an answer larger than ${err.limit} bytes, more than TierFlow holds for one request`,
          ),
        )
      : transport(err);
  /** A whole 2xx body: translated and answered, or refused (fail over or the client's 4xx). */
  const answerWhole = async (start: ClientResponseStart, body: Buffer) => {
    let out: Buffer;
    try {
      out = translator.onBody(body);
    } catch (err) {
      if (!(err instanceof ApiError)) return transport(err);
      return refused(err);
    }
    clearTimeout(timer);
    attempt.commit();
    const cost = costOf(plan, model, translator.usage);
    sink.start(start.status, {
      ...start.headers,
      'content-length': String(out.length),
      ...tierflowHeaders(plan, model, attempt.number, cost?.costUsd ?? 0),
    });
    // A sink that holds a whole body returns nothing to wait for: no await, no extra turn.
    const written = sink.write(out);
    if (written) await written;
    sink.end();
    attempt.succeeded();
    return served(start.status);
  };
  const timeouts = {
    headersTimeoutMs: Math.min(plan.firstByteTimeoutMs, Math.max(1, remaining)),
    bodyTimeoutMs: plan.firstByteTimeoutMs,
  };
  try {
    if (!plan.request.stream && !plan.request.responses) {
      let verdict: ReturnType<Attempt['responseHeaders']> = 'ok';
      whole = client.exchange(
        attempt.request,
        timeouts,
        (status) => (verdict = attempt.responseHeaders(status)) === 'ok',
        MAX_ERROR_BODY,
      );
      let answer: WholeAnswer;
      try {
        answer = await whole.answer;
      } catch (err) {
        return await unread(err);
      }
      if (verdict !== 'ok') return await failedStatus(answer.statusCode, answer.headers, answer.body);
      let start;
      try {
        start = translator.onResponseHeaders(answer.statusCode, answer.headers);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        attempt.failedResponse(err);
        return undefined;
      }
      if (start.streaming) throw new Error('a translator streams the answer to a non-streamed request');
      return await answerWhole(start, answer.body);
    }

    abort = new AbortController();
    const signal = abort.signal;
    let res: Dispatcher.ResponseData;
    try {
      res = await client.send(attempt.request, { signal, ...timeouts });
    } catch (err) {
      return transport(err);
    }
    const status = res.statusCode;
    const verdict = attempt.responseHeaders(status);

    if (verdict !== 'ok') {
      const body = await readBody(res.body, MAX_ERROR_BODY).catch(() => EMPTY);
      return await failedStatus(status, res.headers, body);
    }

    let start;
    try {
      start = translator.onResponseHeaders(status, res.headers);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      res.body.destroy();
      attempt.failedResponse(err);
      return undefined;
    }
    if (!start.streaming) {
      let body: Buffer;
      try {
        body = await readBody(res.body, client.maxAnswerBytes, true);
      } catch (err) {
        return await unread(err);
      }
      return await answerWhole(start, body);
    }
    // Streaming: hold back until the translator has something to send, so a stream that breaks
    // before its first event can still fail over.
    const commit = () => {
      clearTimeout(timer);
      attempt.commit();
      releaseMessages(plan);
      const estimate = promptCostEstimateUsd(plan.request.promptTokens, model);
      sink.start(start.status, {
        ...start.headers,
        ...tierflowHeaders(plan, model, attempt.number, estimate),
      });
    };
    try {
      for await (const chunk of res.body) {
        const out = translator.onStreamChunk(chunk as Buffer, false);
        if (translator.sawFirstToken && tracker.firstTokenAt === undefined) tracker.firstToken();
        if (!attempt.committed) {
          if (translator.streamError) {
            res.body.destroy();
            attempt.failedResponse(translator.streamError, 'stream_error');
            return undefined;
          }
          if (out.length === 0) continue;
          commit();
        }
        if (out.length) await sink.write(out);
        if (sink.signal?.aborted) break;
      }
      const tail = translator.onStreamChunk(EMPTY, true);
      if (!attempt.committed) {
        if (translator.streamError) {
          attempt.failedResponse(translator.streamError, 'stream_error');
          return undefined;
        }
        commit();
      }
      if (tail.length) await sink.write(tail);
      // Headers left with an estimate; the exact cost, known now, goes in a trailer.
      const cost = costOf(plan, model, translator.usage);
      sink.end(cost ? { [COST_HEADER]: cost.costUsd.toFixed(8) } : undefined);
    } catch (err) {
      if (!attempt.committed) return transport(err);
      // Bytes already reached the client: tell it in-band and end the stream.
      if (sink.signal?.aborted) {
        sink.end();
        attempt.abandoned();
        return served(start.status);
      }
      const kind = transportFailure(err);
      const e = new ApiError(
        502,
        `The provider stream broke after the response started (${kind}).`,
        'upstream_error',
        kind,
      );
      await sink.write(translator.streamBroken?.(e) ?? Buffer.from(`data: ${e.toJson()}\n\n`));
      sink.end();
      attempt.streamFailed(transportDetail(err, kind, plan.firstByteTimeoutMs));
      return served(start.status, e);
    }
    if (sink.signal?.aborted) attempt.abandoned();
    else if (translator.streamError)
      attempt.streamFailed(translator.streamError.code ?? 'stream error event');
    else attempt.succeeded();
    return served(start.status, translator.streamError);
  } finally {
    clearTimeout(timer);
    if (onClientGone) sink.signal?.removeEventListener('abort', onClientGone);
    else sink.onGone!(undefined);
  }
}

const DEADLINE = new ApiError(504, 'deadline');

/** errno (or undici code) and what it means, for the attempt's cause. */
function transportDetail(err: unknown, kind: TransportFailure, firstByteTimeoutMs: number): string {
  const e = err as { code?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code;
  if (kind === 'timeout') return `${code ?? 'timeout'}: no response within ${firstByteTimeoutMs} ms`;
  return code ?? (err instanceof Error ? err.message.slice(0, 120) : kind);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export async function sendError(
  sink: ResponseSink,
  error: ApiError,
  headers: Record<string, string>,
): Promise<void> {
  const body = Buffer.from(error.toJson());
  sink.start(error.status, {
    'content-type': 'application/json',
    'content-length': String(body.length),
    ...headers,
  });
  await sink.write(body);
  sink.end();
}

/**
 * The whole body, up to `limit` bytes (the rest is dropped and the body destroyed). Listeners,
 * not `for await`: the async iterator cost more than the read on every non-streamed answer.
 */
/**
 * The body up to `limit` bytes: beyond it, the rest is dropped (an error body: what arrived
 * explains enough), or with `answer` the read fails with AnswerTooLargeError.
 */
function readBody(body: Dispatcher.ResponseData['body'], limit: number, answer = false): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = () => {
      settled = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    body.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (size + chunk.length > limit) {
        if (answer) {
          settled = true;
          chunks.length = 0;
          reject(new AnswerTooLargeError(limit));
        } else done();
        body.destroy();
        return;
      }
      size += chunk.length;
      chunks.push(chunk);
    });
    body.on('end', () => {
      if (!settled) done();
    });
    body.on('error', (err) => {
      settled = true;
      reject(err);
    });
    body.on('close', () => {
      if (!settled)
        reject(Object.assign(new Error('premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    });
  });
}
