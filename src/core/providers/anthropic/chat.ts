// Translator for the Anthropic Messages API (POST {baseUrl}/messages, default base
// https://api.anthropic.com/v1; headers x-api-key, anthropic-version: 2023-06-01).
//
// Request mapping (OpenAI chat completions -> Messages):
// - system and developer messages (wherever they are) -> top-level `system`, in order;
// - user/assistant turns, consecutive same-role turns merged (Anthropic wants alternation);
//   `tool` messages -> `tool_result` blocks in a user turn (consecutive results share one turn,
//   and tool_result blocks are put first in a turn, as Anthropic requires);
// - assistant tool_calls -> `tool_use` blocks (arguments parsed; invalid JSON is a 400);
// - images: data: URLs -> base64 source, http(s) URLs -> url source; PDF `file` parts with
//   file_data -> `document` blocks; other part types (audio, file ids) are a 400, never dropped;
// - tools -> {name, description, input_schema}; tool_choice auto/none/required/named ->
//   auto/none/any/tool; parallel_tool_calls:false -> disable_parallel_tool_use; a history with
//   tool calls but no `tools` in the request declares the tools it used, with tool_choice none
//   (Anthropic wants definitions for tool blocks);
// - max_tokens (required by Anthropic): the client's max_completion_tokens / max_tokens, capped
//   at the model's maxOutputTokens; when the client gave none, DEFAULT_MAX_TOKENS (8192) capped
//   at maxOutputTokens and at what the context window leaves after the prompt estimate;
// - temperature, top_p, top_k adapted to the model's facts (config/model-facts.ts): clamped to
//   [0, 1]; only temperature when both are set (Claude 4.1+ reject the pair); models released
//   after Claude Opus 4.6 get no temperature but 1, no top_p below 0.99 and no top_k (dropped,
//   named in x-tierflow-adjusted); frequency/presence penalties have no equivalent (dropped, named);
//   stop -> stop_sequences; user -> metadata.user_id;
// - tool-call ids outside ^[a-zA-Z0-9_-]+$ or longer than the model's limit -> a short id derived
//   by hash (calls and results alike, so they stay paired);
// - response_format json_schema -> output_config.format (Anthropic structured outputs, the schema
//   rewritten as the official SDK does: see anthropic-schema.ts) when the
//   model has the `jsonSchema` capability; otherwise, and for json_object, an instruction in the
//   system prompt (best effort; selection normally filters such models out already);
// - n > 1 is a 400. Ignored (no Anthropic equivalent): logit_bias,
//   logprobs, seed, service_tier, store, reasoning_effort, stream_options.
//
// Responses become chat.completion / chat.completion.chunk with the Anthropic message id and
// model. Usage: input + cache read + cache write = prompt_tokens; cache reads are also
// prompt_tokens_details.cached_tokens. Streaming is translated event by event; the opening role
// chunk is held back until the first token (so a stream that fails right after message_start
// has sent nothing and can fail over); `[DONE]` is emitted on message_stop. An `error` event mid-stream sets streamError and is forwarded as an
// OpenAI-style error chunk (`data: {"error":{...}}`, which the OpenAI SDKs raise as an APIError),
// then `[DONE]`. A stream that ends without message_stop is treated the same way (truncated).
import type { CompiledModel } from '../../config/compiled.js';
import { ApiError, badRequest } from '../../errors.js';
import type { ChatMessage, ContentPart, FinishReason, Usage } from '../../openai.js';
import type { ParsedRequest } from '../../parse.js';
import { ANTHROPIC_VERSION, anthropicAuthHeaders } from './auth.js';
import { ANTHROPIC_DEFAULT_BASE_URL } from './endpoint.js';
import { strictSchema } from './schema.js';
import {
  Adjustments,
  adaptSampling,
  clientResponseStart,
  fitToolCallId,
  isJsonAnswerToStream,
  StreamHoldBack,
} from '../shared/common.js';
import { completionToSse, usageToOpenAI } from '../openai/chat.js';
import { joinUrl, providerHeaders } from '../shared/request.js';
import { EMPTY_BUFFER, SSE_DONE_TEXT, SseParser, sseData } from '../shared/sse.js';
import type { ClientResponseStart, Translator, UpstreamHeaders, UpstreamRequest } from '../types.js';
import {
  answerObject,
  bodyExcerpt,
  isJsonObject,
  malformedChunkError,
  tryParseJson,
  upstreamError,
} from '../shared/upstream-error.js';

