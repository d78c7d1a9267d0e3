// A mock Anthropic Messages API server for tests.
//
//   const mock = await startAnthropicMock({ apiKey: 'sk-ant-test' });
//   mock.url                      // http://127.0.0.1:<port>/v1  -> provider baseUrl
//   mock.setResponse({ content: 'hi', usage: { prompt: 10, completion: 2, cached: 100, cacheWrite: 20 } });
//   mock.setResponse({ toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: { city: 'Paris' } }] });
//   mock.failNext({ kind: 'status', status: 529 });          // overloaded_error
//   mock.failNext({ kind: 'stream-error', afterEvents: 3 }); // `event: error` mid-stream
//   await mock.close();
//
// Speaks the documented wire format: POST {base}/messages with x-api-key and anthropic-version
// headers; JSON `message` objects or SSE (`event: message_start`, content_block_start /
// content_block_delta (text_delta, input_json_delta) / content_block_stop, a ping,
// message_delta with stop_reason and cumulative usage, message_stop). Errors are
// {"type":"error","error":{"type","message"},"request_id"}. `usage.prompt` is input_tokens
// (uncached); `cached` -> cache_read_input_tokens, `cacheWrite` -> cache_creation_input_tokens.
//
// The request is validated the way the real API does it (unless `strict: false`), so a wrong
// translation fails loudly: anthropic-version present, max_tokens a positive integer, roles only
// user/assistant and alternating, no system role inside messages, non-empty text blocks,
// tool_result blocks first in a user turn, answering every tool_use id of the previous assistant
// turn and nothing else, tools defined when tool blocks appear, temperature in [0, 1], not both
// temperature and top_p (Claude 4.1+ rule), tool_use ids matching ^[a-zA-Z0-9_-]+$.
// Per model generation (anthropic-sdk-typescript src/resources/messages/messages.ts, the
// deprecation notes of MessageCreateParams): models released after Claude Opus 4.6 accept
// temperature only as 1.0, top_p only >= 0.99 and no top_k at all (400 otherwise).
// Structured outputs (output_config.format, json_schema): every object schema must set
// additionalProperties: false, and only the keywords the API enforces may appear (type,
// properties, required, items, anyOf, allOf, $ref, $defs, enum, const, description, title, string
// formats of the documented set, minItems 0 or 1); anything else (minimum, maxLength, pattern,
// ...) is a 400, which is why the official SDK rewrites schemas (src/lib/transform-json-schema.ts).
// max_tokens truncates the reply (one delta = one token) with stop_reason "max_tokens".
import {
  type MockReply,
  type MockServer,
  type RecordedRequest,
  type RenderContext,
  startMockServer,
  wordChunks,
} from './faults.js';

export type { Fault, MockReply, MockServer, RecordedRequest } from './faults.js';

export interface AnthropicMockOptions {
  /** Expected x-api-key; unset = any (or none) is accepted. */
  apiKey?: string;
  /** Validate requests like the real API (default true). */
  strict?: boolean;
  /** Path prefix; default /v1. */
  basePath?: string;
}

const TYPE_OF_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
  503: 'overloaded_error',
};

const MESSAGE_OF_TYPE: Record<string, string> = {
  invalid_request_error: 'Invalid request.',
  authentication_error: 'invalid x-api-key',
  billing_error: 'Your credit balance is too low.',
  permission_error: 'Your API key does not have permission to use the specified resource.',
  not_found_error: 'model: not found',
  request_too_large: 'Request exceeds the maximum allowed number of bytes.',
  rate_limit_error: 'Number of request tokens has exceeded your per-minute rate limit.',
  api_error: 'Internal server error',
  timeout_error: 'Request timed out',
  overloaded_error: 'Overloaded',
};

export function anthropicError(type: string, message = MESSAGE_OF_TYPE[type] ?? 'Error') {
  return { type: 'error', error: { type, message }, request_id: 'req_mock' };
}

type Block = Record<string, unknown>;

function invalid(message: string): [number, unknown] {
  return [400, anthropicError('invalid_request_error', message)];
}

