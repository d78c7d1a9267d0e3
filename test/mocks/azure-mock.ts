// A mock Azure OpenAI server (chat completions) for tests.
//
//   const mock = await startAzureMock({ apiKey: 'azure-test-key', deployments: ['prod-mini'] });
//   mock.url                      // http://127.0.0.1:<port>  -> provider baseUrl (the resource endpoint)
//   mock.setResponse({ content: 'hi', usage: { prompt: 10, completion: 2, cached: 4 } });
//   mock.setResponse({ stop: 'content_filter' });      // completion filtered (finish_reason content_filter)
//   mock.failNext(azureContentFilterFault());          // prompt filtered: 400 code content_filter
//   mock.failNext({ kind: 'status', status: 429 });    // Azure's token-rate-limit 429 with retry-after
//
// Wire format: POST /openai/deployments/{deployment}/chat/completions?api-version=YYYY-MM-DD[-preview]
// (or the v1 API: POST /openai/v1/chat/completions, deployment in `model`), OpenAI's chat
// completion JSON / chunk SSE plus Azure's annotations (prompt_filter_results in the first chunk /
// the body, content_filter_results per choice). Auth: the api-key header, or a bearer token when
// `entraToken` is set. Errors: {"error":{"code","message",...}} as Azure sends them (code
// "DeploymentNotFound", "401", "429", content_filter with innererror ResponsibleAIPolicyViolation).
// A prompt whose last user text contains `filterTrigger` (default "FILTER_ME") is rejected with
// Azure's content-filter 400, like a real prompt-filter hit.
// api-version gates (azure-rest-api-specs, specification/cognitiveservices/data-plane/AzureOpenAI/
// inference: the 2024-10-21 GA ChatCompletionRequestMessage roles are system, user, assistant,
// tool and function; `developer` arrives with 2024-12-01-preview): a developer message below
// 2024-12-01-preview is a 400, and a reasoning model (o-series, GPT-5 and later) answers older
// versions with "Model o4-mini is enabled only for api versions 2024-12-01-preview and later".
// `deploymentModels` says which model a deployment runs (default: the deployment name). Then the
// OpenAI per-model rules (openai-rules.ts) apply to the deployment's model.
import { openAIEmbeddings, openAIEmbeddingsProblem } from './embeddings.js';
import { openAIRuleViolation, REASONING_MODEL } from './openai-rules.js';
import {
  type MockServer,
  type RecordedRequest,
  type RenderContext,
  lastUserText,
  startMockServer,
  wordChunks,
} from './faults.js';

export type { Fault, MockReply, MockServer, RecordedRequest } from './faults.js';

export interface AzureMockOptions {
  apiKey?: string;
  /** Accept `Authorization: Bearer <entraToken>` (Microsoft Entra ID). */
  entraToken?: string;
  /** Known deployments; unset = any. */
  deployments?: string[];
  filterTrigger?: string;
  /** Deployment name -> the model it runs (for the per-model rules); default: the deployment name. */
  deploymentModels?: Record<string, string>;
}

/** api-version that introduced reasoning models and the developer role. */
const REASONING_API_VERSION = '2024-12-01-preview';
/** api-versions are dates (YYYY-MM-DD[-preview]); a date's preview precedes its GA release. */
const olderThan = (version: string, than: string): boolean => version.slice(0, 10) < than.slice(0, 10);

const FILTER_OK = {
  hate: { filtered: false, severity: 'safe' },
  self_harm: { filtered: false, severity: 'safe' },
  sexual: { filtered: false, severity: 'safe' },
  violence: { filtered: false, severity: 'safe' },
};

export function azureContentFilterError() {
  return {
    error: {
      message:
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
      type: null,
      param: 'prompt',
      code: 'content_filter',
      status: 400,
      innererror: {
        code: 'ResponsibleAIPolicyViolation',
        content_filter_result: { ...FILTER_OK, violence: { filtered: true, severity: 'high' } },
      },
    },
  };
}

export const azureContentFilterFault = () => ({
  kind: 'status' as const,
  status: 400,
  body: azureContentFilterError(),
});

