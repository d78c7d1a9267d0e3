// A mock AWS Bedrock Runtime server (Converse / ConverseStream) for tests.
//
//   const mock = await startBedrockMock({ credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' }, region: 'us-east-1' });
//   mock.url                      // http://127.0.0.1:<port>  -> provider baseUrl
//   mock.setResponse({ content: 'hi', usage: { prompt: 10, completion: 2, cached: 4, cacheWrite: 1 } });
//   mock.setResponse({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
//   mock.failNext(bedrockFault('ThrottlingException'));       // 429 + x-amzn-ErrorType, like Bedrock
//   mock.failNext({ kind: 'stream-error', afterEvents: 2, errorType: 'throttlingException' }); // exception frame
//
// Wire format: POST /model/{modelId}/converse (JSON) and /model/{modelId}/converse-stream
// (application/vnd.amazon.eventstream: binary frames encoded with @smithy/eventstream-codec, the
// AWS SDK's own codec; events messageStart, contentBlockStart/Delta/Stop, messageStop, metadata,
// with `:message-type` event / exception headers and JSON payloads). Errors: the type in the
// x-amzn-ErrorType header and {"message": "..."} in the body.
// Auth: the SigV4 Authorization header is parsed (structure, scope date/region/service,
// x-amz-date freshness, host and x-amz-date signed) and its signature recomputed with
// @smithy/signature-v4 for the known test credentials over the received method, path, signed
// headers and body; any mismatch is a 403 InvalidSignatureException / UnrecognizedClientException,
// as Bedrock answers. A bearer token is accepted when `apiKey` is set (Bedrock API keys).
// Requests are validated like the real API (unless `strict: false`): alternating roles starting
// with user, non-blank text blocks, toolUse/toolResult only with toolConfig, tool results
// answering the previous turn's toolUse ids, image formats, toolUseId pattern.
// From bedrock-runtime service-2.json: InferenceConfiguration temperature and topP are floats in
// [0, 1]; ToolUseId matches [a-zA-Z0-9_-]+ and is 1..64 long; DocumentBlock needs a format (pdf,
// csv, doc, docx, xls, xlsx, html, txt, md), a name (alphanumerics, single whitespace, hyphens,
// parentheses, square brackets) and a source; the toolConfig rule above is the
// ValidationException "The toolConfig field must be defined when using toolUse and toolResult
// content blocks". Claude models keep Anthropic's rules on Bedrock: Claude 4.1 and later reject
// temperature together with topP ("`temperature` and `top_p` cannot both be specified for this
// model"), and models after Claude Opus 4.6 accept temperature only as 1 and topP only >= 0.99
// (anthropic-sdk-typescript messages.ts deprecation notes).
import { mockTokens, mockVector } from './embeddings.js';
import { createHash } from 'node:crypto';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { encodeEventStreamMessage } from '../../src/core/providers/shared/eventstream.js';
import {
  type Fault,
  type MockServer,
  type RecordedRequest,
  type RenderContext,
  sleep,
  startMockServer,
  wordChunks,
} from './faults.js';

export type { Fault, MockReply, MockServer, RecordedRequest } from './faults.js';

export interface BedrockMockOptions {
  /** Known SigV4 credentials; unset = the Authorization header is not checked. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Bedrock API key accepted as a bearer token. */
  apiKey?: string;
  /** Region the signature must be scoped to. Default us-east-1. */
  region?: string;
  strict?: boolean;
}

const STATUS_OF: Record<string, number> = {
  ThrottlingException: 429,
  ServiceQuotaExceededException: 400,
  ModelNotReadyException: 429,
  ValidationException: 400,
  AccessDeniedException: 403,
  UnrecognizedClientException: 403,
  InvalidSignatureException: 403,
  ResourceNotFoundException: 404,
  ModelTimeoutException: 408,
  ModelErrorException: 424,
  InternalServerException: 500,
  ServiceUnavailableException: 503,
};
const TYPE_OF: Record<number, string> = {
  400: 'ValidationException',
  403: 'AccessDeniedException',
  404: 'ResourceNotFoundException',
  408: 'ModelTimeoutException',
  424: 'ModelErrorException',
  429: 'ThrottlingException',
  500: 'InternalServerException',
  503: 'ServiceUnavailableException',
};
const MESSAGES: Record<string, string> = {
  ThrottlingException: 'Too many requests, please wait before trying again.',
  ValidationException: 'The provided request is not valid',
  AccessDeniedException: "You don't have access to the model with the specified model ID.",
  ResourceNotFoundException: 'Could not resolve the foundation model from the provided model identifier.',
  ServiceUnavailableException: 'Bedrock is unable to process your request.',
  InternalServerException: 'The server encountered an internal error while processing the request.',
};

