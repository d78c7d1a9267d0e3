// The attempt engine: every failover rule, once, for both data planes. One RequestAttempts per
// request hands out Attempts; each Attempt goes through
//
//   begin (breaker admits) -> request (translator builds it) -> response headers
//     -> body or chunks -> settle (exactly once: success, failure, client error, abandoned)
//
// and its settle decides whether another attempt may follow. The gateway drives attempts over
// undici (send.ts); the sidecar lets Envoy send the first and drives the rest over undici too.
// Neither data plane decides anything about failover on its own.
import type { CompiledModel } from '../core/config/compiled.js';
import { ApiError } from '../core/errors.js';
import { messagesBack, setAsideMessages } from '../core/parse.js';
import {
  type AttemptOutcome,
  failureKindOf,
  isProviderWide,
  isRetryableStatus,
  retryAfterMs,
  statusVerdict,
} from '../core/failover.js';
import type { AttemptTracker } from '../core/health/registry.js';
import type { RoutePlan } from '../core/router.js';
import { translatorForRequest } from '../core/providers/table.js';
import type { Translator, UpstreamHeaders, UpstreamRequest } from '../core/providers/types.js';
import { responsesTranslator } from '../core/responses/translator.js';
import type { AttemptTiming, RequestTrace } from '../observe/tracing.js';
import type { TransportFailure } from './client.js';
import type { DataPlaneDeps } from './record.js';

const RELEASED_BODY = Buffer.alloc(0);

export interface AttemptRecord {
  model: CompiledModel;
  outcome: AttemptOutcome;
  status?: number;
  /** Why it failed: errno and host, or status and the provider's error code. For logs and the final error. */
  cause?: string;
  /** What the translator changed so the model would accept the request (Translator.adjusted). */
  adjusted?: readonly string[];
  /** With tracing: the span id sent to the provider, and the attempt's clock readings. */
  spanId?: string;
  timing?: AttemptTiming;
}

export class RequestAttempts {
  readonly attempts: AttemptRecord[] = [];
  /** Candidates tried, by index: bits for the first 31, then a Set (made only when needed). */
  #tried = 0;
  #triedMore: Set<number> | undefined;
  /** Providers that failed as a whole during this request: the next attempts go elsewhere first. */
  #avoid: Set<string> | undefined;
  #lastError: ApiError | undefined;
  #lastRetryAfter: string | undefined;
  /** A same-model retry after a 429: the candidate index and the wait before it. */
  #retry: { index: number; waitMs: number } | undefined;
  #rateLimitRetries = 0;

  constructor(
    readonly plan: RoutePlan,
    readonly deps: DataPlaneDeps,
    readonly requestId: string,
    /** The request's trace (tracing on): each attempt carries a child span to the provider. */
    readonly trace?: RequestTrace,
  ) {}

  /** Time left until the routing deadline, ms. */
  remainingMs(): number {
    return this.plan.deadlineAt - this.deps.router.now();
  }

  /** How long to wait before next() (the backoff of a same-model 429 retry); 0 otherwise. */
  get waitMs(): number {
    return this.#retry?.waitMs ?? 0;
  }

