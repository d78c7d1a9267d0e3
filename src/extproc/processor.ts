// The per-stream state machine: Envoy's phases mapped onto the shared pipeline.
//
//   request_headers  -> strip client x-tierflow-*; classify the path (chat, models, passthrough)
//   request_body     -> Router.plan -> first candidate whose breaker admits it -> translator
//                       -> rewrite :path/:authority/:scheme, provider auth, body, content-length,
//                          x-tierflow-cluster, clear_route_cache (one answer)
//   response_headers -> 2xx: mode_override STREAMED (SSE) or BUFFERED (JSON), client headers
//                       429/5xx (Envoy's own 503 included): failover with runAttempts into a
//                          buffer, answered as one immediate_response
//                       other 4xx: BUFFERED, translated into an OpenAI error
//   response_body    -> STREAMED: translate each chunk (carry-over inside the translator), usage,
//                       time to first token; BUFFERED: translate the whole body, content-length
//   end of stream    -> breaker, latency, metrics, cost, one log line (exactly once)
//
// Nothing here selects, translates or retries on its own: Router, translators, HealthRegistry
// and runAttempts are the same code the gateway runs. All state lives in this closure: Envoy may
// repeat x-request-id across requests, so nothing is keyed by a client header.
import { promptCostEstimateUsd } from '../core/accounting.js';
import { randomUUID } from 'node:crypto';
import type { CompiledModel } from '../core/config/compiled.js';
import { unsupportedContentType } from '../core/content-type.js';
import { ApiError } from '../core/errors.js';
import { type AttemptOutcome, isRetryableStatus, retryAfterMs } from '../core/failover.js';
import { exceedsJsonDepth } from '../core/json-depth.js';
import { isAllowedPassthroughPath } from '../core/passthrough-paths.js';
import { tooDeep } from '../core/parse.js';
import type { AttemptTracker } from '../core/health/registry.js';
import { tierflowHeaders } from '../core/response-headers.js';
import { authenticate, type RoutePlan } from '../core/router.js';
import { translatorFor } from '../core/translators/index.js';
import type { Translator } from '../core/translators/types.js';
import { listModels } from '../pipeline/models.js';
import { type AttemptDeps, runAttempts } from '../pipeline/attempts.js';
import {
  type AttemptRecord,
  costOf,
  type RequestOutcome,
  recordAttempt,
  recordRequest,
} from '../pipeline/record.js';
import { planRequest, releaseMessages } from '../pipeline/plan.js';
import { BufferSink } from './buffer-sink.js';
import { CLUSTER_HEADER } from './envoy-config.js';
import { headersToRecord, setHeader } from './headers.js';
import { passthroughErrorBody, passthroughTarget } from './passthrough.js';
import { DEFAULT_BODY_LIMIT, type StreamIO, type StreamProcessor } from './server.js';
import type {
  BodySendMode,
  HeaderValueOption,
  HttpBody,
  HttpHeaders,
  ProcessingMode,
  ProcessingRequest,
  ProcessingResponse,
  PbStruct,
  PbValue,
} from './types.js';

export interface SidecarOptions {
  /** Largest request/response body we promise (the listener's buffer limit). */
  bodyLimit?: number;
  /** Dynamic metadata namespace; must be in the filter's receiving_namespaces. */
  metadataNamespace?: string;
  /** The filter's max_message_timeout: how long Envoy may wait for a failover answer. */
  maxMessageTimeoutMs?: number;
  /** Header whose value picks the upstream cluster route (see envoy-config.ts). */
  clusterHeader?: string;
}

export const DEFAULT_MAX_MESSAGE_TIMEOUT_MS = 600_000;

/** Client headers that survive the rewrite (Envoy's own, tracing); everything else is the client's business, not the provider's. */
const KEEP_REQUEST = new Set([
  'x-request-id',
  'x-forwarded-proto',
  'traceparent',
  'tracestate',
  'content-length',
]);
/** Passthrough requests keep their body as sent, so its description stays too. */
const KEEP_PASSTHROUGH = new Set([...KEEP_REQUEST, 'content-type', 'accept', 'user-agent']);
/** Upstream response headers kept for the client besides the translator's own. */
const KEEP_RESPONSE = new Set(['date', 'x-request-id']);