const errorTypeHeader = (type: string) => `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`;

/** A status fault shaped like Bedrock's answer for `type` (status, x-amzn-ErrorType header, body). */
export function bedrockFault(
  type: string,
  message = MESSAGES[type] ?? type,
): Extract<Fault, { kind: 'status' }> {
  return {
    kind: 'status',
    status: STATUS_OF[type] ?? 400,
    headers: { 'x-amzn-errortype': errorTypeHeader(type), 'x-amzn-requestid': 'mock-request-id' },
    body: { message },
  };
}

type Block = Record<string, unknown>;

/** Claude version in a Bedrock model id (us.anthropic.claude-sonnet-4-5-2025...-v1:0 -> 4.5). */
function claudeVersion(modelId: string): number | undefined {
  const m =
    /claude-(?:(?:opus|sonnet|haiku)-(\d+)(?:-(\d)(?!\d))?|(\d+)(?:-(\d)(?!\d))?-(?:opus|sonnet|haiku))/.exec(
      modelId,
    );
  if (!m) return undefined;
  return Number(m[1] ?? m[3]) + Number(m[2] ?? m[4] ?? 0) / 10;
}

const DOCUMENT_FORMATS = ['pdf', 'csv', 'doc', 'docx', 'xls', 'xlsx', 'html', 'txt', 'md'];

function validateInference(b: Record<string, unknown>, modelId: string): string | undefined {
  const ic = b.inferenceConfig as Record<string, unknown> | undefined;
  if (!ic) return undefined;
  for (const k of ['temperature', 'topP'] as const) {
    const v = ic[k];
    if (v !== undefined && (typeof v !== 'number' || v < 0 || v > 1))
      return `1 validation error detected: Value '${String(v)}' at 'inferenceConfig.${k}' failed to satisfy constraint: Member must have value less than or equal to 1`;
  }
  const v = claudeVersion(modelId);
  if (v === undefined) return undefined;
  if (v >= 4.1 && ic.temperature !== undefined && ic.topP !== undefined)
    return 'The model returned the following errors: `temperature` and `top_p` cannot both be specified for this model. Please use only one.';
  if (v > 4.6 && ic.temperature !== undefined && ic.temperature !== 1)
    return 'The model returned the following errors: temperature: only 1.0 is accepted by this model.';
  if (v > 4.6 && typeof ic.topP === 'number' && ic.topP < 0.99)
    return 'The model returned the following errors: top_p: only values >= 0.99 are accepted by this model.';
  return undefined;
}

