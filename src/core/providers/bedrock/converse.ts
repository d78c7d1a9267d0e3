// AWS Bedrock translator: OpenAI chat completions <-> Bedrock Converse / ConverseStream.
//   POST {base}/model/{modelId}/converse          JSON in, JSON out
//   POST {base}/model/{modelId}/converse-stream   JSON in, AWS event-stream (binary frames) out
// Auth (SigV4 or a Bedrock API key) lives in ./auth.ts, the endpoint in ./endpoint.ts.
import type { CompiledModel } from '../../config/compiled.js';
import { ApiError } from '../../errors.js';
import type { ChatMessage, FinishReason, ToolCall, Usage } from '../../openai.js';
import type { ParsedRequest } from '../../parse.js';
import {
  clientResponseStart,
  ChunkWriter,
  chatCompletion,
  contentText,
  nowSeconds,
  parseDataUrl,
  parseToolArguments,
  randomId,
  Adjustments,
  adaptSampling,
  fitToolCallId,
} from '../shared/common.js';
import { EventStreamDecoder, EventStreamError, headerString } from '../shared/eventstream.js';
import {
  answerObject,
  tryParseJson as tryJson,
  unreadableAnswerError,
  upstreamError,
} from '../shared/upstream-error.js';
import { uriEscape } from '../shared/sigv4.js';
import type { ClientResponseStart, Translator, UpstreamHeaders, UpstreamRequest } from '../types.js';
import { bedrockAuthHeaders } from './auth.js';
import { bedrockBase } from './endpoint.js';

// ---------------------------------------------------------------------------------------------
// Request mapping

type Block = Record<string, unknown>;
interface BedrockMessage {
  role: 'user' | 'assistant';
  content: Block[];
}

const IMAGE_FORMATS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/jpg': 'jpeg',
  'image/gif': 'gif',
  'image/webp': 'webp',
};

/** Bedrock ToolUseId: [a-zA-Z0-9_-]+, 1 to 64 characters (bedrock-runtime service-2.json). */
const TOOL_ID_MAX = 64;
/** Bedrock tool-use ids must match [a-zA-Z0-9_-]{1,64}; ids minted by other providers may not. */
export function bedrockToolUseId(id: string, maxLength = TOOL_ID_MAX): string {
  return fitToolCallId(id === '' ? 'call' : id, Math.min(maxLength, TOOL_ID_MAX));
}

/** DocumentBlock formats by MIME type (bedrock-runtime service-2.json DocumentFormat). */
const DOCUMENT_FORMATS: Record<string, string> = {
  'application/pdf': 'pdf',
  'text/csv': 'csv',
  'application/msword': 'doc',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/vnd.ms-excel': 'xls',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'text/html': 'html',
  'text/plain': 'txt',
  'text/markdown': 'md',
};

/**
 * DocumentBlock.name: alphanumerics, single whitespace characters, hyphens, parentheses and
 * square brackets (service-2.json); anything else in the client's filename becomes a hyphen.
 */
function documentName(filename: unknown, n: number): string {
  const base =
    typeof filename === 'string'
      ? filename
          .replace(/\.[A-Za-z0-9]+$/, '')
          .replace(/[^A-Za-z0-9\s\-()[\]]/g, '-')
          .replace(/\s+/g, ' ')
          .trim()
          .slice(0, 200)
      : '';
  return base.length > 0 ? base : `document-${n}`;
}

function userBlocks(msg: ChatMessage, index: number): Block[] {
  const c = msg.content;
  if (typeof c === 'string') return c.length > 0 ? [{ text: c }] : [];
  if (!Array.isArray(c)) return [];
  const out: Block[] = [];
  c.forEach((part, j) => {
    if (part.type === 'text' && typeof part.text === 'string') {
      if (part.text.length > 0) out.push({ text: part.text });
    } else if (part.type === 'file') {
      const f = (part as { file?: { file_data?: unknown; filename?: unknown } }).file;
      const data = typeof f?.file_data === 'string' ? parseDataUrl(f.file_data) : undefined;
      const format = data ? DOCUMENT_FORMATS[data.mimeType] : undefined;
      if (!data || !format) {
        throw new ApiError(
          400,
          'Bedrock accepts files only as base64 data URLs (file.file_data) of PDF, CSV, DOC(X), XLS(X), HTML, TXT or Markdown documents.',
          'invalid_request_error',
          'unsupported_content',
          `messages[${index}].content[${j}].file`,
        );
      }
      out.push({
        document: { format, name: documentName(f?.filename, out.length + 1), source: { bytes: data.data } },
      });
    } else if (part.type === 'image_url') {
      const url = (part as { image_url?: { url?: unknown } }).image_url?.url;
      const data = typeof url === 'string' ? parseDataUrl(url) : undefined;
      const format = data ? IMAGE_FORMATS[data.mimeType] : undefined;
      if (!data || !format) {
        throw new ApiError(
          400,
          'Bedrock accepts images only as base64 data URLs of PNG, JPEG, GIF or WebP (data:image/png;base64,...).',
          'invalid_request_error',
          'unsupported_image',
          `messages[${index}].content[${j}].image_url`,
        );
      }
      out.push({ image: { format, source: { bytes: data.data } } });
    }
  });
  return out;
}

