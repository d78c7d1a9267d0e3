// send + failover: tries the plan's candidates in order until one answers, switching only
// while nothing has reached the client. Used by the gateway for every request and by the
// ext_proc sidecar for reactive failover (with a buffering sink).
import { promptCostEstimateUsd } from '../core/accounting.js';
import type { Dispatcher } from 'undici';
import { ApiError } from '../core/errors.js';
import {
  type AttemptOutcome,
  failureKindOf,
  isRetryableStatus,
  outcomeOfStatus,
  retryAfterMs,
} from '../core/failover.js';
import type { AttemptTracker } from '../core/health/registry.js';
import { COST_HEADER, tierflowHeaders } from '../core/response-headers.js';
import type { RoutePlan } from '../core/router.js';
import { translatorFor } from '../core/translators/index.js';
import type { Translator, UpstreamRequest } from '../core/translators/types.js';
import { type TransportFailure, transportFailure, type UpstreamClient } from './client.js';
import { type AttemptRecord, costOf, type DataPlaneDeps, type RequestOutcome } from './record.js';
import { releaseMessages } from './plan.js';
import { recordAttempt } from './record.js';

/** Where the response goes: an HTTP response (gateway) or a buffer (ext_proc immediate_response). */
export interface ResponseSink {
  /** Commits status and headers; after this no failover is possible. */
  start(status: number, headers: Record<string, string>): void;
  /** Resolves when the chunk may be followed by the next (backpressure). */
  write(chunk: Buffer): void | Promise<void>;
  /** `trailers`: values known only at the end (the exact cost of a streamed response). */
  end(trailers?: Record<string, string>): void;
  /** Aborted when the client went away. */
  readonly signal?: AbortSignal;
}

export interface AttemptDeps extends DataPlaneDeps {
  client: UpstreamClient;
}

export interface RunOptions {
  /** Index of the first candidate to try (ext_proc: Envoy already made attempt 0). */
  startAt?: number;
  /** Attempts already made elsewhere, counted in headers and against maxAttempts. */
  previous?: AttemptRecord[];
  /** An error to answer with if no candidate is left to try. */
  previousError?: ApiError;
  previousRetryAfter?: string;
}

const MAX_ERROR_BODY = 1 << 20;
const EMPTY = Buffer.alloc(0);

class AttemptFailure extends Error {
  constructor(
    readonly outcome: AttemptOutcome,
    readonly apiError: ApiError,
  ) {
    super(apiError.message);
  }
}