const EMPTY = Buffer.alloc(0);

export function processingMode(responseBody: BodySendMode): ProcessingMode {
  return {
    request_header_mode: 'SEND',
    response_header_mode: 'SEND',
    request_body_mode: 'BUFFERED',
    response_body_mode: responseBody,
    request_trailer_mode: 'SKIP',
    response_trailer_mode: 'SKIP',
  };
}
const MODE_STREAMED = processingMode('STREAMED');
const MODE_BUFFERED = processingMode('BUFFERED');
const MODE_NONE = processingMode('NONE');

const CONTINUE = { response: { status: 'CONTINUE' as const } };

type Kind = 'chat' | 'passthrough' | 'models' | 'reject';

/** Splits `/v1/chat/completions?x` into the route kind and the path after the API prefix. */
export function classifyPath(
  method: string,
  rawPath: string,
): { kind: Kind; rest: string; error?: ApiError } {
  const q = rawPath.indexOf('?');
  const path = q === -1 ? rawPath : rawPath.slice(0, q);
  const rest = path.startsWith('/v1/') ? rawPath.slice(3) : rawPath;
  const bare = path.startsWith('/v1/') ? path.slice(3) : path;
  if (bare === '/chat/completions') {
    if (method !== 'POST')
      return {
        kind: 'reject',
        rest,
        error: new ApiError(
          405,
          `Method ${method} is not allowed on ${path}.`,
          'invalid_request_error',
          'method_not_allowed',
        ),
      };
    return { kind: 'chat', rest };
  }
  if (bare === '/models' && method === 'GET') return { kind: 'models', rest };
  if (path.startsWith('/v1/') && isAllowedPassthroughPath(rest)) return { kind: 'passthrough', rest };
  return {
    kind: 'reject',
    rest,
    error: new ApiError(
      404,
      `Unknown path ${clipPath(path)}. TierFlow serves chat completions and the OpenAI API resources under /v1/.`,
      'invalid_request_error',
      'unknown_url',
    ),
  };
}

function clipPath(path: string): string {
  return path.length > 200 ? path.slice(0, 200) + '…' : path;
}

function errorResponse(
  err: ApiError,
  extra: Record<string, string> = { 'x-tierflow-attempts': '0' },
  details = 'tierflow_error',
): ProcessingResponse {
  const set: HeaderValueOption[] = [setHeader('content-type', 'application/json')];
  for (const [k, v] of Object.entries(extra)) set.push(setHeader(k, v));
  return {
    immediate_response: {
      status: { code: err.status },
      headers: { set_headers: set },
      body: Buffer.from(err.toJson()),
      details,
    },
  };
}

function str(v: string): PbValue {
  return { stringValue: v };
}

/** Upstream target of a URL: what Envoy's dynamic forward proxy needs to reach it. */
export function targetHeaders(url: URL, clusterHeader = CLUSTER_HEADER): Record<string, string> {
  const tls = url.protocol === 'https:';
  return {
    ':authority': url.host,
    ':path': url.pathname + url.search,
    ':scheme': tls ? 'https' : 'http',
    [clusterHeader]: tls ? 'tls' : 'plain',
  };
}

function failureOutcome(status: number, headers: Record<string, string>): AttemptOutcome {
  if (status === 429) return 'http_429';
  // Envoy's own local reply (connect failure, reset before headers) carries no
  // x-envoy-upstream-service-time: the provider never answered.
  if (status === 503 && headers['x-envoy-upstream-service-time'] === undefined) return 'connect_error';
  return 'http_5xx';
}

/** The TierFlow processor for one ext_proc stream. */
export class SidecarStream implements StreamProcessor {
  readonly #deps: AttemptDeps;
  readonly #bodyLimit: number;
  readonly #ns: string;
  readonly #maxWaitMs: number;
  readonly #clusterHeader: string;

  #kind: Kind = 'reject';
  #rest = '/';
  #reqHeaders: Record<string, string> = {};
  #requestId = '';
  #authorization: string | undefined;