/** max_tokens when the client set none (capped by the model's maxOutputTokens). */
export const DEFAULT_MAX_TOKENS = 8192;

type Json = Record<string, unknown>;
type Block = Json;
interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: Block[];
}

/** Markers in AnthropicTranslator's per-block table (tool blocks hold their tool call index). */
const TEXT = -1;
const IGNORED = -2;

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

// ---- request ------------------------------------------------------------------------------

function imageBlock(url: string, param: string): Block {
  if (url.startsWith('data:')) {
    const comma = url.indexOf(',');
    const meta = comma === -1 ? '' : url.slice(5, comma);
    if (comma === -1 || !meta.endsWith(';base64')) {
      throw badRequest(
        `Invalid image data URL at '${param}': expected data:<media type>;base64,<data>.`,
        param,
        'invalid_image_url',
      );
    }
    return {
      type: 'image',
      source: { type: 'base64', media_type: meta.slice(0, -7), data: url.slice(comma + 1) },
    };
  }
  if (url.startsWith('https://') || url.startsWith('http://'))
    return { type: 'image', source: { type: 'url', url } };
  throw badRequest(
    `Invalid image URL at '${param}': expected an http(s) or data: URL.`,
    param,
    'invalid_image_url',
  );
}

function textBlock(text: string, part?: Json): Block {
  const b: Block = { type: 'text', text };
  if (part !== undefined && part.cache_control !== undefined) b.cache_control = part.cache_control;
  return b;
}

type Where = 'user' | 'system' | 'assistant';

/** Content of a message -> blocks. System and assistant content is text only. */
function contentBlocks(content: ChatMessage['content'], param: string, where: Where): Block[] {
  const textOnly = where !== 'user';
  if (content === undefined || content === null) return [];
  if (typeof content === 'string') return content.length > 0 ? [textBlock(content)] : [];
  const out: Block[] = [];
  content.forEach((part: ContentPart, j) => {
    const p = part as Json;
    const at = `${param}.content[${j}]`;
    if (p.type === 'text') {
      if (typeof p.text === 'string' && p.text.length > 0) out.push(textBlock(p.text, p));
      return;
    }
    if (where === 'assistant' && p.type === 'refusal') {
      if (typeof p.refusal === 'string' && p.refusal.length > 0) out.push(textBlock(p.refusal));
      return;
    }
    if (!textOnly && p.type === 'image_url') {
      const iu = p.image_url;
      const url =
        typeof iu === 'string' ? iu : isJsonObject(iu) && typeof iu.url === 'string' ? iu.url : undefined;
      if (url === undefined) throw badRequest(`Missing image URL at '${at}'.`, at, 'invalid_value');
      const b = imageBlock(url, at);
      if (p.cache_control !== undefined) b.cache_control = p.cache_control;
      out.push(b);
      return;
    }
    if (!textOnly && p.type === 'file' && isJsonObject(p.file) && typeof p.file.file_data === 'string') {
      const data = p.file.file_data;
      const comma = data.indexOf(',');
      if (data.startsWith('data:application/pdf;base64,') && comma !== -1) {
        out.push({
          type: 'document',
          source: { type: 'base64', media_type: 'application/pdf', data: data.slice(comma + 1) },
        });
        return;
      }
    }
    throw badRequest(
      `Content part type '${String(p.type)}' at '${at}' is not supported ${textOnly ? `in ${where} messages` : 'by Anthropic models'}.`,
      at,
      'unsupported_content',
    );
  });
  return out;
}