export async function runAttempts(
  plan: RoutePlan,
  deps: AttemptDeps,
  sink: ResponseSink,
  options: RunOptions = {},
): Promise<RequestOutcome> {
  const { router } = deps;
  const attempts: AttemptRecord[] = [...(options.previous ?? [])];
  let lastError = options.previousError;
  let lastRetryAfter = options.previousRetryAfter;

  for (let i = options.startAt ?? 0; i < plan.candidates.length && attempts.length < plan.maxAttempts; i++) {
    if (sink.signal?.aborted) break;
    const model = plan.candidates[i]!;
    const remaining = plan.deadlineAt - router.now();
    if (remaining <= 0) {
      lastError = new ApiError(
        504,
        'The routing deadline passed before any provider answered.',
        'timeout_error',
        'deadline_exceeded',
      );
      break;
    }
    const tracker = router.health.begin(model);
    if (!tracker) continue; // breaker opened (or cooling down) since the plan was made

    const translator = translatorFor(model.provider.type)(plan.request, model);
    const record: AttemptRecord = { model, outcome: 'success' };
    attempts.push(record);
    let upstream: UpstreamRequest;
    try {
      upstream = translator.buildRequest();
      if (translator.adjusted.length > 0) record.adjusted = translator.adjusted;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      // This provider cannot take the request (e.g. Anthropic has no `n`), or is misconfigured:
      // nothing was sent, so the next candidate may still serve it. Only a misconfiguration
      // counts against the provider's health.
      const misconfigured = isRetryableStatus(err.status);
      record.outcome = misconfigured ? 'connect_error' : 'client_error';
      record.status = err.status;
      if (misconfigured) tracker.fail('connect_error');
      else tracker.neutral();
      recordAttempt(deps, tracker, record, false);
      lastError = err;
      continue;
    }
    // One controller per attempt, aborted by the deadline or by the client going away
    // (cheaper than AbortSignal.any, which keeps its sources alive until GC).
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new ApiError(504, 'deadline')), remaining);
    const onClientGone = () => abort.abort(sink.signal!.reason);
    sink.signal?.addEventListener('abort', onClientGone, { once: true });
    const signal = abort.signal;
    try {
      const served = await attempt(
        plan,
        deps,
        translator,
        upstream,
        tracker,
        sink,
        signal,
        attempts.length,
        () => clearTimeout(timer),
      ).finally(() => sink.signal?.removeEventListener('abort', onClientGone));
      record.status = served.status;
      record.outcome = served.outcome;
      recordAttempt(deps, tracker, record, false);
      return {
        status: served.status,
        attempts,
        served: model,
        usage: translator.usage,
        cost: costOf(plan, model, translator.usage),
        error: served.error,
      };
    } catch (err) {
      clearTimeout(timer);
      if (sink.signal?.aborted) {
        tracker.neutral();
        record.outcome = 'client_error';
        recordAttempt(deps, tracker, record, false);
        return {
          status: 499,
          attempts,
          error: new ApiError(499, 'client closed the request', 'api_error', 'client_closed'),
        };
      }
      if (!(err instanceof AttemptFailure)) throw err;
      record.outcome = err.outcome;
      record.status = err.apiError.status;
      const failure = failureKindOf(err.outcome);
      if (failure) tracker.fail(failure);
      else tracker.neutral(); // local_error: the provider never saw the request
      lastError = err.apiError;
      if (err.outcome === 'http_429' || err.outcome === 'http_5xx') {
        lastRetryAfter = (err.apiError as ApiError & { retryAfter?: string }).retryAfter;
        const wait = retryAfterMs(lastRetryAfter, Date.now());
        if (wait !== undefined && wait > 0) router.health.coolDown(model, wait);
      }
      recordAttempt(deps, tracker, record, true);
    }
  }

  const error =
    lastError ??
    new ApiError(
      503,
      'No provider is available for this request right now (circuit breakers open).',
      'api_error',
      'no_available_model',
    );
  const headers = tierflowHeaders(plan, undefined, attempts.length, undefined);
  if (lastRetryAfter && error.status === 429) headers['retry-after'] = lastRetryAfter;
  if (!sink.signal?.aborted) await sendError(sink, error, headers);
  return { status: error.status, attempts, error };
}

interface Served {
  status: number;
  outcome: AttemptOutcome;
  error?: ApiError;
}

