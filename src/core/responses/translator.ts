// Translators for Responses API requests (POST /v1/responses), one per attempt like every other:
//
// - NativeResponsesTranslator: providers that speak the Responses API themselves (see native.ts).
//   The client's body goes to {base}/responses with `model` replaced (sampling adapted to the
//   model's facts), so previous_response_id, stored state and built-in tools keep working; the
//   answer passes through, usage is read from it (input_tokens / output_tokens).
// - ResponsesOverChat: every other provider. The request was converted to chat form when it was
//   planned (request.ts); the provider's chat translator builds and reads the provider's own
//   wire format, and this wrapper turns its chat output into a Response object or Responses SSE
//   events (response.ts, stream.ts). A request that needs server-side state or OpenAI's built-in
//   tools is refused before anything is sent (400): the attempt engine moves on to the next
//   candidate, and when none can serve it the client hears why.
import type { CompiledModel } from '../config/compiled.js';
import { ApiError } from '../errors.js';
import type { Usage } from '../openai.js';
import type { ParsedRequest } from '../parse.js';
import { Adjustments, adaptSampling, clientResponseStart, StreamHoldBack } from '../translators/common.js';
import { translatorFor } from '../translators/index.js';
import { OPENAI_FAMILY, OpenAITranslator } from '../translators/openai.js';
import { EMPTY_BUFFER, SseParser } from '../translators/sse.js';
import type {
  ClientResponseStart,
  Translator,
  UpstreamHeaders,
  UpstreamRequest,
} from '../translators/types.js';
import { bodyExcerpt, tryParseJson, upstreamError } from '../translators/upstream-error.js';
import { speaksResponses } from './native.js';
import type { ResponsesRequest } from './request.js';
import { completionToResponse } from './response.js';
import { ChatToResponsesStream } from './stream.js';

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** Held back before the first token is released anyway beyond this many characters. */
const HOLD_LIMIT = 64 * 1024;

/** The translator for one attempt of a Responses request on `model`. */
export function responsesTranslator(request: ParsedRequest, model: CompiledModel): Translator {
  const responses = request.responses;
  if (!responses) throw new Error('responsesTranslator needs a Responses request');
  if (speaksResponses(model.provider.type)) return new NativeResponsesTranslator(request, model, responses);
  return new ResponsesOverChat(translatorFor(model.provider.type)(request, model), responses);
}

/** Responses `usage` -> Usage (input_tokens counts the cached ones, as OpenAI reports them). */
export function usageFromResponses(u: Json): Usage {
  const details = isObj(u.input_tokens_details) ? u.input_tokens_details : undefined;
  return {
    promptTokens: num(u.input_tokens),
    completionTokens: num(u.output_tokens),
    cachedPromptTokens: num(details?.cached_tokens),
    cacheWriteTokens: 0,
  };
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
          `server-side state and has no built-in tools. Route to an OpenAI model, or send the whole ` +
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
    this.#stream ??= new ChatToResponsesStream(this.responses.body, now(), () => this.inner.usage);
    const text = this.#stream.push(chat, end);
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
    return Buffer.from(
      JSON.stringify(completionToResponse(chat, this.responses.body, this.inner.usage, now())),
    );
  }

  onError(status: number, headers: UpstreamHeaders, body: Buffer): ApiError {
    return this.inner.onError(status, headers, body);
  }
}

/** Event types whose payload is parsed: terminal events (usage, failure) and errors. */
const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed', 'error']);

export class NativeResponsesTranslator extends OpenAITranslator {
  override usage: Usage | undefined = undefined;
  override sawFirstToken = false;
  override streamError: ApiError | undefined = undefined;
  readonly #adjust = new Adjustments();
  readonly #hold = new StreamHoldBack();
  #parser: SseParser | undefined;
  #out = '';
  #terminal = false;
  #ended = false;
  #lastSeq = -1;

  constructor(
    request: ParsedRequest,
    model: CompiledModel,
    private readonly responses: ResponsesRequest,
  ) {
    super(request, model, { ...OPENAI_FAMILY.openai, path: '/responses' });
  }

  override get adjusted(): readonly string[] {
    return this.#adjust.list;
  }

