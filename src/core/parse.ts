// parse: bytes of an OpenAI chat-completions request -> a validated ParsedRequest, or an ApiError.
import { ApiError, badRequest } from './errors.js';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from './json-depth.js';
import type { EmbeddingsRequest } from './embeddings/request.js';
import type { ChatCompletionRequest, ChatMessage } from './openai.js';
import type { ResponsesRequest } from './responses/request.js';

export interface RequestNeeds {
  tools: boolean;
  vision: boolean;
  jsonSchema: boolean;
}

export interface ParsedRequest {
  body: ChatCompletionRequest;
  model: string;
  stream: boolean;
  /** The client asked for a usage chunk (stream_options.include_usage). */
  clientWantsUsage: boolean;
  needs: RequestNeeds;
  /** Conservative estimate of prompt tokens (used against context windows). */
  promptTokens: number;
  /** Output tokens the client asked for at most, if it said. */
  maxOutputTokens: number | undefined;
  /**
   * The body's bytes as the client sent them: a translator that changes only `model` rewrites
   * these (src/core/raw-json.ts) instead of serializing `body` again. Dropped with the messages.
   */
  raw?: Buffer;
  /** Set for a Responses API request (POST /v1/responses); `body` is then its chat form. */
  responses?: ResponsesRequest;
  /** Set for an embeddings request (POST /v1/embeddings); `body` then has no messages. */
  embeddings?: EmbeddingsRequest;
}

export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

export function parseChatRequest(raw: Buffer | string, bodyLimit = DEFAULT_BODY_LIMIT): ParsedRequest {
  const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
  if (size > bodyLimit) {
    throw new ApiError(
      413,
      `Request body is ${size} bytes; the limit is ${bodyLimit}.`,
      'invalid_request_error',
      'request_too_large',
    );
  }
  if (size === 0) throw badRequest('Request body is empty; expected a JSON chat completion request.');
  const bytes = typeof raw === 'string' ? Buffer.from(raw) : raw;
  if (exceedsJsonDepth(bytes)) throw tooDeep();
  let body: unknown;
  try {
    body = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (err) {
    throw badRequest(`Request body is not valid JSON: ${(err as Error).message}`, null, 'invalid_json');
  }
  const parsed = validateChatRequest(body);
  parsed.raw = bytes;
  return parsed;
}

/** Stands in for the messages of a request once they are set aside or released. */
const NO_MESSAGES: ChatMessage[] = [];

/**
 * The request's attempt is built and on its way: its messages, the largest objects of a request,
 * are read again only if a failover builds another attempt, and a provider takes seconds to
 * answer, long enough for them to be promoted to the old generation of the heap. They go while
 * `raw` holds the same text; messagesBack parses them from it again. A request that has no `raw`
 * (its chat form was built, as for the Responses API) keeps them.
 */
export function setAsideMessages(request: ParsedRequest): void {
  if (request.raw === undefined || request.responses !== undefined || request.embeddings !== undefined)
    return;
  request.body.messages = NO_MESSAGES;
}

/** The messages setAsideMessages set aside, parsed again from the request's bytes (a failover). */
export function messagesBack(request: ParsedRequest): void {
  const raw = request.raw;
  if (request.body.messages !== NO_MESSAGES || raw === undefined) return;
  request.body.messages = (JSON.parse(raw.toString('utf8')) as ChatCompletionRequest).messages;
}

/**
 * Nothing can fail over any more (a streamed response has reached the client): the messages and
 * the raw bytes kept for rebuilding the request for another candidate go for good.
 */
export function releaseRequest(request: ParsedRequest): void {
  request.body.messages = NO_MESSAGES;
  request.raw = undefined;
}

/** The 400 for a body nested deeper than MAX_JSON_DEPTH. */
export function tooDeep(): ApiError {
  return badRequest(
    `Request body nests objects or arrays more than ${MAX_JSON_DEPTH} levels deep.`,
    null,
    'nesting_too_deep',
  );
}

export function validateChatRequest(body: unknown): ParsedRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('Request body must be a JSON object.', null, 'invalid_type');
  }
  const req = body as Record<string, unknown>;
  if (req.model === undefined)
    throw badRequest("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
  if (typeof req.model !== 'string' || req.model.length === 0) {
    throw badRequest("Invalid type for 'model': expected a non-empty string.", 'model', 'invalid_type');
  }
  if (req.messages === undefined) {
    throw badRequest("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');
  }
  if (!Array.isArray(req.messages)) {
    throw badRequest("Invalid type for 'messages': expected an array.", 'messages', 'invalid_type');
  }
  if (req.messages.length === 0) {
    throw badRequest("'messages' must contain at least one message.", 'messages', 'empty_array');
  }
  const needs: RequestNeeds = { tools: false, vision: false, jsonSchema: false };
  let chars = 0;
  const messages = req.messages;
  for (let i = 0; i < messages.length; i++) chars += checkMessage(messages[i], i, needs);
  if (req.stream !== undefined && req.stream !== null && typeof req.stream !== 'boolean') {
    throw badRequest("Invalid type for 'stream': expected a boolean.", 'stream', 'invalid_type');
  }
  if (req.tools !== undefined && req.tools !== null) {
    if (!Array.isArray(req.tools))
      throw badRequest("Invalid type for 'tools': expected an array.", 'tools', 'invalid_type');
    req.tools.forEach((t, i) => {
      const fn = (t as { function?: { name?: unknown } } | null)?.function;
      if (typeof t !== 'object' || t === null || typeof fn?.name !== 'string') {
        throw badRequest(
          `Invalid value for 'tools[${i}]': expected {"type":"function","function":{"name":...}}.`,
          `tools[${i}]`,
          'invalid_value',
        );
      }
    });
    if (req.tools.length > 0) needs.tools = true;
    chars += JSON.stringify(req.tools).length;
  }
  const rf = req.response_format as { type?: unknown } | undefined | null;
  if (rf !== undefined && rf !== null) {
    if (typeof rf !== 'object' || typeof rf.type !== 'string') {
      throw badRequest(
        "Invalid value for 'response_format': expected an object with a 'type'.",
        'response_format',
        'invalid_value',
      );
    }
    if (rf.type === 'json_schema') needs.jsonSchema = true;
  }
  // One call per field, not a loop over a list: this runs per request.
  checkPositiveInteger(req, 'max_tokens');
  checkPositiveInteger(req, 'max_completion_tokens');
  checkNumber(req, 'temperature');
  checkNumber(req, 'top_p');
  const so = req.stream_options as { include_usage?: unknown } | undefined | null;
  const maxOut = (req.max_completion_tokens ?? req.max_tokens) as number | undefined | null;
  return {
    body: req as ChatCompletionRequest,
    model: req.model,
    stream: req.stream === true,
    clientWantsUsage: req.stream === true && so?.include_usage === true,
    needs,
    // ~4 characters per token for English; 3 keeps the estimate on the safe side of a context window.
    promptTokens: Math.ceil(chars / 3),
    maxOutputTokens: maxOut ?? undefined,
  };
}

function checkPositiveInteger(req: Record<string, unknown>, field: string): void {
  const v = req[field];
  if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) {
    throw badRequest(`Invalid value for '${field}': expected a positive integer.`, field, 'invalid_value');
  }
}

