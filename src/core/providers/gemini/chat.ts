// Google Gemini translator: OpenAI chat completions <-> Gemini API generateContent.
//   POST {base}/models/{model}:generateContent                 JSON in, JSON out
//   POST {base}/models/{model}:streamGenerateContent?alt=sse   JSON in, SSE of GenerateContentResponse
// Auth: the x-goog-api-key header (never the ?key= query parameter, which ends up in access logs).
import type { CompiledModel } from '../../config/compiled.js';
import { ApiError } from '../../errors.js';
import type { ChatMessage, FinishReason, ToolCall, Usage } from '../../openai.js';
import type { ParsedRequest } from '../../parse.js';
import {
  clientResponseStart,
  ChunkWriter,
  chatCompletion,
  contentText,
  imageMimeFromUrl,
  nowSeconds,
  parseDataUrl,
  parseToolArguments,
  randomId,
  toolCallNames,
  Adjustments,
  adaptSampling,
  fitToolCallId,
} from '../shared/common.js';
import { SseParser } from '../shared/sse.js';
import {
  answerObject,
  malformedChunkError,
  tryParseJson as tryJson,
  upstreamError,
} from '../shared/upstream-error.js';
import type { ClientResponseStart, Translator, UpstreamHeaders, UpstreamRequest } from '../types.js';
import { geminiAuthHeaders } from './auth.js';
import { geminiModelUrl } from './endpoint.js';
import { geminiThinking } from './thinking.js';

// ---------------------------------------------------------------------------------------------
// Tool-call ids and thought signatures
//
// Gemini 3 gives every function call a unique `id` and wants it back on the call and on its
// functionResponse (that is how parallel calls of one function are paired); Gemini 1.x / 2.x have
// no ids (results pair by name and order) and reject the field. Gemini 3 also attaches an opaque
// `thoughtSignature` to function calls that must come back with the call on the next turn (else
// 400). TierFlow is stateless, so both ride in the OpenAI tool-call id, which every client echoes:
//   call_gid<hex of Gemini's id>[_ts_<signature as base64url>]    Gemini sent an id
//   call_<24 hex>[_ts_<signature as base64url>]                    Gemini sent none (2.x)
// Ids stay within [A-Za-z0-9_-]; a signature makes them long, so translators for providers with
// an id length limit (OpenAI: 40) shorten them consistently (common.ts fitToolCallId).

const ID_RE = /^call_(?:gid([0-9a-f]+)|[0-9a-f]{24})(?:_ts_([A-Za-z0-9_-]+))?$/;

export function toolCallIdFor(signature: string | undefined, geminiId?: string): string {
  const head = geminiId
    ? `call_gid${Buffer.from(geminiId, 'utf8').toString('hex')}`
    : `call_${Buffer.from(randomId('', 12), 'base64url').toString('hex').slice(0, 24).padEnd(24, '0')}`;
  if (!signature) return head;
  return `${head}_ts_${Buffer.from(signature, 'base64').toString('base64url')}`;
}

export function signatureFromToolCallId(id: string): string | undefined {
  const m = ID_RE.exec(id);
  return m?.[2] ? Buffer.from(m[2], 'base64url').toString('base64') : undefined;
}

/** The id Gemini gave the call, if the OpenAI id carries one. */
export function geminiIdFromToolCallId(id: string): string | undefined {
  const m = ID_RE.exec(id);
  return m?.[1] ? Buffer.from(m[1], 'hex').toString('utf8') : undefined;
}

/**
 * The id to send Gemini 3 for an OpenAI tool-call id: Gemini's own when the id carries it, else
 * the client's id (a call another provider made), shortened to the model's limit.
 */
function echoId(id: string, model: CompiledModel): string {
  return geminiIdFromToolCallId(id) ?? fitToolCallId(id, model.facts.toolCallIdMaxLength);
}

/** Gemini's documented placeholder for function calls whose signature is unknown (e.g. made by another model). */
export const SKIP_SIGNATURE = 'skip_thought_signature_validator';
const needsSignatures = (upstreamModel: string): boolean =>
  !/^(models\/)?gemini-(1|2)(\.|-)/.test(upstreamModel);

// ---------------------------------------------------------------------------------------------
// Request mapping

