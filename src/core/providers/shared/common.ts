// Helpers shared by the translators: OpenAI message content -> text/images, OpenAI response
// objects (chat.completion, chat.completion.chunk SSE), usage, and upstream status -> OpenAI error.
// Keep this small: only what more than one translator needs.
import { createHash, randomBytes } from 'node:crypto';
import type { ModelFacts, ParamFact } from '../../config/model-facts.js';
import type { ApiError } from '../../errors.js';
import type { ChatCompletionRequest, ChatMessage, FinishReason, ToolCall, Usage } from '../../openai.js';
import { EMPTY_BUFFER, SSE_DONE_TEXT, sseData } from './sse.js';
import type { ClientResponseStart, UpstreamHeaders } from '../types.js';

export const randomId = (prefix: string, bytes = 12): string =>
  `${prefix}${randomBytes(bytes).toString('base64url')}`;

/** The text of an OpenAI message content (string, or the text parts of a part array, joined). */
export function contentText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const p of content) if (p.type === 'text' && typeof p.text === 'string') out += p.text;
  return out;
}

export interface DataUrl {
  mimeType: string;
  /** base64 payload, as found in the URL. */
  data: string;
}

/** `data:image/png;base64,AAAA` -> {mimeType, data}; undefined for anything else. */
export function parseDataUrl(url: string): DataUrl | undefined {
  const m = /^data:([^;,]+)((?:;[^;,]*)*);base64,(.*)$/s.exec(url);
  if (!m) return undefined;
  return { mimeType: m[1]!.toLowerCase(), data: m[3]!.replace(/\s+/g, '') };
}

const EXT_MIME: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  heic: 'image/heic',
  heif: 'image/heif',
};

/** Image MIME type guessed from a URL's file extension, if it has a known one. */
export function imageMimeFromUrl(url: string): string | undefined {
  const m = /\.([a-z0-9]+)(?:[?#].*)?$/i.exec(url);
  return m ? EXT_MIME[m[1]!.toLowerCase()] : undefined;
}

/** The function name of each tool call id in the conversation (tool results only carry the id). */
export function toolCallNames(messages: ChatMessage[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const m of messages) {
    if (m.role !== 'assistant' || !Array.isArray(m.tool_calls)) continue;
    for (const tc of m.tool_calls) if (tc?.id && tc.function?.name) names.set(tc.id, tc.function.name);
  }
  return names;
}

/** Parse tool-call arguments; an unparsable string is wrapped so no information is lost. */
export function parseToolArguments(args: string | undefined): Record<string, unknown> {
  if (!args) return {};
  try {
    const v: unknown = JSON.parse(args);
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : { value: v };
  } catch {
    return { raw: args };
  }
}

/** OpenAI usage object. promptTokens counts every input token, cached and cache-written ones included. */
export function openaiUsage(u: Usage): Record<string, unknown> {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedPromptTokens },
  };
}

export interface CompletionParts {
  id: string;
  model: string;
  created: number;
  content: string | null;
  toolCalls: ToolCall[];
  finishReason: FinishReason;
  usage: Usage | undefined;
  /** Extra fields for choices[0].message (e.g. Azure-style annotations); rarely needed. */
  refusal?: string | null;
}

/** A complete OpenAI chat.completion body. */
export function chatCompletion(p: CompletionParts): Buffer {
  const message: Record<string, unknown> = {
    role: 'assistant',
    content: p.content,
    refusal: p.refusal ?? null,
  };
  if (p.toolCalls.length > 0) message.tool_calls = p.toolCalls;
  const body: Record<string, unknown> = {
    id: p.id,
    object: 'chat.completion',
    created: p.created,
    model: p.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: p.finishReason }],
  };
  if (p.usage) body.usage = openaiUsage(p.usage);
  return Buffer.from(JSON.stringify(body));
}

const sseJson = (obj: unknown): string => sseData(JSON.stringify(obj));

/**
 * Writes OpenAI chat.completion.chunk SSE events for one choice. Translators call text(),
 * toolCall*(), finish(), then end(); each returns the SSE text to forward.
 */
export class ChunkWriter {
  private roleSent = false;
  private finished: FinishReason | undefined;
  private nextToolIndex = 0;
  /** True once a content or tool-call delta was written. */
  sawFirstToken = false;

  readonly id: string;
  readonly model: string;
  readonly created: number;
  private readonly includeUsage: boolean;

  constructor(id: string, model: string, created: number, includeUsage: boolean) {
    this.id = id;
    this.model = model;
    this.created = created;
    this.includeUsage = includeUsage;
  }

  get finishReason(): FinishReason | undefined {
    return this.finished;
  }

