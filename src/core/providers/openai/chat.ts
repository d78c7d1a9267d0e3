// Translator for OpenAI chat completions and servers that speak the same wire format
// (`openai-compatible`: vLLM, Ollama, llama.cpp, LiteLLM...; `demo`: the bundled demo server).
//
// Request: the client body, `model` replaced by the upstream model id. For streaming requests
// `stream_options.include_usage: true` is injected (per provider type, see OPENAI_FAMILY) so
// usage is always reported; when the client did not ask for usage, the extra usage chunk
// (`choices: []` plus `usage`) is kept from the client. Everything else passes through, so
// unknown fields keep working. Responses pass through byte-for-byte as far as the payloads go
// (SSE framing is normalised to `data: <payload>\n\n`), including the upstream `model` value:
// the client sees which model really served it.
//
// A server that ignores include_usage (older vLLM, some proxies) just leaves `usage` undefined:
// the stream is not failed for it, and accounting falls back to its own estimate.
// Output before the first token (the role-only opening chunk) is held back until a token (content,
// tool call, refusal or reasoning text), the finish, an error or the end: a stream that breaks
// before its first token then has sent nothing, so the data plane can still fail over.
// A stream that ends with neither `[DONE]` nor a finish_reason is reported as streamError
// (truncated), and the client gets an OpenAI-style error chunk before `[DONE]`; so does a stream
// with an event that is not a JSON object (the rest of that stream is dropped).
// If a streaming request is answered with a JSON body (some servers ignore `stream`), the JSON
// is converted into an equivalent chunk stream, so the client still gets SSE.
import type { CompiledModel } from '../../config/compiled.js';
import { ApiError } from '../../errors.js';
import type { ChatCompletionRequest, ChatMessage, Usage } from '../../openai.js';
import type { ParsedRequest } from '../../parse.js';
import {
  Adjustments,
  adaptSampling,
  clientResponseStart,
  fitToolCallId,
  isJsonAnswerToStream,
  StreamHoldBack,
} from '../shared/common.js';
import { EMPTY_BUFFER, SSE_DONE_TEXT, SseParser, sseData } from '../shared/sse.js';
import { joinUrl, providerHeaders } from '../shared/request.js';
import type { ClientResponseStart, Translator, UpstreamHeaders, UpstreamRequest } from '../types.js';
import { openaiAuthHeaders } from './auth.js';
import { OPENAI_DEFAULT_BASE_URL } from './endpoint.js';
import {
  answerObject,
  bodyExcerpt,
  isJsonObject,
  malformedChunkError,
  tryParseJson,
  upstreamError,
} from '../shared/upstream-error.js';
import { spliceModel, type SplicedBody } from '../../raw-json.js';
import { SplicedRequest } from '../spliced-request.js';

export interface OpenAITranslatorOptions {
  /** Used when the provider has no baseUrl (the public endpoint of the type). */
  defaultBaseUrl?: string;
  /** Path appended to the base URL. Default /chat/completions. */
  path?: string;
  /** Inject stream_options.include_usage=true into streaming requests. */
  injectIncludeUsage: boolean;
  /**
   * Send the output limit as max_completion_tokens: OpenAI deprecated max_tokens and its reasoning
   * and GPT-6 models reject it. Other OpenAI-compatible servers often know only max_tokens.
   */
  maxCompletionTokens?: boolean;
}

/** Per provider type. openai-compatible injects too: vLLM, Ollama, llama.cpp and LiteLLM accept it. */
export const OPENAI_FAMILY = {
  openai: {
    defaultBaseUrl: OPENAI_DEFAULT_BASE_URL,
    injectIncludeUsage: true,
    maxCompletionTokens: true,
  },
  'openai-compatible': { injectIncludeUsage: true },
  demo: { injectIncludeUsage: true },
} as const satisfies Record<string, OpenAITranslatorOptions>;

type Json = Record<string, unknown>;

/** Output held back before the first token is released anyway beyond this many characters. */
export const HOLD_LIMIT = 64 * 1024;

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** OpenAI `usage` object -> Usage. promptTokens includes the cached tokens (as OpenAI counts them). */
export function usageFromOpenAI(u: Json): Usage {
  const details = isJsonObject(u.prompt_tokens_details) ? u.prompt_tokens_details : undefined;
  return {
    promptTokens: num(u.prompt_tokens),
    completionTokens: num(u.completion_tokens),
    // DeepSeek reports prompt_cache_hit_tokens instead of prompt_tokens_details.cached_tokens.
    cachedPromptTokens: num(details?.cached_tokens) || num(u.prompt_cache_hit_tokens),
    cacheWriteTokens: 0,
  };
}

