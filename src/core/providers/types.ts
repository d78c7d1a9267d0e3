// The per-request translator contract. One Translator object lives for one attempt against one
// provider. Both data planes drive it with the same four steps:
//   buildRequest -> onResponseHeaders -> onStreamChunk* | onBody -> (usage)
// and onError for any upstream status >= 400. The gateway feeds it from undici; the ext_proc
// sidecar feeds it from Envoy's phases (request_body, response_headers, response_body chunks).
import type { CompiledModel } from '../config/compiled.js';
import type { ApiError } from '../errors.js';
import type { Usage } from '../openai.js';
import type { ParsedRequest } from '../parse.js';
import type { SplicedBody } from '../raw-json.js';

export interface UpstreamRequest {
  method: 'POST' | 'GET';
  /** Absolute URL of the provider endpoint, query string included. */
  url: URL;
  /** Lower-case header names; includes auth and content-type, excludes content-length and host. */
  headers: Record<string, string>;
  body: Buffer;
  /**
   * When set, `body` is these pieces of the client's bytes and is made only when read: the
   * sidecar writes the pieces straight into its answer instead (SplicedRequest).
   */
  readonly bodySplice?: SplicedBody;
}

export interface ClientResponseStart {
  status: number;
  /** Headers for the client, lower-case names (content-type and the like; no content-length). */
  headers: Record<string, string>;
  /** True when the body is an SSE stream (drive onStreamChunk), false for one JSON body (drive onBody). */
  streaming: boolean;
}

export type UpstreamHeaders = Record<string, string | string[] | undefined>;

export interface Translator {
  readonly model: CompiledModel;
  /**
   * The provider request for this attempt. Called once. Throws an ApiError when this provider
   * cannot take the request (4xx, e.g. a parameter it lacks) or is misconfigured (5xx); the data
   * planes then move on to the next candidate.
   */
  buildRequest(): UpstreamRequest;
  /** Upstream answered with status < 400: what the client will see. */
  onResponseHeaders(status: number, headers: UpstreamHeaders): ClientResponseStart;
  /**
   * One upstream body chunk of a streaming response, cut anywhere (not aligned to events).
   * Returns OpenAI chat.completion.chunk SSE bytes to forward (possibly empty). The call with
   * end=true flushes whatever is left (the chunk may be empty) and must emit `data: [DONE]`.
   */
  onStreamChunk(chunk: Buffer, end: boolean): Buffer;
  /**
   * The whole upstream body of a non-streaming response; returns the OpenAI chat.completion JSON.
   * Throws an ApiError for a body that refuses the request (4xx, e.g. a Gemini safety block: the
   * client's error, no failover) or cannot be read (5xx: failover).
   */
  onBody(body: Buffer): Buffer;
  /** Upstream status >= 400 (or a provider error event): an OpenAI-style error with a fitting status. */
  onError(status: number, headers: UpstreamHeaders, body: Buffer): ApiError;
  /**
   * What buildRequest changed so the model would accept the request (client parameter names,
   * e.g. temperature, top_p, developer_role, tool_call_ids). Empty when nothing was changed. The
   * client sees it in the x-tierflow-adjusted header (onResponseHeaders adds it) and the request log.
   */
  readonly adjusted: readonly string[];
  /** Usage seen so far (complete once the body ended); undefined if the provider reported none. */
  readonly usage: Usage | undefined;
  /** Becomes true once a content or tool-call token was emitted: the data plane records time to first token. */
  readonly sawFirstToken: boolean;
  /**
   * Set when a stream that started fine carried an error event (e.g. Anthropic `overloaded_error`).
   * Bytes already reached the client, so this never triggers failover; it marks the attempt failed.
   */
  readonly streamError: ApiError | undefined;
  /**
   * The bytes that end a committed stream in-band when the connection to the provider broke (the
   * data plane writes them, then ends the response). Unset: an OpenAI error chunk (`data:
   * {"error":...}`), which is what chat completion clients expect.
   */
  streamBroken?(error: ApiError): Buffer;
}

export type TranslatorFactory = (request: ParsedRequest, model: CompiledModel) => Translator;