function toolResultContent(msg: ChatMessage): Block[] {
  const text = contentText(msg.content);
  return [{ text: text.length > 0 ? text : ' ' }];
}

export interface BedrockBody {
  messages: BedrockMessage[];
  system?: { text: string }[];
  inferenceConfig?: Record<string, unknown>;
  toolConfig?: Record<string, unknown>;
  outputConfig?: Record<string, unknown>;
}

export function buildConverseBody(
  req: ParsedRequest,
  model: CompiledModel,
  adjusted = new Adjustments(),
): BedrockBody {
  const b = req.body;
  const toolUseId = (id: string) => {
    const fitted = bedrockToolUseId(id, model.facts.toolCallIdMaxLength);
    if (fitted !== id) adjusted.add('tool_call_ids');
    return fitted;
  };
  const usedTools = new Set<string>();
  const system: { text: string }[] = [];
  const messages: BedrockMessage[] = [];
  let usesToolBlocks = false;
  const push = (role: 'user' | 'assistant', blocks: Block[]) => {
    if (blocks.length === 0) return;
    const last = messages[messages.length - 1];
    // Converse wants user/assistant alternation: consecutive same-role messages are merged.
    if (last && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  b.messages.forEach((m, i) => {
    switch (m.role) {
      case 'system':
      case 'developer': {
        const t = contentText(m.content);
        if (t.length > 0) system.push({ text: t });
        break;
      }
      case 'user':
        push('user', userBlocks(m, i));
        break;
      case 'assistant': {
        const blocks: Block[] = [];
        const t = contentText(m.content);
        if (t.trim().length > 0) blocks.push({ text: t });
        for (const tc of m.tool_calls ?? []) {
          usesToolBlocks = true;
          usedTools.add(tc.function.name);
          blocks.push({
            toolUse: {
              toolUseId: toolUseId(tc.id),
              name: tc.function.name,
              input: parseToolArguments(tc.function.arguments),
            },
          });
        }
        push('assistant', blocks);
        break;
      }
      case 'tool':
      case 'function':
        usesToolBlocks = true;
        push('user', [
          {
            toolResult: {
              toolUseId: toolUseId(String(m.tool_call_id ?? m.name ?? '')),
              content: toolResultContent(m),
            },
          },
        ]);
        break;
    }
  });

  const out: BedrockBody = { messages };
  if (b.response_format?.type === 'json_object') {
    system.push({ text: 'Respond with a single valid JSON object and nothing else.' });
  }
  if (system.length > 0) out.system = system;

  const inference: Record<string, unknown> = {};
  const maxOut = req.maxOutputTokens;
  if (maxOut !== undefined) inference.maxTokens = Math.min(maxOut, model.maxOutputTokens);
  // Converse: temperature and topP in [0, 1]; Claude 4.1+ models take only one of them.
  const sampling = adaptSampling(b, model.facts, adjusted);
  if (sampling.temperature !== undefined) inference.temperature = sampling.temperature;
  if (sampling.topP !== undefined) inference.topP = sampling.topP;
  // inferenceConfig has no top_k (the facts of Converse models say none; a catalog may say otherwise).
  if (sampling.topK !== undefined) adjusted.add('top_k');
  if (b.stop) inference.stopSequences = Array.isArray(b.stop) ? b.stop : [b.stop];
  if (Object.keys(inference).length > 0) out.inferenceConfig = inference;

  const tools = (b.tools ?? []).filter((t) => t?.function?.name);
  const choice = b.tool_choice;
  // Converse has no "none": drop the tools, unless the history holds tool blocks (then Converse
  // requires toolConfig) - then keep them without forcing a choice.
  if (tools.length > 0 && (choice !== 'none' || usesToolBlocks)) {
    const toolConfig: Record<string, unknown> = {
      tools: tools.map((t) => ({
        toolSpec: {
          name: t.function.name,
          ...(t.function.description ? { description: t.function.description } : {}),
          inputSchema: { json: t.function.parameters ?? { type: 'object', properties: {} } },
        },
      })),
    };
    if (choice === 'required') toolConfig.toolChoice = { any: {} };
    else if (typeof choice === 'object' && choice?.function?.name)
      toolConfig.toolChoice = { tool: { name: choice.function.name } };
    else if (choice === 'auto') toolConfig.toolChoice = { auto: {} };
    out.toolConfig = toolConfig;
  } else if (usesToolBlocks) {
    // "The toolConfig field must be defined when using toolUse and toolResult content blocks":
    // without tools in the request, declare the ones the history used (Converse has no "none").
    const names = usedTools.size > 0 ? [...usedTools] : ['tool'];
    out.toolConfig = {
      tools: names.map((name) => ({ toolSpec: { name, inputSchema: { json: { type: 'object' } } } })),
    };
  }

  if (b.response_format?.type === 'json_schema') {
    const js = (b.response_format.json_schema ?? {}) as {
      name?: unknown;
      description?: unknown;
      schema?: unknown;
    };
    const def: Record<string, unknown> = { schema: JSON.stringify(js.schema ?? { type: 'object' }) };
    if (typeof js.name === 'string') def.name = js.name;
    if (typeof js.description === 'string') def.description = js.description;
    out.outputConfig = { textFormat: { type: 'json_schema', structure: { jsonSchema: def } } };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Responses

const FINISH: Record<string, FinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  guardrail_intervened: 'content_filter',
  content_filtered: 'content_filter',
};
const finishReason = (stop: unknown): FinishReason => FINISH[String(stop)] ?? 'stop';
/** Stop reasons that say the model failed to produce a usable answer: the provider's failure (502). */
const FAILED_STOP = new Set(['malformed_model_output', 'malformed_tool_use']);

const failedStopError = (model: CompiledModel, stop: string, midStream = false): ApiError =>
  upstreamError(model, 502, {
    message: `the model produced no usable answer (stopReason ${stop})`,
    providerType: stop,
    providerCode: stop,
    midStream,
  });

interface BedrockUsage {
  inputTokens?: number;
  outputTokens?: number;
  cacheReadInputTokens?: number;
  cacheWriteInputTokens?: number;
}

function toUsage(u: BedrockUsage | undefined): Usage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const read = u.cacheReadInputTokens ?? 0;
  const write = u.cacheWriteInputTokens ?? 0;
  // Bedrock's inputTokens excludes cache reads and writes; OpenAI's prompt_tokens includes them.
  return {
    promptTokens: (u.inputTokens ?? 0) + read + write,
    completionTokens: u.outputTokens ?? 0,
    cachedPromptTokens: read,
    cacheWriteTokens: write,
  };
}

/** Bedrock error type (x-amzn-errortype header, __type, or stream :exception-type) -> client status. */
const ERROR_STATUS: Record<string, number> = {
  ThrottlingException: 429,
  // HTTP 400 at Bedrock, but an account quota, not the request: another provider can serve it.
  // Sent on as OpenAI sends exhausted quota (429 insufficient_quota), which fails over.
  ServiceQuotaExceededException: 429,
  ModelNotReadyException: 429,
  TooManyRequestsException: 429,
  ValidationException: 400,
  AccessDeniedException: 403,
  UnrecognizedClientException: 403,
  InvalidSignatureException: 403,
  ExpiredTokenException: 403,
  IncompleteSignatureException: 403,
  ResourceNotFoundException: 404,
  ModelTimeoutException: 408,
  ModelErrorException: 502,
  ModelStreamErrorException: 502,
  InternalServerException: 500,
  ServiceUnavailableException: 503,
};

function errorTypeName(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  // "ThrottlingException:http://internal.amazon.com/coral/..." or "com.amazon...#ThrottlingException"
  let name = raw.split(':')[0]!;
  name = name.slice(name.lastIndexOf('#') + 1).trim();
  return name.length > 0 ? name.charAt(0).toUpperCase() + name.slice(1) : undefined;
}

function headerValue(headers: UpstreamHeaders, name: string): string | undefined {
  const v = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function bedrockError(
  model: CompiledModel,
  typeRaw: string | undefined,
  httpStatus: number,
  message: string,
  midStream = false,
): ApiError {
  const type = errorTypeName(typeRaw);
  const status = (type && ERROR_STATUS[type]) || httpStatus;
  // Signature errors print the canonical request and string to sign: keep the first sentence only.
  const text = /Signature/i.test(type ?? '') ? (message.split(/(?<=\.)\s/)[0] ?? message) : message;
  const quota = type === 'ServiceQuotaExceededException';
  return upstreamError(model, status, {
    message: text,
    providerType: quota ? 'insufficient_quota' : (type ?? null),
    providerCode: quota ? 'insufficient_quota' : status === 429 ? 'rate_limit_exceeded' : null,
    midStream,
  });
}

// ---------------------------------------------------------------------------------------------
// The translator

export interface BedrockOptions {
  /** Clock for the SigV4 date (tests pin it). */
  now?: () => Date;
}

class BedrockTranslator implements Translator {
  usage: Usage | undefined;
  streamError: ApiError | undefined;
  private readonly adjustments = new Adjustments();
  private readonly writer: ChunkWriter;
  private readonly decoder = new EventStreamDecoder();
  /** Converse content-block index -> OpenAI tool-call index. */
  private readonly toolIndex = new Map<number, number>();
  private stopped = false;
  private broken = false;

  private readonly request: ParsedRequest;
  readonly model: CompiledModel;
  private readonly opts: BedrockOptions;

  constructor(request: ParsedRequest, model: CompiledModel, opts: BedrockOptions = {}) {
    this.request = request;
    this.model = model;
    this.opts = opts;
    this.writer = new ChunkWriter(randomId('chatcmpl-'), model.name, nowSeconds(), request.clientWantsUsage);
  }

  get sawFirstToken(): boolean {
    return this.writer.sawFirstToken;
  }

  get adjusted(): readonly string[] {
    return this.adjustments.list;
  }

  buildRequest(): UpstreamRequest {
    const op = this.request.stream ? 'converse-stream' : 'converse';
    const url = new URL(`${bedrockBase(this.model)}/model/${uriEscape(this.model.upstreamModel)}/${op}`);
    const body = Buffer.from(JSON.stringify(buildConverseBody(this.request, this.model, this.adjustments)));
    const headers: Record<string, string> = {
      ...this.model.provider.headers,
      'content-type': 'application/json',
      accept: this.request.stream ? 'application/vnd.amazon.eventstream' : 'application/json',
    };
    Object.assign(
      headers,
      bedrockAuthHeaders(this.model, { method: 'POST', url, headers, body }, this.opts.now),
    );
    return { method: 'POST', url, headers, body };
  }

  onResponseHeaders(_status: number, _headers: UpstreamHeaders): ClientResponseStart {
    const start = clientResponseStart(this.request.stream);
    this.adjustments.headers(start.headers);
    return start;
  }

  onBody(body: Buffer): Buffer {
    const json = answerObject(this.model, body) as {
      output?: { message?: { content?: Block[] } };
      stopReason?: string;
      usage?: BedrockUsage;
    };
    let text = '';
    const toolCalls: ToolCall[] = [];
    for (const block of json.output?.message?.content ?? []) {
      if (typeof block.text === 'string') text += block.text;
      const tu = block.toolUse as { toolUseId?: string; name?: string; input?: unknown } | undefined;
      if (tu?.name) {
        toolCalls.push({
          id: tu.toolUseId ?? randomId('call_'),
          type: 'function',
          function: { name: tu.name, arguments: JSON.stringify(tu.input ?? {}) },
        });
      }
    }
    this.usage = toUsage(json.usage);
    if (FAILED_STOP.has(String(json.stopReason))) throw failedStopError(this.model, String(json.stopReason));
    if (text.length > 0 || toolCalls.length > 0) this.writer.sawFirstToken = true;
    return chatCompletion({
      id: this.writer.id,
      model: this.writer.model,
      created: this.writer.created,
      content: text.length > 0 || toolCalls.length === 0 ? text : null,
      toolCalls,
      finishReason: finishReason(json.stopReason),
      usage: this.usage,
    });
  }

  onStreamChunk(chunk: Buffer, end: boolean): Buffer {
    let out = '';
    if (!this.broken) {
      try {
        for (const msg of this.decoder.push(chunk)) out += this.onMessage(msg.headers, msg.body);
      } catch (err) {
        if (!(err instanceof EventStreamError)) throw err;
        this.broken = true;
        this.fail(unreadableAnswerError(this.model, `sent a corrupt event stream: ${err.message}`));
        out += this.writer.error(this.streamError!);
      }
    }
    if (end) {
      if (!this.broken && !this.streamError && (!this.stopped || this.decoder.pendingBytes > 0)) {
        this.fail(
          upstreamError(this.model, 502, {
            message: 'stream ended before messageStop',
            providerCode: 'stream_truncated',
            midStream: true,
          }),
        );
        out += this.writer.error(this.streamError!);
      }
      out += this.writer.end(this.usage);
    }
    return Buffer.from(out);
  }

  private fail(err: ApiError): void {
    this.streamError ??= err;
  }

  private onMessage(headers: Record<string, unknown>, body: Uint8Array): string {
    const msgType = headers[':message-type'];
    const payload = (tryJson(Buffer.from(body.buffer, body.byteOffset, body.byteLength)) ?? {}) as Record<
      string,
      unknown
    >;
    if (msgType === 'exception') {
      const type = headerString({ headers: headers as never, body }, ':exception-type');
      const message = String(payload.message ?? payload.Message ?? 'stream exception');
      this.fail(bedrockError(this.model, type, 500, message, true));
      this.broken = true;
      return this.writer.error(this.streamError!);
    }
    if (msgType === 'error') {
      const code = String(headers[':error-code'] ?? 'InternalFailure');
      this.fail(
        bedrockError(this.model, code, 500, String(headers[':error-message'] ?? 'stream error'), true),
      );
      this.broken = true;
      return this.writer.error(this.streamError!);
    }
    switch (headers[':event-type']) {
      case 'messageStart':
        return this.writer.start();
      case 'contentBlockStart': {
        const idx = Number(payload.contentBlockIndex ?? 0);
        const tu = (payload.start as { toolUse?: { toolUseId?: string; name?: string } } | undefined)
          ?.toolUse;
        if (!tu?.name) return '';
        const [openaiIndex, sse] = this.writer.toolCallStart(tu.toolUseId ?? randomId('call_'), tu.name);
        this.toolIndex.set(idx, openaiIndex);
        return sse;
      }
      case 'contentBlockDelta': {
        const idx = Number(payload.contentBlockIndex ?? 0);
        const delta = (payload.delta ?? {}) as { text?: unknown; toolUse?: { input?: unknown } };
        if (typeof delta.text === 'string') return this.writer.text(delta.text);
        if (delta.toolUse && typeof delta.toolUse.input === 'string') {
          const ti = this.toolIndex.get(idx);
          return ti === undefined ? '' : this.writer.toolCallArgs(ti, delta.toolUse.input);
        }
        return ''; // reasoningContent and citations are not part of the chat-completions format
      }
      case 'messageStop': {
        this.stopped = true;
        if (FAILED_STOP.has(String(payload.stopReason))) {
          // Malformed output: the stream failed (before the first token, the data plane fails over).
          this.fail(failedStopError(this.model, String(payload.stopReason), true));
          return this.writer.error(this.streamError!);
        }
        return this.writer.finish(finishReason(payload.stopReason));
      }
      case 'metadata':
        this.usage = toUsage(payload.usage as BedrockUsage | undefined) ?? this.usage;
        return '';
      default:
        return '';
    }
  }

  onError(status: number, headers: UpstreamHeaders, body: Buffer): ApiError {
    const json = tryJson(body) as { message?: unknown; Message?: unknown; __type?: unknown } | undefined;
    const message = String(
      json?.message ??
        json?.Message ??
        (body.length > 0 ? body.toString('utf8').slice(0, 500) : `HTTP ${status}`),
    );
    const type =
      headerValue(headers, 'x-amzn-errortype') ??
      (typeof json?.__type === 'string' ? json.__type : undefined);
    return bedrockError(this.model, type, status, message);
  }
}

export function createBedrockTranslator(
  request: ParsedRequest,
  model: CompiledModel,
  opts: BedrockOptions = {},
): Translator {
  return new BedrockTranslator(request, model, opts);
}