/** Usage -> the OpenAI `usage` object a client sees. */
export function usageToOpenAI(u: Usage): Json {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedPromptTokens },
  };
}

/**
 * A whole chat.completion object -> the equivalent chat.completion.chunk SSE text, `[DONE]`
 * not included. Used when a streaming request gets a JSON answer.
 */
export function completionToSse(c: Json, includeUsage: boolean): string {
  const base = {
    id: c.id ?? 'chatcmpl-tierflow',
    object: 'chat.completion.chunk',
    created: c.created ?? 0,
    model: c.model ?? '',
  };
  let out = '';
  const choices = Array.isArray(c.choices) ? c.choices : [];
  for (const ch of choices) {
    if (!isJsonObject(ch)) continue;
    const msg = isJsonObject(ch.message) ? ch.message : {};
    const delta: Json = { role: 'assistant', content: typeof msg.content === 'string' ? msg.content : '' };
    if (Array.isArray(msg.tool_calls)) {
      delta.tool_calls = msg.tool_calls.map((t, index) => (isJsonObject(t) ? { index, ...t } : t));
    }
    const index = ch.index ?? 0;
    out += sseData(
      JSON.stringify({ ...base, choices: [{ index, delta, logprobs: null, finish_reason: null }] }),
    );
    out += sseData(
      JSON.stringify({
        ...base,
        choices: [{ index, delta: {}, logprobs: null, finish_reason: ch.finish_reason ?? 'stop' }],
      }),
    );
  }
  if (includeUsage && isJsonObject(c.usage))
    out += sseData(JSON.stringify({ ...base, choices: [], usage: c.usage }));
  return out;
}

/**
 * Whether `key` (with its quotes, e.g. '"usage"') occurs in a JSON text with a value other than
 * null. Inside JSON strings quotes are escaped, so a quoted key cannot be faked by content.
 */
export function hasNonNullKey(json: string, key: string): boolean {
  let i = json.indexOf(key);
  while (i !== -1) {
    let j = i + key.length;
    let c = json.charCodeAt(j);
    while (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) c = json.charCodeAt(++j);
    if (c === 0x3a) {
      c = json.charCodeAt(++j);
      while (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) c = json.charCodeAt(++j);
      if (c !== 0x6e /* n(ull) */) return true;
    }
    i = json.indexOf(key, j);
  }
  return false;
}

const nonEmpty = (v: unknown): boolean => typeof v === 'string' && v.length > 0;

function deltaHasToken(delta: unknown): boolean {
  if (!isJsonObject(delta)) return false;
  const c = delta.content;
  if (typeof c === 'string' && c.length > 0) return true;
  if (Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0) return true;
  // refusal text, and reasoning text of reasoning servers (DeepSeek, vLLM: reasoning_content / reasoning).
  return nonEmpty(delta.refusal) || nonEmpty(delta.reasoning_content) || nonEmpty(delta.reasoning);
}

/** Client field name -> the value adaptSampling computed for it. */
const SAMPLING_FIELDS = [
  ['temperature', 'temperature'],
  ['top_p', 'topP'],
  ['top_k', 'topK'],
  ['frequency_penalty', 'frequencyPenalty'],
  ['presence_penalty', 'presencePenalty'],
] as const;

/**
 * Messages as the model accepts them: developer/system roles mapped where the model lacks one,
 * tool-call ids shortened where they exceed its limit (calls and results alike, so they stay
 * paired). The array and messages are copied only when something changes.
 */