function toolUseBlocks(msg: ChatMessage, param: string, ids: ToolIds): Block[] {
  const calls = msg.tool_calls;
  if (!Array.isArray(calls)) return [];
  return calls.map((tc, k) => {
    const at = `${param}.tool_calls[${k}]`;
    const fn = isJsonObject(tc) && isJsonObject(tc.function) ? tc.function : undefined;
    if (!fn || typeof fn.name !== 'string' || typeof tc.id !== 'string') {
      throw badRequest(
        `Invalid tool call at '${at}': expected {id, function: {name, arguments}}.`,
        at,
        'invalid_value',
      );
    }
    const args = typeof fn.arguments === 'string' ? fn.arguments.trim() : '';
    let input: unknown = {};
    if (args !== '') {
      try {
        input = JSON.parse(args);
      } catch {
        throw badRequest(
          `Invalid JSON in '${at}.function.arguments'.`,
          `${at}.function.arguments`,
          'invalid_value',
        );
      }
    }
    if (!isJsonObject(input)) {
      throw badRequest(
        `'${at}.function.arguments' must be a JSON object.`,
        `${at}.function.arguments`,
        'invalid_value',
      );
    }
    return { type: 'tool_use', id: ids(tc.id), name: fn.name, input };
  });
}

/** Tool-call id as this model accepts it (see fitToolCallId). */
type ToolIds = (id: string) => string;

function toolResultBlock(msg: ChatMessage, param: string, ids: ToolIds): Block {
  const b: Block = {
    type: 'tool_result',
    tool_use_id: typeof msg.tool_call_id === 'string' ? ids(msg.tool_call_id) : msg.tool_call_id,
  };
  const c = msg.content;
  if (typeof c === 'string') {
    if (c.length > 0) b.content = c;
  } else {
    const blocks = contentBlocks(c, param, 'user');
    if (blocks.length > 0) b.content = blocks;
  }
  return b;
}

function systemText(blocks: Block[]): string {
  return blocks.map((b) => b.text as string).join('\n\n');
}

/** Below this many characters (about 1,000 tokens, the smallest prefix Anthropic caches) a breakpoint is pointless. */
export const MIN_CACHED_CHARS = 4096;
const EPHEMERAL = { type: 'ephemeral' } as const;

/**
 * Prompt caching as OpenAI-SDK clients get it elsewhere (OpenAI and Gemini cache long prefixes by
 * themselves; Anthropic caches only up to marked breakpoints). When the client marked nothing:
 * - a long system prompt is marked (tools come before it, so they are cached with it);
 * - a conversation under way (it has an assistant turn) is marked at its newest block, so the next
 *   turn reads everything up to here from the cache and pays the write price only on what is new.
 * A single-turn request is not marked beyond its system prompt: a one-off prompt would only pay
 * the write premium.
 */
function addCacheBreakpoints(system: Block[], messages: AnthropicMessage[]): void {
  const blocks = [...system, ...messages.flatMap((m) => m.content)];
  if (blocks.some((b) => b.cache_control !== undefined)) return;
  const chars = (bs: Block[]) =>
    bs.reduce((n, b) => n + (typeof b.text === 'string' ? b.text.length : 256), 0);
  const systemChars = chars(system);
  if (system.length > 0 && systemChars >= MIN_CACHED_CHARS)
    system[system.length - 1]!.cache_control = EPHEMERAL;
  const underWay = messages.some((m) => m.role === 'assistant');
  const lastBlock = messages[messages.length - 1]?.content.at(-1);
  if (
    underWay &&
    lastBlock !== undefined &&
    systemChars + chars(blocks.slice(system.length)) >= MIN_CACHED_CHARS
  ) {
    lastBlock.cache_control = EPHEMERAL;
  }
}