  private chunk(delta: Record<string, unknown>, finish: FinishReason | null = null): string {
    if (!this.roleSent) {
      delta = { role: 'assistant', ...delta };
      this.roleSent = true;
    }
    return sseJson({
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
  }

  /** The opening chunk (role only), for providers that announce the message before any content. */
  start(): string {
    return this.roleSent ? '' : this.chunk({ content: '' });
  }

  text(s: string): string {
    if (s.length === 0) return '';
    this.sawFirstToken = true;
    return this.chunk({ content: s });
  }

  /** Starts a tool call; returns [its OpenAI index, SSE text]. */
  toolCallStart(id: string, name: string, args = ''): [number, string] {
    const index = this.nextToolIndex++;
    this.sawFirstToken = true;
    return [
      index,
      this.chunk({ tool_calls: [{ index, id, type: 'function', function: { name, arguments: args } }] }),
    ];
  }

  toolCallArgs(index: number, args: string): string {
    if (args.length === 0) return '';
    return this.chunk({ tool_calls: [{ index, function: { arguments: args } }] });
  }

  get toolCallCount(): number {
    return this.nextToolIndex;
  }

  finish(reason: FinishReason): string {
    if (this.finished) return '';
    this.finished = reason;
    return this.chunk({}, reason);
  }

  /** Usage chunk (only when the client asked for it) and [DONE]. */
  end(usage: Usage | undefined): string {
    let out = '';
    if (this.includeUsage) {
      out += sseJson({
        id: this.id,
        object: 'chat.completion.chunk',
        created: this.created,
        model: this.model,
        choices: [],
        usage: usage ? openaiUsage(usage) : null,
      });
    }
    return out + SSE_DONE_TEXT;
  }

  /** An OpenAI-style error event inside the stream (the openai SDK raises it as an APIError). */
  error(err: ApiError): string {
    return sseJson(err.toBody());
  }
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** What the client sees of a successful upstream answer: SSE when it asked to stream, else JSON. */
export function clientResponseStart(stream: boolean, status = 200): ClientResponseStart {
  return stream
    ? {
        status,
        headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
        streaming: true,
      }
    : { status, headers: { 'content-type': 'application/json' }, streaming: false };
}

/** A streaming request answered with one JSON body (some servers ignore `stream: true`). */
export function isJsonAnswerToStream(stream: boolean, headers: UpstreamHeaders): boolean {
  if (!stream) return false;
  let ct = headers['content-type'];
  if (Array.isArray(ct)) ct = ct[0];
  if (typeof ct !== 'string') return false;
  const type = ct.toLowerCase();
  return !type.includes('text/event-stream') && type.includes('json');
}

/**
 * Holds a translated stream's opening output (role-only chunks) back until the caller says it may
 * go: a stream that fails before its first token then has sent nothing and can still fail over.
 */
export class StreamHoldBack {
  #held = '';
  #released = false;

  /** Characters held so far. */
  get held(): number {
    return this.#held.length;
  }

  /** Passes `text` on (after what was held) once `release` is true; until then holds it. */
  pass(text: string, release: boolean): Buffer {
    if (!this.#released) {
      if (!release) {
        this.#held += text;
        return EMPTY_BUFFER;
      }
      this.#released = true;
      text = this.#held + text;
      this.#held = '';
    }
    return text.length === 0 ? EMPTY_BUFFER : Buffer.from(text);
  }
}

// ---------------------------------------------------------------------------------------------
// Adapting a request to the routed model's facts (see config/model-facts.ts)

/** Response header naming what a translator changed in the request so the model would accept it. */
export const ADJUSTED_HEADER = 'x-tierflow-adjusted';

/** What a translator changed in one request, by the client's parameter name (in order, no repeats). */
export class Adjustments {
  readonly list: string[] = [];

  add(what: string): void {
    if (!this.list.includes(what)) this.list.push(what);
  }

  /** The client headers with x-tierflow-adjusted added when something was changed. */
  headers(h: Record<string, string>): Record<string, string> {
    if (this.list.length > 0) h[ADJUSTED_HEADER] = this.list.join(',');
    return h;
  }
}

/** A sampling value as the model accepts it: the value itself, clamped, or undefined (dropped). */
export function adaptParam(
  value: unknown,
  fact: ParamFact,
  name: string,
  adjusted: Adjustments,
): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  switch (fact.support) {
    case 'none':
      adjusted.add(name);
      return undefined;
    case 'defaultOnly':
      if (value === fact.default) return value;
      adjusted.add(name);
      return undefined;
    default: {
      const min = fact.min ?? -Infinity;
      const max = fact.max ?? Infinity;
      if (value >= min && value <= max) return value;
      adjusted.add(name);
      return fact.outside === 'drop' ? undefined : Math.min(Math.max(value, min), max);
    }
  }
}

export interface Sampling {
  temperature?: number;
  topP?: number;
  topK?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
}

/**
 * The client's sampling parameters adapted to the model: out-of-range values clamped, values the
 * model refuses dropped, top_p dropped where it may not come with temperature. `top_k` is not an
 * OpenAI field, but OpenAI-compatible clients send it for servers that take it.
 */
export function adaptSampling(
  body: ChatCompletionRequest,
  facts: ModelFacts,
  adjusted: Adjustments,
): Sampling {
  const b = body as ChatCompletionRequest & { top_k?: unknown };
  const out: Sampling = {
    temperature: adaptParam(b.temperature, facts.temperature, 'temperature', adjusted),
    topP: adaptParam(b.top_p, facts.topP, 'top_p', adjusted),
    topK: adaptParam(b.top_k, facts.topK, 'top_k', adjusted),
    frequencyPenalty: adaptParam(b.frequency_penalty, facts.frequencyPenalty, 'frequency_penalty', adjusted),
    presencePenalty: adaptParam(b.presence_penalty, facts.presencePenalty, 'presence_penalty', adjusted),
  };
  if (!facts.temperatureWithTopP && out.temperature !== undefined && out.topP !== undefined) {
    out.topP = undefined;
    adjusted.add('top_p');
  }
  return out;
}

const TOOL_ID_CHARS = /^[A-Za-z0-9_-]+$/;

/**
 * A tool-call id the model accepts: the id itself when it fits (at most maxLength characters of
 * [A-Za-z0-9_-]), else a short id derived from it by hash. The same id always maps to the same
 * short id, so a call and its result stay paired within a request and across turns.
 */
export function fitToolCallId(id: string, maxLength: number): string {
  if (id.length <= maxLength && TOOL_ID_CHARS.test(id)) return id;
  const digest = createHash('sha256').update(id).digest('base64url');
  return `call_${digest.slice(0, Math.max(8, Math.min(maxLength, 40) - 5))}`;
}