  /** begin + request: the next attempt, or undefined when no further attempt may be made (see error()). */
  next(): Attempt | undefined {
    const { plan, deps } = this;
    for (;;) {
      if (this.attempts.length >= plan.maxAttempts) return undefined;
      if (this.remainingMs() <= 0) {
        this.#lastError = new ApiError(
          504,
          'The routing deadline passed before any provider answered.',
          'timeout_error',
          'deadline_exceeded',
        );
        return undefined;
      }
      const index = this.#pick();
      if (index === undefined) return undefined;
      const model = plan.candidates[index]!;
      const tracker = deps.router.health.begin(model);
      if (!tracker) continue; // breaker opened, cooling down or out of rotation since the plan was made
      const record: AttemptRecord = { model, outcome: 'success' };
      this.attempts.push(record);
      let translator: Translator | undefined;
      try {
        messagesBack(plan.request);
        translator = plan.request.responses
          ? responsesTranslator(plan.request, model)
          : translatorForRequest(plan.request, model);
        const request = translator.buildRequest();
        setAsideMessages(plan.request);
        if (translator.adjusted.length > 0) record.adjusted = translator.adjusted;
        if (this.trace && deps.tracer) {
          const child = deps.tracer.attempt(this.trace);
          request.headers.traceparent = child.traceparent;
          record.spanId = child.spanId;
        }
        return new Attempt(this, translator, tracker, record, request);
      } catch (err) {
        if (!(err instanceof ApiError)) {
          // A bug, not the provider's fault: the breaker's slot is given back before it surfaces.
          tracker.neutral();
          record.outcome = 'client_error';
          this.recordAttempt(tracker, record, false);
          throw err;
        }
        // This provider cannot take the request (e.g. Anthropic has no `n`), is misconfigured, or
        // its credentials are not ready yet (an Entra token still being fetched): nothing was sent,
        // so the next candidate may still serve it. Only a misconfiguration counts against the
        // provider's health; a token in flight is TierFlow's own state, like a local error.
        const notReady = err.code === 'credentials_unavailable';
        const misconfigured = !notReady && isRetryableStatus(err.status);
        record.outcome = notReady ? 'local_error' : misconfigured ? 'connect_error' : 'client_error';
        record.status = err.status;
        record.cause = `refused before sending: ${err.code ?? err.message}`;
        if (misconfigured) tracker.fail('connect_error');
        else tracker.neutral();
        this.recordAttempt(tracker, record, false);
        this.#lastError = err;
      }
    }
  }

  /** The next candidate: a pending same-model retry, else the first untried one, preferring providers that have not failed. */
  #pick(): number | undefined {
    if (this.#retry) {
      const { index } = this.#retry;
      this.#retry = undefined;
      return index;
    }
    const { candidates } = this.plan;
    const avoid = this.#avoid;
    let fallback: number | undefined;
    for (let i = 0; i < candidates.length; i++) {
      if (this.#wasTried(i)) continue;
      if (avoid !== undefined && avoid.has(candidates[i]!.provider.name)) {
        fallback ??= i;
        continue;
      }
      this.#markTried(i);
      return i;
    }
    if (fallback !== undefined) this.#markTried(fallback);
    return fallback;
  }

  #wasTried(i: number): boolean {
    return i < 31 ? (this.#tried & (1 << i)) !== 0 : this.#triedMore?.has(i) === true;
  }

  #markTried(i: number): void {
    if (i < 31) this.#tried |= 1 << i;
    else (this.#triedMore ??= new Set()).add(i);
  }

  /** Called by Attempt when it failed and another attempt may follow. */
  failed(attempt: Attempt, error: ApiError, providerWide: boolean, retryAfter: string | undefined): void {
    this.#lastError = error;
    this.#lastRetryAfter = retryAfter;
    const model = attempt.model;
    if (providerWide) (this.#avoid ??= new Set()).add(model.provider.name);
    if (attempt.record.outcome !== 'http_429') return;
    const f = this.plan.failover;
    const asked = retryAfterMs(retryAfter, Date.now());
    if (this.#rateLimitRetries < f.rateLimitRetries && (asked ?? 0) <= f.maxRetryAfterMs) {
      const backoff = f.rateLimitBackoffMs * 2 ** this.#rateLimitRetries;
      this.#rateLimitRetries++;
      const index = this.plan.candidates.indexOf(model);
      this.#retry = { index, waitMs: Math.min(asked ?? backoff, Math.max(0, this.remainingMs())) };
      return;
    }
    if (asked !== undefined && asked > 0) this.deps.router.health.coolDown(model, asked);
  }

  /** The answer when no attempt served the request: the last failure, naming every attempt. */
  error(): ApiError {
    const last =
      this.#lastError ??
      new ApiError(
        503,
        'No provider is available for this request right now (circuit breakers open or providers out of rotation).',
        'api_error',
        'no_available_model',
      );
    const failed = this.attempts.filter((a) => a.cause !== undefined);
    if (failed.length === 0) return last;
    const list = failed.map((a, i) => `${i + 1}. ${a.model.id}: ${a.outcome}, ${a.cause}`).join('; ');
    return new ApiError(last.status, `${last.message} Attempts: ${list}.`, last.type, last.code, last.param);
  }

  /** Retry-After for the client when the final answer is a 429. */
  get retryAfter(): string | undefined {
    return this.#lastRetryAfter;
  }

  /** One attempt settled: metrics. */
  recordAttempt(tracker: AttemptTracker, record: AttemptRecord, willFailOver: boolean): void {
    const m = this.deps.metrics.forModel(record.model);
    m.attempt(record.outcome).inc();
    if (tracker.firstByteAt !== undefined) m.ttfb.observe((tracker.firstByteAt - tracker.startedAt) / 1000);
    if (tracker.firstTokenAt !== undefined) m.ttft.observe((tracker.firstTokenAt - tracker.startedAt) / 1000);
    if (willFailOver) m.failover(record.outcome).inc();
    if (this.deps.tracer) {
      record.timing = {
        start: tracker.startedAt,
        firstByte: tracker.firstByteAt,
        firstToken: tracker.firstTokenAt,
        end: this.deps.router.now(),
      };
    }
  }
}