function checkNumber(req: Record<string, unknown>, field: string): void {
  const v = req[field];
  if (v !== undefined && v !== null && typeof v !== 'number') {
    throw badRequest(`Invalid type for '${field}': expected a number.`, field, 'invalid_type');
  }
}

/** `messages[i]`, for an error's text: built only when there is an error (the walk is per request). */
function messageParam(i: number): string {
  return `messages[${i}]`;
}

function checkMessage(m: unknown, i: number, needs: RequestNeeds): number {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) {
    const param = messageParam(i);
    throw badRequest(`Invalid type for '${param}': expected an object.`, param, 'invalid_type');
  }
  const msg = m as ChatMessage;
  if (typeof msg.role !== 'string' || !ROLES.has(msg.role)) {
    const param = messageParam(i);
    throw badRequest(
      `Invalid value for '${param}.role': expected one of system, developer, user, assistant, tool.`,
      `${param}.role`,
      'invalid_value',
    );
  }
  const c = msg.content;
  let chars = 0;
  if (typeof c === 'string') chars = c.length;
  else if (Array.isArray(c)) {
    for (let j = 0; j < c.length; j++) {
      const part = c[j]!;
      if (
        typeof part !== 'object' ||
        part === null ||
        typeof (part as { type?: unknown }).type !== 'string'
      ) {
        const param = messageParam(i);
        throw badRequest(
          `Invalid value for '${param}.content[${j}]': expected a content part object.`,
          `${param}.content[${j}]`,
          'invalid_value',
        );
      }
      if (part.type === 'text') chars += typeof part.text === 'string' ? part.text.length : 0;
      else if (part.type === 'image_url') {
        needs.vision = true;
        chars += 3000; // an image costs roughly 1,000 tokens at common resolutions
      }
    }
  } else if (c !== undefined && c !== null) {
    const param = messageParam(i);
    throw badRequest(
      `Invalid type for '${param}.content': expected a string or an array of content parts.`,
      `${param}.content`,
      'invalid_type',
    );
  } else if (msg.role !== 'assistant') {
    const param = messageParam(i);
    throw badRequest(
      `Missing required parameter: '${param}.content'.`,
      `${param}.content`,
      'missing_required_parameter',
    );
  }
  if (msg.role === 'tool' && typeof msg.tool_call_id !== 'string') {
    const param = messageParam(i);
    throw badRequest(
      `Missing required parameter: '${param}.tool_call_id'.`,
      `${param}.tool_call_id`,
      'missing_required_parameter',
    );
  }
  if (Array.isArray(msg.tool_calls)) {
    chars += JSON.stringify(msg.tool_calls).length;
    needs.tools = true;
  }
  return chars + 4;
}