function validateConverse(b: Record<string, unknown>): string | undefined {
  const msgs = b.messages;
  if (!Array.isArray(msgs) || msgs.length === 0)
    return 'A conversation must start with a user message. Try again with a conversation that starts with a user message.';
  let prevRole: string | undefined;
  let prevToolUse = new Set<string>();
  let usesTools = false;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i] as { role?: unknown; content?: unknown };
    if (m.role !== 'user' && m.role !== 'assistant') return `messages.${i}.role: must be user or assistant`;
    if (i === 0 && m.role !== 'user')
      return 'A conversation must start with a user message. Try again with a conversation that starts with a user message.';
    if (m.role === prevRole)
      return 'A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.';
    if (!Array.isArray(m.content) || m.content.length === 0)
      return `messages.${i}.content: must not be empty`;
    const toolUse = new Set<string>();
    for (const [j, blk] of (m.content as Block[]).entries()) {
      const keys = Object.keys(blk);
      if (keys.length !== 1)
        return `messages.${i}.content.${j}: a content block must have exactly one member`;
      if ('text' in blk && (typeof blk.text !== 'string' || blk.text.trim() === '')) {
        return 'The text field in the ContentBlock object is blank. Add text to the text field, and try again.';
      }
      if ('image' in blk) {
        const img = blk.image as { format?: unknown; source?: { bytes?: unknown } };
        if (!['png', 'jpeg', 'gif', 'webp'].includes(String(img.format)))
          return `messages.${i}.content.${j}.image.format: invalid`;
        if (typeof img.source?.bytes !== 'string')
          return `messages.${i}.content.${j}.image.source.bytes: required`;
      }
      if ('document' in blk) {
        const d = blk.document as { format?: unknown; name?: unknown; source?: { bytes?: unknown } };
        if (!DOCUMENT_FORMATS.includes(String(d.format)))
          return `messages.${i}.content.${j}.document.format: invalid`;
        if (typeof d.name !== 'string' || !/^[A-Za-z0-9\-()[\]]+( [A-Za-z0-9\-()[\]]+)*$/.test(d.name))
          return `messages.${i}.content.${j}.document.name: The document file name can only contain alphanumeric characters, whitespace characters, hyphens, parentheses, and square brackets.`;
        if (typeof d.source?.bytes !== 'string')
          return `messages.${i}.content.${j}.document.source.bytes: required`;
      }
      if ('toolUse' in blk) {
        usesTools = true;
        const tu = blk.toolUse as { toolUseId?: unknown; name?: unknown; input?: unknown };
        if (m.role !== 'assistant')
          return `messages.${i}.content.${j}: toolUse is only allowed in assistant messages`;
        if (typeof tu.toolUseId !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(tu.toolUseId))
          return `messages.${i}.content.${j}.toolUse.toolUseId: invalid`;
        if (typeof tu.input !== 'object' || tu.input === null)
          return `messages.${i}.content.${j}.toolUse.input: must be a JSON object`;
        toolUse.add(tu.toolUseId);
      }
      if ('toolResult' in blk) {
        usesTools = true;
        const tr = blk.toolResult as { toolUseId?: unknown; content?: unknown };
        if (m.role !== 'user')
          return `messages.${i}.content.${j}: toolResult is only allowed in user messages`;
        if (!prevToolUse.has(String(tr.toolUseId))) {
          return `The toolUse blocks at messages.${i - 1}.content do not have a corresponding toolResult block with toolUseId ${String(tr.toolUseId)}.`;
        }
        if (!Array.isArray(tr.content) || tr.content.length === 0)
          return `messages.${i}.content.${j}.toolResult.content: must not be empty`;
      }
    }
    prevToolUse = toolUse;
    prevRole = m.role;
  }
  const tc = b.toolConfig as
    | { tools?: { toolSpec?: { name?: unknown; inputSchema?: { json?: unknown } } }[]; toolChoice?: unknown }
    | undefined;
  if (usesTools && !tc)
    return 'The toolConfig field must be defined when using toolUse and toolResult content blocks.';
  if (tc) {
    if (!Array.isArray(tc.tools) || tc.tools.length === 0) return 'toolConfig.tools: must not be empty';
    for (const t of tc.tools) {
      if (typeof t.toolSpec?.name !== 'string' || typeof t.toolSpec.inputSchema?.json !== 'object')
        return 'toolConfig.tools: toolSpec needs a name and inputSchema.json';
    }
  }
  const ic = b.inferenceConfig as Record<string, unknown> | undefined;
  if (ic)
    for (const k of Object.keys(ic))
      if (!['maxTokens', 'temperature', 'topP', 'stopSequences'].includes(k))
        return `inferenceConfig: unknown field ${k}`;
  if (
    b.system !== undefined &&
    (!Array.isArray(b.system) || b.system.some((s: Block) => typeof s.text !== 'string'))
  )
    return 'system: must be a list of {text}';
  return undefined;
}

const AUTH_RE =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