/** One attempt against one candidate. Every path settles its breaker slot exactly once. */
export class Attempt {
  readonly number: number;
  #settled = false;
  #committed = false;

  constructor(
    readonly run: RequestAttempts,
    readonly translator: Translator,
    readonly tracker: AttemptTracker,
    readonly record: AttemptRecord,
    readonly request: UpstreamRequest,
  ) {
    this.number = run.attempts.length;
  }

  get model(): CompiledModel {
    return this.record.model;
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** Response headers arrived: what they mean for this attempt (nothing is settled yet). */
  responseHeaders(status: number) {
    this.tracker.firstByte();
    this.record.status = status;
    return statusVerdict(status, this.run.plan.failover.onStatusCodes);
  }

  /**
   * The provider answered with an error status (body: its error body, possibly empty). Settles.
   * `failover`: another attempt may follow; otherwise `error` is the client's answer.
   */
  failedStatus(
    status: number,
    headers: UpstreamHeaders,
    body: Buffer,
  ): { failover: boolean; error: ApiError } {
    let error: ApiError;
    try {
      error = this.translator.onError(status, headers, body);
    } catch {
      error = new ApiError(
        502,
        `Provider '${this.model.provider.name}' failed (status ${status}).`,
        'upstream_error',
        'upstream_error',
      );
    }
    const verdict = statusVerdict(status, this.run.plan.failover.onStatusCodes);
    if (verdict === 'client_error' || verdict === 'ok') {
      this.clientError(error);
      return { failover: false, error };
    }
    const cause = `HTTP ${status}${error.code ? ` ${error.code}` : ''} from ${this.request.url.host}`;
    if (verdict === 'credentials') {
      // TierFlow's own key was refused (the client's key never goes upstream): the provider is
      // misconfigured, not the client. Out of rotation, and an error that says so.
      const provider = this.model.provider.name;
      this.run.deps.router.health.credentialsRejected(provider);
      this.run.deps.log.error('provider refused TierFlow credentials: out of rotation', {
        requestId: this.run.requestId,
        provider,
        status,
        code: error.code ?? undefined,
      });
      const refused = new ApiError(
        502,
        `Provider '${provider}' refused the credentials TierFlow holds for it (HTTP ${status}); it is out of rotation until its credentials are fixed. This is not a problem with your API key.`,
        'upstream_error',
        'provider_auth_failed',
      );
      this.#fail('auth_error', refused, cause, true, undefined);
      return { failover: true, error: refused };
    }
    const outcome: AttemptOutcome = status === 429 ? 'http_429' : status >= 500 ? 'http_5xx' : 'http_4xx';
    const retryAfter = headers['retry-after'];
    this.#fail(
      outcome,
      error,
      cause,
      isProviderWide(outcome, error.code),
      Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
    );
    return { failover: true, error };
  }