/** One attempt. Throws AttemptFailure while failover is still possible; afterwards it serves to the end. */
async function attempt(
  plan: RoutePlan,
  deps: AttemptDeps,
  translator: Translator,
  req: UpstreamRequest,
  tracker: AttemptTracker,
  sink: ResponseSink,
  signal: AbortSignal,
  attemptNumber: number,
  committed: () => void,
): Promise<Served> {
  const model = translator.model;
  let res: Dispatcher.ResponseData;
  try {
    res = await deps.client.send(req, {
      signal,
      headersTimeoutMs: Math.min(plan.firstByteTimeoutMs, Math.max(1, plan.deadlineAt - deps.router.now())),
      bodyTimeoutMs: plan.firstByteTimeoutMs,
    });
  } catch (err) {
    throw transportError(err, model.provider.name, signal);
  }
  tracker.firstByte();
  const status = res.statusCode;

  if (status >= 400) {
    const body = await readBody(res.body, MAX_ERROR_BODY).catch(() => EMPTY);
    const apiError = translator.onError(status, res.headers, body);
    if (isRetryableStatus(status)) {
      const retryAfter = res.headers['retry-after'];
      throw new AttemptFailure(
        outcomeOfStatus(status),
        Object.assign(apiError, { retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter }),
      );
    }
    // The client's mistake: answer it as is, no failover, no health penalty.
    committed();
    tracker.neutral();
    await sendError(sink, apiError, tierflowHeaders(plan, model, attemptNumber, 0));
    return { status: apiError.status, outcome: 'client_error', error: apiError };
  }

  const start = translator.onResponseHeaders(status, res.headers);
  if (!start.streaming) {
    let out: Buffer;
    try {
      const body = await readBody(res.body, Infinity);
      out = translator.onBody(body);
    } catch (err) {
      if (!(err instanceof ApiError)) throw transportError(err, model.provider.name, signal);
      if (isRetryableStatus(err.status)) throw new AttemptFailure('http_5xx', err);
      // A 2xx body that says the request itself was refused (a Gemini safety block): the
      // client's 4xx, answered as is, like any other 4xx (no failover, no health penalty).
      committed();
      tracker.neutral();
      await sendError(sink, err, tierflowHeaders(plan, model, attemptNumber, 0));
      return { status: err.status, outcome: 'client_error', error: err };
    }
    committed();
    if (translator.sawFirstToken) tracker.firstToken();
    const cost = costOf(plan, model, translator.usage);
    sink.start(start.status, {
      ...start.headers,
      'content-length': String(out.length),
      ...tierflowHeaders(plan, model, attemptNumber, cost?.costUsd ?? 0),
    });
    await sink.write(out);
    sink.end();
    tracker.succeed(translator.usage?.completionTokens);
    return { status: start.status, outcome: 'success' };
  }

  // Streaming: hold back until the translator has something to send, so a stream that breaks
  // before its first event can still fail over.
  let isCommitted = false;
  const commit = () => {
    isCommitted = true;
    committed();
    releaseMessages(plan);
    const estimate = promptCostEstimateUsd(plan.request.promptTokens, model);
    sink.start(start.status, { ...start.headers, ...tierflowHeaders(plan, model, attemptNumber, estimate) });
  };
  try {
    for await (const chunk of res.body) {
      const out = translator.onStreamChunk(chunk as Buffer, false);
      if (translator.sawFirstToken && tracker.firstTokenAt === undefined) tracker.firstToken();
      if (!isCommitted) {
        if (translator.streamError) throw new AttemptFailure('stream_error', translator.streamError);
        if (out.length === 0) continue;
        commit();
      }
      if (out.length) await sink.write(out);
      if (sink.signal?.aborted) break;
    }
    const tail = translator.onStreamChunk(EMPTY, true);
    if (!isCommitted) {
      if (translator.streamError) throw new AttemptFailure('stream_error', translator.streamError);
      commit();
    }
    if (tail.length) await sink.write(tail);
    // Headers left with an estimate; the exact cost, known now, goes in a trailer.
    const cost = costOf(plan, model, translator.usage);
    sink.end(cost ? { [COST_HEADER]: cost.costUsd.toFixed(8) } : undefined);
  } catch (err) {
    if (!isCommitted) {
      if (err instanceof AttemptFailure) throw err;
      throw transportError(err, model.provider.name, signal);
    }
    // Bytes already reached the client: tell it in-band and end the stream.
    const kind = sink.signal?.aborted ? undefined : transportFailure(err);
    if (kind) {
      const e = new ApiError(
        502,
        `The provider stream broke after the response started (${kind}).`,
        'upstream_error',
        kind,
      );
      await sink.write(Buffer.from(`data: ${e.toJson()}\n\n`));
      sink.end();
      if (kind === 'local_error') tracker.neutral();
      else tracker.fail(kind);
      return { status: start.status, outcome: 'stream_error', error: e };
    }
    sink.end();
    tracker.neutral();
    return { status: start.status, outcome: 'client_error' };
  }
  if (translator.streamError) {
    tracker.fail('stream_error');
    return { status: start.status, outcome: 'stream_error', error: translator.streamError };
  }
  tracker.succeed(translator.usage?.completionTokens);
  return { status: start.status, outcome: 'success' };
}

async function sendError(
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

function transportError(err: unknown, provider: string, signal: AbortSignal): AttemptFailure {
  if (signal.aborted && signal.reason instanceof ApiError) {
    return new AttemptFailure(
      'timeout',
      new ApiError(
        504,
        `Provider '${provider}' did not answer before the routing deadline.`,
        'timeout_error',
        'deadline_exceeded',
      ),
    );
  }
  const kind: TransportFailure = transportFailure(err);
  const messages: Record<TransportFailure, string> = {
    connect_error: `Could not connect to provider '${provider}'.`,
    timeout: `Provider '${provider}' timed out.`,
    reset: `Provider '${provider}' closed the connection.`,
    local_error: `TierFlow is out of local resources (file descriptors or memory) and could not reach provider '${provider}'; retry shortly.`,
  };
  if (kind === 'local_error')
    return new AttemptFailure(
      kind,
      new ApiError(503, messages[kind], 'api_error', 'local_resources_exhausted'),
    );
  return new AttemptFailure(
    kind,
    new ApiError(kind === 'timeout' ? 504 : 502, messages[kind], 'upstream_error', kind),
  );
}

async function readBody(body: Dispatcher.ResponseData['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      break;
    }
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