/** OpenAI chat request -> Anthropic Messages request body. Throws ApiError (400) on what cannot be mapped. */
export function toAnthropicRequest(
  request: ParsedRequest,
  model: CompiledModel,
  adjusted = new Adjustments(),
): Json {
  const src = request.body;
  const ids: ToolIds = (id) => {
    const fitted = fitToolCallId(id, model.facts.toolCallIdMaxLength);
    if (fitted !== id) adjusted.add('tool_call_ids');
    return fitted;
  };
  const system: Block[] = [];
  const messages: AnthropicMessage[] = [];
  const push = (role: 'user' | 'assistant', blocks: Block[]) => {
    if (blocks.length === 0) return;
    const last = messages[messages.length - 1];
    if (last !== undefined && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  src.messages.forEach((m, i) => {
    const param = `messages[${i}]`;
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(...contentBlocks(m.content, param, 'system'));
        break;
      case 'user':
        push('user', contentBlocks(m.content, param, 'user'));
        break;
      case 'assistant': {
        // Assistant content is text (images are not allowed in assistant turns).
        const blocks = contentBlocks(m.content, param, 'assistant');
        if (typeof m.refusal === 'string' && m.refusal.length > 0 && blocks.length === 0)
          blocks.push(textBlock(m.refusal));
        push('assistant', [...blocks, ...toolUseBlocks(m, param, ids)]);
        break;
      }
      case 'tool':
        push('user', [toolResultBlock(m, param, ids)]);
        break;
      default:
        throw badRequest(
          `Role '${m.role}' at '${param}' is not supported by Anthropic models; use tools and tool messages.`,
          `${param}.role`,
          'invalid_value',
        );
    }
  });
  for (const m of messages) {
    // tool_result blocks must open a user turn.
    if (m.role === 'user' && m.content.length > 1 && m.content.some((b) => b.type === 'tool_result')) {
      m.content = [
        ...m.content.filter((b) => b.type === 'tool_result'),
        ...m.content.filter((b) => b.type !== 'tool_result'),
      ];
    }
  }
  const last = messages[messages.length - 1];
  if (last !== undefined && last.role === 'assistant') {
    // A final assistant turn is a prefill; Anthropic rejects trailing whitespace there.
    const lb = last.content[last.content.length - 1];
    if (lb !== undefined && lb.type === 'text') {
      lb.text = (lb.text as string).trimEnd();
      if (lb.text === '') last.content.pop();
      if (last.content.length === 0) messages.pop();
    }
  }

  const rf = src.response_format;
  let outputConfig: Json | undefined;
  if (rf?.type === 'json_schema') {
    const js = isJsonObject(rf.json_schema) ? rf.json_schema : {};
    const schema = isJsonObject(js.schema) ? js.schema : { type: 'object' };
    if (model.capabilities.has('jsonSchema')) {
      // Rewritten as the official SDK does: Anthropic refuses schemas with keywords it does not enforce.
      outputConfig = { format: { type: 'json_schema', schema: strictSchema(schema) } };
    } else {
      system.push(
        textBlock(
          'Respond with only a JSON value (no prose, no code fences) that conforms to this JSON Schema:\n' +
            JSON.stringify(schema),
        ),
      );
    }
  } else if (rf?.type === 'json_object') {
    system.push(textBlock('Respond with only a valid JSON object (no prose, no code fences).'));
  }

  if (messages.length === 0) {
    // Only system text was sent: Anthropic needs at least one user turn.
    if (system.length === 0)
      throw badRequest(
        "'messages' must contain at least one message with content.",
        'messages',
        'empty_array',
      );
    messages.push({ role: 'user', content: system.splice(0, system.length) });
  }

  if (model.provider.promptCaching === 'auto') addCacheBreakpoints(system, messages);

  const out: Json = { model: model.upstreamModel, max_tokens: maxTokens(request, model) };
  if (system.length > 0)
    out.system = system.some((b) => b.cache_control !== undefined) ? system : systemText(system);
  out.messages = messages.map((m) => {
    const only = m.content[0];
    const simple =
      m.content.length === 1 &&
      only !== undefined &&
      only.type === 'text' &&
      only.cache_control === undefined;
    return { role: m.role, content: simple ? only.text : m.content };
  });

  if (typeof src.n === 'number' && src.n > 1)
    throw badRequest("'n' greater than 1 is not supported by Anthropic models.", 'n', 'unsupported_value');
  const sampling = adaptSampling(src, model.facts, adjusted);
  if (sampling.temperature !== undefined) out.temperature = sampling.temperature;
  if (sampling.topP !== undefined) out.top_p = sampling.topP;
  if (sampling.topK !== undefined) out.top_k = sampling.topK;
  const stop = src.stop;
  if (typeof stop === 'string') out.stop_sequences = [stop];
  else if (Array.isArray(stop) && stop.length > 0)
    out.stop_sequences = stop.filter((s) => typeof s === 'string');
  if (typeof src.user === 'string' && src.user.length > 0) out.metadata = { user_id: src.user };

  const tools = src.tools;
  if (Array.isArray(tools) && tools.length > 0) {
    out.tools = tools.map((tool, k) => {
      if (tool.type !== 'function' || !isJsonObject(tool.function)) {
        throw badRequest(
          `Tool type '${String(tool.type)}' at 'tools[${k}]' is not supported by Anthropic models.`,
          `tools[${k}]`,
          'unsupported_value',
        );
      }
      const f = tool.function;
      const t: Json = {
        name: f.name,
        input_schema: isJsonObject(f.parameters) ? f.parameters : { type: 'object', properties: {} },
      };
      if (typeof f.description === 'string') t.description = f.description;
      return t;
    });
    const tc = src.tool_choice;
    let choice: Json | undefined;
    if (tc === 'auto') choice = { type: 'auto' };
    else if (tc === 'none') choice = { type: 'none' };
    else if (tc === 'required') choice = { type: 'any' };
    else if (isJsonObject(tc) && isJsonObject(tc.function) && typeof tc.function.name === 'string')
      choice = { type: 'tool', name: tc.function.name };
    else if (tc !== undefined && tc !== null)
      throw badRequest("Invalid value for 'tool_choice'.", 'tool_choice', 'invalid_value');
    if (src.parallel_tool_calls === false && choice?.type !== 'none') {
      choice = { ...(choice ?? { type: 'auto' }), disable_parallel_tool_use: true };
    }
    if (choice !== undefined) out.tool_choice = choice;
  } else {
    // History with tool blocks needs tool definitions even when the client offers no tools any
    // more: declare the tools used in the history, with tool_choice none.
    const used = new Set<string>();
    for (const m of messages)
      for (const b of m.content) if (b.type === 'tool_use') used.add(b.name as string);
    if (used.size > 0) {
      out.tools = [...used].map((name) => ({ name, input_schema: { type: 'object' } }));
      out.tool_choice = { type: 'none' };
    }
  }
  if (outputConfig !== undefined) out.output_config = outputConfig;
  if (request.stream) out.stream = true;
  return out;
}

function maxTokens(request: ParsedRequest, model: CompiledModel): number {
  const cap = model.maxOutputTokens > 0 ? model.maxOutputTokens : DEFAULT_MAX_TOKENS;
  const asked = request.maxOutputTokens;
  if (asked !== undefined) return Math.max(1, Math.min(asked, cap));
  const room = model.contextWindow - request.promptTokens;
  // The prompt estimate is conservative; keep a useful floor rather than a tiny answer.
  return Math.max(1, Math.min(DEFAULT_MAX_TOKENS, cap, Math.max(room, 1024)));
}

// ---- response -----------------------------------------------------------------------------

export function finishReasonFor(stop: unknown): FinishReason {
  switch (stop) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default: // end_turn, stop_sequence, pause_turn, null
      return 'stop';
  }
}

