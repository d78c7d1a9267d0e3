// A mock Google Gemini API server (generateContent / streamGenerateContent) for tests.
//
//   const mock = await startGeminiMock({ apiKey: 'AIza-test' });
//   mock.url                      // http://127.0.0.1:<port>/v1beta  -> provider baseUrl
//   mock.setResponse({ content: 'hi', usage: { prompt: 10, completion: 2, cached: 4 } });
//   mock.setResponse({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
//   mock.setResponse({ stop: 'SAFETY' });              // finishReason SAFETY (content filtered)
//   mock.setResponse({ stop: 'BLOCKED:SAFETY' });      // prompt blocked: promptFeedback.blockReason, no candidates
//   mock.failNext({ kind: 'status', status: 429 });    // RESOURCE_EXHAUSTED with QuotaFailure/RetryInfo details
//   mock.failNext({ kind: 'stream-error', afterEvents: 1 }); // `data: {"error":{...}}` mid-stream
//
// Wire format: POST {base}/models/{model}:generateContent (JSON GenerateContentResponse) and
// POST {base}/models/{model}:streamGenerateContent?alt=sse (SSE, `data: <GenerateContentResponse>`
// events separated by CRLF CRLF; without alt=sse the real API answers one JSON array, and so does
// this mock); POST {base}/models/{model}:batchEmbedContents and :embedContent (deterministic
// vectors, see embeddings.ts). The key comes in x-goog-api-key (or ?key=); a wrong key is answered like Google
// does: 400 INVALID_ARGUMENT with an ErrorInfo detail whose reason is API_KEY_INVALID. Errors are
// {"error":{"code","message","status","details"}}.
// Requests are validated like the real API (unless `strict: false`): contents non-empty with roles
// user/model, every part carrying exactly one data field, function responses answering the calls
// of the previous model turn one for one, tool config naming declared functions, and on
// gemini-3 models a thoughtSignature on the first function call of each model turn (the real
// API's "missing a thought_signature" 400). gemini-3 models send thoughtSignatures on calls.
// Function-call ids (googleapis/js-genai src/types.ts: FunctionCall.id "The unique id of the
// function call. If populated, the client to execute the function_call and return the response
// with the matching id"; FunctionResponse.id "The id of the function call this response is for"):
// gemini-3 models give every call a unique id, and a functionResponse answering a call that had
// one must carry it (ids pair parallel calls of the same function); Gemini 1.x / 2.x know no
// `id` field and reject it as an unknown name.
// Also: generationConfig temperature in [0, 2] and topP in [0, 1]; fileData with an http(s) URI
// (not a Files API resource) needs its mimeType.
import { randomBytes } from 'node:crypto';
import { mockVector } from './embeddings.js';
import {
  type MockReply,
  type MockServer,
  type RecordedRequest,
  type RenderContext,
  startMockServer,
  wordChunks,
} from './faults.js';

export type { Fault, MockReply, MockServer, RecordedRequest } from './faults.js';

export interface GeminiMockOptions {
  /** Expected API key; unset = any (or none) is accepted. */
  apiKey?: string;
  /** Validate requests like the real API (default true). */
  strict?: boolean;
  /** Path prefix; default /v1beta. */
  basePath?: string;
}

const GRPC: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

const MESSAGES: Record<number, string> = {
  400: 'Request contains an invalid argument.',
  403: 'The caller does not have permission',
  404: 'models/unknown is not found for API version v1beta, or is not supported for generateContent.',
  429: 'You exceeded your current quota, please check your plan and billing details.',
  500: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  503: 'The model is overloaded. Please try again later.',
  504: 'Deadline expired before operation could complete.',
};