/** Claude version of a model id (claude-opus-4-6 -> 4.6, claude-3-5-sonnet -> 3.5), or undefined. */
export function claudeModelVersion(model: string): number | undefined {
  const m =
    /claude-(?:(?:opus|sonnet|haiku)-(\d+)(?:-(\d)(?!\d))?|(\d+)(?:-(\d)(?!\d))?-(?:opus|sonnet|haiku))/.exec(
      model,
    );
  if (!m) return undefined;
  return Number(m[1] ?? m[3]) + Number(m[2] ?? m[4] ?? 0) / 10;
}

const STRICT_KEYWORDS = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'anyOf',
  'allOf',
  '$ref',
  '$defs',
  'definitions',
  'enum',
  'const',
  'description',
  'title',
  'format',
  'minItems',
]);
const STRING_FORMATS = [
  'date-time',
  'time',
  'date',
  'duration',
  'email',
  'hostname',
  'uri',
  'ipv4',
  'ipv6',
  'uuid',
];

/** The first structured-outputs schema rule `schema` breaks (path and reason), or undefined. */
function schemaProblem(schema: unknown, path: string): string | undefined {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return undefined;
  const s = schema as Record<string, unknown>;
  for (const k of Object.keys(s)) {
    if (!STRICT_KEYWORDS.has(k)) return `${path}: keyword '${k}' is not supported`;
  }
  if (s.format !== undefined && !STRING_FORMATS.includes(String(s.format)))
    return `${path}: format '${String(s.format)}' is not supported`;
  if (s.minItems !== undefined && s.minItems !== 0 && s.minItems !== 1)
    return `${path}: minItems values other than 0 or 1 are not supported`;
  const types = Array.isArray(s.type) ? s.type : [s.type];
  if (types.includes('object') && s.additionalProperties !== false)
    return `${path}: For 'object' type, 'additionalProperties' must be explicitly set to false`;
  const children: [string, unknown][] = [];
  if (typeof s.properties === 'object' && s.properties !== null)
    for (const [k, v] of Object.entries(s.properties)) children.push([`${path}.properties.${k}`, v]);
  for (const key of ['$defs', 'definitions'])
    if (typeof s[key] === 'object' && s[key] !== null)
      for (const [k, v] of Object.entries(s[key] as object)) children.push([`${path}.${key}.${k}`, v]);
  if (s.items !== undefined) children.push([`${path}.items`, s.items]);
  for (const key of ['anyOf', 'allOf'])
    if (Array.isArray(s[key]))
      (s[key] as unknown[]).forEach((v, i) => children.push([`${path}.${key}.${i}`, v]));
  for (const [p, v] of children) {
    const problem = schemaProblem(v, p);
    if (problem) return problem;
  }
  return undefined;
}

function validateSampling(b: Record<string, unknown>): [number, unknown] | undefined {
  const v = claudeModelVersion(String(b.model));
  if (typeof b.temperature === 'number' && (b.temperature < 0 || b.temperature > 1)) {
    return invalid('temperature: Input should be less than or equal to 1');
  }
  if (typeof b.top_p === 'number' && (b.top_p < 0 || b.top_p > 1)) {
    return invalid('top_p: Input should be less than or equal to 1');
  }
  if (v !== undefined && v > 4.6) {
    if (b.temperature !== undefined && b.temperature !== 1)
      return invalid(
        `temperature: ${String(b.model)} does not support setting temperature; only 1.0 is accepted.`,
      );
    if (b.top_p !== undefined && (typeof b.top_p !== 'number' || b.top_p < 0.99))
      return invalid(
        `top_p: ${String(b.model)} does not support setting top_p; only values >= 0.99 are accepted.`,
      );
    if (b.top_k !== undefined) return invalid(`top_k: ${String(b.model)} does not support top_k.`);
  }
  if ((v === undefined || v >= 4.1) && b.temperature !== undefined && b.top_p !== undefined) {
    return invalid('`temperature` and `top_p` cannot both be specified for this model. Please use only one.');
  }
  const oc = b.output_config as { format?: { type?: unknown; schema?: unknown } } | undefined;
  if (oc?.format !== undefined) {
    if (oc.format.type !== 'json_schema')
      return invalid('output_config.format.type: Input should be json_schema');
    const problem = schemaProblem(oc.format.schema, 'output_config.format.schema');
    if (problem) return invalid(problem);
  }
  return undefined;
}