/** Anthropic usage (message or message_delta) folded into the running Usage. Counts are cumulative. */
function mergeUsage(into: Usage | undefined, u: Json): Usage {
  const out: Usage = into ?? {
    promptTokens: 0,
    completionTokens: 0,
    cachedPromptTokens: 0,
    cacheWriteTokens: 0,
  };
  const inputOld = out.promptTokens - out.cachedPromptTokens - out.cacheWriteTokens;
  const input = typeof u.input_tokens === 'number' ? u.input_tokens : inputOld;
  if (typeof u.cache_read_input_tokens === 'number') out.cachedPromptTokens = u.cache_read_input_tokens;
  if (typeof u.cache_creation_input_tokens === 'number') out.cacheWriteTokens = u.cache_creation_input_tokens;
  out.promptTokens = input + out.cachedPromptTokens + out.cacheWriteTokens;
  if (typeof u.output_tokens === 'number') out.completionTokens = u.output_tokens;
  return out;
}

/** Anthropic error type -> the HTTP status Anthropic documents for it (for errors without a status). */
const STATUS_OF_TYPE: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

export class AnthropicTranslator implements Translator {
  usage: Usage | undefined = undefined;
  sawFirstToken = false;
  streamError: ApiError | undefined = undefined;
  readonly #adjustments = new Adjustments();

