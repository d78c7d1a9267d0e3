// The per-stream state machine: Envoy's phases mapped onto the shared pipeline.
//
//   request_headers  -> strip client x-tierflow-*; classify the path (chat, responses, embeddings,
//                       models, passthrough); chat, responses and embeddings are routed, the same
//                       way from here on
//   request_body     -> Router.plan -> first candidate whose breaker admits it -> translator
//                       -> rewrite :path/:authority/:scheme, provider auth, body, content-length,
//                          x-tierflow-cluster, clear_route_cache (one answer)
//   response_headers -> 2xx: mode_override STREAMED (SSE) or BUFFERED (JSON), client headers
//                       429/5xx/401/403 (Envoy's own 503 and per-try 504 included): the engine
//                          settles the attempt, runAttempts continues the same request into a
//                          buffer, answered as one immediate_response
//                       other 4xx: BUFFERED, translated into an OpenAI error
//   response_body    -> STREAMED: translate each chunk (carry-over inside the translator), usage,
//                       time to first token; BUFFERED: translate the whole body, content-length
//   end of stream    -> breaker, latency, metrics, cost, one log line (exactly once)
//
// Nothing here selects, translates or decides failover on its own: Router, translators and the
// attempt engine (src/pipeline/engine.ts) are the same code the gateway runs; this file maps
// Envoy's phases onto them and keeps the per-stream state. All state lives in this closure: Envoy may
// repeat x-request-id across requests, so nothing is keyed by a client header.
import { promptCostEstimateUsd } from '../core/accounting.js';
import { randomUUID } from 'node:crypto';
import type { CompiledModel } from '../core/config/compiled.js';
import { unsupportedContentType } from '../core/content-type.js';
import { ApiError } from '../core/errors.js';
import { exceedsJsonDepth } from '../core/json-depth.js';
import { limitHeaders } from '../core/limit-headers.js';
import { isAllowedPassthroughPath } from '../core/passthrough-paths.js';
import { tooDeep } from '../core/parse.js';
import type { SplicedBody } from '../core/raw-json.js';
import { tierflowHeaders } from '../core/response-headers.js';
import { authenticate, type RoutePlan } from '../core/router.js';
import { listModels, modelNotFound, retrieveModel } from '../pipeline/models.js';
import { type Attempt, RequestAttempts } from '../pipeline/engine.js';
import { type AttemptDeps, runAttempts } from '../pipeline/send.js';
import { costOf, type RequestOutcome, recordRequest, traceRejected } from '../pipeline/record.js';
import type { RequestTrace } from '../observe/tracing.js';
import { planEmbeddingsRequest, planRequest, releaseMessages } from '../pipeline/plan.js';
import { planResponsesRequest } from '../pipeline/responses.js';
import { releaseAfterRequest } from '../pipeline/release-memory.js';
import { BufferSink } from './buffer-sink.js';
import { CLUSTER_HEADER } from './envoy-config.js';
import { headersToRecord, repeatedHeader, setHeader } from './headers.js';
import { passthroughErrorBody, passthroughTarget } from './passthrough.js';
import { DEFAULT_BODY_LIMIT, type StreamIO, type StreamProcessor } from './server.js';
import type {
  BodySendMode,
  CommonResponse,
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
/** x-tierflow-* headers whose values repeat across requests (see repeatedHeader); score and cost vary. */
const REPEATING_TIERFLOW_HEADERS = new Set([
  'x-tierflow-attempts',
  'x-tierflow-model',
  'x-tierflow-provider',
  'x-tierflow-tier',
  'x-tierflow-policy',
  'x-tierflow-sticky',
]);
/** Upstream response headers kept for the client besides the translator's own. */
const KEEP_RESPONSE = new Set(['date', 'x-request-id']);

const EMPTY = Buffer.alloc(0);
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

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

/** `chat`, `responses` and `embeddings` are routed (POST /v1/chat/completions, /v1/responses, /v1/embeddings). */
type Kind = 'chat' | 'responses' | 'embeddings' | 'passthrough' | 'models' | 'reject';

const ROUTED: Readonly<Record<string, Kind>> = {
  '/chat/completions': 'chat',
  '/responses': 'responses',
  '/embeddings': 'embeddings',
};

const isRouted = (kind: Kind): boolean => kind === 'chat' || kind === 'responses' || kind === 'embeddings';

/** Splits `/v1/chat/completions?x` into the route kind and the path after the API prefix. */
export function classifyPath(
  method: string,
  rawPath: string,
): { kind: Kind; rest: string; error?: ApiError } {
  const q = rawPath.indexOf('?');
  const path = q === -1 ? rawPath : rawPath.slice(0, q);
  const rest = path.startsWith('/v1/') ? rawPath.slice(3) : rawPath;
  const bare = path.startsWith('/v1/') ? path.slice(3) : path;
  const routed = Object.hasOwn(ROUTED, bare) ? ROUTED[bare] : undefined;
  if (routed) {
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
    return { kind: routed, rest };
  }
  if ((bare === '/models' || bare.startsWith('/models/')) && method === 'GET')
    return { kind: 'models', rest };
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
  if (err.headers) for (const k in err.headers) set.push(setHeader(k, err.headers[k]!));
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

/** targetHeaders as set_headers entries, by URL (see repeatedHeader: answers may share them). */
const TARGETS = new Map<string, { clusterHeader: string; entries: HeaderValueOption[] }>();
const MAX_TARGETS = 256;

function targetEntries(url: URL, clusterHeader: string): readonly HeaderValueOption[] {
  const href = url.href;
  const known = TARGETS.get(href);
  if (known?.clusterHeader === clusterHeader) return known.entries;
  const target = targetHeaders(url, clusterHeader);
  const entries: HeaderValueOption[] = [];
  for (const k in target) entries.push(setHeader(k, target[k]!));
  // Bounded; a query is never kept (a pass-through client's parameters may carry a secret).
  if (!href.includes('?')) {
    if (TARGETS.size >= MAX_TARGETS) TARGETS.clear();
    TARGETS.set(href, { clusterHeader, entries });
  }
  return entries;
}

/**
 * Envoy's own local reply instead of the provider's answer: a 503 for a connect failure or a reset
 * before headers, a 504 when the per-try timeout TierFlow set (PER_TRY_TIMEOUT_HEADER) expired.
 * Both lack x-envoy-upstream-service-time, which Envoy adds to every upstream response.
 */
function envoyLocalFailure(
  status: number,
  headers: Record<string, string>,
): 'connect_error' | 'timeout' | undefined {
  if (headers['x-envoy-upstream-service-time'] !== undefined) return undefined;
  if (status === 503) return 'connect_error';
  if (status === 504) return 'timeout';
  return undefined;
}

/**
 * Bounds the wait for the provider's response headers on Envoy's path: Envoy's router ends the
 * attempt with a local 504 when it expires, and the per-try timeout stops applying once the
 * response has started, so a long stream is never cut (the route timeout is 0s for that reason).
 */
export const PER_TRY_TIMEOUT_HEADER = 'x-envoy-upstream-rq-per-try-timeout-ms';

/** The TierFlow processor for one ext_proc stream. */
export class SidecarStream implements StreamProcessor {
  readonly #deps: AttemptDeps;
  readonly #bodyLimit: number;
  readonly #ns: string;
  readonly #maxWaitMs: number;
  readonly #clusterHeader: string;

  #kind: Kind = 'reject';
  #rest = '/';
  #reqHeaders: Readonly<Record<string, string>> = NO_HEADERS;
  #requestId = '';
  #authorization: string | undefined;
  /** Only with OpenTelemetry export on. */
  #trace: RequestTrace | undefined;

  #plan: RoutePlan | undefined;
  #run: RequestAttempts | undefined;
  /** The attempt Envoy is making (the first); undefined once the request moved past it. */
  #attempt: Attempt | undefined;
  #respStatus = 0;
  #respHeaders: Readonly<Record<string, string>> = NO_HEADERS;
  #respMode: 'stream' | 'json' | 'error' | 'none' = 'none';
  #passthroughProvider: string | undefined;
  /** What the virtual key has left after admitting a pass-through request (x-ratelimit-* headers). */
  #passthroughLimits: Record<string, string> | undefined;
  #failoverSink: BufferSink | undefined;
  #done = false;
  #bodyBytes = 0;

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
    releaseAfterRequest(this.#bodyBytes);
    if (this.#done) return;
    const attempt = this.#attempt;
    if (attempt && this.#run) {
      // The stream ended before the response did (the client went away, Envoy reset or gave up):
      // not the provider's failure, and not a success either.
      void reason;
      attempt.abandoned();
      this.#finish({
        status: 499,
        attempts: this.#run.attempts,
        served: attempt.model,
        usage: attempt.translator.usage,
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
    const h = msg.record ?? headersToRecord(msg.headers);
    this.#reqHeaders = h;
    this.#requestId = h['x-request-id'] || randomUUID();
    this.#authorization = h.authorization;
    // Tracing off: the arguments are not even evaluated.
    this.#trace = this.#deps.tracer?.start(h.traceparent, this.#deps.router.now());
    const method = h[':method'] ?? 'GET';
    const { kind, rest, error } = classifyPath(method, h[':path'] ?? '/');
    this.#kind = kind;
    this.#rest = rest;
    if (error) return errorResponse(error);
    const routed = isRouted(kind);
    const wrongType = routed ? unsupportedContentType(h['content-type']) : undefined;
    if (wrongType) return errorResponse(wrongType);
    if (kind === 'models') return this.#models(rest);
    // Client-supplied x-tierflow-* never go past this answer.
    const remove: string[] = [];
    for (const k in h) if (k.startsWith('x-tierflow-')) remove.push(k);
    if (kind === 'passthrough' && msg.end_of_stream) return this.#passthrough(undefined, remove);
    if (routed && msg.end_of_stream) {
      // No body will follow: the pipeline's own parser says what is wrong.
      return this.#decide(EMPTY);
    }
    return remove.length > 0
      ? { request_headers: { response: { status: 'CONTINUE', header_mutation: { remove_headers: remove } } } }
      : { request_headers: CONTINUE };
  }

  /** GET /v1/models and /v1/models/{id}, answered here (a virtual key first, when keys are configured). */
  #models(rest: string): ProcessingResponse {
    this.#done = true;
    const config = this.#deps.router.config;
    let key;
    try {
      key = authenticate(config, this.#authorization);
    } catch (err) {
      if (err instanceof ApiError) return errorResponse(err);
      throw err;
    }
    const path = rest.split('?', 1)[0]!;
    let answer: unknown;
    if (path === '/models') answer = listModels(config, key);
    else {
      let id = path.slice('/models/'.length);
      try {
        id = decodeURIComponent(id);
      } catch {
        /* not percent-encoded: the id as sent */
      }
      answer = retrieveModel(config, id, key);
      if (!answer) return errorResponse(modelNotFound(id));
    }
    return {
      immediate_response: {
        status: { code: 200 },
        headers: {
          set_headers: [setHeader('content-type', 'application/json'), setHeader('x-tierflow-attempts', '0')],
        },
        body: Buffer.from(JSON.stringify(answer)),
        details: 'tierflow_models',
      },
    };
  }

  // --- request_body: the decision ---------------------------------------------------------------

  #onRequestBody(msg: HttpBody): ProcessingResponse {
    const body = msg.body ?? EMPTY;
    this.#bodyBytes = body.length;
    if (this.#kind === 'passthrough') return this.#passthrough(body, []);
    if (!isRouted(this.#kind)) return { request_body: CONTINUE };
    return this.#decide(body);
  }

  /** parse -> authenticate -> policy -> classify -> select (Router.plan), then the first attempt's rewrite. */
  #decide(body: Buffer): ProcessingResponse {
    const planner =
      this.#kind === 'responses'
        ? planResponsesRequest
        : this.#kind === 'embeddings'
          ? planEmbeddingsRequest
          : planRequest;
    const plan = planner(this.#deps, { body, headers: this.#reqHeaders }, this.#requestId);
    if (plan instanceof ApiError) {
      this.#done = true;
      traceRejected(this.#deps, this.#trace, plan);
      return errorResponse(plan);
    }
    this.#plan = plan;
    if (this.#trace) this.#trace.decidedAt = this.#deps.router.now();
    const run = new RequestAttempts(plan, this.#deps, this.#requestId, this.#trace);
    this.#run = run;
    const attempt = run.next();
    if (!attempt) {
      // Every candidate refused before anything was sent (breakers, a provider that cannot take it).
      this.#done = true;
      const err = run.error();
      recordRequest(
        this.#deps,
        plan,
        { status: err.status, attempts: run.attempts, error: err },
        this.#requestId,
        this.#trace,
      );
      return errorResponse(err, tierflowHeaders(plan, undefined, run.attempts.length, undefined));
    }
    this.#attempt = attempt;
    const up = attempt.request;
    const perTry = Math.max(1, Math.min(plan.firstByteTimeoutMs, Math.floor(run.remainingMs())));
    return this.#rewrite(
      up.url,
      up.headers,
      up.bodySplice ?? up.body,
      attempt.model,
      true,
      KEEP_REQUEST,
      String(perTry),
    );
  }

  /** The request_body (or, without a body, request_headers) answer that sends Envoy to `url`. */
  #rewrite(
    url: URL,
    headers: Record<string, string>,
    body: Buffer | SplicedBody | undefined,
    model: CompiledModel | undefined,
    replaceBody: boolean,
    keep: ReadonlySet<string>,
    /** PER_TRY_TIMEOUT_HEADER's value (routed requests). */
    perTryMs?: string,
  ): ProcessingResponse {
    const set: HeaderValueOption[] = [];
    for (const entry of targetEntries(url, this.#clusterHeader)) set.push(entry);
    for (const k in headers)
      if (perTryMs === undefined || k !== PER_TRY_TIMEOUT_HEADER) set.push(setHeader(k, headers[k]!));
    if (perTryMs !== undefined) set.push(repeatedHeader(PER_TRY_TIMEOUT_HEADER, perTryMs));
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
    this.#reqHeaders = NO_HEADERS; // read here for the last time
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
    const common: CommonResponse = {
      status: 'CONTINUE',
      header_mutation: { set_headers: set, remove_headers: remove },
      clear_route_cache: true,
    };
    if (body && replaceBody) common.body_mutation = { body };
    const response = { response: common };
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
        // Counted like a routed request: one request against rpm, refused once the rpm, tpm or
        // budget is used up (its cost is not known: nothing is reserved or spent).
        if (key) {
          router.limits.admit(key);
          if (key.rpm !== undefined || key.tpm !== undefined || key.budget)
            this.#passthroughLimits = limitHeaders(router.limits.status(key));
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
    const h = msg.record ?? headersToRecord(msg.headers);
    const status = Number(h[':status'] ?? 0);
    this.#respStatus = status;
    this.#respHeaders = h;
    if (this.#kind === 'passthrough') {
      const set = [
        setHeader('x-tierflow-attempts', '1'),
        setHeader('x-tierflow-provider', this.#passthroughProvider ?? 'none'),
      ];
      const limits = this.#passthroughLimits;
      if (limits) for (const k in limits) set.push(setHeader(k, limits[k]!));
      // Error bodies are read (and redacted: providers echo keys in them); others pass as sent.
      const failed = status >= 400 && !msg.end_of_stream;
      if (failed) this.#respMode = 'error';
      return {
        response_headers: { response: { status: 'CONTINUE', header_mutation: { set_headers: set } } },
        mode_override: failed ? MODE_BUFFERED : MODE_NONE,
      };
    }
    const plan = this.#plan;
    const attempt = this.#attempt;
    if (!plan || !attempt) return { response_headers: CONTINUE, mode_override: MODE_NONE };
    const translator = attempt.translator;
    const model = attempt.model;
    const verdict = attempt.responseHeaders(status);

    if (verdict !== 'ok') {
      const local = envoyLocalFailure(status, h);
      if (local) {
        attempt.failedTransport(
          local,
          local === 'timeout'
            ? `no response headers within ${plan.firstByteTimeoutMs} ms (Envoy per-try timeout)`
            : 'Envoy: connect failure or reset before headers',
        );
        return this.#failover(io);
      }
      if (verdict !== 'client_error') {
        attempt.failedStatus(status, h, EMPTY);
        return this.#failover(io);
      }
      // The client's mistake: translated into an OpenAI error from the body, no failover, no health penalty.
      this.#respMode = 'error';
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
      if (!(err instanceof ApiError)) throw err;
      attempt.failedResponse(err);
      return this.#failover(io);
    }
    if (msg.end_of_stream) {
      // A success without a body is not a completion: the provider failed, nothing reached the client.
      attempt.failedResponse(
        new ApiError(
          502,
          `Provider '${model.provider.name}' answered without a body.`,
          'upstream_error',
          'invalid_upstream_response',
        ),
      );
      return this.#failover(io);
    }
    if (start.streaming) {
      this.#respMode = 'stream';
      attempt.commit();
      const estimate = promptCostEstimateUsd(plan.request.promptTokens, model);
      releaseMessages(plan);
      const mutation = this.#responseHeaderMutation(
        start.headers,
        model,
        estimate,
        start.status !== status ? start.status : undefined,
      );
      // A stream may stay open for minutes: it keeps only what its chunks need.
      this.#respHeaders = NO_HEADERS;
      return {
        response_headers: { response: { status: 'CONTINUE', header_mutation: mutation } },
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
    for (const k in clientHeaders) set.push(repeatedHeader(k, clientHeaders[k]!));
    const tf = tierflowHeaders(this.#plan, model, this.#run?.attempts.length ?? 0, costUsd);
    for (const k in tf)
      set.push(REPEATING_TIERFLOW_HEADERS.has(k) ? repeatedHeader(k, tf[k]!) : setHeader(k, tf[k]!));
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
   * Envoy's attempt failed before anything reached the client and the engine settled it: the
   * same request continues over undici with the remaining candidates, into a buffer answered as
   * one immediate_response.
   */
  async #failover(io: StreamIO): Promise<ProcessingResponse> {
    const plan = this.#plan!;
    const run = this.#run!;
    this.#attempt = undefined;
    io.extendTimeout(this.#maxWaitMs);
    const sink = new BufferSink(this.#bodyLimit);
    this.#failoverSink = sink;
    const result = await runAttempts(run, this.#deps.client, sink);
    this.#failoverSink = undefined;
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
    if (this.#kind === 'passthrough' && this.#respMode === 'error') {
      const out = passthroughErrorBody(this.#passthroughProvider ?? 'none', this.#respStatus, chunk);
      return this.#replaceBody(out, { 'content-type': 'application/json' });
    }
    const attempt = this.#attempt;
    if (!attempt || this.#done) return { response_body: CONTINUE };
    const { translator, tracker } = attempt;
    switch (this.#respMode) {
      case 'stream': {
        const out = translator.onStreamChunk(chunk, end);
        if (translator.sawFirstToken && tracker.firstTokenAt === undefined) tracker.firstToken();
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
          // An unreadable success body is the provider's failure. Envoy still holds the response
          // headers (BUFFERED), so nothing reached the client: fail over like the gateway does.
          if (attempt.bodyRefused(err)) return this.#failover(io);
          // A 2xx body that says the request itself was refused (a Gemini safety block): the
          // client's 4xx, answered as is, like any other 4xx (no failover, no health penalty).
          return this.#clientErrorAnswer(chunk, 'response_body', err);
        }
        attempt.commit();
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
    const attempt = this.#attempt!;
    const model = attempt.model;
    const err = error ?? attempt.translator.onError(this.#respStatus, this.#respHeaders, body);
    attempt.clientError(err);
    const attempts = this.#run!.attempts;
    this.#finish({ status: err.status, attempts, served: model, error: err });
    if (kind === 'response_headers') {
      return errorResponse(
        err,
        tierflowHeaders(this.#plan, model, attempts.length, 0),
        'tierflow_upstream_error',
      );
    }
    const cost = tierflowHeaders(this.#plan, model, attempts.length, 0);
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
    const attempt = this.#attempt!;
    const translator = attempt.translator;
    if (translator.streamError) attempt.streamFailed(translator.streamError.code ?? 'stream error event');
    else attempt.succeeded();
    const outcome: RequestOutcome = {
      status: this.#respStatus,
      attempts: this.#run!.attempts,
      served: attempt.model,
      usage: translator.usage,
      cost: costOf(this.#plan!, attempt.model, translator.usage),
      error: translator.streamError,
    };
    this.#finish(outcome);
    return outcome;
  }

  #finish(outcome: RequestOutcome): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#plan) recordRequest(this.#deps, this.#plan, outcome, this.#requestId, this.#trace);
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