function validateMessages(b: Record<string, unknown>): [number, unknown] | undefined {
  if (!Number.isInteger(b.max_tokens) || (b.max_tokens as number) < 1)
    return invalid('max_tokens: Field required');
  const sampling = validateSampling(b);
  if (sampling) return sampling;
  const msgs = b.messages;
  if (!Array.isArray(msgs) || msgs.length === 0) return invalid('messages: at least one message is required');
  let prevRole: string | undefined;
  let prevToolUseIds = new Set<string>();
  let usesTools = false;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i] as { role?: unknown; content?: unknown };
    if (m.role !== 'user' && m.role !== 'assistant') {
      return invalid(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    }
    if (m.role === prevRole)
      return invalid(`messages.${i}: roles must alternate between "user" and "assistant"`);
    const blocks: Block[] =
      typeof m.content === 'string'
        ? [{ type: 'text', text: m.content }]
        : Array.isArray(m.content)
          ? (m.content as Block[])
          : [];
    if (blocks.length === 0) return invalid(`messages.${i}: content must be a non-empty string or array`);
    let seenOther = false;
    const toolUseIds = new Set<string>();
    for (const [j, blk] of blocks.entries()) {
      if (blk.type === 'text' && (typeof blk.text !== 'string' || blk.text === '')) {
        return invalid(`messages.${i}.content.${j}.text: text content blocks must be non-empty`);
      }
      if (blk.type === 'tool_result') {
        if (m.role !== 'user')
          return invalid(`messages.${i}.content.${j}: tool_result blocks are only allowed in user messages`);
        if (seenOther) return invalid(`messages.${i}: tool_result blocks must come first in the content`);
        if (!prevToolUseIds.has(String(blk.tool_use_id))) {
          return invalid(
            `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(blk.tool_use_id)}`,
          );
        }
      } else seenOther = true;
      if (blk.type === 'tool_use' || blk.type === 'tool_result') usesTools = true;
      if (blk.type === 'tool_use') {
        if (m.role !== 'assistant')
          return invalid(
            `messages.${i}.content.${j}: tool_use blocks are only allowed in assistant messages`,
          );
        if (typeof blk.id !== 'string' || !/^[a-zA-Z0-9_-]+$/.test(blk.id)) {
          return invalid(
            `messages.${i}.content.${j}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'`,
          );
        }
        if (typeof blk.input !== 'object' || blk.input === null || Array.isArray(blk.input)) {
          return invalid(`messages.${i}.content.${j}.input: Input should be a valid dictionary`);
        }
        toolUseIds.add(String(blk.id));
      }
      if (blk.type === 'image') {
        const src = blk.source as Block | undefined;
        if (!src || (src.type !== 'base64' && src.type !== 'url'))
          return invalid(`messages.${i}.content.${j}.source: invalid image source`);
      }
      if (
        !['text', 'image', 'tool_use', 'tool_result', 'document', 'thinking', 'redacted_thinking'].includes(
          String(blk.type),
        )
      ) {
        return invalid(`messages.${i}.content.${j}.type: unknown block type '${String(blk.type)}'`);
      }
    }
    if (prevToolUseIds.size > 0) {
      const answered = new Set(
        blocks.filter((x) => x.type === 'tool_result').map((x) => String(x.tool_use_id)),
      );
      const missing = [...prevToolUseIds].filter((id) => !answered.has(id));
      if (missing.length > 0) {
        return invalid(
          `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}`,
        );
      }
    }
    prevToolUseIds = toolUseIds;
    prevRole = m.role;
  }
  if (usesTools && (!Array.isArray(b.tools) || b.tools.length === 0)) {
    return invalid('Requests which include `tool_use` or `tool_result` blocks must define tools.');
  }
  return undefined;
}

