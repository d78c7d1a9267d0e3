// A Responses API request (POST /v1/responses) -> the chat-completions request the router and the
// chat translators take, so classification, capability checks, failover, stickiness, limits and
// cost apply unchanged. Pure.
//
//   instructions                      -> a leading system message
//   input (string)                    -> one user message
//   input items: message (easy or typed; input_text / input_image / input_file with file_data /
//                output_text / refusal parts)
//                                     -> user / assistant / system / developer messages
//                function_call        -> assistant tool_calls (consecutive calls share one message)
//                function_call_output -> tool message
//                reasoning            -> dropped (provider-specific state; chat has no slot for it)
//   tools (type function)             -> chat function tools; tool_choice likewise
//   text.format                       -> response_format (text, json_object, json_schema)
//   reasoning.effort                  -> reasoning_effort
//   max_output_tokens                 -> max_tokens (the OpenAI translator renames it where needed)
//   temperature, top_p, parallel_tool_calls, user, stream -> the same fields
//
// previous_response_id naming a conversation stored in this process (store.ts) continues it in
// chat form: its messages come after the new instructions, before the new input.
// Anything else that needs server-side state or OpenAI's own tools (previous_response_id,
// conversation, prompt, background, item_reference, built-in tools, input files) has no chat
// equivalent: it is listed in `nativeOnly`, and only providers that speak the Responses API
// natively may serve such a request (the others refuse it with a 400 naming the field).
import { badRequest } from '../errors.js';
import { readJsonObjectBody } from '../json-body.js';
import type { ChatCompletionRequest, ChatMessage, ContentPart, FunctionTool, ToolCall } from '../openai.js';
import { DEFAULT_BODY_LIMIT } from '../parse.js';

type Json = Record<string, unknown>;

/** What a Responses request carries besides its chat form. */
export interface ResponsesRequest {
  /** The client's body as sent (for providers that speak the Responses API natively). */
  body: Json;
  stream: boolean;
  /** Request fields (or item types) only a native Responses provider can serve, e.g. previous_response_id. */
  nativeOnly: string[];
  /** previous_response_id named a conversation stored in this process (store.ts): chat form only. */
  continuesLocal: boolean;
  /** The conversation in chat form without the instructions (what a stored response keeps). */
  conversation: ChatMessage[];
  /** Set by the data plane when the answer may be stored: called with the response id and answer. */
  remember?: (id: string, answer: ChatMessage) => void;
}

/** A stored conversation by response id (store.ts), for previous_response_id. */
export type HistoryLookup = (id: string) => ChatMessage[] | undefined;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Top-level fields that need server-side state or OpenAI-hosted features. */
const NATIVE_FIELDS = ['previous_response_id', 'conversation', 'prompt', 'background', 'context_management'];
const MESSAGE_ROLES = new Set(['user', 'assistant', 'system', 'developer']);

/** Bytes of a Responses request -> the Responses facts and the equivalent chat request. */
export function parseResponsesRequest(
  raw: Buffer,
  bodyLimit = DEFAULT_BODY_LIMIT,
  history?: HistoryLookup,
): { responses: ResponsesRequest; chat: ChatCompletionRequest } {
  const body = readJsonObjectBody(raw, bodyLimit, 'a JSON Responses API request');
  return responsesToChat(body, history);
}