  readonly #created = Math.floor(Date.now() / 1000);
  #parser: SseParser | undefined;
  #out = '';
  /** `{"id":..,"object":"chat.completion.chunk",..,"choices":[{"index":0,"delta":` */
  #prefix = '';
  #id = '';
  #upstreamModel = '';
  /** Per content block index: tool call index (>= 0), TEXT, or IGNORED (thinking and the like). */
  #blocks: number[] = [];
  /** Per tool call index: whether argument bytes were emitted. */
  #toolArgs: boolean[] = [];
  #toolCount = 0;
  #finish: FinishReason | undefined;
  #finishSent = false;
  #done = false;
  readonly #hold = new StreamHoldBack();
  #jsonParts: Buffer[] | undefined;

  readonly request: ParsedRequest;
  readonly model: CompiledModel;

  constructor(request: ParsedRequest, model: CompiledModel) {
    this.request = request;
    this.model = model;
  }

  buildRequest(): UpstreamRequest {
    const body = toAnthropicRequest(this.request, this.model, this.#adjustments);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: this.request.stream ? 'text/event-stream' : 'application/json',
      'accept-encoding': 'identity',
      'anthropic-version': ANTHROPIC_VERSION,
      ...providerHeaders(this.model),
    };
    Object.assign(headers, anthropicAuthHeaders(this.model.provider));
    return {
      method: 'POST',
      url: joinUrl(this.model.provider.baseUrl || ANTHROPIC_DEFAULT_BASE_URL, '/messages'),
      headers,
      body: Buffer.from(JSON.stringify(body)),
    };
  }

  get adjusted(): readonly string[] {
    return this.#adjustments.list;
  }

  onResponseHeaders(status: number, headers: UpstreamHeaders): ClientResponseStart {
    if (isJsonAnswerToStream(this.request.stream, headers)) this.#jsonParts = [];
    const start = clientResponseStart(this.request.stream, status);
    this.#adjustments.headers(start.headers);
    return start;
  }

  // -- non-streaming

