// Translators for Responses API requests (POST /v1/responses), one per attempt like every other:
//
// - providers that speak the Responses API themselves have a `responses` translator in the
//   provider table (src/core/providers/table.ts; OpenAI: providers/openai/responses.ts): the
//   request goes to them as it is, so previous_response_id, stored state and built-in tools work;
// - ResponsesOverChat: every other provider, and any provider for a conversation stored in this
//   process (previous_response_id of a translated response, store.ts). The request was converted
//   to chat form when it was planned (request.ts); the provider's chat translator builds and
//   reads the provider's own wire format, and this wrapper turns its chat output into a Response
//   object or Responses SSE events (response.ts, stream.ts); completed answers are handed to the
//   store through ResponsesRequest.remember. A request that needs server-side state or OpenAI's built-in
//   tools is refused before anything is sent (400): the attempt engine moves on to the next
//   candidate, and when none can serve it the client hears why.
import type { CompiledModel } from '../config/compiled.js';
import { ApiError } from '../errors.js';
import type { Usage } from '../openai.js';
import type { ParsedRequest } from '../parse.js';
import { tryParseJson } from '../providers/shared/upstream-error.js';
import { EMPTY_BUFFER } from '../providers/shared/sse.js';
import { providerSpec } from '../providers/table.js';
import type {
  ClientResponseStart,
  Translator,
  UpstreamHeaders,
  UpstreamRequest,
} from '../providers/types.js';
import type { ResponsesRequest } from './request.js';
import { answerMessage, completionToResponse } from './response.js';
import { ChatToResponsesStream } from './stream.js';

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The translator for one attempt of a Responses request on `model`. */
export function responsesTranslator(request: ParsedRequest, model: CompiledModel): Translator {
  const responses = request.responses;
  if (!responses) throw new Error('responsesTranslator needs a Responses request');
  const spec = providerSpec(model.provider.type);
  // A conversation stored here is unknown to the provider: it goes in chat form even to OpenAI.
  if (spec.responses && !responses.continuesLocal) return spec.responses(request, model);
  return new ResponsesOverChat(spec.chat(request, model), responses);
}

const now = (): number => Math.floor(Date.now() / 1000);

export class ResponsesOverChat implements Translator {
  #stream: ChatToResponsesStream | undefined;

  constructor(
    private readonly inner: Translator,
    private readonly responses: ResponsesRequest,
  ) {}

  get model(): CompiledModel {
    return this.inner.model;
  }
  get adjusted(): readonly string[] {
    return this.inner.adjusted;
  }
  get usage(): Usage | undefined {
    return this.inner.usage;
  }
  get sawFirstToken(): boolean {
    return this.inner.sawFirstToken;
  }
  get streamError(): ApiError | undefined {
    return this.inner.streamError;
  }

  buildRequest(): UpstreamRequest {
    const needs = this.responses.nativeOnly;
    if (needs.length > 0) {
      const p = this.model.provider;
      throw new ApiError(
        400,
        `${needs.join(', ')} needs a provider that implements the Responses API itself (OpenAI); ` +
          `model '${this.model.id}' is on a ${p.type} provider, reached through its chat API, which keeps no ` +
          `server-side state and has no built-in tools (a previous_response_id continues anywhere only ` +
          `while this TierFlow holds that response). Route to an OpenAI model, or send the whole ` +
          `conversation as input (with function tools only).`,
        'invalid_request_error',
        'responses_feature_unsupported',
        needs[0]!.includes(' ') ? null : needs[0]!,
      );
    }
    return this.inner.buildRequest();
  }

  onResponseHeaders(status: number, headers: UpstreamHeaders): ClientResponseStart {
    return this.inner.onResponseHeaders(status, headers);
  }

  onStreamChunk(chunk: Buffer, end: boolean): Buffer {
    const chat = this.inner.onStreamChunk(chunk, end);
    if (chat.length === 0 && !end) return EMPTY_BUFFER;
    const stream = (this.#stream ??= this.#newStream());
    const text = stream.push(chat, end);
    if (stream.completed && !this.#remembered) this.#remember(stream.completed);
    return text.length === 0 ? EMPTY_BUFFER : Buffer.from(text);
  }

  onBody(body: Buffer): Buffer {
    const chat = tryParseJson(this.inner.onBody(body));
    if (!isObj(chat)) {
      throw new ApiError(
        502,
        `Provider '${this.model.provider.name}' returned an unreadable completion.`,
        'upstream_error',
        'invalid_upstream_response',
      );
    }
    const response = completionToResponse(
      chat,
      this.responses.body,
      this.inner.usage,
      now(),
      this.responses.remember !== undefined,
    );
    this.#remember(response);
    return Buffer.from(JSON.stringify(response));
  }

  onError(status: number, headers: UpstreamHeaders, body: Buffer): ApiError {
    return this.inner.onError(status, headers, body);
  }

  #newStream(): ChatToResponsesStream {
    const stored = this.responses.remember !== undefined;
    return new ChatToResponsesStream(this.responses.body, now(), () => this.inner.usage, stored);
  }

  #remembered = false;

  /** A completed (or cut) answer is kept for previous_response_id, when the request allows it. */
  #remember(response: Record<string, unknown>): void {
    this.#remembered = true;
    if (typeof response.id === 'string')
      this.responses.remember?.(response.id, answerMessage(response.output));
  }

  /** A broken stream ends as the Responses API ends one: an `error` event, then response.failed. */
  streamBroken(error: ApiError): Buffer {
    this.#stream ??= this.#newStream();
    return Buffer.from(this.#stream.fail(error.toBody().error));
  }
}