  #plan: RoutePlan | undefined;
  #candidateIndex = -1;
  #translator: Translator | undefined;
  #tracker: AttemptTracker | undefined;
  #record: AttemptRecord | undefined;
  #attempts: AttemptRecord[] = [];
  #respStatus = 0;
  #respHeaders: Record<string, string> = {};
  #respMode: 'stream' | 'json' | 'error' | 'none' = 'none';
  #passthroughProvider: string | undefined;
  #failoverSink: BufferSink | undefined;
  #done = false;

  constructor(deps: AttemptDeps, options: SidecarOptions = {}) {
    this.#deps = deps;
    this.#bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    this.#ns = options.metadataNamespace ?? 'tierflow';
    this.#maxWaitMs = options.maxMessageTimeoutMs ?? DEFAULT_MAX_MESSAGE_TIMEOUT_MS;
    this.#clusterHeader = options.clusterHeader ?? CLUSTER_HEADER;
  }

  onMessage(req: ProcessingRequest, io: StreamIO): ProcessingResponse | Promise<ProcessingResponse> {
    switch (req.request) {
      case 'request_headers':
        return this.#onRequestHeaders(req.request_headers ?? {});
      case 'request_body':
        return this.#onRequestBody(req.request_body ?? {});
      case 'response_headers':
        return this.#onResponseHeaders(req.response_headers ?? {}, io);
      case 'response_body':
        return this.#onResponseBody(req.response_body ?? {}, io);
      case 'request_trailers':
        return { request_trailers: {} };
      case 'response_trailers':
        return { response_trailers: {} };
      default:
        return errorResponse(
          new ApiError(
            500,
            'TierFlow received an ext_proc message it does not understand.',
            'api_error',
            'tierflow_protocol_error',
          ),
        );
    }
  }