  #completion(obj: Json): Json {
    if (obj.type === 'error' && isJsonObject(obj.error)) throw this.#errorFromBody(500, obj);
    const content = Array.isArray(obj.content) ? obj.content : [];
    let text = '';
    const toolCalls: Json[] = [];
    for (const b of content) {
      if (!isJsonObject(b)) continue;
      if (b.type === 'text' && typeof b.text === 'string') text += b.text;
      else if (b.type === 'tool_use') {
        toolCalls.push({
          id: b.id,
          type: 'function',
          function: { name: b.name, arguments: JSON.stringify(isJsonObject(b.input) ? b.input : {}) },
        });
      }
    }
    if (isJsonObject(obj.usage)) this.usage = mergeUsage(undefined, obj.usage);
    if (text.length > 0 || toolCalls.length > 0) this.sawFirstToken = true;
    const message: Json = {
      role: 'assistant',
      content: text.length > 0 || toolCalls.length === 0 ? text : null,
      refusal: null,
    };
    if (toolCalls.length > 0) message.tool_calls = toolCalls;
    const out: Json = {
      id: typeof obj.id === 'string' ? obj.id : 'msg_tierflow',
      object: 'chat.completion',
      created: this.#created,
      model: typeof obj.model === 'string' ? obj.model : this.model.upstreamModel,
      choices: [{ index: 0, message, logprobs: null, finish_reason: finishReasonFor(obj.stop_reason) }],
    };
    if (this.usage) out.usage = usageToOpenAI(this.usage);
    return out;
  }

  #parseBody(body: Buffer): Json {
    return answerObject(this.model, body);
  }

  onBody(body: Buffer): Buffer {
    return Buffer.from(JSON.stringify(this.#completion(this.#parseBody(body))));
  }

  // -- streaming

  onStreamChunk(chunk: Buffer, end: boolean): Buffer {
    if (this.#jsonParts !== undefined) return this.#jsonChunk(chunk, end);
    this.#out = '';
    const parser = (this.#parser ??= new SseParser((data, event) => this.#onEvent(data, event)));
    if (chunk.length > 0 && !this.#done) parser.push(chunk);
    if (end) {
      parser.end();
      if (!this.#done) {
        if (this.streamError === undefined) {
          this.streamError = new ApiError(
            502,
            `Provider '${this.model.provider.name}' ended the stream before message_stop.`,
            'upstream_error',
            'incomplete_stream',
          );
          this.#out += sseData(JSON.stringify(this.streamError.toBody()));
        }
        this.#out += SSE_DONE_TEXT;
        this.#done = true;
      }
    }
    const text = this.#out;
    this.#out = '';
    // The role chunk of message_start waits for a token, the finish, an error or the end, so a
    // stream failing right after message_start (overloaded) can still fail over.
    return this.#hold.pass(
      text,
      this.sawFirstToken || this.#finishSent || this.#done || this.streamError !== undefined || end,
    );
  }

  #chunk(delta: string, finish: string | null): string {
    if (this.#prefix === '') this.#start(undefined);
    return (
      'data: ' +
      this.#prefix +
      delta +
      ',"logprobs":null,"finish_reason":' +
      (finish === null ? 'null' : '"' + finish + '"') +
      '}]}\n\n'
    );
  }

  #start(message: Json | undefined): void {
    this.#id = message !== undefined && typeof message.id === 'string' ? message.id : 'msg_tierflow';
    this.#upstreamModel =
      message !== undefined && typeof message.model === 'string' ? message.model : this.model.upstreamModel;
    this.#prefix =
      '{"id":' +
      JSON.stringify(this.#id) +
      ',"object":"chat.completion.chunk","created":' +
      this.#created +
      ',"model":' +
      JSON.stringify(this.#upstreamModel) +
      ',"choices":[{"index":0,"delta":';
  }

  #onEvent(data: string, event: string): void {
    if (this.#done) return;
    let ev: unknown;
    try {
      ev = JSON.parse(data);
    } catch {
      ev = undefined;
    }
    if (!isJsonObject(ev)) {
      // Not an Anthropic event: end the stream with an error the client's SDK can read.
      this.streamError = malformedChunkError(this.model);
      this.#out += sseData(JSON.stringify(this.streamError.toBody())) + SSE_DONE_TEXT;
      this.#done = true;
      return;
    }
    const type = typeof ev.type === 'string' ? ev.type : event;
    switch (type) {
      case 'content_block_delta': {
        const d = ev.delta;
        if (!isJsonObject(d)) return;
        const idx = num(ev.index);
        const kind = this.#blocks[idx];
        if (d.type === 'text_delta') {
          if (typeof d.text !== 'string' || d.text.length === 0) return;
          this.sawFirstToken = true;
          this.#out += this.#chunk('{"content":' + JSON.stringify(d.text) + '}', null);
        } else if (d.type === 'input_json_delta' && kind !== undefined && kind >= 0) {
          if (typeof d.partial_json !== 'string' || d.partial_json.length === 0) return;
          this.#toolArgs[kind] = true;
          this.#out += this.#chunk(
            '{"tool_calls":[{"index":' +
              kind +
              ',"function":{"arguments":' +
              JSON.stringify(d.partial_json) +
              '}}]}',
            null,
          );
        }
        // thinking_delta, signature_delta, citations_delta: no chat-completions equivalent.
        return;
      }
      case 'message_start': {
        const m = isJsonObject(ev.message) ? ev.message : undefined;
        this.#start(m);
        if (m !== undefined && isJsonObject(m.usage)) this.usage = mergeUsage(this.usage, m.usage);
        this.#out += this.#chunk('{"role":"assistant","content":""}', null);
        return;
      }
      case 'content_block_start': {
        const b = ev.content_block;
        const idx = num(ev.index);
        if (!isJsonObject(b)) return;
        if (b.type === 'text') {
          this.#blocks[idx] = TEXT;
          if (typeof b.text === 'string' && b.text.length > 0) {
            this.sawFirstToken = true;
            this.#out += this.#chunk('{"content":' + JSON.stringify(b.text) + '}', null);
          }
        } else if (b.type === 'tool_use') {
          const ti = this.#toolCount++;
          this.#blocks[idx] = ti;
          this.#toolArgs[ti] = false;
          this.sawFirstToken = true;
          this.#out += this.#chunk(
            '{"tool_calls":[{"index":' +
              ti +
              ',"id":' +
              JSON.stringify(typeof b.id === 'string' ? b.id : `call_${ti}`) +
              ',"type":"function","function":{"name":' +
              JSON.stringify(typeof b.name === 'string' ? b.name : '') +
              ',"arguments":""}}]}',
            null,
          );
          if (isJsonObject(b.input) && Object.keys(b.input).length > 0) {
            // Some servers send the whole input up front instead of input_json_delta events.
            this.#toolArgs[ti] = true;
            this.#out += this.#chunk(
              '{"tool_calls":[{"index":' +
                ti +
                ',"function":{"arguments":' +
                JSON.stringify(JSON.stringify(b.input)) +
                '}}]}',
              null,
            );
          }
        } else {
          this.#blocks[idx] = IGNORED;
        }
        return;
      }
      case 'content_block_stop': {
        const kind = this.#blocks[num(ev.index)];
        if (kind !== undefined && kind >= 0 && !this.#toolArgs[kind]) {
          // A tool without arguments: OpenAI clients JSON.parse the arguments, so send "{}".
          this.#toolArgs[kind] = true;
          this.#out += this.#chunk(
            '{"tool_calls":[{"index":' + kind + ',"function":{"arguments":"{}"}}]}',
            null,
          );
        }
        return;
      }
      case 'message_delta': {
        if (isJsonObject(ev.usage)) this.usage = mergeUsage(this.usage, ev.usage);
        const d = ev.delta;
        if (isJsonObject(d) && d.stop_reason !== undefined && d.stop_reason !== null)
          this.#finish = finishReasonFor(d.stop_reason);
        if (this.#finish !== undefined && !this.#finishSent) {
          this.#finishSent = true;
          this.#out += this.#chunk('{}', this.#finish);
        }
        return;
      }
      case 'message_stop': {
        if (!this.#finishSent) {
          this.#finishSent = true;
          this.#out += this.#chunk('{}', this.#finish ?? 'stop');
        }
        if (this.request.clientWantsUsage && this.usage !== undefined) {
          if (this.#prefix === '') this.#start(undefined);
          this.#out += sseData(
            JSON.stringify({
              id: this.#id,
              object: 'chat.completion.chunk',
              created: this.#created,
              model: this.#upstreamModel,
              choices: [],
              usage: usageToOpenAI(this.usage),
            }),
          );
        }
        this.#out += SSE_DONE_TEXT;
        this.#done = true;
        return;
      }
      case 'error': {
        const e = isJsonObject(ev.error) ? ev.error : {};
        const etype = typeof e.type === 'string' ? e.type : 'api_error';
        this.streamError = upstreamError(this.model, STATUS_OF_TYPE[etype] ?? 500, {
          message: typeof e.message === 'string' ? e.message : undefined,
          providerType: etype,
          midStream: true,
        });
        this.#out += sseData(JSON.stringify(this.streamError.toBody())) + SSE_DONE_TEXT;
        this.#done = true;
        return;
      }
      default: // ping and future event types
        return;
    }
  }

  #jsonChunk(chunk: Buffer, end: boolean): Buffer {
    const parts = this.#jsonParts as Buffer[];
    if (chunk.length > 0) parts.push(Buffer.from(chunk));
    if (!end || this.#done) return EMPTY_BUFFER;
    this.#done = true;
    let text: string;
    try {
      text = completionToSse(
        this.#completion(this.#parseBody(Buffer.concat(parts))),
        this.request.clientWantsUsage,
      );
    } catch (err) {
      this.streamError = err instanceof ApiError ? err : new ApiError(502, String(err), 'upstream_error');
      text = sseData(JSON.stringify(this.streamError.toBody()));
    }
    return Buffer.from(text + SSE_DONE_TEXT);
  }

  // -- errors

  #errorFromBody(status: number, parsed: Json): ApiError {
    const e = isJsonObject(parsed.error) ? parsed.error : {};
    const etype = typeof e.type === 'string' ? e.type : null;
    return upstreamError(this.model, status >= 400 ? status : (STATUS_OF_TYPE[etype ?? ''] ?? 500), {
      message: typeof e.message === 'string' ? e.message : undefined,
      providerType: etype,
    });
  }

  onError(status: number, _headers: UpstreamHeaders, body: Buffer): ApiError {
    const parsed = tryParseJson(body);
    if (isJsonObject(parsed) && isJsonObject(parsed.error)) return this.#errorFromBody(status, parsed);
    return upstreamError(this.model, status, { message: body.length > 0 ? bodyExcerpt(body) : undefined });
  }
}

export function createAnthropicTranslator(request: ParsedRequest, model: CompiledModel): Translator {
  return new AnthropicTranslator(request, model);
}
