// OpenAI's Responses API for the OpenAI mock (POST {base}/responses), written from OpenAI's API
// reference and the openai-node types (resources/responses/responses.d.ts):
// - request: `model` (string) and `input` (string or item array) unless previous_response_id;
//   previous_response_id must name a response this server created and stored (store defaults to
//   true), else 404 previous_response_not_found; function tools are {type, name, parameters};
// - JSON answer: a `response` object with `output` items (message with output_text parts,
//   function_call with call_id/name/arguments), `usage` {input_tokens, output_tokens,
//   total_tokens, input_tokens_details.cached_tokens, output_tokens_details.reasoning_tokens};
//   max_output_tokens cuts the text (one delta = one token) with status "incomplete";
// - SSE: `event: <type>` + `data: {type, ..., sequence_number}`: response.created,
//   response.in_progress, output_item.added, content_part.added, output_text.delta...,
//   output_text.done, content_part.done, output_item.done, function_call_arguments.delta/done,
//   response.completed (or response.incomplete); a stream-error fault ends with an `error` event.
import type { MockReply, RecordedRequest, RenderContext } from './faults.js';
import { wordChunks } from './faults.js';

type Body = Record<string, any>;

const err = (message: string, type: string, code: string | null = null, param: string | null = null) => ({
  error: { message, type, param, code },
});

export interface ResponsesStore {
  /** ids of the responses this mock created with store != false, and the text they answered. */
  stored: Map<string, string>;
}

export function newResponsesStore(): ResponsesStore {
  return { stored: new Map() };
}

/** An error [status, body] for an invalid Responses request, or undefined. */
export function validateResponses(b: Body, store: ResponsesStore): [number, unknown] | undefined {
  if (typeof b !== 'object' || b === null)
    return [400, err('We could not parse the JSON body of your request.', 'invalid_request_error')];
  if (typeof b.model !== 'string')
    return [
      400,
      err(
        "Missing required parameter: 'model'.",
        'invalid_request_error',
        'missing_required_parameter',
        'model',
      ),
    ];
  const prev = b.previous_response_id;
  if (prev !== undefined && prev !== null && !store.stored.has(prev))
    return [
      404,
      err(
        `Previous response with id '${prev}' not found.`,
        'invalid_request_error',
        'previous_response_not_found',
        'previous_response_id',
      ),
    ];
  if (typeof b.input !== 'string' && !Array.isArray(b.input) && (prev === undefined || prev === null))
    return [
      400,
      err(
        "Missing required parameter: 'input'.",
        'invalid_request_error',
        'missing_required_parameter',
        'input',
      ),
    ];
  if (Array.isArray(b.tools)) {
    for (const [i, t] of (b.tools as Body[]).entries()) {
      if (t?.type === 'function' && typeof t.name !== 'string')
        return [
          400,
          err(
            `Missing required parameter: 'tools[${i}].name'.`,
            'invalid_request_error',
            'missing_required_parameter',
            `tools[${i}].name`,
          ),
        ];
    }
  }
  return undefined;
}

function estimateTokens(v: unknown): number {
  return Math.max(1, Math.ceil(JSON.stringify(v ?? '').length / 4));
}

