// OpenAI's Responses API (POST {base}/responses), for Responses requests routed to an OpenAI
// provider: the client's body goes as it is with `model` replaced (sampling parameters adapted to
// the model's facts, as for chat), so previous_response_id, stored state and built-in tools keep
// working. The answer passes through; usage is read from it (input_tokens / output_tokens, from
// the response or the terminal stream event). Stream events before the first delta are held back
// so a stream that breaks before its first token can still fail over; a stream that ends without
// a terminal event (response.completed / incomplete / failed) gets an `error` event and is
// reported as streamError.
import type { CompiledModel } from '../../config/compiled.js';
import { ApiError } from '../../errors.js';
import type { Usage } from '../../openai.js';
import type { ParsedRequest } from '../../parse.js';
import type { ResponsesRequest } from '../../responses/request.js';
import { Adjustments, adaptSampling, clientResponseStart, StreamHoldBack } from '../shared/common.js';
import { EMPTY_BUFFER, SseParser } from '../shared/sse.js';
import {
  answerObject,
  isJsonObject,
  malformedChunkError,
  tryParseJson,
  upstreamError,
} from '../shared/upstream-error.js';
import type { ClientResponseStart, Translator, UpstreamHeaders, UpstreamRequest } from '../types.js';
import { OPENAI_FAMILY, OpenAITranslator } from './chat.js';

type Json = Record<string, unknown>;

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** Held back before the first token is released anyway beyond this many characters. */
const HOLD_LIMIT = 64 * 1024;

/** Responses `usage` -> Usage (input_tokens counts the cached ones, as OpenAI reports them). */
export function usageFromResponses(u: Json): Usage {
  const details = isJsonObject(u.input_tokens_details) ? u.input_tokens_details : undefined;
  return {
    promptTokens: num(u.input_tokens),
    completionTokens: num(u.output_tokens),
    cachedPromptTokens: num(details?.cached_tokens),
    cacheWriteTokens: 0,
  };
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

  readonly #responses: ResponsesRequest;

  constructor(request: ParsedRequest, model: CompiledModel) {
    super(request, model, { ...OPENAI_FAMILY.openai, path: '/responses' });
    if (!request.responses) throw new Error('NativeResponsesTranslator needs a Responses request');
    this.#responses = request.responses;
  }

  override get adjusted(): readonly string[] {
    return this.#adjust.list;
  }

  override buildRequest(): UpstreamRequest {
    const body: Json = { ...this.#responses.body, model: this.model.upstreamModel };
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
    const start = clientResponseStart(this.#responses.stream, status);
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
      if (!isJsonObject(parsed)) {
        this.streamError = malformedChunkError(this.model);
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
    const response = isJsonObject(obj.response) ? obj.response : undefined;
    if (response && isJsonObject(response.usage)) this.usage = usageFromResponses(response.usage);
    if (type === 'error' || type === 'response.failed') {
      const e = type === 'error' ? obj : isJsonObject(response?.error) ? response.error : {};
      this.streamError = upstreamError(this.model, 502, {
        message: typeof e.message === 'string' ? e.message : undefined,
        providerCode: typeof e.code === 'string' ? e.code : null,
        midStream: true,
      });
    }
  }

  /** The connection broke mid-stream: an `error` event ends it (Responses clients read no error chunk). */
  streamBroken(error: ApiError): Buffer {
    this.#emitError(error);
    const out = this.#out;
    this.#out = '';
    return Buffer.from(out);
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
    const obj = answerObject(this.model, body);
    if (isJsonObject(obj.usage)) this.usage = usageFromResponses(obj.usage);
    if (Array.isArray(obj.output) && obj.output.length > 0) this.sawFirstToken = true;
    return body;
  }
}

export function createOpenAIResponsesTranslator(request: ParsedRequest, model: CompiledModel): Translator {
  return new NativeResponsesTranslator(request, model);
}