  onEnd(reason: 'end' | 'cancelled' | 'error'): void {
    this.#failoverSink?.abort();
    if (this.#done) return;
    if (this.#tracker && this.#record) {
      // The stream ended before the response did (the client went away, Envoy reset or gave up):
      // not the provider's failure, and not a success either.
      void reason;
      this.#tracker.neutral();
      this.#record.outcome = 'client_error';
      recordAttempt(this.#deps, this.#tracker, this.#record, false);
      this.#finish({
        status: 499,
        attempts: this.#attempts,
        served: this.#record.model,
        usage: this.#translator?.usage,
      });
    } else if (this.#kind === 'passthrough' && this.#passthroughProvider) {
      this.#done = true;
      this.#deps.log.info('request', {
        requestId: this.#requestId,
        status: this.#respStatus || 499,
        passthrough: this.#rest.split('?')[0],
        provider: this.#passthroughProvider,
      });
    }
    this.#done = true;
  }

  // --- request_headers ---------------------------------------------------------------------

  #onRequestHeaders(msg: HttpHeaders): ProcessingResponse {
    const h = headersToRecord(msg.headers);
    this.#reqHeaders = h;
    this.#requestId = h['x-request-id'] || randomUUID();
    this.#authorization = h.authorization;
    const method = h[':method'] ?? 'GET';
    const { kind, rest, error } = classifyPath(method, h[':path'] ?? '/');
    this.#kind = kind;
    this.#rest = rest;
    if (error) return errorResponse(error);
    const wrongType = kind === 'chat' ? unsupportedContentType(h['content-type']) : undefined;
    if (wrongType) return errorResponse(wrongType);
    if (kind === 'models') {
      try {
        if (this.#deps.router.config.virtualKeys.size > 0)
          authenticate(this.#deps.router.config, this.#authorization);
      } catch (err) {
        if (err instanceof ApiError) return errorResponse(err);
        throw err;
      }
      const body = Buffer.from(JSON.stringify(listModels(this.#deps.router.config)));
      return {
        immediate_response: {
          status: { code: 200 },
          headers: {
            set_headers: [
              setHeader('content-type', 'application/json'),
              setHeader('x-tierflow-attempts', '0'),
            ],
          },
          body,
          details: 'tierflow_models',
        },
      };
    }
    // Client-supplied x-tierflow-* never go past this answer.
    const remove: string[] = [];
    for (const k in h) if (k.startsWith('x-tierflow-')) remove.push(k);
    if (kind === 'passthrough' && msg.end_of_stream) return this.#passthrough(undefined, remove);
    if (kind === 'chat' && msg.end_of_stream) {
      // No body will follow: the pipeline's own parser says what is wrong.
      return this.#decide(EMPTY);
    }
    return remove.length > 0
      ? { request_headers: { response: { status: 'CONTINUE', header_mutation: { remove_headers: remove } } } }
      : { request_headers: CONTINUE };
  }

  // --- request_body: the decision ---------------------------------------------------------------

  #onRequestBody(msg: HttpBody): ProcessingResponse {
    const body = msg.body ?? EMPTY;
    if (this.#kind === 'passthrough') return this.#passthrough(body, []);
    if (this.#kind !== 'chat') return { request_body: CONTINUE };
    return this.#decide(body);
  }

  /** parse -> authenticate -> policy -> classify -> select (Router.plan), then the first attempt's rewrite. */
  #decide(body: Buffer): ProcessingResponse {
    const { router } = this.#deps;
    const plan = planRequest(this.#deps, body, this.#authorization, this.#requestId);
    if (plan instanceof ApiError) {
      this.#done = true;
      return errorResponse(plan);
    }
    this.#plan = plan;

    let refused: ApiError | undefined;
    for (let i = 0; i < plan.candidates.length && this.#attempts.length < plan.maxAttempts; i++) {
      const model = plan.candidates[i]!;
      const tracker = router.health.begin(model);
      if (!tracker) continue; // breaker open (or half-open probe taken) since the plan was made
      const translator = translatorFor(model.provider.type)(plan.request, model);
      let up;
      try {
        up = translator.buildRequest();
      } catch (err) {
        if (!(err instanceof ApiError)) {
          tracker.neutral();
          throw err;
        }
        // This provider cannot take the request (e.g. Anthropic has no `n`), or is misconfigured:
        // nothing was sent, so the next candidate may serve it (the gateway does the same).
        const misconfigured = isRetryableStatus(err.status);
        const record: AttemptRecord = {
          model,
          outcome: misconfigured ? 'connect_error' : 'client_error',
          status: err.status,
        };
        if (misconfigured) tracker.fail('connect_error');
        else tracker.neutral();
        this.#attempts.push(record);
        recordAttempt(this.#deps, tracker, record, false);
        refused = err;
        continue;
      }
      this.#candidateIndex = i;
      this.#translator = translator;
      this.#tracker = tracker;
      this.#record = { model, outcome: 'success' };
      if (translator.adjusted.length > 0) this.#record.adjusted = translator.adjusted;
      this.#attempts.push(this.#record);
      return this.#rewrite(up.url, up.headers, up.body, model, true, KEEP_REQUEST);
    }
    this.#done = true;
    if (refused) {
      const outcome: RequestOutcome = { status: refused.status, attempts: this.#attempts, error: refused };
      recordRequest(this.#deps, plan, outcome, this.#requestId);
      return errorResponse(refused, tierflowHeaders(plan, undefined, this.#attempts.length, undefined));
    }
    // Every candidate's breaker refused: the same answer runAttempts gives.
    const err = new ApiError(
      503,
      'No provider is available for this request right now (circuit breakers open).',
      'api_error',
      'no_available_model',
    );
    recordRequest(this.#deps, plan, { status: 503, attempts: [], error: err }, this.#requestId);
    return errorResponse(err, tierflowHeaders(plan, undefined, 0, undefined));
  }

  /** The request_body (or, without a body, request_headers) answer that sends Envoy to `url`. */
  #rewrite(
    url: URL,
    headers: Record<string, string>,
    body: Buffer | undefined,
    model: CompiledModel | undefined,
    replaceBody: boolean,
    keep: ReadonlySet<string>,
  ): ProcessingResponse {
    const set: HeaderValueOption[] = [];
    const target = targetHeaders(url, this.#clusterHeader);
    for (const k in target) set.push(setHeader(k, target[k]!));
    for (const k in headers) set.push(setHeader(k, headers[k]!));
    if (body && replaceBody) set.push(setHeader('content-length', String(body.length)));
    const remove: string[] = [];
    for (const k in this.#reqHeaders) {
      if (
        k.charCodeAt(0) === 58 /* : */ ||
        k === 'host' ||
        k.startsWith('x-envoy-') ||
        (keep.has(k) && !k.startsWith('x-tierflow-'))
      )
        continue;
      if (headers[k] !== undefined || k === this.#clusterHeader) continue;
      remove.push(k);
    }
    const fields: Record<string, PbValue> = { request_id: str(this.#requestId) };
    if (model) {
      fields.model = str(model.name);
      fields.provider = str(model.provider.name);
      fields.tier = str(model.tier);
    }
    const plan = this.#plan;
    if (plan) {
      fields.score = str(plan.score === undefined ? 'explicit' : plan.score.toFixed(4));
      if (plan.policy) fields.policy = str(plan.policy.name);
    }
    const response = {
      response: {
        status: 'CONTINUE' as const,
        header_mutation: { set_headers: set, remove_headers: remove },
        ...(body && replaceBody ? { body_mutation: { body } } : {}),
        clear_route_cache: true,
      },
    };
    const metadata: PbStruct = { fields: { [this.#ns]: { structValue: { fields } } } };
    return body !== undefined
      ? { request_body: response, dynamic_metadata: metadata }
      : { request_headers: response, dynamic_metadata: metadata };
  }

  /** Non-chat request: to an OpenAI-wire provider unchanged (model renamed if the body names a configured one). */
  #passthrough(body: Buffer | undefined, removeTierflow: string[]): ProcessingResponse {
    const { router } = this.#deps;
    const config = router.config;
    try {
      if (config.virtualKeys.size > 0) {
        const key = authenticate(config, this.#authorization);
        const model = body ? bodyModel(body) : undefined;
        if (key?.allowedModels && model !== undefined && !key.allowedModels.has(model)) {
          throw new ApiError(
            403,
            `This key may not use model '${model}'.`,
            'permission_error',
            'model_not_allowed',
          );
        }
      }
    } catch (err) {
      if (err instanceof ApiError) {
        this.#done = true;
        return errorResponse(err);
      }
      throw err;
    }
    const requested = body ? bodyModel(body) : undefined;
    const target = passthroughTarget(config, router.health, this.#rest, requested);
    if (!target) {
      this.#done = true;
      return errorResponse(
        new ApiError(
          404,
          `TierFlow cannot route ${this.#rest.split('?')[0]}: no OpenAI-compatible provider is configured.`,
          'invalid_request_error',
          'unknown_url',
        ),
      );
    }
    this.#passthroughProvider = target.provider.name;
    let newBody = body;
    let replace = false;
    if (body && target.model && requested !== undefined && target.model.upstreamModel !== requested) {
      if (exceedsJsonDepth(body)) {
        this.#done = true;
        return errorResponse(tooDeep());
      }
      try {
        const obj = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        obj.model = target.model.upstreamModel;
        newBody = Buffer.from(JSON.stringify(obj));
        replace = true;
      } catch {
        /* not JSON: leave it */
      }
    }
    // x-tierflow-* are client headers too: #rewrite removes every client header it does not keep.
    void removeTierflow;
    return this.#rewrite(target.url, target.headers, newBody, target.model, replace, KEEP_PASSTHROUGH);
  }

  // --- response_headers ----------------------------------------------------------------------

  #onResponseHeaders(msg: HttpHeaders, io: StreamIO): ProcessingResponse | Promise<ProcessingResponse> {
    const h = headersToRecord(msg.headers);
    const status = Number(h[':status'] ?? 0);
    this.#respStatus = status;
    this.#respHeaders = h;
    if (this.#kind === 'passthrough') {
      const set = [
        setHeader('x-tierflow-attempts', '1'),
        setHeader('x-tierflow-provider', this.#passthroughProvider ?? 'none'),
      ];
      // Error bodies are read (and redacted: providers echo keys in them); others pass as sent.
      const failed = status >= 400 && !msg.end_of_stream;
      if (failed) this.#respMode = 'error';
      return {
        response_headers: { response: { status: 'CONTINUE', header_mutation: { set_headers: set } } },
        mode_override: failed ? MODE_BUFFERED : MODE_NONE,
      };
    }
    const plan = this.#plan;
    const translator = this.#translator;
    const tracker = this.#tracker;
    const record = this.#record;
    if (!plan || !translator || !tracker || !record)
      return { response_headers: CONTINUE, mode_override: MODE_NONE };
    tracker.firstByte();
    const model = record.model;
    record.status = status;

    if (status >= 400 || status < 100) {
      if (isRetryableStatus(status) || status < 100) return this.#failover(status, h, io);
      // The client's mistake: translated into an OpenAI error from the body, no failover, no health penalty.
      this.#respMode = 'error';
      record.outcome = 'client_error';
      tracker.neutral();
      if (msg.end_of_stream) return this.#clientErrorAnswer(EMPTY, 'response_headers');
      return {
        response_headers: {
          response: {
            status: 'CONTINUE',
            header_mutation: this.#responseHeaderMutation(
              { 'content-type': 'application/json' },
              model,
              undefined,
            ),
          },
        },
        mode_override: MODE_BUFFERED,
      };
    }

    let start;
    try {
      start = translator.onResponseHeaders(status, h);
    } catch (err) {
      if (err instanceof ApiError) return this.#failover(502, h, io, err);
      throw err;
    }
    if (msg.end_of_stream) {
      // A success without a body is not a completion: the provider failed, nothing reached the client.
      return this.#failover(
        502,
        h,
        io,
        new ApiError(
          502,
          `Provider '${model.provider.name}' answered without a body.`,
          'upstream_error',
          'invalid_upstream_response',
        ),
      );
    }
    if (start.streaming) {
      this.#respMode = 'stream';
      const estimate = promptCostEstimateUsd(plan.request.promptTokens, model);
      releaseMessages(plan);
      return {
        response_headers: {
          response: {
            status: 'CONTINUE',
            header_mutation: this.#responseHeaderMutation(
              start.headers,
              model,
              estimate,
              start.status !== status ? start.status : undefined,
            ),
          },
        },
        mode_override: MODE_STREAMED,
      };
    }
    this.#respMode = 'json';
    return {
      response_headers: {
        response: {
          status: 'CONTINUE',
          header_mutation: this.#responseHeaderMutation(
            start.headers,
            model,
            undefined,
            start.status !== status ? start.status : undefined,
          ),
        },
      },
      mode_override: MODE_BUFFERED,
    };
  }

  /** Headers the client sees: the translator's, x-tierflow-*, nothing provider-specific. */
  #responseHeaderMutation(
    clientHeaders: Record<string, string>,
    model: CompiledModel,
    costUsd: number | undefined,
    newStatus?: number,
  ) {
    const set: HeaderValueOption[] = [];
    for (const k in clientHeaders) set.push(setHeader(k, clientHeaders[k]!));
    const tf = tierflowHeaders(this.#plan, model, this.#attempts.length, costUsd);
    for (const k in tf) set.push(setHeader(k, tf[k]!));
    if (newStatus !== undefined) set.push(setHeader(':status', String(newStatus)));
    const remove: string[] = [];
    for (const k in this.#respHeaders) {
      if (
        k.charCodeAt(0) === 58 ||
        k.startsWith('x-envoy-') ||
        KEEP_RESPONSE.has(k) ||
        clientHeaders[k] !== undefined ||
        tf[k] !== undefined
      )
        continue;
      remove.push(k);
    }
    return { set_headers: set, remove_headers: remove };
  }

  /**
   * Envoy's attempt failed before anything reached the client: record it, then run the remaining
   * candidates with the shared attempt runner and answer with its whole response.
   */
  async #failover(
    status: number,
    h: Record<string, string>,
    io: StreamIO,
    cause?: ApiError,
  ): Promise<ProcessingResponse> {
    const plan = this.#plan!;
    const tracker = this.#tracker!;
    const record = this.#record!;
    const translator = this.#translator!;
    const model = record.model;
    const outcome = cause ? 'http_5xx' : failureOutcome(status, h);
    record.outcome = outcome;
    tracker.fail(
      outcome === 'http_429' ? 'http_429' : outcome === 'connect_error' ? 'connect_error' : 'http_5xx',
    );
    const retryAfter = h['retry-after'];
    if (outcome !== 'connect_error') {
      const wait = retryAfterMs(retryAfter, Date.now());
      if (wait !== undefined && wait > 0) this.#deps.router.health.coolDown(model, wait);
    }
    recordAttempt(this.#deps, tracker, record, true);
    this.#tracker = undefined; // settled: onEnd must not count it again
    let previousError = cause;
    if (!previousError) {
      try {
        previousError = translator.onError(status, h, EMPTY);
      } catch {
        previousError = new ApiError(
          502,
          `Provider '${model.provider.name}' failed (status ${status}).`,
          'upstream_error',
          'upstream_error',
        );
      }
    }
    io.extendTimeout(this.#maxWaitMs);
    const sink = new BufferSink(this.#bodyLimit);
    this.#failoverSink = sink;
    const result = await runAttempts(plan, this.#deps, sink, {
      startAt: this.#candidateIndex + 1,
      previous: this.#attempts,
      previousError,
      previousRetryAfter: retryAfter,
    });
    this.#failoverSink = undefined;
    this.#attempts = result.attempts;
    this.#finish(result);
    if (sink.overflowed) {
      return errorResponse(
        new ApiError(
          502,
          `The fallback response exceeded the ${this.#bodyLimit}-byte limit of the sidecar.`,
          'upstream_error',
          'response_too_large',
        ),
        tierflowHeaders(plan, result.served, result.attempts.length, undefined),
      );
    }
    const set: HeaderValueOption[] = [];
    for (const k in sink.headers) if (k !== 'content-length') set.push(setHeader(k, sink.headers[k]!));
    const res: ProcessingResponse = {
      immediate_response: {
        status: { code: sink.status || result.status || 502 },
        headers: { set_headers: set },
        body: sink.body(),
        details: 'tierflow_failover',
      },
    };
    if (result.served) res.dynamic_metadata = this.#finalMetadata(result);
    return res;
  }

  // --- response_body -------------------------------------------------------------------------

  #onResponseBody(msg: HttpBody, io: StreamIO): ProcessingResponse | Promise<ProcessingResponse> {
    const chunk = msg.body ?? EMPTY;
    const end = msg.end_of_stream === true;
    const translator = this.#translator;
    const tracker = this.#tracker;
    if (this.#kind === 'passthrough' && this.#respMode === 'error') {
      const out = passthroughErrorBody(this.#passthroughProvider ?? 'none', this.#respStatus, chunk);
      return this.#replaceBody(out, { 'content-type': 'application/json' });
    }
    if (!translator || this.#done) return { response_body: CONTINUE };
    switch (this.#respMode) {
      case 'stream': {
        const out = translator.onStreamChunk(chunk, end);
        if (tracker && translator.sawFirstToken && tracker.firstTokenAt === undefined) tracker.firstToken();
        const res: ProcessingResponse = {
          response_body: { response: { status: 'CONTINUE', body_mutation: { body: out } } },
        };
        if (end) {
          const outcome = this.#succeedOrStreamError();
          res.dynamic_metadata = this.#finalMetadata(outcome);
        }
        return res;
      }
      case 'json': {
        let out: Buffer;
        try {
          out = translator.onBody(chunk);
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          // A 2xx body that says the request itself was refused (a Gemini safety block): the
          // client's 4xx, answered as is, like any other 4xx (no failover, no health penalty).
          if (!isRetryableStatus(err.status)) {
            this.#record!.outcome = 'client_error';
            this.#tracker?.neutral();
            return this.#clientErrorAnswer(chunk, 'response_body', err);
          }
          // An unreadable success body is the provider's failure. Envoy still holds the response
          // headers (BUFFERED), so nothing reached the client: fail over like the gateway does.
          return this.#failover(502, this.#respHeaders, io, err);
        }
        if (tracker && translator.sawFirstToken) tracker.firstToken();
        const outcome = this.#succeedOrStreamError();
        const cost = outcome.cost?.costUsd ?? 0;
        const extra: Record<string, string> = { 'x-tierflow-cost-usd': cost.toFixed(8) };
        const res = out === chunk ? this.#headersOnly(extra, out.length) : this.#replaceBody(out, extra);
        res.dynamic_metadata = this.#finalMetadata(outcome);
        return res;
      }
      case 'error':
        return this.#clientErrorAnswer(chunk, 'response_body');
      default:
        return { response_body: CONTINUE };
    }
  }

  #clientErrorAnswer(
    body: Buffer,
    kind: 'response_body' | 'response_headers',
    error?: ApiError,
  ): ProcessingResponse {
    const translator = this.#translator!;
    const model = this.#record!.model;
    const err = error ?? translator.onError(this.#respStatus, this.#respHeaders, body);
    if (this.#tracker && this.#record) {
      recordAttempt(this.#deps, this.#tracker, this.#record, false);
      this.#tracker = undefined;
    }
    this.#finish({ status: err.status, attempts: this.#attempts, served: model, error: err });
    if (kind === 'response_headers') {
      return errorResponse(
        err,
        tierflowHeaders(this.#plan, model, this.#attempts.length, 0),
        'tierflow_upstream_error',
      );
    }
    const cost = tierflowHeaders(this.#plan, model, this.#attempts.length, 0);
    return this.#replaceBody(
      Buffer.from(err.toJson()),
      { 'content-type': 'application/json', ...cost },
      err.status !== this.#respStatus ? err.status : undefined,
    );
  }

  /** BUFFERED answer replacing the body: content-length in the same answer, as Envoy requires. */
  #replaceBody(body: Buffer, headers: Record<string, string>, status?: number): ProcessingResponse {
    const set: HeaderValueOption[] = [setHeader('content-length', String(body.length))];
    for (const k in headers) set.push(setHeader(k, headers[k]!));
    if (status !== undefined) set.push(setHeader(':status', String(status)));
    return {
      response_body: {
        response: { status: 'CONTINUE', header_mutation: { set_headers: set }, body_mutation: { body } },
      },
    };
  }

  #headersOnly(headers: Record<string, string>, length: number): ProcessingResponse {
    const set: HeaderValueOption[] = [setHeader('content-length', String(length))];
    for (const k in headers) set.push(setHeader(k, headers[k]!));
    return { response_body: { response: { status: 'CONTINUE', header_mutation: { set_headers: set } } } };
  }

  // --- accounting ----------------------------------------------------------------------------

  #succeedOrStreamError(): RequestOutcome {
    const translator = this.#translator!;
    const record = this.#record!;
    const tracker = this.#tracker;
    if (translator.streamError) {
      record.outcome = 'stream_error';
      tracker?.fail('stream_error');
    } else {
      record.outcome = 'success';
      tracker?.succeed(translator.usage?.completionTokens);
    }
    if (tracker) recordAttempt(this.#deps, tracker, record, false);
    this.#tracker = undefined;
    const outcome: RequestOutcome = {
      status: this.#respStatus,
      attempts: this.#attempts,
      served: record.model,
      usage: translator.usage,
      cost: costOf(this.#plan!, record.model, translator.usage),
      error: translator.streamError,
    };
    this.#finish(outcome);
    return outcome;
  }

  #finish(outcome: RequestOutcome): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#plan) recordRequest(this.#deps, this.#plan, outcome, this.#requestId);
  }

  #finalMetadata(outcome: RequestOutcome): PbStruct {
    const fields: Record<string, PbValue> = {
      attempts: { numberValue: outcome.attempts.length },
      status: { numberValue: outcome.status },
    };
    if (outcome.served) {
      fields.model = str(outcome.served.name);
      fields.provider = str(outcome.served.provider.name);
      fields.tier = str(outcome.served.tier);
    }
    if (outcome.cost) fields.cost_usd = { numberValue: outcome.cost.costUsd };
    if (outcome.usage) {
      fields.prompt_tokens = { numberValue: outcome.usage.promptTokens };
      fields.completion_tokens = { numberValue: outcome.usage.completionTokens };
    }
    return { fields: { [this.#ns]: { structValue: { fields } } } };
  }
}

function bodyModel(body: Buffer): string | undefined {
  if (body.length === 0 || body.length > 1 << 20) return undefined;
  try {
    const m = (JSON.parse(body.toString('utf8')) as { model?: unknown }).model;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** A processor factory for ExtProcServer. */
export function sidecarProcessor(deps: AttemptDeps, options: SidecarOptions = {}): () => StreamProcessor {
  return () => new SidecarStream(deps, options);
}