export function geminiError(code: number, message = MESSAGES[code] ?? 'Error', details: unknown[] = []) {
  const status = GRPC[code] ?? (code >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT');
  if (code === 429 && details.length === 0) {
    details = [
      {
        '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
        violations: [
          {
            quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
            quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
          },
        ],
      },
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' },
    ];
  }
  return { error: { code, message, status, details } };
}

const invalid = (message: string): [number, unknown] => [400, geminiError(400, message)];

type Part = Record<string, unknown>;
const DATA_FIELDS = [
  'text',
  'inlineData',
  'fileData',
  'functionCall',
  'functionResponse',
  'executableCode',
  'codeExecutionResult',
];

type EmbedRequest = {
  model?: unknown;
  content?: { parts?: { text?: unknown }[] };
  outputDimensionality?: unknown;
};

/** models.batchEmbedContents / models.embedContent bodies, checked like the real API. */
function validateEmbed(
  b: Record<string, unknown>,
  model: string,
  method: string,
): [number, unknown] | undefined {
  const requests =
    method === 'embedContent' ? [b as EmbedRequest] : (b.requests as EmbedRequest[] | undefined);
  if (!Array.isArray(requests) || requests.length === 0)
    return invalid('* BatchEmbedContentsRequest.requests: contents is not specified');
  for (const [i, r] of requests.entries()) {
    if (method === 'batchEmbedContents' && r.model !== `models/${model}`)
      return invalid(`* BatchEmbedContentsRequest.requests[${i}].model: model must match the batch model`);
    const parts = r.content?.parts;
    if (!Array.isArray(parts) || parts.length === 0 || parts.some((p) => typeof p?.text !== 'string'))
      return invalid(`* BatchEmbedContentsRequest.requests[${i}].content: parts with text are required`);
  }
  return undefined;
}

function embedAnswer(b: Record<string, unknown>): unknown {
  const one = (r: EmbedRequest) => ({
    values: mockVector(
      (r.content!.parts ?? []).map((p) => String(p.text)).join(''),
      typeof r.outputDimensionality === 'number' ? r.outputDimensionality : undefined,
    ),
  });
  return Array.isArray(b.requests)
    ? { embeddings: (b.requests as EmbedRequest[]).map(one) }
    : { embedding: one(b as EmbedRequest) };
}

function route(path: string, basePath: string): { model: string; method: string } | undefined {
  const m = new RegExp(
    `^${basePath.replace(/[/.]/g, '\\$&')}/models/([^/:]+):(generateContent|streamGenerateContent|batchEmbedContents|embedContent)$`,
  ).exec(path);
  return m ? { model: decodeURIComponent(m[1]!), method: m[2]! } : undefined;
}

const isGemini3 = (model: string) => !/^gemini-(1|2)(\.|-)/.test(model);

function validateBody(b: Record<string, unknown>, model: string): [number, unknown] | undefined {
  const contents = b.contents;
  if (!Array.isArray(contents) || contents.length === 0)
    return invalid('* GenerateContentRequest.contents: contents is not specified');
  const withIds = isGemini3(model);
  let prevCalls = 0;
  let prevCallIds: string[] = [];
  for (let i = 0; i < contents.length; i++) {
    const c = contents[i] as { role?: unknown; parts?: unknown };
    if (c.role !== 'user' && c.role !== 'model')
      return invalid(`Please use a valid role: user, model. (contents[${i}])`);
    if (!Array.isArray(c.parts) || c.parts.length === 0)
      return invalid(`* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`);
    let calls = 0;
    let responses = 0;
    const callIds: string[] = [];
    const answered: string[] = [];
    for (const [j, p] of (c.parts as Part[]).entries()) {
      for (const f of ['functionCall', 'functionResponse'] as const) {
        const v = p[f] as Part | undefined;
        if (v && v.id !== undefined && !withIds)
          return invalid(
            `Invalid JSON payload received. Unknown name "id" at 'contents[${i}].parts[${j}].${f === 'functionCall' ? 'function_call' : 'function_response'}': Cannot find field.`,
          );
      }
      if (p.functionCall && typeof (p.functionCall as Part).id === 'string')
        callIds.push((p.functionCall as Part).id as string);
      if (p.functionResponse && withIds && prevCallIds.length > 0) {
        const id = (p.functionResponse as Part).id;
        if (typeof id !== 'string' || !prevCallIds.includes(id))
          return invalid(
            `contents[${i}].parts[${j}].function_response.id: ${id === undefined ? 'missing' : `'${String(id)}' does not match`} the id of a function call of the previous turn.`,
          );
        if (answered.includes(id))
          return invalid(`contents[${i}].parts[${j}]: function call ${id} answered twice.`);
        answered.push(id);
      }
      if (p.fileData) {
        const fd = p.fileData as Part;
        if (typeof fd.fileUri !== 'string')
          return invalid(`* GenerateContentRequest.contents[${i}].parts[${j}].file_data.file_uri: required`);
        if (
          /^https?:/.test(fd.fileUri) &&
          !fd.fileUri.includes('generativelanguage.googleapis.com') &&
          typeof fd.mimeType !== 'string'
        )
          return invalid(
            `* GenerateContentRequest.contents[${i}].parts[${j}].file_data.mime_type: mime_type is required for file URIs`,
          );
      }
      const fields = DATA_FIELDS.filter((f) => p[f] !== undefined);
      if (fields.length !== 1)
        return invalid(
          `* GenerateContentRequest.contents[${i}].parts[${j}].data: required oneof field 'data' must have one initialized field`,
        );
      if (p.functionCall) {
        if (c.role !== 'model')
          return invalid(`contents[${i}].parts[${j}]: functionCall is only allowed in model turns`);
        if (calls === 0 && /^gemini-3/.test(model) && typeof p.thoughtSignature !== 'string') {
          return invalid(
            `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly. Additional data, function call \`default_api:${String((p.functionCall as Part).name)}\` , position ${j + 1}.`,
          );
        }
        calls++;
      }
      if (p.functionResponse) {
        const fr = p.functionResponse as Part;
        if (
          typeof fr.name !== 'string' ||
          typeof fr.response !== 'object' ||
          fr.response === null ||
          Array.isArray(fr.response)
        ) {
          return invalid(
            `* GenerateContentRequest.contents[${i}].parts[${j}].function_response: name and response (a Struct) are required`,
          );
        }
        responses++;
      }
      if (p.inlineData) {
        const d = p.inlineData as Part;
        if (
          typeof d.mimeType !== 'string' ||
          typeof d.data !== 'string' ||
          !/^[A-Za-z0-9+/]*={0,2}$/.test(d.data)
        ) {
          return invalid(
            `* GenerateContentRequest.contents[${i}].parts[${j}].inline_data: invalid base64 data or mime type`,
          );
        }
      }
    }
    if (responses > 0 && responses !== prevCalls) {
      return invalid(
        'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.',
      );
    }
    prevCalls = calls;
    prevCallIds = callIds;
  }
  const si = b.systemInstruction as { parts?: unknown } | undefined;
  if (si !== undefined && (!Array.isArray(si.parts) || si.parts.length === 0))
    return invalid('* systemInstruction.parts must not be empty');
  const declared = new Set<string>();
  for (const t of (b.tools as
    | { functionDeclarations?: { name?: unknown; parameters?: unknown; parametersJsonSchema?: unknown }[] }[]
    | undefined) ?? []) {
    for (const f of t.functionDeclarations ?? []) {
      if (typeof f.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/.test(f.name))
        return invalid(`* function_declarations: invalid name ${String(f.name)}`);
      if (f.parameters !== undefined && f.parametersJsonSchema !== undefined)
        return invalid('parameters and parametersJsonSchema are mutually exclusive');
      declared.add(f.name);
    }
  }
  const fcc = (
    b.toolConfig as { functionCallingConfig?: { mode?: unknown; allowedFunctionNames?: unknown } } | undefined
  )?.functionCallingConfig;
  if (fcc) {
    if (!['AUTO', 'ANY', 'NONE', 'VALIDATED'].includes(String(fcc.mode)))
      return invalid(`Invalid value at 'tool_config.function_calling_config.mode' (${String(fcc.mode)})`);
    for (const n of (fcc.allowedFunctionNames as string[] | undefined) ?? []) {
      if (!declared.has(n))
        return invalid(`allowed_function_names contains ${n}, which is not a declared function`);
    }
  }
  const gc = b.generationConfig as Record<string, unknown> | undefined;
  if (gc) {
    const known = [
      'temperature',
      'topP',
      'topK',
      'maxOutputTokens',
      'stopSequences',
      'candidateCount',
      'responseMimeType',
      'responseSchema',
      'responseJsonSchema',
      'seed',
      'presencePenalty',
      'frequencyPenalty',
      'thinkingConfig',
      'responseModalities',
    ];
    for (const k of Object.keys(gc))
      if (!known.includes(k))
        return invalid(
          `Invalid JSON payload received. Unknown name "${k}" at 'generation_config': Cannot find field.`,
        );
    if (typeof gc.temperature === 'number' && (gc.temperature < 0 || gc.temperature > 2))
      return invalid(
        `* GenerateContentRequest.generation_config.temperature: must be in the range [0.0, 2.0]`,
      );
    if (typeof gc.topP === 'number' && (gc.topP < 0 || gc.topP > 1))
      return invalid(`* GenerateContentRequest.generation_config.top_p: must be in the range [0.0, 1.0]`);
    const tc = gc.thinkingConfig as Record<string, unknown> | undefined;
    if (tc?.thinkingBudget !== undefined && tc.thinkingLevel !== undefined)
      return invalid('You can only set only one of thinking budget and thinking level.');
    if (tc?.thinkingLevel !== undefined && !isGemini3(model))
      return invalid('Thinking level is not supported for this model.');
    if (gc.responseJsonSchema !== undefined && gc.responseMimeType !== 'application/json')
      return invalid('responseJsonSchema requires responseMimeType application/json');
  }
  return undefined;
}

function lastUserText(contents: unknown): string {
  if (!Array.isArray(contents)) return '';
  for (let i = contents.length - 1; i >= 0; i--) {
    const c = contents[i] as { role?: string; parts?: Part[] };
    if (c.role !== 'user') continue;
    return (c.parts ?? [])
      .map((p) =>
        typeof p.text === 'string'
          ? p.text
          : p.inlineData || p.fileData
            ? '[image]'
            : p.functionResponse
              ? `[function_response ${String((p.functionResponse as Part).name)}]`
              : '',
      )
      .filter(Boolean)
      .join(' ');
  }
  return '';
}

export async function startGeminiMock(options: GeminiMockOptions = {}): Promise<MockServer> {
  const basePath = options.basePath ?? '/v1beta';
  const strict = options.strict ?? true;
  return startMockServer({
    basePath,
    errorBody: (status) => geminiError(status),
    validate(req: RecordedRequest) {
      const url = new URL(req.path, 'http://mock');
      const r = route(url.pathname, basePath);
      if (req.method !== 'POST' || !r)
        return [404, geminiError(404, `Not found: ${req.method} ${url.pathname}`)];
      if (options.apiKey !== undefined) {
        const key = req.headers['x-goog-api-key'] ?? url.searchParams.get('key') ?? undefined;
        if (key === undefined) {
          return [
            403,
            geminiError(
              403,
              "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            ),
          ];
        }
        if (key !== options.apiKey) {
          return [
            400,
            geminiError(400, 'API key not valid. Please pass a valid API key.', [
              {
                '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
                reason: 'API_KEY_INVALID',
                domain: 'googleapis.com',
                metadata: { service: 'generativelanguage.googleapis.com' },
              },
            ]),
          ];
        }
      }
      const b = req.body;
      if (typeof b !== 'object' || b === null) return invalid('Invalid JSON payload received.');
      if (r.method === 'batchEmbedContents' || r.method === 'embedContent')
        return validateEmbed(b, r.model, r.method);
      return strict ? validateBody(b, r.model) : undefined;
    },
    async render(ctx: RenderContext) {
      const { req } = ctx;
      const url = new URL(req.path, 'http://mock');
      const { model, method } = route(url.pathname, basePath)!;
      const b = req.body;
      if (method === 'batchEmbedContents' || method === 'embedContent')
        return ctx.writeJson(200, embedAnswer(b));
      // faults.ts derives the default echo from OpenAI-shaped messages: use Gemini's contents instead.
      const reply: MockReply =
        ctx.reply.content === 'echo: '
          ? { ...ctx.reply, content: `echo: ${lastUserText(b.contents)}` }
          : ctx.reply;
      const u = reply.usage ?? {};
      const promptTokens = u.prompt ?? Math.max(1, Math.ceil(JSON.stringify(b.contents).length / 4));
      const modelVersion = reply.model ?? model;
      const responseId = randomBytes(9).toString('base64url');

      if (reply.stop?.startsWith('BLOCKED:')) {
        const body = {
          promptFeedback: { blockReason: reply.stop.slice(8) },
          usageMetadata: { promptTokenCount: promptTokens, totalTokenCount: promptTokens },
          modelVersion,
          responseId,
        };
        if (method === 'generateContent') return ctx.writeJson(200, body);
        return ctx.writeEvents([`data: ${JSON.stringify(body)}\r\n\r\n`], () => '');
      }

      let chunks = reply.chunks ?? wordChunks(reply.content ?? '');
      const maxOut = (b.generationConfig as { maxOutputTokens?: number } | undefined)?.maxOutputTokens;
      let finish = reply.stop ?? 'STOP';
      if (typeof maxOut === 'number' && chunks.length > maxOut) {
        chunks = chunks.slice(0, maxOut);
        if (reply.stop === undefined) finish = 'MAX_TOKENS';
      }
      const calls: Part[] = (reply.toolCalls ?? []).map((t, i) => {
        const part: Part = {
          functionCall: {
            name: t.name,
            args: typeof t.arguments === 'string' ? JSON.parse(t.arguments || '{}') : t.arguments,
          },
        };
        if (isGemini3(model)) (part.functionCall as Part).id = t.id ?? randomBytes(6).toString('base64url');
        if (i === 0 && /^gemini-3/.test(model)) part.thoughtSignature = randomBytes(24).toString('base64');
        return part;
      });
      const completion = u.completion ?? chunks.length + calls.length * 5;
      const usage = (done: boolean, sofar: number) => ({
        promptTokenCount: promptTokens,
        candidatesTokenCount: done ? completion : sofar,
        totalTokenCount: promptTokens + (done ? completion : sofar),
        ...(u.cached ? { cachedContentTokenCount: u.cached } : {}),
        promptTokensDetails: [{ modality: 'TEXT', tokenCount: promptTokens }],
      });
      const text = chunks.join('');

      if (method === 'generateContent') {
        const parts: Part[] = [];
        if (text !== '') parts.push({ text });
        parts.push(...calls);
        return ctx.writeJson(200, {
          candidates: [{ content: { parts, role: 'model' }, finishReason: finish, index: 0 }],
          usageMetadata: usage(true, 0),
          modelVersion,
          responseId,
        });
      }
      const events: Record<string, unknown>[] = chunks.map((c, i) => ({
        candidates: [{ content: { parts: [{ text: c }], role: 'model' }, index: 0 }],
        usageMetadata: usage(false, i + 1),
        modelVersion,
        responseId,
      }));
      const last: Record<string, unknown> = {
        candidates: [
          {
            content: { parts: calls.length > 0 ? calls : [{ text: '' }], role: 'model' },
            finishReason: finish,
            index: 0,
          },
        ],
        usageMetadata: usage(true, 0),
        modelVersion,
        responseId,
      };
      events.push(last);
      if (url.searchParams.get('alt') !== 'sse') return ctx.writeJson(200, events);
      await ctx.writeEvents(
        events.map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`),
        (f) =>
          `data: ${JSON.stringify(geminiError(f.errorType === 'RESOURCE_EXHAUSTED' ? 429 : 503, f.message))}\r\n\r\n`,
      );
    },
  });
}

export type { MockReply as GeminiMockReply };