export async function startAnthropicMock(options: AnthropicMockOptions = {}): Promise<MockServer> {
  const basePath = options.basePath ?? '/v1';
  const strict = options.strict ?? true;
  return startMockServer({
    basePath,
    errorBody: (status) =>
      anthropicError(TYPE_OF_STATUS[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error')),
    validate(req: RecordedRequest) {
      if (options.apiKey !== undefined && req.headers['x-api-key'] !== options.apiKey) {
        return [401, anthropicError('authentication_error', 'invalid x-api-key')];
      }
      if (req.method !== 'POST' || req.path.split('?')[0] !== `${basePath}/messages`) {
        return [404, anthropicError('not_found_error', `Not found: ${req.method} ${req.path}`)];
      }
      if (strict && req.headers['anthropic-version'] === undefined) {
        return invalid('anthropic-version: header is required');
      }
      const b = req.body;
      if (typeof b !== 'object' || b === null) return invalid('Request body is not valid JSON');
      if (typeof b.model !== 'string') return invalid('model: Field required');
      return strict ? validateMessages(b) : undefined;
    },
    async render(ctx: RenderContext) {
      const { req, reply } = ctx;
      const b = req.body;
      const model = reply.model ?? b.model;
      const id = `msg_mock${req.at.toString(36)}`;
      let chunks = reply.chunks ?? wordChunks(reply.content ?? '');
      const toolCalls = (reply.toolCalls ?? []).map((t, i) => ({
        id: t.id ?? `toolu_mock${i}`,
        name: t.name,
        json: typeof t.arguments === 'string' ? t.arguments : JSON.stringify(t.arguments),
      }));
      let stop = reply.stop ?? (toolCalls.length > 0 ? 'tool_use' : 'end_turn');
      if (typeof b.max_tokens === 'number' && chunks.length > b.max_tokens) {
        chunks = chunks.slice(0, b.max_tokens);
        if (reply.stop === undefined) stop = 'max_tokens';
      }
      const text = chunks.join('');
      const u = reply.usage ?? {};
      const usage = {
        input_tokens: u.prompt ?? Math.max(1, Math.ceil(JSON.stringify(b.messages ?? '').length / 4)),
        cache_creation_input_tokens: u.cacheWrite ?? 0,
        cache_read_input_tokens: u.cached ?? 0,
        output_tokens: u.completion ?? chunks.length + toolCalls.length * 5,
      };
      const content: Block[] = [];
      if (text !== '') content.push({ type: 'text', text });
      for (const t of toolCalls)
        content.push({ type: 'tool_use', id: t.id, name: t.name, input: JSON.parse(t.json || '{}') });

      if (b.stream !== true) {
        await ctx.writeJson(
          200,
          {
            id,
            type: 'message',
            role: 'assistant',
            model,
            content,
            stop_reason: stop,
            stop_sequence: null,
            usage,
          },
          { 'request-id': `req_mock_${req.at}` },
        );
        return;
      }
      const ev = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
      const events: string[] = [
        ev('message_start', {
          type: 'message_start',
          message: {
            id,
            type: 'message',
            role: 'assistant',
            model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { ...usage, output_tokens: 1 },
          },
        }),
      ];
      let index = 0;
      if (text !== '') {
        events.push(
          ev('content_block_start', {
            type: 'content_block_start',
            index,
            content_block: { type: 'text', text: '' },
          }),
        );
        events.push(ev('ping', { type: 'ping' }));
        for (const c of chunks) {
          events.push(
            ev('content_block_delta', {
              type: 'content_block_delta',
              index,
              delta: { type: 'text_delta', text: c },
            }),
          );
        }
        events.push(ev('content_block_stop', { type: 'content_block_stop', index }));
        index++;
      }
      for (const t of toolCalls) {
        events.push(
          ev('content_block_start', {
            type: 'content_block_start',
            index,
            content_block: { type: 'tool_use', id: t.id, name: t.name, input: {} },
          }),
        );
        const step = Math.max(1, Math.ceil(t.json.length / 3));
        events.push(
          ev('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: '' },
          }),
        );
        for (let i = 0; i < t.json.length; i += step) {
          events.push(
            ev('content_block_delta', {
              type: 'content_block_delta',
              index,
              delta: { type: 'input_json_delta', partial_json: t.json.slice(i, i + step) },
            }),
          );
        }
        events.push(ev('content_block_stop', { type: 'content_block_stop', index }));
        index++;
      }
      events.push(
        ev('message_delta', {
          type: 'message_delta',
          delta: { stop_reason: stop, stop_sequence: null },
          usage: { output_tokens: usage.output_tokens },
        }),
      );
      events.push(ev('message_stop', { type: 'message_stop' }));
      await ctx.writeEvents(events, (f) =>
        ev('error', anthropicError(f.errorType ?? 'overloaded_error', f.message)),
      );
    },
  });
}

export type { MockReply as AnthropicMockReply };
