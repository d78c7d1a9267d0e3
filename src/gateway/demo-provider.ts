// The local demo provider: a tiny OpenAI-format server in the gateway's process, so a fresh
// install with no API keys and no internet still answers. Used only while no real provider
// has credentials; every answer says so.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const NOTICE =
  "This answer comes from TierFlow's local demo provider: no real provider key is configured. " +
  'Set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY (see tierflow.yaml) and restart to route to real models.';

export interface DemoProvider {
  url: string;
  close(): Promise<void>;
}

export async function startDemoProvider(host = '127.0.0.1'): Promise<DemoProvider> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: { message: 'not found', type: 'invalid_request_error', param: null, code: null },
          }),
        );
        return;
      }
      let body: { model?: string; stream?: boolean; messages?: { role: string; content?: unknown }[] };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: { message: 'invalid JSON', type: 'invalid_request_error', param: null, code: null },
          }),
        );
        return;
      }
      const model = body.model ?? 'demo';
      const lastUser = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user');
      const asked = typeof lastUser?.content === 'string' ? lastUser.content : '';
      const text = `[${model}] ${NOTICE}${asked ? ` You asked: "${asked.slice(0, 200)}"` : ''}`;
      const promptTokens = Math.ceil(JSON.stringify(body.messages ?? []).length / 4);
      const completionTokens = Math.ceil(text.length / 4);
      const usage = {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      };
      const id = `chatcmpl-demo-${Date.now().toString(36)}`;
      const created = Math.floor(Date.now() / 1000);
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id,
            object: 'chat.completion',
            created,
            model,
            choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
            usage,
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const chunk = (delta: object, finish: string | null, extra: object = {}) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
      res.write(chunk({ role: 'assistant', content: '' }, null));
      for (const word of text.match(/\S+\s*/g) ?? []) res.write(chunk({ content: word }, null));
      res.write(chunk({}, 'stop'));
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