function errorBody(status: number): unknown {
  switch (status) {
    case 400:
      return azureContentFilterError();
    case 401:
      return {
        error: {
          code: '401',
          message:
            'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
        },
      };
    case 404:
      return {
        error: {
          code: 'DeploymentNotFound',
          message:
            'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
        },
      };
    case 429:
      return {
        error: {
          code: '429',
          message:
            'Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds.',
        },
      };
    default:
      return {
        error: {
          code: 'InternalServerError',
          message: 'The server had an error while processing your request. Sorry about that!',
        },
      };
  }
}

type Op = 'chat' | 'embeddings';

function route(path: string): { deployment?: string; v1: boolean; op: Op } | undefined {
  const url = new URL(path, 'http://mock');
  if (url.pathname === '/openai/v1/chat/completions') return { v1: true, op: 'chat' };
  if (url.pathname === '/openai/v1/embeddings') return { v1: true, op: 'embeddings' };
  const m = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(url.pathname);
  return m
    ? { deployment: decodeURIComponent(m[1]!), v1: false, op: m[2] === 'embeddings' ? 'embeddings' : 'chat' }
    : undefined;
}

export async function startAzureMock(options: AzureMockOptions = {}): Promise<MockServer> {
  const trigger = options.filterTrigger ?? 'FILTER_ME';
  return startMockServer({
    basePath: '',
    errorBody,
    validate(req: RecordedRequest) {
      const r = route(req.path);
      if (req.method !== 'POST' || !r)
        return [404, { error: { code: '404', message: 'Resource not found' } }];
      const key = req.headers['api-key'];
      const auth = req.headers.authorization;
      const keyOk = options.apiKey !== undefined && key === options.apiKey;
      const tokenOk = options.entraToken !== undefined && auth === `Bearer ${options.entraToken}`;
      if ((options.apiKey !== undefined || options.entraToken !== undefined) && !keyOk && !tokenOk)
        return [401, errorBody(401)];
      const version = new URL(req.path, 'http://mock').searchParams.get('api-version');
      if (!r.v1 && (version === null || !/^\d{4}-\d{2}-\d{2}(-preview)?$/.test(version))) {
        return [404, { error: { code: '404', message: 'Resource not found' } }];
      }
      const b = req.body;
      if (typeof b !== 'object' || b === null)
        return [400, { error: { code: 'BadRequest', message: 'Invalid JSON body.' } }];
      const deployment = r.v1 ? b.model : r.deployment;
      if (options.deployments && !options.deployments.includes(String(deployment)))
        return [404, errorBody(404)];
      if (r.op === 'embeddings') {
        const problem = openAIEmbeddingsProblem(b);
        return problem ? [400, { error: { code: 'BadRequest', message: problem } }] : undefined;
      }
      if (!Array.isArray(b.messages) || b.messages.length === 0) {
        return [
          400,
          {
            error: {
              message: "'messages' must contain at least one message.",
              type: 'invalid_request_error',
              param: 'messages',
              code: null,
            },
          },
        ];
      }
      const runs = options.deploymentModels?.[String(deployment)] ?? String(deployment);
      if (!r.v1 && version !== null && olderThan(version, REASONING_API_VERSION)) {
        if (REASONING_MODEL.test(runs))
          return [
            400,
            {
              error: {
                code: 'BadRequest',
                message: `Model ${runs} is enabled only for api versions ${REASONING_API_VERSION} and later`,
              },
            },
          ];
        const dev = (b.messages as { role?: unknown }[]).findIndex((m) => m?.role === 'developer');
        if (dev !== -1)
          return [
            400,
            {
              error: {
                message: `Invalid value: 'developer'. Supported values are: 'system', 'assistant', 'user', 'function', and 'tool'.`,
                type: 'invalid_request_error',
                param: `messages[${dev}].role`,
                code: 'invalid_value',
              },
            },
          ];
      }
      const broken = openAIRuleViolation(b, runs);
      if (broken) return [400, { error: broken }];
      if (lastUserText(b.messages).includes(trigger)) return [400, azureContentFilterError()];
      return undefined;
    },
    async render(ctx: RenderContext) {
      const { req, reply } = ctx;
      const b = req.body;
      if (route(req.path)!.op === 'embeddings') {
        const r = route(req.path)!;
        return ctx.writeJson(200, openAIEmbeddings(b, reply.model ?? String(r.v1 ? b.model : r.deployment)));
      }
      const model = reply.model ?? 'gpt-4.1-mini-2025-04-14';
      const id = `chatcmpl-azure${req.at.toString(36)}`;
      const created = Math.floor(req.at / 1000);
      const filtered = reply.stop === 'content_filter';
      let chunks = reply.chunks ?? wordChunks(reply.content ?? '');
      if (filtered) chunks = chunks.slice(0, 1);
      const maxTokens = b.max_completion_tokens ?? b.max_tokens;
      let finish = reply.stop ?? ((reply.toolCalls ?? []).length > 0 ? 'tool_calls' : 'stop');
      if (typeof maxTokens === 'number' && chunks.length > maxTokens) {
        chunks = chunks.slice(0, maxTokens);
        if (reply.stop === undefined) finish = 'length';
      }
      const toolCalls = (reply.toolCalls ?? []).map((t, i) => ({
        id: t.id ?? `call_azure${i}`,
        type: 'function',
        function: {
          name: t.name,
          arguments: typeof t.arguments === 'string' ? t.arguments : JSON.stringify(t.arguments),
        },
      }));
      const u = reply.usage ?? {};
      const usage = {
        prompt_tokens: u.prompt ?? Math.max(1, Math.ceil(JSON.stringify(b.messages).length / 4)),
        completion_tokens: u.completion ?? chunks.length + toolCalls.length * 5,
        total_tokens: 0,
        prompt_tokens_details: { cached_tokens: u.cached ?? 0 },
      };
      usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
      const promptFilter = [{ prompt_index: 0, content_filter_results: FILTER_OK }];
      const choiceFilter = filtered
        ? { ...FILTER_OK, violence: { filtered: true, severity: 'medium' } }
        : FILTER_OK;
      if (b.stream !== true) {
        return ctx.writeJson(200, {
          id,
          object: 'chat.completion',
          created,
          model,
          prompt_filter_results: promptFilter,
          choices: [
            {
              index: 0,
              finish_reason: finish,
              logprobs: null,
              message: {
                role: 'assistant',
                content: filtered ? null : chunks.join('') || (toolCalls.length ? null : ''),
                refusal: null,
                ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
              },
              content_filter_results: choiceFilter,
            },
          ],
          usage,
          system_fingerprint: 'fp_mock',
        });
      }
      const ev = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
      const chunk = (
        delta: unknown,
        finish_reason: string | null = null,
        extra: Record<string, unknown> = {},
      ) =>
        ev({
          id,
          object: 'chat.completion.chunk',
          created,
          model,
          system_fingerprint: 'fp_mock',
          choices: [{ index: 0, delta, finish_reason, logprobs: null, ...extra }],
        });
      // Azure's first event: prompt filter results, no choices, empty id/model.
      const events = [
        ev({ id: '', object: '', created: 0, model: '', choices: [], prompt_filter_results: promptFilter }),
      ];
      events.push(chunk({ role: 'assistant', content: '', refusal: null }));
      for (const c of chunks) events.push(chunk({ content: c }, null, { content_filter_results: FILTER_OK }));
      toolCalls.forEach((t, index) => {
        events.push(
          chunk({
            tool_calls: [
              { index, id: t.id, type: 'function', function: { name: t.function.name, arguments: '' } },
            ],
          }),
        );
        events.push(chunk({ tool_calls: [{ index, function: { arguments: t.function.arguments } }] }));
      });
      events.push(chunk({}, finish, { content_filter_results: choiceFilter }));
      if (b.stream_options?.include_usage === true)
        events.push(ev({ id, object: 'chat.completion.chunk', created, model, choices: [], usage }));
      events.push('data: [DONE]\n\n');
      await ctx.writeEvents(events, (f) =>
        ev({
          error: {
            code: f.errorType ?? 'InternalServerError',
            message: f.message ?? 'The server had an error while processing your request.',
          },
        }),
      );
    },
  });
}
