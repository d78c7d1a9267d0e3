// A mock OpenAI Chat Completions server (also stands in for openai-compatible servers) for tests.
//
//   const mock = await startOpenAIMock({ apiKey: 'sk-test' });
//   mock.url                      // http://127.0.0.1:<port>/v1  -> provider baseUrl
//   mock.setResponse({ content: 'hi', usage: { prompt: 10, completion: 2, cached: 4 } });
//   mock.setResponse({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
//   mock.failNext({ kind: 'status', status: 503, times: 2 });
//   mock.requests / mock.lastRequest   // {method, path, headers, body, raw, at}
//   await mock.close();
//
// Speaks the documented wire format: POST {base}/chat/completions, JSON (chat.completion) or SSE
// (chat.completion.chunk events, first delta with the role, tool_calls deltas with index/id/name
// then argument fragments, a finish chunk, the usage chunk (`choices: []`) when
// stream_options.include_usage is true, then `data: [DONE]`); GET {base}/models; POST
// {base}/embeddings (deterministic vectors per input text, see embeddings.ts; base64 on request). Errors use
// {"error":{"message","type","param","code"}}. With `apiKey` set, a wrong/missing bearer token
// gets OpenAI's 401 (its message echoes a masked key, as OpenAI does). Default reply:
// `echo: <last user text>`; usage defaults are derived from the request. max_tokens /
// max_completion_tokens truncate the reply (one delta = one token) with finish_reason "length".
// Options emulate looser servers: `rejectStreamOptions` (400 on stream_options, like some old
// OpenAI-compatible servers), `omitUsage` (never reports usage), `strict: false` (skips the
// per-model rules of openai-rules.ts: sampling ranges and reasoning-model defaults, roles,
// tool-call id length and call/result pairing, which are enforced by default).
// POST {base}/responses speaks the Responses API (openai-responses.ts). See faults.ts for the
// fault kinds.
import { openAIEmbeddings, openAIEmbeddingsProblem } from './embeddings.js';
import { openAIRuleViolation } from './openai-rules.js';
import {
  isResponsesRequest,
  newResponsesStore,
  renderResponses,
  validateResponses,
} from './openai-responses.js';
import {
  type MockReply,
  type MockServer,
  type RecordedRequest,
  type RenderContext,
  startMockServer,
  wordChunks,
} from './faults.js';

export type { Fault, MockReply, MockServer, RecordedRequest } from './faults.js';

export interface OpenAIMockOptions {
  /** Expected bearer token; unset = any (or no) authorization is accepted. */
  apiKey?: string;
  /** Answer 400 to requests that carry stream_options (emulates servers without support). */
  rejectStreamOptions?: boolean;
  /** Never report usage (emulates servers that ignore include_usage). */
  omitUsage?: boolean;
  /** Path prefix; default /v1. */
  basePath?: string;
  /** Enforce OpenAI's per-model request rules (openai-rules.ts). Default true. */
  strict?: boolean;
}

const err = (message: string, type: string, code: string | null = null, param: string | null = null) => ({
  error: { message, type, param, code },
});

