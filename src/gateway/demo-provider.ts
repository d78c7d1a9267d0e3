// The local demo provider: a tiny OpenAI-format server in the gateway's process, so a fresh
// install with no API keys and no internet still answers. Used only while no real provider
// has credentials; every text answer says so. It honours what shapes an answer, so offline
// trials of client code work: `n` choices, tools (a call when tool_choice is "required" or names
// a function, with arguments valid against the function's schema), and response_format
// (json_object, or a json_schema-valid object).
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sampleFromSchema } from './schema-sample.js';

const NOTICE =
  "This answer comes from TierFlow's local demo provider: no real provider key is configured. " +
  'Set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY (see tierflow.yaml) and restart to route to real models.';

/** The largest `n` the demo answers (OpenAI allows up to 128; the demo needs no more). */
const MAX_N = 16;

export interface DemoProvider {
  url: string;
  close(): Promise<void>;
}

interface DemoRequest {
  model?: string;
  stream?: boolean;
  n?: number;
  messages?: { role: string; content?: unknown }[];
  tools?: { type?: string; function?: { name?: string; parameters?: unknown } }[];
  tool_choice?: unknown;
  response_format?: { type?: string; json_schema?: { schema?: unknown } };
}

type DemoTool = NonNullable<DemoRequest['tools']>[number];

interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** One choice: text or tool calls. */
interface Answer {
  content: string | null;
  toolCalls?: ToolCall[];
  finish: 'stop' | 'tool_calls';
}

export async function startDemoProvider(host = '127.0.0.1'): Promise<DemoProvider> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        return sendError(res, 404, 'not found');
      }
      let body: DemoRequest;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as DemoRequest;
      } catch {
        return sendError(res, 400, 'invalid JSON');
      }
      const n = body.n ?? 1;
      if (!Number.isInteger(n) || n < 1 || n > MAX_N) {
        return sendError(
          res,
          400,
          `n must be an integer from 1 to ${MAX_N} (the demo provider's limit)`,
          'n',
        );
      }
      const model = body.model ?? 'demo';
      const answers = Array.from({ length: n }, (_, i) => answer(body, model, i));
      const promptTokens = Math.ceil(JSON.stringify(body.messages ?? []).length / 4);
      const completionTokens = answers.reduce(
        (sum, a) => sum + Math.ceil((a.content ?? JSON.stringify(a.toolCalls)).length / 4),
        0,
      );
      const usage = {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      };
      const id = `chatcmpl-demo-${Date.now().toString(36)}`;
      const created = Math.floor(Date.now() / 1000);
      if (!body.stream) {
        const text = JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          choices: answers.map((a, index) => ({
            index,
            message: {
              role: 'assistant',
              content: a.content,
              ...(a.toolCalls ? { tool_calls: a.toolCalls } : {}),
            },
            finish_reason: a.finish,
          })),
          usage,
        });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(text);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const chunk = (index: number, delta: object, finish: string | null) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index, delta, finish_reason: finish }] })}\n\n`;
      answers.forEach((a, index) => {
        res.write(chunk(index, { role: 'assistant', content: a.toolCalls ? null : '' }, null));
        if (a.toolCalls) {
          a.toolCalls.forEach((call, k) => {
            res.write(
              chunk(
                index,
                {
                  tool_calls: [
                    {
                      index: k,
                      id: call.id,
                      type: 'function',
                      function: { name: call.function.name, arguments: '' },
                    },
                  ],
                },
                null,
              ),
            );
            res.write(
              chunk(
                index,
                { tool_calls: [{ index: k, function: { arguments: call.function.arguments } }] },
                null,
              ),
            );
          });
        } else {
          for (const word of a.content!.match(/\S+\s*/g) ?? [])
            res.write(chunk(index, { content: word }, null));
        }
        res.write(chunk(index, {}, a.finish));
      });
      res.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`,
      );
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/v1`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function answer(body: DemoRequest, model: string, index: number): Answer {
  const tool = toolToCall(body);
  if (tool) {
    const args = JSON.stringify(sampleFromSchema(tool.function?.parameters ?? { type: 'object' }));
    return {
      content: null,
      toolCalls: [
        {
          id: `call_demo_${Date.now().toString(36)}_${index}`,
          type: 'function',
          function: { name: tool.function!.name!, arguments: args },
        },
      ],
      finish: 'tool_calls',
    };
  }
  const format = body.response_format?.type;
  if (format === 'json_schema') {
    return {
      content: JSON.stringify(sampleFromSchema(body.response_format!.json_schema?.schema)),
      finish: 'stop',
    };
  }
  const lastUser = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user');
  const asked = typeof lastUser?.content === 'string' ? lastUser.content.slice(0, 200) : '';
  if (format === 'json_object') return { content: JSON.stringify({ notice: NOTICE, asked }), finish: 'stop' };
  const choice = index > 0 ? ` (choice ${index + 1})` : '';
  return { content: `[${model}]${choice} ${NOTICE}${asked ? ` You asked: "${asked}"` : ''}`, finish: 'stop' };
}

/** The function tool the answer must call: the one tool_choice names, or the first when it is "required". */
function toolToCall(body: DemoRequest): DemoTool | undefined {
  const tools = (body.tools ?? []).filter(
    (t) => t?.type === 'function' && typeof t.function?.name === 'string',
  );
  if (tools.length === 0) return undefined;
  const choice = body.tool_choice;
  if (choice === 'required') return tools[0];
  if (choice && typeof choice === 'object') {
    const name = (choice as { function?: { name?: unknown } }).function?.name;
    return tools.find((t) => t.function!.name === name);
  }
  return undefined;
}

function sendError(res: ServerResponse, status: number, message: string, param: string | null = null) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type: 'invalid_request_error', param, code: null } }));
}