type Part = Record<string, unknown>;
interface Content {
  role: 'user' | 'model';
  parts: Part[];
}

const DEFAULT_IMAGE_MIME = 'image/jpeg';

function userParts(msg: ChatMessage): Part[] {
  const c = msg.content;
  if (typeof c === 'string') return c.length > 0 ? [{ text: c }] : [];
  if (!Array.isArray(c)) return [];
  const parts: Part[] = [];
  for (const p of c) {
    if (p.type === 'text' && typeof p.text === 'string') {
      if (p.text.length > 0) parts.push({ text: p.text });
    } else if (p.type === 'image_url') {
      const url = (p as { image_url?: { url?: unknown } }).image_url?.url;
      if (typeof url !== 'string') continue;
      const data = parseDataUrl(url);
      if (data) parts.push({ inlineData: { mimeType: data.mimeType, data: data.data } });
      else {
        // fileData needs a mimeType; for a URL without a known extension, image/jpeg (the most
        // common web image type; Gemini reads the bytes it fetches).
        parts.push({ fileData: { fileUri: url, mimeType: imageMimeFromUrl(url) ?? DEFAULT_IMAGE_MIME } });
      }
    }
  }
  return parts;
}

function functionResponse(msg: ChatMessage, names: Map<string, string>, model: CompiledModel): Part {
  const id = String(msg.tool_call_id ?? '');
  const name = names.get(id) ?? (typeof msg.name === 'string' ? msg.name : 'function');
  const text = contentText(msg.content);
  const parsed = tryJson(text);
  const response =
    typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? parsed
      : { result: parsed ?? text };
  const fr: Part = { name, response };
  if (model.facts.toolCallIdEcho && id !== '') fr.id = echoId(id, model);
  return { functionResponse: fr };
}

function signatureOf(tc: ToolCall): string | undefined {
  const extra = (tc as unknown as { extra_content?: { google?: { thought_signature?: unknown } } })
    .extra_content;
  const fromExtra = extra?.google?.thought_signature;
  return typeof fromExtra === 'string' ? fromExtra : signatureFromToolCallId(tc.id);
}