export function adaptMessages(
  messages: ChatMessage[],
  model: CompiledModel,
  developerRole: boolean,
  adjusted: Adjustments,
): ChatMessage[] {
  const f = model.facts;
  let out: ChatMessage[] | undefined;
  const set = (i: number, m: ChatMessage) => {
    out ??= messages.slice();
    out[i] = m;
  };
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    if (m.role === 'developer' && !developerRole) {
      set(i, { ...m, role: f.systemRole ? 'system' : 'user' });
      adjusted.add('developer_role');
    } else if (m.role === 'system' && !f.systemRole) {
      set(i, { ...m, role: developerRole ? 'developer' : 'user' });
      adjusted.add('system_role');
    } else if (m.role === 'assistant' && Array.isArray(m.tool_calls)) {
      let calls: ChatMessage['tool_calls'];
      m.tool_calls.forEach((tc, k) => {
        if (typeof tc?.id !== 'string') return;
        const id = fitToolCallId(tc.id, f.toolCallIdMaxLength);
        if (id === tc.id) return;
        calls ??= m.tool_calls!.slice();
        calls[k] = { ...tc, id };
      });
      if (calls) {
        set(i, { ...m, tool_calls: calls });
        adjusted.add('tool_call_ids');
      }
    } else if (m.role === 'tool' && typeof m.tool_call_id === 'string') {
      const id = fitToolCallId(m.tool_call_id, f.toolCallIdMaxLength);
      if (id !== m.tool_call_id) {
        set(i, { ...m, tool_call_id: id });
        adjusted.add('tool_call_ids');
      }
    }
  }
  return out ?? messages;
}

// The upstream URL of a model, built once per compiled model (a reload compiles new ones) instead
// of once per request. Shared: nothing mutates an UpstreamRequest's URL.
const UPSTREAM_URLS = new WeakMap<CompiledModel, { base: string; path: string; url: URL }>();

export class OpenAITranslator implements Translator {
  usage: Usage | undefined = undefined;
  sawFirstToken = false;
  streamError: ApiError | undefined = undefined;
  readonly #adjustments = new Adjustments();

  #injectedUsage = false;
  #hideUsageChunk = false;
  #parser: SseParser | undefined;
  /** Output of the current onStreamChunk call. */
  #out = '';
  #sawDone = false;
  #sawFinish = false;
  readonly #hold = new StreamHoldBack();
  #ended = false;
  /** Streaming request answered with JSON: collect it, convert at the end. */
  #jsonParts: Buffer[] | undefined;

  readonly request: ParsedRequest;
  readonly model: CompiledModel;
  protected readonly options: OpenAITranslatorOptions;

  constructor(request: ParsedRequest, model: CompiledModel, options: OpenAITranslatorOptions) {
    this.request = request;
    this.model = model;
    this.options = options;
  }

  buildRequest(): UpstreamRequest {
    const src = this.request.body;
    const body: ChatCompletionRequest = { ...src, model: this.model.upstreamModel };
    this.#adapt(body);
    if (this.options.maxCompletionTokens && body.max_tokens != null) {
      body.max_completion_tokens ??= body.max_tokens;
      delete body.max_tokens;
    }
    if (this.request.stream && this.options.injectIncludeUsage) {
      const so = isJsonObject(src.stream_options) ? src.stream_options : {};
      body.stream_options = { ...so, include_usage: true };
      this.#injectedUsage = true;
    }
    this.#hideUsageChunk = this.#injectedUsage && !this.request.clientWantsUsage;
    const url = this.url();
    const headers = this.headers();
    const splice = this.#rawBody(src, body);
    if (splice) return new SplicedRequest(url, headers, splice);
    return { method: 'POST', url, headers, body: Buffer.from(JSON.stringify(body)) };
  }

  /**
   * The client's bytes with only `model` replaced (and stream_options added when the client sent
   * none), when that is all that changed; undefined otherwise.
   */
  #rawBody(src: ChatCompletionRequest, body: ChatCompletionRequest): SplicedBody | undefined {
    const raw = this.request.raw;
    if (!raw) return undefined;
    const s = src as unknown as Record<string, unknown>;
    const b = body as unknown as Record<string, unknown>;
    const addsStreamOptions = this.#injectedUsage && s.stream_options === undefined;
    for (const k in b) {
      if (k === 'model' || (k === 'stream_options' && addsStreamOptions)) continue;
      if (b[k] !== s[k]) return undefined;
    }
    for (const k in s) if (!(k in b)) return undefined;
    if (this.#injectedUsage && !addsStreamOptions) return undefined;
    return spliceModel(
      raw,
      this.model.upstreamModel,
      addsStreamOptions ? '"stream_options":{"include_usage":true}' : undefined,
    );
  }

  get adjusted(): readonly string[] {
    return this.#adjustments.list;
  }