export async function renderResponses(
  ctx: RenderContext,
  store: ResponsesStore,
  omitUsage: boolean,
): Promise<void> {
  const { req, reply } = ctx;
  const b = req.body as Body;
  const seed = req.at.toString(36) + Math.random().toString(36).slice(2, 8);
  const id = `resp_mock${seed}`;
  const model = reply.model ?? b.model;
  let chunks = reply.chunks ?? wordChunks(replyText(reply, b, store));
  let status = 'completed';
  let incomplete: unknown = null;
  if (typeof b.max_output_tokens === 'number' && chunks.length > b.max_output_tokens) {
    chunks = chunks.slice(0, b.max_output_tokens);
    status = 'incomplete';
    incomplete = { reason: 'max_output_tokens' };
  }
  const text = chunks.join('');
  const calls = (reply.toolCalls ?? []).map((t, i) => ({
    id: `fc_mock${seed}${i}`,
    type: 'function_call',
    status: 'completed',
    call_id: t.id ?? `call_mock${i}`,
    name: t.name,
    arguments: typeof t.arguments === 'string' ? t.arguments : JSON.stringify(t.arguments),
  }));
  const message = {
    id: `msg_mock${seed}`,
    type: 'message',
    status: status === 'incomplete' ? 'incomplete' : 'completed',
    role: 'assistant',
    content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
  };
  const output: Body[] = text.length > 0 || calls.length === 0 ? [message, ...calls] : calls;
  const u = reply.usage ?? {};
  const input = u.prompt ?? estimateTokens(b.input);
  const outTokens = u.completion ?? chunks.length + calls.length * 5;
  const usage = {
    input_tokens: input,
    input_tokens_details: { cached_tokens: u.cached ?? 0 },
    output_tokens: outTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input + outTokens,
  };
  const shell = {
    id,
    object: 'response',
    created_at: Math.floor(req.at / 1000),
    status: 'in_progress',
    error: null,
    incomplete_details: null,
    instructions: b.instructions ?? null,
    model,
    output: [] as Body[],
    parallel_tool_calls: true,
    previous_response_id: b.previous_response_id ?? null,
    store: b.store !== false,
    temperature: b.temperature ?? 1,
    text: b.text ?? { format: { type: 'text' } },
    tool_choice: b.tool_choice ?? 'auto',
    tools: b.tools ?? [],
    top_p: b.top_p ?? 1,
    usage: null as unknown,
    metadata: {},
  };
  const final = { ...shell, status, incomplete_details: incomplete, output, usage: omitUsage ? null : usage };
  if (b.store !== false) store.stored.set(id, text);

  if (b.stream !== true) {
    await ctx.writeJson(200, final, { 'x-request-id': `req_mock_${req.at}` });
    return;
  }
  let seq = 0;
  const events: string[] = [];
  const ev = (type: string, payload: Body) =>
    events.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...payload, sequence_number: seq++ })}\n\n`);
  ev('response.created', { response: shell });
  ev('response.in_progress', { response: shell });
  let index = 0;
  if (output[0] === message) {
    const ids = { item_id: message.id, output_index: 0, content_index: 0 };
    ev('response.output_item.added', {
      output_index: 0,
      item: { ...message, status: 'in_progress', content: [] },
    });
    ev('response.content_part.added', {
      ...ids,
      part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
    });
    for (const c of chunks) ev('response.output_text.delta', { ...ids, delta: c, logprobs: [] });
    ev('response.output_text.done', { ...ids, text, logprobs: [] });
    ev('response.content_part.done', { ...ids, part: message.content[0] });
    ev('response.output_item.done', { output_index: 0, item: message });
    index = 1;
  }
  for (const call of calls) {
    const ids = { item_id: call.id, output_index: index };
    ev('response.output_item.added', {
      output_index: index,
      item: { ...call, status: 'in_progress', arguments: '' },
    });
    const a = call.arguments;
    const step = Math.max(1, Math.ceil(a.length / 3));
    for (let i = 0; i < a.length; i += step)
      ev('response.function_call_arguments.delta', { ...ids, delta: a.slice(i, i + step) });
    ev('response.function_call_arguments.done', { ...ids, name: call.name, arguments: a });
    ev('response.output_item.done', { output_index: index, item: call });
    index++;
  }
  ev(status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final });
  await ctx.writeEvents(events, (f) => {
    const payload = {
      type: 'error',
      code: f.errorType ?? 'server_error',
      message: f.message ?? 'The server had an error while processing your request.',
      param: null,
      sequence_number: seq,
    };
    return `event: error\ndata: ${JSON.stringify(payload)}\n\n`;
  });
}

/** The scripted text, or for a continued response the text it continues from plus the echo. */
function replyText(reply: MockReply, b: Body, store: ResponsesStore): string {
  const content = reply.content ?? '';
  const prev =
    typeof b.previous_response_id === 'string' ? store.stored.get(b.previous_response_id) : undefined;
  return prev !== undefined ? `${content} (after: ${prev})` : content;
}

export function isResponsesRequest(req: RecordedRequest, basePath: string): boolean {
  return req.method === 'POST' && req.path.split('?')[0] === `${basePath}/responses`;
}