export function buildGeminiBody(
  req: ParsedRequest,
  model: CompiledModel,
  adjusted = new Adjustments(),
): Record<string, unknown> {
  const b = req.body;
  const names = toolCallNames(b.messages);
  const system: Part[] = [];
  const contents: Content[] = [];
  const signatures = needsSignatures(model.upstreamModel);
  const push = (role: 'user' | 'model', parts: Part[]) => {
    if (parts.length === 0) return;
    const last = contents[contents.length - 1];
    // Consecutive turns of one role are merged: parallel function responses must form one turn.
    if (last && last.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };
  for (const m of b.messages) {
    switch (m.role) {
      case 'system':
      case 'developer': {
        const t = contentText(m.content);
        if (t.length > 0) system.push({ text: t });
        break;
      }
      case 'user':
        push('user', userParts(m));
        break;
      case 'assistant': {
        const parts: Part[] = [];
        const t = contentText(m.content);
        if (t.length > 0) parts.push({ text: t });
        let first = true;
        const calls = m.tool_calls ?? [];
        const anySigned = calls.some((tc) => signatureOf(tc) !== undefined);
        for (const tc of calls) {
          const call: Part = { name: tc.function.name, args: parseToolArguments(tc.function.arguments) };
          if (model.facts.toolCallIdEcho && typeof tc.id === 'string') call.id = echoId(tc.id, model);
          const part: Part = { functionCall: call };
          const sig = signatureOf(tc);
          if (sig) part.thoughtSignature = sig;
          else if (signatures && first && !anySigned) part.thoughtSignature = SKIP_SIGNATURE;
          first = false;
          parts.push(part);
        }
        push('model', parts);
        break;
      }
      case 'tool':
      case 'function':
        push('user', [functionResponse(m, names, model)]);
        break;
    }
  }

  // Only system text was sent: Gemini needs at least one content, so the text becomes the user turn.
  if (contents.length === 0 && system.length > 0) contents.push({ role: 'user', parts: system.splice(0) });
  const body: Record<string, unknown> = { contents };
  if (system.length > 0) body.systemInstruction = { parts: system };

  const tools = (b.tools ?? []).filter((t) => t?.function?.name);
  if (tools.length > 0) {
    body.tools = [
      {
        functionDeclarations: tools.map((t) => ({
          name: t.function.name,
          ...(t.function.description ? { description: t.function.description } : {}),
          ...(t.function.parameters ? { parametersJsonSchema: t.function.parameters } : {}),
        })),
      },
    ];
    const choice = b.tool_choice;
    let config: Record<string, unknown> | undefined;
    if (choice === 'none') config = { mode: 'NONE' };
    else if (choice === 'required') config = { mode: 'ANY' };
    else if (choice === 'auto') config = { mode: 'AUTO' };
    else if (typeof choice === 'object' && choice?.function?.name) {
      config = { mode: 'ANY', allowedFunctionNames: [choice.function.name] };
    }
    if (config) body.toolConfig = { functionCallingConfig: config };
  }

  const gen: Record<string, unknown> = {};
  if (req.maxOutputTokens !== undefined)
    gen.maxOutputTokens = Math.min(req.maxOutputTokens, model.maxOutputTokens);
  const sampling = adaptSampling(b, model.facts, adjusted);
  if (sampling.temperature !== undefined) gen.temperature = sampling.temperature;
  if (sampling.topP !== undefined) gen.topP = sampling.topP;
  if (sampling.topK !== undefined) gen.topK = sampling.topK;
  if (b.stop) gen.stopSequences = Array.isArray(b.stop) ? b.stop : [b.stop];
  if (typeof b.seed === 'number') gen.seed = b.seed;
  if (sampling.presencePenalty !== undefined) gen.presencePenalty = sampling.presencePenalty;
  if (sampling.frequencyPenalty !== undefined) gen.frequencyPenalty = sampling.frequencyPenalty;
  const rf = b.response_format;
  if (rf?.type === 'json_object') gen.responseMimeType = 'application/json';
  else if (rf?.type === 'json_schema') {
    gen.responseMimeType = 'application/json';
    const schema = (rf.json_schema as { schema?: unknown } | undefined)?.schema;
    if (schema) gen.responseJsonSchema = schema;
  }
  const thinking = geminiThinking(b.reasoning_effort, model.upstreamModel);
  if (thinking) gen.thinkingConfig = thinking;
  else if (thinking === null) adjusted.add('reasoning_effort');
  if (Object.keys(gen).length > 0) body.generationConfig = gen;
  return body;
}

// ---------------------------------------------------------------------------------------------
// Responses

interface GeminiPart {
  text?: string;
  thought?: boolean;
  thoughtSignature?: string;
  functionCall?: { name?: string; args?: unknown; id?: string };
}
interface GeminiResponse {
  candidates?: { content?: { parts?: GeminiPart[] }; finishReason?: string; finishMessage?: string }[];
  promptFeedback?: { blockReason?: string; blockReasonMessage?: string };
  usageMetadata?: {
    promptTokenCount?: number;
    candidatesTokenCount?: number;
    cachedContentTokenCount?: number;
    thoughtsTokenCount?: number;
    toolUsePromptTokenCount?: number;
  };
  error?: GeminiErrorBody['error'];
}
interface GeminiErrorBody {
  error?: { code?: number; message?: string; status?: string; details?: { reason?: string }[] };
}

const FILTERED = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
  'IMAGE_PROHIBITED_CONTENT',
  'IMAGE_RECITATION',
  'MODEL_ARMOR',
  'LANGUAGE',
]);

export function geminiFinishReason(reason: string | undefined, hasToolCalls: boolean): FinishReason {
  if (reason === 'MAX_TOKENS') return 'length';
  if (reason && FILTERED.has(reason)) return 'content_filter';
  return hasToolCalls ? 'tool_calls' : 'stop';
}

/**
 * A finish reason that says the model failed to answer (MALFORMED_FUNCTION_CALL,
 * UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS, OTHER and reasons not known yet): with nothing
 * produced, this is the provider's failure (502, so the next candidate may serve), never an
 * empty "stop".
 */
export function isFailedFinish(reason: string | undefined): boolean {
  return reason !== undefined && reason !== 'STOP' && reason !== 'MAX_TOKENS' && !FILTERED.has(reason);
}