function errorBody(status: number): unknown {
  switch (status) {
    case 400:
      return err('Invalid request.', 'invalid_request_error');
    case 401:
      return err('Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
    case 403:
      return err(
        'You are not allowed to sample from this model.',
        'invalid_request_error',
        'model_not_allowed',
      );
    case 404:
      return err(
        'The model does not exist or you do not have access to it.',
        'invalid_request_error',
        'model_not_found',
      );
    case 429:
      return err(
        'Rate limit reached for requests. Please try again in 1s.',
        'requests',
        'rate_limit_exceeded',
      );
    case 503:
      return err('The engine is currently overloaded, please try again later.', 'server_error');
    default:
      return err('The server had an error while processing your request.', 'server_error');
  }
}

function mask(key: string): string {
  return key.length <= 8 ? '***' : `${key.slice(0, 3)}${'*'.repeat(key.length - 7)}${key.slice(-4)}`;
}

function estimateTokens(v: unknown): number {
  return Math.max(1, Math.ceil(JSON.stringify(v ?? '').length / 4));
}

export async function startOpenAIMock(options: OpenAIMockOptions = {}): Promise<MockServer> {
  const basePath = options.basePath ?? '/v1';
  const responses = newResponsesStore();
  return startMockServer({
    basePath,
    errorBody,
    validate(req: RecordedRequest) {
      if (options.apiKey !== undefined) {
        const auth = req.headers.authorization;
        const token = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
        if (token !== options.apiKey) {
          return [
            401,
            token === undefined
              ? err("You didn't provide an API key.", 'invalid_request_error', 'missing_api_key')
              : err(
                  `Incorrect API key provided: ${mask(token)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
                  'invalid_request_error',
                  'invalid_api_key',
                ),
          ];
        }
      }
      const path = req.path.split('?')[0];
      if (req.method === 'GET' && path === `${basePath}/models`) return undefined;
      if (req.method === 'POST' && path === `${basePath}/embeddings`) {
        const problem = openAIEmbeddingsProblem(req.body);
        return problem ? [400, err(problem, 'invalid_request_error')] : undefined;
      }
      if (isResponsesRequest(req, basePath)) return validateResponses(req.body, responses);
      if (req.method !== 'POST' || path !== `${basePath}/chat/completions`) {
        return [
          404,
          err(`Unknown request URL: ${req.method} ${req.path}.`, 'invalid_request_error', 'unknown_url'),
        ];
      }
      const b = req.body;
      if (typeof b !== 'object' || b === null)
        return [400, err('We could not parse the JSON body of your request.', 'invalid_request_error')];
      if (typeof b.model !== 'string')
        return [400, err('you must provide a model parameter', 'invalid_request_error', null, 'model')];
      if (!Array.isArray(b.messages) || b.messages.length === 0) {
        return [
          400,
          err("Invalid 'messages': empty array.", 'invalid_request_error', 'empty_array', 'messages'),
        ];
      }
      if (options.strict !== false) {
        const broken = openAIRuleViolation(b, b.model);
        if (broken) return [400, { error: broken }];
      }
      if (b.stream_options !== undefined && b.stream_options !== null) {
        if (options.rejectStreamOptions)
          return [
            400,
            err('Unrecognized request argument supplied: stream_options', 'invalid_request_error'),
          ];
        if (b.stream !== true) {
          return [
            400,
            err(
              "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
              'invalid_request_error',
              null,
              'stream_options',
            ),
          ];
        }
      }
      return undefined;
    },
    async render(ctx: RenderContext) {
      const { req, reply } = ctx;
      if (req.method === 'GET') {
        await ctx.writeJson(200, {
          object: 'list',
          data: [{ id: 'mock-model', object: 'model', created: 0, owned_by: 'mock' }],
        });
        return;
      }
      if (isResponsesRequest(req, basePath))
        return renderResponses(ctx, responses, options.omitUsage === true);
      const b = req.body;
      if (req.path.split('?')[0] === `${basePath}/embeddings`) {
        await ctx.writeJson(200, openAIEmbeddings(b, reply.model ?? b.model));
        return;
      }
      const model = reply.model ?? b.model;
      const id = `chatcmpl-mock${req.at.toString(36)}`;
      const created = Math.floor(req.at / 1000);
      let chunks = reply.chunks ?? wordChunks(reply.content ?? '');
      const limit = b.max_completion_tokens ?? b.max_tokens;
      const toolCalls = (reply.toolCalls ?? []).map((t, i) => ({
        id: t.id ?? `call_mock${i}`,
        type: 'function' as const,
        function: {
          name: t.name,
          arguments: typeof t.arguments === 'string' ? t.arguments : JSON.stringify(t.arguments),
        },
      }));
      let finish = reply.stop ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop');
      if (typeof limit === 'number' && chunks.length > limit) {
        chunks = chunks.slice(0, limit);
        if (reply.stop === undefined) finish = 'length';
      }
      const content = chunks.join('');
      const u = reply.usage ?? {};
      const promptTokens = u.prompt ?? estimateTokens(b.messages);
      const completionTokens = u.completion ?? chunks.length + toolCalls.length * 5;
      const usage = {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
        prompt_tokens_details: { cached_tokens: u.cached ?? 0, audio_tokens: 0 },
        completion_tokens_details: {
          reasoning_tokens: 0,
          audio_tokens: 0,
          accepted_prediction_tokens: 0,
          rejected_prediction_tokens: 0,
        },
      };

      if (b.stream !== true) {
        const message: Record<string, unknown> = {
          role: 'assistant',
          content: content === '' && toolCalls.length > 0 ? null : content,
          refusal: null,
          annotations: [],
        };
        if (toolCalls.length > 0) message.tool_calls = toolCalls;
        const body: Record<string, unknown> = {
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
          service_tier: 'default',
          system_fingerprint: 'fp_mock',
        };
        if (!options.omitUsage) body.usage = usage;
        await ctx.writeJson(200, body, { 'x-request-id': `req_mock_${req.at}` });
        return;
      }

      const withUsage = b.stream_options?.include_usage === true && !options.omitUsage;
      const base = {
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        service_tier: 'default',
        system_fingerprint: 'fp_mock',
      };
      const ev = (delta: unknown, finishReason: string | null = null) =>
        `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }], ...(withUsage ? { usage: null } : {}) })}\n\n`;
      const events: string[] = [ev({ role: 'assistant', content: '', refusal: null })];
      for (const c of chunks) events.push(ev({ content: c }));
      toolCalls.forEach((t, index) => {
        events.push(
          ev({
            tool_calls: [
              { index, id: t.id, type: 'function', function: { name: t.function.name, arguments: '' } },
            ],
          }),
        );
        const a = t.function.arguments;
        const step = Math.max(1, Math.ceil(a.length / 3));
        for (let i = 0; i < a.length; i += step)
          events.push(ev({ tool_calls: [{ index, function: { arguments: a.slice(i, i + step) } }] }));
      });
      events.push(ev({}, finish));
      if (withUsage) events.push(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
      events.push('data: [DONE]\n\n');
      await ctx.writeEvents(
        events,
        (f) =>
          `data: ${JSON.stringify(err(f.message ?? 'The server had an error while processing your request.', f.errorType ?? 'server_error'))}\n\n`,
      );
    },
  });
}

export type { MockReply as OpenAIMockReply };