  override buildRequest(): UpstreamRequest {
    const body: Json = { ...this.responses.body, model: this.model.upstreamModel };
    const sampling = adaptSampling(body as never, this.model.facts, this.#adjust);
    for (const [field, value] of [
      ['temperature', sampling.temperature],
      ['top_p', sampling.topP],
    ] as const) {
      if (typeof body[field] !== 'number') continue;
      if (value === undefined) delete body[field];
      else body[field] = value;
    }
    return {
      method: 'POST',
      url: this.url(),
      headers: this.headers(),
      body: Buffer.from(JSON.stringify(body)),
    };
  }

  override onResponseHeaders(status: number, _headers: UpstreamHeaders): ClientResponseStart {
    const start = clientResponseStart(this.responses.stream, status);
    this.#adjust.headers(start.headers);
    return start;
  }

  override onStreamChunk(chunk: Buffer, end: boolean): Buffer {
    if (this.#ended) return EMPTY_BUFFER;
    const parser = (this.#parser ??= new SseParser((data, event) => this.#onEvent(data, event)));
    if (chunk.length > 0) parser.push(chunk);
    if (end) {
      parser.end();
      this.#ended = true;
      if (!this.#terminal && this.streamError === undefined) {
        this.streamError = new ApiError(
          502,
          `Provider '${this.model.provider.name}' ended the stream before it was complete.`,
          'upstream_error',
          'incomplete_stream',
        );
        this.#emitError(this.streamError);
      }
    }
    const text = this.#out;
    this.#out = '';
    return this.#hold.pass(
      text,
      this.sawFirstToken ||
        this.#terminal ||
        this.streamError !== undefined ||
        end ||
        this.#hold.held + text.length > HOLD_LIMIT,
    );
  }

  #onEvent(data: string, event: string): void {
    if (this.#terminal) return;
    let type = event !== 'message' ? event : undefined;
    let obj: Json | undefined;
    if (type === undefined || TERMINAL.has(type)) {
      const parsed = tryParseJson(data);
      if (!isObj(parsed)) {
        this.streamError = new ApiError(
          502,
          `Provider '${this.model.provider.name}' sent a stream event that is not JSON.`,
          'upstream_error',
          'invalid_upstream_response',
        );
        this.#emitError(this.streamError);
        this.#terminal = true;
        return;
      }
      obj = parsed;
      if (typeof obj.type === 'string') type = obj.type;
      if (typeof obj.sequence_number === 'number') this.#lastSeq = obj.sequence_number;
    } else {
      this.#lastSeq++;
    }
    if (type !== undefined && type.endsWith('.delta')) this.sawFirstToken = true;
    if (obj && type !== undefined && TERMINAL.has(type)) this.#onTerminal(type, obj);
    this.#out += `event: ${type ?? 'message'}\ndata: ${data}\n\n`;
  }

  #onTerminal(type: string, obj: Json): void {
    this.#terminal = true;
    const response = isObj(obj.response) ? obj.response : undefined;
    if (response && isObj(response.usage)) this.usage = usageFromResponses(response.usage);
    if (type === 'error' || type === 'response.failed') {
      const e = type === 'error' ? obj : isObj(response?.error) ? response.error : {};
      this.streamError = upstreamError(this.model, 502, {
        message: typeof e.message === 'string' ? e.message : undefined,
        providerCode: typeof e.code === 'string' ? e.code : null,
        midStream: true,
      });
    }
  }

  /** An `error` event of our own (the provider's stream broke or was unreadable). */
  #emitError(e: ApiError): void {
    const payload = {
      type: 'error',
      code: e.code,
      message: e.message,
      param: null,
      sequence_number: ++this.#lastSeq,
    };
    this.#out += `event: error\ndata: ${JSON.stringify(payload)}\n\n`;
  }

  override onBody(body: Buffer): Buffer {
    const obj = tryParseJson(body);
    if (!isObj(obj)) {
      throw new ApiError(
        502,
        `Provider '${this.model.provider.name}' returned a body that is not JSON: ${bodyExcerpt(body)}`,
        'upstream_error',
        'invalid_upstream_response',
      );
    }
    if (isObj(obj.usage)) this.usage = usageFromResponses(obj.usage);
    if (Array.isArray(obj.output) && obj.output.length > 0) this.sawFirstToken = true;
    return body;
  }
}