const failedFinishError = (
  model: CompiledModel,
  reason: string,
  message: string | undefined,
  midStream = false,
) =>
  upstreamError(model, 502, {
    message: `the model produced no answer (finishReason ${reason}${message ? `: ${message}` : ''})`,
    providerType: reason,
    providerCode: reason.toLowerCase(),
    midStream,
  });

function toUsage(u: GeminiResponse['usageMetadata']): Usage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  // promptTokenCount already includes cached tokens; thinking tokens are billed as output.
  return {
    promptTokens: (u.promptTokenCount ?? 0) + (u.toolUsePromptTokenCount ?? 0),
    completionTokens: (u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0),
    cachedPromptTokens: u.cachedContentTokenCount ?? 0,
    cacheWriteTokens: 0,
  };
}

const blockedError = (fb: NonNullable<GeminiResponse['promptFeedback']>): ApiError =>
  new ApiError(
    400,
    `gemini: the prompt was blocked by the provider's safety filters (${fb.blockReason}${fb.blockReasonMessage ? `: ${fb.blockReasonMessage}` : ''}).`,
    'invalid_request_error',
    'content_filter',
  );

const STATUS_BY_GRPC: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  OUT_OF_RANGE: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  RESOURCE_EXHAUSTED: 429,
  CANCELLED: 499,
  INTERNAL: 500,
  UNKNOWN: 500,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
};

function geminiError(
  model: CompiledModel,
  httpStatus: number,
  err: GeminiErrorBody['error'] | undefined,
  fallback: string,
  midStream = false,
): ApiError {
  const grpc = err?.status;
  let status = (grpc && STATUS_BY_GRPC[grpc]) || err?.code || httpStatus;
  // An invalid API key comes back as 400 INVALID_ARGUMENT with reason API_KEY_INVALID.
  if (err?.details?.some((d) => d?.reason === 'API_KEY_INVALID')) status = 401;
  if (status === 499) status = 502;
  return upstreamError(model, status, {
    message: err?.message ?? fallback,
    providerType: grpc ?? null,
    providerCode: status === 429 ? 'rate_limit_exceeded' : null,
    midStream,
  });
}

// ---------------------------------------------------------------------------------------------
// The translator

class GeminiTranslator implements Translator {
  usage: Usage | undefined;
  streamError: ApiError | undefined;
  private readonly adjustments = new Adjustments();
  private readonly writer: ChunkWriter;
  private readonly sse: SseParser;
  private out = '';
  private sawFinish = false;
  private blocked = false;

  private readonly request: ParsedRequest;
  readonly model: CompiledModel;

  constructor(request: ParsedRequest, model: CompiledModel) {
    this.request = request;
    this.model = model;
    this.writer = new ChunkWriter(randomId('chatcmpl-'), model.name, nowSeconds(), request.clientWantsUsage);
    this.sse = new SseParser((data) => {
      this.out += this.onEvent(data);
    });
  }

  get sawFirstToken(): boolean {
    return this.writer.sawFirstToken;
  }

  get adjusted(): readonly string[] {
    return this.adjustments.list;
  }

  buildRequest(): UpstreamRequest {
    const p = this.model.provider;
    const url = geminiModelUrl(
      this.model,
      this.request.stream ? 'streamGenerateContent?alt=sse' : 'generateContent',
    );
    const headers: Record<string, string> = {
      ...p.headers,
      'content-type': 'application/json',
      ...geminiAuthHeaders(p),
    };
    return {
      method: 'POST',
      url,
      headers,
      body: Buffer.from(JSON.stringify(buildGeminiBody(this.request, this.model, this.adjustments))),
    };
  }

  onResponseHeaders(_status: number, _headers: UpstreamHeaders): ClientResponseStart {
    const start = clientResponseStart(this.request.stream);
    this.adjustments.headers(start.headers);
    return start;
  }