  /** No usable response: connect error, reset or timeout (errno and host in the cause). Settles. */
  failedTransport(kind: TransportFailure, detail: string, deadline = false): ApiError {
    const provider = this.model.provider.name;
    if (kind === 'local_error') {
      // This process ran out of descriptors or memory: the provider never saw the request.
      const error = new ApiError(
        503,
        `TierFlow is out of local resources (file descriptors or memory) and could not reach provider '${provider}'; retry shortly.`,
        'api_error',
        'local_resources_exhausted',
      );
      this.#fail(kind, error, detail, false, undefined);
      return error;
    }
    const error = deadline
      ? new ApiError(
          504,
          `Provider '${provider}' did not answer before the routing deadline.`,
          'timeout_error',
          'deadline_exceeded',
        )
      : new ApiError(
          kind === 'timeout' ? 504 : 502,
          kind === 'connect_error'
            ? `Could not connect to provider '${provider}'.`
            : kind === 'timeout'
              ? `Provider '${provider}' timed out.`
              : `Provider '${provider}' closed the connection.`,
          'upstream_error',
          kind,
        );
    this.#fail(kind, error, `${detail} (${this.request.url.host})`, true, undefined);
    return error;
  }

  /** A response the provider sent but that cannot be used (unreadable 2xx, empty body). Settles. */
  failedResponse(error: ApiError, outcome: AttemptOutcome = 'http_5xx'): void {
    this.#fail(
      outcome,
      error,
      `${error.code ?? 'invalid response'} from ${this.request.url.host}`,
      false,
      undefined,
    );
  }

  /**
   * A 2xx body the translator refused: a retryable error (unreadable) fails over; otherwise it
   * refuses the request itself (a Gemini safety block), the client's 4xx. Settles.
   */
  bodyRefused(error: ApiError): boolean {
    if (isRetryableStatus(error.status)) {
      this.failedResponse(error);
      return true;
    }
    this.clientError(error);
    return false;
  }

  /** The request itself is wrong (a 4xx): answered as is, no failover, no health penalty. Settles. */
  clientError(error: ApiError): void {
    if (this.#settled) return;
    this.#settled = true;
    this.record.outcome = 'client_error';
    this.record.status = error.status;
    this.tracker.neutral();
    this.run.recordAttempt(this.tracker, this.record, false);
  }

  /**
   * The first byte goes to the client: from here on nothing fails over. Nothing reads the
   * upstream body any more (the HTTP client keeps its own reference while it still sends it):
   * a long stream stops holding it.
   */
  commit(): void {
    this.#committed = true;
    this.request.body = RELEASED_BODY;
  }

  get committed(): boolean {
    return this.#committed;
  }

  /** The response was delivered. Settles. */
  succeeded(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.record.outcome = 'success';
    if (this.translator.sawFirstToken) this.tracker.firstToken();
    this.tracker.succeed(this.translator.usage?.completionTokens);
    this.run.deps.router.health.credentialsAccepted(this.model.provider.name);
    this.run.recordAttempt(this.tracker, this.record, false);
  }

  /** A stream broke after bytes reached the client (told in-band). Settles. */
  streamFailed(cause: string): void {
    if (this.#settled) return;
    this.#settled = true;
    this.record.outcome = 'stream_error';
    this.record.cause = cause;
    this.tracker.fail('stream_error');
    this.run.recordAttempt(this.tracker, this.record, false);
  }

  /** The client went away (or Envoy ended the stream): not the provider's failure, nor a success. Settles. */
  abandoned(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.record.outcome = 'client_error';
    this.tracker.neutral();
    this.run.recordAttempt(this.tracker, this.record, false);
  }

  #fail(
    outcome: AttemptOutcome,
    error: ApiError,
    cause: string,
    providerWide: boolean,
    retryAfter: string | undefined,
  ): void {
    if (this.#settled) return;
    this.#settled = true;
    const record = this.record;
    record.outcome = outcome;
    record.status ??= error.status;
    record.cause = cause;
    if (outcome === 'local_error') this.tracker.neutral();
    else this.tracker.fail(failureKindOf(outcome) ?? 'reset');
    this.run.recordAttempt(this.tracker, record, true);
    this.run.deps.log.warn('attempt failed', {
      requestId: this.run.requestId,
      attempt: this.number,
      provider: this.model.provider.name,
      model: this.model.name,
      outcome,
      status: record.status,
      cause,
    });
    this.run.failed(this, error, providerWide, retryAfter);
  }
}