  /** The request adapted to the model's facts (sampling parameters, roles, tool-call ids). */
  #adapt(body: ChatCompletionRequest): void {
    const adjusted = this.#adjustments;
    const sampling = adaptSampling(body, this.model.facts, adjusted);
    for (const [field, key] of SAMPLING_FIELDS) {
      if (typeof body[field] !== 'number') continue;
      const v = sampling[key];
      if (v === undefined) delete body[field];
      else body[field] = v;
    }
    body.messages = adaptMessages(body.messages, this.model, this.developerRoleAccepted(), adjusted);
  }

  /** Whether the developer role may be sent; Azure also needs a recent enough api-version. */
  protected developerRoleAccepted(): boolean {
    return this.model.facts.developerRole;
  }

  /** Endpoint; subclasses (Azure) override. */
  protected url(): URL {
    const base = this.model.provider.baseUrl || this.options.defaultBaseUrl;
    if (!base)
      throw new ApiError(
        500,
        `Provider '${this.model.provider.name}' has no baseUrl.`,
        'api_error',
        'provider_misconfigured',
      );
    const path = this.options.path ?? '/chat/completions';
    const cached = UPSTREAM_URLS.get(this.model);
    if (cached && cached.base === base && cached.path === path) return cached.url;
    const url = joinUrl(base, path);
    UPSTREAM_URLS.set(this.model, { base, path, url });
    return url;
  }

  /** Headers: content negotiation, provider headers, then auth (which provider headers cannot override). */
  protected headers(): Record<string, string> {
    const h: Record<string, string> = {
      'content-type': 'application/json',
      accept: this.request.stream ? 'text/event-stream' : 'application/json',
      // Translators read the bytes: ask for an uncompressed body.
      'accept-encoding': 'identity',
      ...providerHeaders(this.model),
    };
    Object.assign(h, this.authHeaders());
    return h;
  }

  protected authHeaders(): Record<string, string> {
    return openaiAuthHeaders(this.model.provider);
  }

  onResponseHeaders(status: number, headers: UpstreamHeaders): ClientResponseStart {
    if (isJsonAnswerToStream(this.request.stream, headers)) this.#jsonParts = [];
    const start = clientResponseStart(this.request.stream, status);
    this.#adjustments.headers(start.headers);
    return start;
  }

  onStreamChunk(chunk: Buffer, end: boolean): Buffer {
    if (this.#ended) return EMPTY_BUFFER;
    if (this.#jsonParts !== undefined) return this.#jsonChunk(chunk, end);
    this.#out = '';
    const parser = (this.#parser ??= new SseParser((data) => this.#onEvent(data)));
    if (chunk.length > 0) parser.push(chunk);
    if (end) {
      parser.end();
      this.#finish();
    }
    const text = this.#out;
    this.#out = '';
    // Released at a token, the finish, an error or the end (or when too much is held).
    return this.#hold.pass(
      text,
      this.sawFirstToken ||
        this.#sawFinish ||
        this.#sawDone ||
        this.streamError !== undefined ||
        end ||
        this.#hold.held + text.length > HOLD_LIMIT,
    );
  }

  #onEvent(data: string): void {
    if (this.#sawDone) return;
    if (data === '[DONE]') {
      this.#sawDone = true;
      this.#out += SSE_DONE_TEXT;
      return;
    }
    // After the first token only usage, error and finish chunks need a look: skip the JSON parse
    // for plain content deltas.
    // (A chunk that is not even framed as an object is caught here without a parse.)
    if (
      this.sawFirstToken &&
      data.charCodeAt(0) === 0x7b &&
      data.charCodeAt(data.length - 1) === 0x7d &&
      !hasNonNullKey(data, '"usage"') &&
      !hasNonNullKey(data, '"finish_reason"') &&
      !hasNonNullKey(data, '"error"')
    ) {
      this.#out += 'data: ' + data + '\n\n';
      return;
    }
    let obj: unknown;
    try {
      obj = JSON.parse(data);
    } catch {
      obj = undefined;
    }
    if (!isJsonObject(obj)) {
      this.#malformed();
      return;
    }
    if (isJsonObject(obj.error)) {
      const e = obj.error;
      this.streamError = upstreamError(this.model, typeof e.code === 'number' ? e.code : 500, {
        message: typeof e.message === 'string' ? e.message : undefined,
        providerType: typeof e.type === 'string' ? e.type : null,
        providerCode: typeof e.code === 'string' ? e.code : null,
        midStream: true,
      });
      this.#out += sseData(JSON.stringify(this.streamError.toBody()));
      return;
    }
    const choices = obj.choices;
    let emptyChoices = true;
    if (Array.isArray(choices)) {
      for (const ch of choices) {
        emptyChoices = false;
        if (!isJsonObject(ch)) continue;
        if (!this.sawFirstToken && deltaHasToken(ch.delta)) this.sawFirstToken = true;
        if (ch.finish_reason !== null && ch.finish_reason !== undefined) this.#sawFinish = true;
      }
    }
    if (isJsonObject(obj.usage)) {
      this.usage = usageFromOpenAI(obj.usage);
      if (this.#hideUsageChunk && emptyChoices) return;
    }
    this.#out += 'data: ' + data + '\n\n';
  }

  /** A chunk the client's SDK could not parse: end the stream with an OpenAI error event instead. */
  #malformed(): void {
    this.streamError = malformedChunkError(this.model);
    this.#out += sseData(JSON.stringify(this.streamError.toBody())) + SSE_DONE_TEXT;
    this.#sawDone = true; // nothing after this reaches the client
  }

  #finish(): void {
    this.#ended = true;
    if (this.#sawDone) return;
    if (!this.#sawFinish && this.streamError === undefined) {
      this.streamError = new ApiError(
        502,
        `Provider '${this.model.provider.name}' ended the stream before it was complete.`,
        'upstream_error',
        'incomplete_stream',
      );
      this.#out += sseData(JSON.stringify(this.streamError.toBody()));
    }
    this.#out += SSE_DONE_TEXT;
  }

  #jsonChunk(chunk: Buffer, end: boolean): Buffer {
    const parts = this.#jsonParts as Buffer[];
    if (chunk.length > 0) parts.push(Buffer.from(chunk));
    if (!end) return EMPTY_BUFFER;
    this.#ended = true;
    const body = Buffer.concat(parts);
    let text: string;
    try {
      const obj = this.#readCompletion(body);
      text = completionToSse(obj, this.request.clientWantsUsage);
    } catch (err) {
      this.streamError = err instanceof ApiError ? err : new ApiError(502, String(err), 'upstream_error');
      text = sseData(JSON.stringify(this.streamError.toBody()));
    }
    return Buffer.from(text + SSE_DONE_TEXT);
  }

  #readCompletion(body: Buffer): Json {
    const obj = answerObject(this.model, body);
    if (isJsonObject(obj.usage)) this.usage = usageFromOpenAI(obj.usage);
    const choices = obj.choices;
    if (Array.isArray(choices)) {
      for (let i = 0; i < choices.length; i++) {
        const ch: unknown = choices[i];
        if (isJsonObject(ch) && deltaHasToken(ch.message)) this.sawFirstToken = true;
      }
    }
    return obj;
  }

  onBody(body: Buffer): Buffer {
    this.#readCompletion(body);
    return body;
  }

  onError(status: number, _headers: UpstreamHeaders, body: Buffer): ApiError {
    const parsed = tryParseJson(body);
    // OpenAI: {"error":{"message","type","param","code"}}; some servers: {"error":"text"} or {"message":...}.
    if (isJsonObject(parsed)) {
      const e = parsed.error;
      if (isJsonObject(e)) {
        return upstreamError(this.model, status, {
          message: typeof e.message === 'string' ? e.message : undefined,
          providerType: typeof e.type === 'string' ? e.type : null,
          providerCode:
            typeof e.code === 'string' ? e.code : typeof e.code === 'number' ? String(e.code) : null,
          param: typeof e.param === 'string' ? e.param : null,
        });
      }
      const message =
        typeof e === 'string'
          ? e
          : typeof parsed.message === 'string'
            ? parsed.message
            : typeof parsed.detail === 'string'
              ? parsed.detail
              : undefined;
      return upstreamError(this.model, status, { message });
    }
    return upstreamError(this.model, status, { message: body.length > 0 ? bodyExcerpt(body) : undefined });
  }
}

export function openAITranslatorFactory(options: OpenAITranslatorOptions) {
  return (request: ParsedRequest, model: CompiledModel): Translator =>
    new OpenAITranslator(request, model, options);
}