export function responsesToChat(
  body: Json,
  history?: HistoryLookup,
): { responses: ResponsesRequest; chat: ChatCompletionRequest } {
  if (body.model === undefined)
    throw badRequest("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
  if (typeof body.model !== 'string' || body.model.length === 0)
    throw badRequest("Invalid type for 'model': expected a non-empty string.", 'model', 'invalid_type');
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean')
    throw badRequest("Invalid type for 'stream': expected a boolean.", 'stream', 'invalid_type');
  const nativeOnly = new Set<string>();
  for (const f of NATIVE_FIELDS) {
    const v = body[f];
    if (v !== undefined && v !== null && v !== false) nativeOnly.add(f);
  }
  const messages: ChatMessage[] = [];
  if (body.instructions !== undefined && body.instructions !== null) {
    if (typeof body.instructions !== 'string')
      throw badRequest("Invalid type for 'instructions': expected a string.", 'instructions', 'invalid_type');
    if (body.instructions.length > 0) messages.push({ role: 'system', content: body.instructions });
  }
  const instructions = messages.length;
  // A conversation stored here continues in chat form, on any provider (copies: items below may
  // extend the last message).
  const earlier =
    typeof body.previous_response_id === 'string' ? history?.(body.previous_response_id) : undefined;
  if (earlier) {
    nativeOnly.delete('previous_response_id');
    for (const m of earlier) messages.push({ ...m });
  }
  const input = body.input;
  if (typeof input === 'string') messages.push({ role: 'user', content: input });
  else if (Array.isArray(input)) input.forEach((item, i) => addItem(messages, item, i, nativeOnly));
  else if (input !== undefined && input !== null)
    throw badRequest(
      "Invalid type for 'input': expected a string or an array of input items.",
      'input',
      'invalid_type',
    );
  if (messages.length === 0 && !nativeOnly.has('previous_response_id') && !nativeOnly.has('prompt'))
    throw badRequest("Missing required parameter: 'input'.", 'input', 'missing_required_parameter');
  // A request that only continues a stored response still needs a message to route and classify.
  if (messages.length === 0) messages.push({ role: 'user', content: '' });

  const chat: ChatCompletionRequest = { model: body.model, messages };
  const stream = body.stream === true;
  if (stream) chat.stream = true;
  const tools = chatTools(body.tools, nativeOnly);
  if (tools.length > 0) chat.tools = tools;
  const choice = chatToolChoice(body.tool_choice, nativeOnly);
  if (choice !== undefined && tools.length > 0) chat.tool_choice = choice;
  if (typeof body.parallel_tool_calls === 'boolean' && tools.length > 0)
    chat.parallel_tool_calls = body.parallel_tool_calls;
  const format = responseFormat(body.text);
  if (format) chat.response_format = format;
  const effort = isObj(body.reasoning) ? body.reasoning.effort : undefined;
  if (typeof effort === 'string') chat.reasoning_effort = effort;
  const max = body.max_output_tokens;
  if (max !== undefined && max !== null) {
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1)
      throw badRequest(
        "Invalid value for 'max_output_tokens': expected a positive integer.",
        'max_output_tokens',
        'invalid_value',
      );
    chat.max_tokens = max;
  }
  for (const f of ['temperature', 'top_p'] as const) {
    const v = body[f];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number')
      throw badRequest(`Invalid type for '${f}': expected a number.`, f, 'invalid_type');
    chat[f] = v;
  }
  const user = typeof body.safety_identifier === 'string' ? body.safety_identifier : body.user;
  if (typeof user === 'string') chat.user = user;
  return {
    responses: {
      body,
      stream,
      nativeOnly: [...nativeOnly],
      continuesLocal: earlier !== undefined,
      conversation: messages.slice(instructions),
    },
    chat,
  };
}

/** One input item appended to `messages` (consecutive function calls join one assistant message). */
function addItem(messages: ChatMessage[], item: unknown, i: number, nativeOnly: Set<string>): void {
  const param = `input[${i}]`;
  if (!isObj(item))
    throw badRequest(`Invalid type for '${param}': expected an object.`, param, 'invalid_type');
  const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
  switch (type) {
    case 'message': {
      const role = item.role;
      if (typeof role !== 'string' || !MESSAGE_ROLES.has(role))
        throw badRequest(
          `Invalid value for '${param}.role': expected one of user, assistant, system, developer.`,
          `${param}.role`,
          'invalid_value',
        );
      messages.push({
        role: role as ChatMessage['role'],
        content: messageContent(item.content, role, param, nativeOnly),
      });
      return;
    }
    case 'function_call': {
      if (typeof item.call_id !== 'string' || typeof item.name !== 'string')
        throw badRequest(
          `Invalid value for '${param}': a function_call needs 'call_id' and 'name'.`,
          param,
          'invalid_value',
        );
      const call: ToolCall = {
        id: item.call_id,
        type: 'function',
        function: { name: item.name, arguments: typeof item.arguments === 'string' ? item.arguments : '{}' },
      };
      const last = messages[messages.length - 1];
      if (last?.role === 'assistant' && !last.tool_call_id) {
        last.tool_calls = [...(last.tool_calls ?? []), call];
      } else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
      return;
    }
    case 'function_call_output': {
      if (typeof item.call_id !== 'string')
        throw badRequest(
          `Missing required parameter: '${param}.call_id'.`,
          `${param}.call_id`,
          'missing_required_parameter',
        );
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: outputText(item.output) });
      return;
    }
    case 'reasoning':
      return;
    default:
      if (typeof type !== 'string')
        throw badRequest(
          `Missing required parameter: '${param}.type'.`,
          `${param}.type`,
          'missing_required_parameter',
        );
      // item_reference, built-in tool calls and their outputs: only the provider that made them knows them.
      nativeOnly.add(`input item '${type}'`);
  }
}

