// A chat completion (what the chat translators produce) -> a Responses API `response` object. Pure.
//
//   message.content          -> a `message` output item with one output_text part
//   message.refusal          -> a refusal part of that message
//   message.tool_calls       -> one `function_call` output item per call (call_id = the call's id)
//   finish_reason            -> status: length -> incomplete (max_output_tokens),
//                               content_filter -> incomplete (content_filter), else completed
//   usage                    -> input_tokens / output_tokens / total_tokens with their details
// The request's own settings (instructions, tools, tool_choice, text, reasoning...) are echoed
// back as OpenAI does. Nothing is stored: `store` is false and the id cannot be continued with
// previous_response_id except on a provider that speaks the Responses API itself.
import { randomBytes } from 'node:crypto';
import type { ChatMessage, ToolCall, Usage } from '../openai.js';

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A Responses-style id: prefix + 48 hex digits, like OpenAI's. */
export function newId(prefix: 'resp' | 'msg' | 'fc'): string {
  return `${prefix}_${randomBytes(24).toString('hex')}`;
}

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete' | 'failed';

/** The response object's fields that do not depend on the answer, echoed from the request. */
export function responseShell(
  request: Json,
  id: string,
  createdAt: number,
  model: string,
  stored = false,
): Json {
  const text = isObj(request.text) ? request.text : {};
  return {
    id,
    object: 'response',
    created_at: createdAt,
    status: 'in_progress',
    background: false,
    error: null,
    incomplete_details: null,
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    model,
    output: [],
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    previous_response_id:
      typeof request.previous_response_id === 'string' ? request.previous_response_id : null,
    reasoning: isObj(request.reasoning) ? request.reasoning : { effort: null, summary: null },
    store: stored,
    temperature: request.temperature ?? null,
    text: { ...text, format: isObj(text.format) ? text.format : { type: 'text' } },
    tool_choice: request.tool_choice ?? 'auto',
    tools: Array.isArray(request.tools) ? request.tools : [],
    top_p: request.top_p ?? null,
    truncation: request.truncation ?? 'disabled',
    usage: null,
    user: request.user ?? null,
    metadata: isObj(request.metadata) ? request.metadata : {},
  };
}

/** Usage in the Responses API's names. */
export function responsesUsage(u: Usage): Json {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedPromptTokens },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

/** finish_reason -> the response's status and incomplete_details. */
export function statusOf(finish: unknown): { status: ResponseStatus; incomplete: Json | null } {
  if (finish === 'length') return { status: 'incomplete', incomplete: { reason: 'max_output_tokens' } };
  if (finish === 'content_filter') return { status: 'incomplete', incomplete: { reason: 'content_filter' } };
  return { status: 'completed', incomplete: null };
}

export function messageItem(id: string, text: string, refusal: string | undefined, status: string): Json {
  const content: Json[] = [];
  if (text.length > 0 || refusal === undefined) content.push(outputText(text));
  if (refusal !== undefined) content.push({ type: 'refusal', refusal });
  return { id, type: 'message', status, role: 'assistant', content };
}

export function outputText(text: string): Json {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

export function functionCallItem(
  id: string,
  callId: string,
  name: string,
  args: string,
  status: string,
): Json {
  return { id, type: 'function_call', status, arguments: args, call_id: callId, name };
}

/**
 * A chat.completion object -> the Response. `usage` is the translator's (provider-neutral) count;
 * the completion's first choice is the answer (Responses has no `n`).
 */
export function completionToResponse(
  completion: Json,
  request: Json,
  usage: Usage | undefined,
  createdAt: number,
  stored = false,
): Json {
  const choice =
    Array.isArray(completion.choices) && isObj(completion.choices[0]) ? completion.choices[0] : {};
  const message = isObj(choice.message) ? choice.message : {};
  const output: Json[] = [];
  const text = typeof message.content === 'string' ? message.content : '';
  const refusal = typeof message.refusal === 'string' ? message.refusal : undefined;
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls.filter(isObj) : [];
  const { status, incomplete } = statusOf(choice.finish_reason);
  if (text.length > 0 || refusal !== undefined || calls.length === 0)
    output.push(
      messageItem(newId('msg'), text, refusal, status === 'incomplete' ? 'incomplete' : 'completed'),
    );
  for (const c of calls) {
    const fn = isObj(c.function) ? c.function : {};
    output.push(
      functionCallItem(
        newId('fc'),
        typeof c.id === 'string' ? c.id : newId('fc'),
        typeof fn.name === 'string' ? fn.name : '',
        typeof fn.arguments === 'string' ? fn.arguments : '',
        'completed',
      ),
    );
  }
  const model = typeof completion.model === 'string' ? completion.model : String(request.model ?? '');
  return {
    ...responseShell(request, newId('resp'), createdAt, model, stored),
    status,
    incomplete_details: incomplete,
    output,
    usage: usage ? responsesUsage(usage) : null,
  };
}

/** A response's output items as the assistant message of a chat conversation (for the store). */
export function answerMessage(output: unknown): ChatMessage {
  const items = Array.isArray(output) ? output.filter(isObj) : [];
  let text = '';
  const calls: ToolCall[] = [];
  for (const item of items) {
    if (item.type === 'message' && Array.isArray(item.content)) {
      for (const part of item.content)
        if (isObj(part) && part.type === 'output_text' && typeof part.text === 'string') text += part.text;
    } else if (item.type === 'function_call') {
      calls.push({
        id: String(item.call_id ?? ''),
        type: 'function',
        function: { name: String(item.name ?? ''), arguments: String(item.arguments ?? '') },
      });
    }
  }
  const m: ChatMessage = { role: 'assistant', content: text.length > 0 || calls.length === 0 ? text : null };
  if (calls.length > 0) m.tool_calls = calls;
  return m;
}