async function checkAuth(req: RecordedRequest, o: BedrockMockOptions): Promise<[string, string] | undefined> {
  const auth = req.headers.authorization;
  if (o.apiKey !== undefined && typeof auth === 'string' && auth === `Bearer ${o.apiKey}`) return undefined;
  if (!o.credentials)
    return o.apiKey === undefined
      ? undefined
      : ['UnrecognizedClientException', 'The security token included in the request is invalid.'];
  if (typeof auth !== 'string') return ['AccessDeniedException', 'Missing Authentication Token'];
  const m = AUTH_RE.exec(auth);
  if (!m)
    return [
      'IncompleteSignatureException',
      `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.`,
    ];
  const [, keyId, day, region, service, signedHeaders, signature] = m;
  if (keyId !== o.credentials.accessKeyId)
    return ['UnrecognizedClientException', 'The security token included in the request is invalid.'];
  const amzDate = req.headers['x-amz-date'];
  if (typeof amzDate !== 'string' || !/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== day) {
    return [
      'IncompleteSignatureException',
      'x-amz-date is missing or does not match the credential scope date.',
    ];
  }
  const when = Date.parse(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  if (Math.abs(Date.now() - when) > 15 * 60_000) return ['InvalidSignatureException', 'Signature expired.'];
  if (region !== (o.region ?? 'us-east-1') || service !== 'bedrock')
    return ['InvalidSignatureException', `Credential should be scoped to a valid region and service.`];
  const names = signedHeaders!.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date'))
    return ['InvalidSignatureException', 'host and x-amz-date must be signed.'];
  if (
    o.credentials.sessionToken !== undefined &&
    (req.headers['x-amz-security-token'] !== o.credentials.sessionToken ||
      !names.includes('x-amz-security-token'))
  ) {
    return ['UnrecognizedClientException', 'The security token included in the request is invalid.'];
  }
  const bodyHash = createHash('sha256').update(req.raw).digest('hex');
  const claimed = req.headers['x-amz-content-sha256'];
  if (claimed !== undefined && claimed !== bodyHash)
    return [
      'InvalidSignatureException',
      'The provided x-amz-content-sha256 header does not match what was computed.',
    ];
  const headers: Record<string, string> = {};
  for (const n of names) {
    const v = req.headers[n];
    if (v === undefined) return ['InvalidSignatureException', `Signed header ${n} is missing.`];
    headers[n] = Array.isArray(v) ? v.join(',') : v;
  }
  const url = new URL(req.path, 'http://mock');
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signer = new SignatureV4({
    credentials: o.credentials,
    region: region!,
    service: 'bedrock',
    sha256: Sha256,
  });
  const signed = await signer.sign(
    {
      method: req.method,
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: url.pathname,
      query,
      headers,
      body: req.raw,
    },
    { signingDate: new Date(when), signableHeaders: new Set(names) },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1];
  if (expected !== signature) {
    return [
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
    ];
  }
  return undefined;
}

const frame = (type: string, payload: unknown) =>
  Buffer.from(
    encodeEventStreamMessage(
      { ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' },
      JSON.stringify(payload),
    ),
  );
const exceptionFrame = (type: string, message: string) =>
  Buffer.from(
    encodeEventStreamMessage(
      { ':exception-type': type, ':content-type': 'application/json', ':message-type': 'exception' },
      JSON.stringify({ message }),
    ),
  );

/**
 * InvokeModel for the embedding models TierFlow translates: Amazon Titan Text Embeddings V2
 * ({inputText, dimensions: 256 | 512 | 1024, normalize}) and Cohere Embed ({texts: 1..96,
 * input_type}). A validation message, or the answer and its input token count.
 */
function invokeEmbeddings(
  modelId: string,
  b: Record<string, unknown>,
): string | { body: unknown; tokens: number } {
  if (/amazon\.titan-embed-text/.test(modelId)) {
    if (typeof b.inputText !== 'string' || b.inputText === '')
      return 'Malformed input request: #: required key [inputText] not found';
    const dims = b.dimensions ?? 1024;
    if (![256, 512, 1024].includes(dims as number))
      return 'Malformed input request: #/dimensions: 8 is not a valid enum value'.replace('8', String(dims));
    const embedding = mockVector(b.inputText, dims as number);
    const tokens = mockTokens(b.inputText);
    return {
      body: { embedding, inputTextTokenCount: tokens, embeddingsByType: { float: embedding } },
      tokens,
    };
  }
  if (/cohere\.embed/.test(modelId)) {
    const texts = b.texts;
    if (!Array.isArray(texts) || texts.length > 96 || !texts.every((t) => typeof t === 'string'))
      return 'Malformed input request: #/texts: expected type: JSONArray of at most 96 strings';
    if (typeof b.input_type !== 'string')
      return 'Malformed input request: #: required key [input_type] not found';
    if (b.output_dimension !== undefined) {
      if (!/cohere\.embed-v4/.test(modelId))
        return 'Malformed input request: extraneous key [output_dimension] is not permitted';
      const dims = b.output_dimension as number;
      if (![256, 512, 1024, 1536].includes(dims))
        return 'Malformed input request: #/output_dimension: not a valid enum value';
      // Embed v4 answers by type.
      return {
        body: {
          id: 'mock',
          response_type: 'embeddings_by_type',
          texts,
          embeddings: { float: texts.map((t) => mockVector(t, dims)) },
        },
        tokens: texts.reduce((n: number, t: string) => n + mockTokens(t), 0),
      };
    }
    return {
      body: {
        id: 'mock',
        response_type: 'embeddings_floats',
        texts,
        embeddings: texts.map((t) => mockVector(t)),
      },
      tokens: texts.reduce((n: number, t: string) => n + mockTokens(t), 0),
    };
  }
  return `The provided model identifier is invalid: ${modelId}`;
}

export async function startBedrockMock(options: BedrockMockOptions = {}): Promise<MockServer> {
  const strict = options.strict ?? true;
  return startMockServer({
    basePath: '',
    errorBody: (status) => ({ message: MESSAGES[TYPE_OF[status] ?? ''] ?? `HTTP ${status}` }),
    validate(req: RecordedRequest) {
      const m = /^\/model\/([^/]+)\/(converse|converse-stream|invoke)$/.exec(req.path.split('?')[0]!);
      if (req.method !== 'POST' || !m)
        return [404, { message: `Unknown operation ${req.method} ${req.path}` }];
      if (typeof req.body !== 'object' || req.body === null) return [400, { message: 'Invalid JSON body' }];
      return undefined;
    },
    async render(ctx: RenderContext) {
      const { req, res } = ctx;
      const fail = (type: string, message: string) => {
        res.writeHead(STATUS_OF[type] ?? 403, {
          'content-type': 'application/json',
          'x-amzn-errortype': errorTypeHeader(type),
          'x-amzn-requestid': 'mock',
        });
        res.end(JSON.stringify({ message }));
      };
      const authError = await checkAuth(req, options);
      if (authError) return fail(authError[0], authError[1]);
      const b = req.body as Record<string, unknown>;
      if (req.path.split('?')[0]!.endsWith('/invoke')) {
        const modelId = decodeURIComponent(/^\/model\/([^/]+)\//.exec(req.path)![1]!);
        const answer = invokeEmbeddings(modelId, b);
        if (typeof answer === 'string') return fail('ValidationException', answer);
        res.writeHead(200, {
          'content-type': 'application/json',
          'x-amzn-requestid': 'mock',
          'x-amzn-bedrock-input-token-count': String(answer.tokens),
        });
        res.end(JSON.stringify(answer.body));
        return;
      }
      if (strict) {
        const modelId = decodeURIComponent(/^\/model\/([^/]+)\//.exec(req.path)![1]!);
        const problem = validateConverse(b) ?? validateInference(b, modelId);
        if (problem) return fail('ValidationException', problem);
      }
      const stream = req.path.split('?')[0]!.endsWith('/converse-stream');
      const reply = ctx.reply;
      let chunks =
        reply.chunks ??
        wordChunks(reply.content === 'echo: ' ? `echo: ${lastUserText(b.messages)}` : (reply.content ?? ''));
      let stop = reply.stop ?? ((reply.toolCalls ?? []).length > 0 ? 'tool_use' : 'end_turn');
      const maxTokens = (b.inferenceConfig as { maxTokens?: number } | undefined)?.maxTokens;
      if (typeof maxTokens === 'number' && chunks.length > maxTokens) {
        chunks = chunks.slice(0, maxTokens);
        if (reply.stop === undefined) stop = 'max_tokens';
      }
      const tools = (reply.toolCalls ?? []).map((t, i) => ({
        toolUseId: t.id ?? `tooluse_mock${i}${req.at.toString(36)}`,
        name: t.name,
        json: typeof t.arguments === 'string' ? t.arguments : JSON.stringify(t.arguments),
      }));
      const u = reply.usage ?? {};
      const usage = {
        inputTokens: u.prompt ?? Math.max(1, Math.ceil(JSON.stringify(b.messages).length / 4)),
        outputTokens: u.completion ?? chunks.length + tools.length * 5,
        ...(u.cached ? { cacheReadInputTokens: u.cached } : {}),
        ...(u.cacheWrite ? { cacheWriteInputTokens: u.cacheWrite } : {}),
      };
      const totalTokens = usage.inputTokens + usage.outputTokens + (u.cached ?? 0) + (u.cacheWrite ?? 0);
      const text = chunks.join('');
      if (!stream) {
        const content: Block[] = [];
        if (text !== '') content.push({ text });
        for (const t of tools)
          content.push({
            toolUse: { toolUseId: t.toolUseId, name: t.name, input: JSON.parse(t.json || '{}') },
          });
        return ctx.writeJson(
          200,
          {
            output: { message: { role: 'assistant', content } },
            stopReason: stop,
            usage: { ...usage, totalTokens },
            metrics: { latencyMs: 42 },
          },
          { 'x-amzn-requestid': 'mock' },
        );
      }
      const frames: Buffer[] = [frame('messageStart', { role: 'assistant', p: 'abcdefgh' })];
      let index = 0;
      if (text !== '') {
        for (const c of chunks)
          frames.push(
            frame('contentBlockDelta', { contentBlockIndex: index, delta: { text: c }, p: 'abcd' }),
          );
        frames.push(frame('contentBlockStop', { contentBlockIndex: index }));
        index++;
      }
      for (const t of tools) {
        frames.push(
          frame('contentBlockStart', {
            contentBlockIndex: index,
            start: { toolUse: { toolUseId: t.toolUseId, name: t.name } },
          }),
        );
        const step = Math.max(1, Math.ceil(t.json.length / 3));
        for (let i = 0; i < t.json.length; i += step) {
          frames.push(
            frame('contentBlockDelta', {
              contentBlockIndex: index,
              delta: { toolUse: { input: t.json.slice(i, i + step) } },
            }),
          );
        }
        frames.push(frame('contentBlockStop', { contentBlockIndex: index }));
        index++;
      }
      frames.push(frame('messageStop', { stopReason: stop }));
      frames.push(frame('metadata', { usage: { ...usage, totalTokens }, metrics: { latencyMs: 42 } }));
      await writeFrames(ctx, frames);
    },
  });
}

/** Binary counterpart of faults.ts writeEvents, honouring the same fault kinds. */
async function writeFrames(ctx: RenderContext, frames: Buffer[]): Promise<void> {
  const { res, fault } = ctx;
  res.writeHead(200, {
    'content-type': 'application/vnd.amazon.eventstream',
    'x-amzn-requestid': 'mock',
    'x-amzn-bedrock-content-type': 'application/json',
  });
  res.flushHeaders();
  if (fault?.kind === 'slow-first-byte') await sleep(fault.ms);
  const cut =
    fault?.kind === 'reset-mid-stream' || fault?.kind === 'stream-error'
      ? (fault.afterEvents ?? 2)
      : Infinity;
  for (let i = 0; i < frames.length; i++) {
    if (res.destroyed) return;
    if (i === cut) {
      if (fault?.kind === 'stream-error')
        res.end(
          exceptionFrame(
            fault.errorType ?? 'throttlingException',
            fault.message ?? 'Too many tokens, please wait before trying again.',
          ),
        );
      else {
        // Die mid-frame: half of the next frame, then the socket goes.
        res.write(frames[i]!.subarray(0, frames[i]!.length >> 1));
        await sleep(5);
        res.socket?.destroy();
      }
      return;
    }
    res.write(frames[i]);
    if (fault?.kind === 'cadence' && i < frames.length - 1) await sleep(fault.ms);
  }
  res.end();
}

function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { role?: string; content?: Block[] };
    if (m.role !== 'user') continue;
    return (m.content ?? [])
      .map((c) =>
        typeof c.text === 'string'
          ? c.text
          : c.image
            ? '[image]'
            : c.toolResult
              ? `[tool_result ${String((c.toolResult as Block).toolUseId)}]`
              : '',
      )
      .filter(Boolean)
      .join(' ');
  }
  return '';
}