function messageContent(
  content: unknown,
  role: string,
  param: string,
  nativeOnly: Set<string>,
): string | ContentPart[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content))
    throw badRequest(
      `Invalid type for '${param}.content': expected a string or an array of content parts.`,
      `${param}.content`,
      'invalid_type',
    );
  const parts: ContentPart[] = [];
  content.forEach((p, j) => {
    if (!isObj(p) || typeof p.type !== 'string')
      throw badRequest(
        `Invalid value for '${param}.content[${j}]': expected a content part object.`,
        `${param}.content[${j}]`,
        'invalid_value',
      );
    switch (p.type) {
      case 'input_text':
      case 'output_text':
        parts.push({ type: 'text', text: typeof p.text === 'string' ? p.text : '' });
        return;
      case 'refusal':
        parts.push({ type: 'text', text: typeof p.refusal === 'string' ? p.refusal : '' });
        return;
      case 'input_image':
        if (typeof p.image_url === 'string') {
          const detail = p.detail === 'low' || p.detail === 'high' ? p.detail : 'auto';
          parts.push({ type: 'image_url', image_url: { url: p.image_url, detail } });
        } else nativeOnly.add('input_image.file_id');
        return;
      case 'input_file':
        // Inline files (data URLs) have a chat form; stored ones (file_id, file_url) do not.
        if (typeof p.file_data === 'string') {
          const file: Json = { file_data: p.file_data };
          if (typeof p.filename === 'string') file.filename = p.filename;
          parts.push({ type: 'file', file });
        } else nativeOnly.add('input_file.file_id');
        return;
      default:
        nativeOnly.add(`content part '${p.type}'`);
    }
  });
  // Assistant turns as plain text: every chat provider takes that.
  if (role === 'assistant' || parts.every((p) => p.type === 'text'))
    return parts.map((p) => (p as { text: string }).text).join('');
  return parts;
}

/** A function_call_output's output: a string, or content parts of which the text is kept. */
function outputText(output: unknown): string {
  if (typeof output === 'string') return output;
  if (Array.isArray(output))
    return output
      .map((p) => (isObj(p) && typeof p.text === 'string' ? p.text : ''))
      .filter((t) => t.length > 0)
      .join('\n');
  return output === undefined || output === null ? '' : JSON.stringify(output);
}

function chatTools(tools: unknown, nativeOnly: Set<string>): FunctionTool[] {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools))
    throw badRequest("Invalid type for 'tools': expected an array.", 'tools', 'invalid_type');
  const out: FunctionTool[] = [];
  tools.forEach((t, i) => {
    if (!isObj(t) || typeof t.type !== 'string')
      throw badRequest(
        `Invalid value for 'tools[${i}]': expected a tool object.`,
        `tools[${i}]`,
        'invalid_value',
      );
    if (t.type !== 'function') {
      nativeOnly.add(`tool '${t.type}'`);
      return;
    }
    if (typeof t.name !== 'string')
      throw badRequest(
        `Missing required parameter: 'tools[${i}].name'.`,
        `tools[${i}].name`,
        'missing_required_parameter',
      );
    const fn: FunctionTool['function'] = { name: t.name };
    if (typeof t.description === 'string') fn.description = t.description;
    if (isObj(t.parameters)) fn.parameters = t.parameters;
    if (typeof t.strict === 'boolean') fn.strict = t.strict;
    out.push({ type: 'function', function: fn });
  });
  return out;
}

function chatToolChoice(choice: unknown, nativeOnly: Set<string>): ChatCompletionRequest['tool_choice'] {
  if (choice === undefined || choice === null) return undefined;
  if (choice === 'none' || choice === 'auto' || choice === 'required') return choice;
  if (isObj(choice) && choice.type === 'function' && typeof choice.name === 'string')
    return { type: 'function', function: { name: choice.name } };
  nativeOnly.add('tool_choice');
  return undefined;
}

function responseFormat(text: unknown): ChatCompletionRequest['response_format'] {
  const format = isObj(text) ? text.format : undefined;
  if (!isObj(format)) return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.type === 'json_schema') {
    if (typeof format.name !== 'string' || !isObj(format.schema))
      throw badRequest(
        "Invalid value for 'text.format': json_schema needs 'name' and 'schema'.",
        'text.format',
        'invalid_value',
      );
    const schema: Json = { name: format.name, schema: format.schema };
    if (typeof format.description === 'string') schema.description = format.description;
    if (typeof format.strict === 'boolean') schema.strict = format.strict;
    return { type: 'json_schema', json_schema: schema };
  }
  return undefined;
}