  /** Non-streaming body. A prompt blocked by safety filters throws a 400 ApiError (code content_filter). */
  onBody(body: Buffer): Buffer {
    const json = answerObject(this.model, body) as GeminiResponse;
    if (json.error) throw geminiError(this.model, 502, json.error, 'error');
    this.usage = toUsage(json.usageMetadata);
    const cand = json.candidates?.[0];
    if (!cand && json.promptFeedback?.blockReason) throw blockedError(json.promptFeedback);
    let text = '';
    const toolCalls: ToolCall[] = [];
    for (const part of cand?.content?.parts ?? []) {
      if (part.thought) continue;
      if (typeof part.text === 'string') text += part.text;
      if (part.functionCall?.name) {
        toolCalls.push({
          id: toolCallIdFor(part.thoughtSignature, part.functionCall.id),
          type: 'function',
          function: { name: part.functionCall.name, arguments: JSON.stringify(part.functionCall.args ?? {}) },
        });
      }
    }
    if (text.length === 0 && toolCalls.length === 0 && isFailedFinish(cand?.finishReason))
      throw failedFinishError(this.model, cand!.finishReason!, cand!.finishMessage);
    if (text.length > 0 || toolCalls.length > 0) this.writer.sawFirstToken = true;
    return chatCompletion({
      id: this.writer.id,
      model: this.writer.model,
      created: this.writer.created,
      content: text.length > 0 || toolCalls.length === 0 ? text : null,
      toolCalls,
      finishReason: geminiFinishReason(cand?.finishReason, toolCalls.length > 0),
      usage: this.usage,
    });
  }

  onStreamChunk(chunk: Buffer, end: boolean): Buffer {
    this.sse.push(chunk);
    if (end) this.sse.end();
    let out = this.out;
    this.out = '';
    if (end) {
      if (!this.sawFinish && !this.streamError && !this.blocked) {
        this.streamError = upstreamError(this.model, 502, {
          message: 'stream ended without a finish reason',
          providerCode: 'stream_truncated',
          midStream: true,
        });
        out += this.writer.error(this.streamError);
      }
      out += this.writer.end(this.usage);
    }
    return Buffer.from(out);
  }

  private onEvent(data: string): string {
    if (this.blocked || this.streamError || data.length === 0) return '';
    const json = tryJson(data) as GeminiResponse | GeminiResponse[] | undefined;
    const ev = Array.isArray(json) ? json[0] : json;
    if (!ev || typeof ev !== 'object') {
      this.streamError = malformedChunkError(this.model);
      return this.writer.error(this.streamError);
    }
    if (ev.error) {
      this.streamError = geminiError(this.model, 502, ev.error, 'stream error', true);
      return this.writer.error(this.streamError);
    }
    if (ev.usageMetadata) this.usage = toUsage(ev.usageMetadata);
    const cand = ev.candidates?.[0];
    if (!cand) {
      if (ev.promptFeedback?.blockReason) {
        // Headers are gone already: report the block the way the openai SDK reads a stream error.
        this.blocked = true;
        return this.writer.error(blockedError(ev.promptFeedback));
      }
      return '';
    }
    let out = '';
    for (const part of cand.content?.parts ?? []) {
      if (part.thought) continue;
      if (typeof part.text === 'string') out += this.writer.text(part.text);
      if (part.functionCall?.name) {
        out += this.writer.toolCallStart(
          toolCallIdFor(part.thoughtSignature, part.functionCall.id),
          part.functionCall.name,
          JSON.stringify(part.functionCall.args ?? {}),
        )[1];
      }
    }
    if (cand.finishReason) {
      this.sawFinish = true;
      if (!this.writer.sawFirstToken && isFailedFinish(cand.finishReason)) {
        // Nothing reached the client yet: an error, so the data plane can still fail over.
        this.streamError = failedFinishError(this.model, cand.finishReason, cand.finishMessage, true);
        return out + this.writer.error(this.streamError);
      }
      out += this.writer.finish(geminiFinishReason(cand.finishReason, this.writer.toolCallCount > 0));
    }
    return out;
  }

  onError(status: number, _headers: UpstreamHeaders, body: Buffer): ApiError {
    const json = tryJson(body) as GeminiErrorBody | GeminiErrorBody[] | undefined;
    const err = (Array.isArray(json) ? json[0] : json)?.error;
    const fallback = body.length > 0 ? body.toString('utf8').slice(0, 500) : `HTTP ${status}`;
    return geminiError(this.model, status, err, fallback);
  }
}

export function createGeminiTranslator(request: ParsedRequest, model: CompiledModel): Translator {
  return new GeminiTranslator(request, model);
}
