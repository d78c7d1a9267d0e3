// The strict mocks hold the providers' documented rules (each mock cites its source): a request
// breaking one is refused with the provider's kind of 400, and the same request written the
// documented way is accepted. These are the rules the translator tests rely on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicMock } from '../mocks/anthropic-mock.js';
import { startAzureMock } from '../mocks/azure-mock.js';
import { startBedrockMock } from '../mocks/bedrock-mock.js';
import type { MockServer } from '../mocks/faults.js';
import { startGeminiMock } from '../mocks/gemini-mock.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';

let openai: MockServer;
let azure: MockServer;
let anthropic: MockServer;
let gemini: MockServer;
let bedrock: MockServer;

beforeAll(async () => {
  [openai, azure, anthropic, gemini, bedrock] = await Promise.all([
    startOpenAIMock(),
    startAzureMock({ deploymentModels: { reasoner: 'o3-mini' } }),
    startAnthropicMock(),
    startGeminiMock(),
    startBedrockMock(),
  ]);
});
afterAll(async () => {
  await Promise.all([openai, azure, anthropic, gemini, bedrock].map((m) => m.close()));
});

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

const user = [{ role: 'user', content: 'hi' }];

describe('OpenAI and Azure mocks', () => {
  const chat = (b: Record<string, unknown>) =>
    post(`${openai.url}/chat/completions`, { messages: user, ...b });

  it('reasoning models: default sampling only, no max_tokens; o1-mini: no system role', async () => {
    expect((await chat({ model: 'o4-mini', temperature: 0.2 })).status).toBe(400);
    expect((await chat({ model: 'gpt-5', top_p: 0.5 })).status).toBe(400);
    expect((await chat({ model: 'gpt-5', max_tokens: 10 })).status).toBe(400);
    expect((await chat({ model: 'gpt-5', temperature: 1, max_completion_tokens: 10 })).status).toBe(200);
    expect((await chat({ model: 'gpt-5-chat-latest', temperature: 0.2 })).status).toBe(200);
    const sys = [{ role: 'system', content: 'x' }, ...user];
    expect((await chat({ model: 'o1-mini', messages: sys })).status).toBe(400);
    expect((await chat({ model: 'gpt-4.1', temperature: 2.5 })).status).toBe(400);
  });

  it('tool-call ids at most 40 characters, every call answered, results only after calls', async () => {
    const call = (id: string) => ({
      role: 'assistant',
      content: null,
      tool_calls: [{ id, type: 'function', function: { name: 'f', arguments: '{}' } }],
    });
    const ok = await chat({
      model: 'gpt-4.1',
      messages: [...user, call('call_1'), { role: 'tool', tool_call_id: 'call_1', content: 'r' }],
    });
    expect(ok.status).toBe(200);
    const long = 'c'.repeat(41);
    const tooLong = await chat({
      model: 'gpt-4.1',
      messages: [...user, call(long), { role: 'tool', tool_call_id: long, content: 'r' }],
    });
    expect(tooLong.status).toBe(400);
    expect(tooLong.text).toContain('maximum length 40');
    expect((await chat({ model: 'gpt-4.1', messages: [...user, call('call_1'), ...user] })).status).toBe(400);
    expect(
      (
        await chat({
          model: 'gpt-4.1',
          messages: [...user, { role: 'tool', tool_call_id: 'x', content: 'r' }],
        })
      ).status,
    ).toBe(400);
  });

  it('Azure: reasoning deployments and the developer role need api-version 2024-12-01-preview', async () => {
    const at = (deployment: string, version: string) =>
      `${azure.url}/openai/deployments/${deployment}/chat/completions?api-version=${version}`;
    expect((await post(at('reasoner', '2024-10-21'), { messages: user })).status).toBe(400);
    expect((await post(at('reasoner', '2024-12-01-preview'), { messages: user })).status).toBe(200);
    const dev = [{ role: 'developer', content: 'x' }, ...user];
    expect((await post(at('chat', '2024-10-21'), { messages: dev })).status).toBe(400);
    expect((await post(at('chat', '2025-04-01-preview'), { messages: dev })).status).toBe(200);
  });
});

describe('Anthropic mock', () => {
  const msg = (b: Record<string, unknown>) =>
    post(
      `${anthropic.url}/messages`,
      { max_tokens: 10, messages: user, ...b },
      { 'anthropic-version': '2023-06-01' },
    );

  it('models after Opus 4.6: temperature only 1, top_p >= 0.99, no top_k; older: the pair rule only from 4.1', async () => {
    expect((await msg({ model: 'claude-opus-4-7', temperature: 0.5 })).status).toBe(400);
    expect((await msg({ model: 'claude-opus-4-7', temperature: 1 })).status).toBe(200);
    expect((await msg({ model: 'claude-sonnet-5-5', top_p: 0.9 })).status).toBe(400);
    expect((await msg({ model: 'claude-sonnet-5-5', top_p: 0.99 })).status).toBe(200);
    expect((await msg({ model: 'claude-haiku-5-5', top_k: 5 })).status).toBe(400);
    expect((await msg({ model: 'claude-opus-4-6', temperature: 0.5, top_k: 5 })).status).toBe(200);
    expect((await msg({ model: 'claude-sonnet-4-5', temperature: 0.5, top_p: 0.9 })).status).toBe(400);
    expect((await msg({ model: 'claude-3-5-sonnet-20240620', temperature: 0.5, top_p: 0.9 })).status).toBe(
      200,
    );
  });

  it('tool_use ids match ^[a-zA-Z0-9_-]+$', async () => {
    const history = (id: string) => [
      ...user,
      { role: 'assistant', content: [{ type: 'tool_use', id, name: 'f', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: 'r' }] },
    ];
    const tools = [{ name: 'f', input_schema: { type: 'object' } }];
    expect((await msg({ model: 'claude-sonnet-4-5', tools, messages: history('toolu_1') })).status).toBe(200);
    expect((await msg({ model: 'claude-sonnet-4-5', tools, messages: history('fn.f:0') })).status).toBe(400);
  });
});

describe('Gemini mock', () => {
  const gen = (model: string, b: Record<string, unknown>) =>
    post(`${gemini.url}/models/${model}:generateContent`, b);
  const turn = (callId?: string, responseId?: string) => ({
    contents: [
      { role: 'user', parts: [{ text: 'weather?' }] },
      {
        role: 'model',
        parts: [
          {
            functionCall: { name: 'w', args: {}, ...(callId ? { id: callId } : {}) },
            thoughtSignature: 'c2ln',
          },
        ],
      },
      {
        role: 'user',
        parts: [{ functionResponse: { name: 'w', response: {}, ...(responseId ? { id: responseId } : {}) } }],
      },
    ],
  });

  it('Gemini 3: a result answers its call by id; Gemini 2.x: no id field at all', async () => {
    expect((await gen('gemini-3-flash', turn('a1', 'a1'))).status).toBe(200);
    expect((await gen('gemini-3-flash', turn('a1'))).status).toBe(400);
    expect((await gen('gemini-3-flash', turn('a1', 'b2'))).status).toBe(400);
    expect((await gen('gemini-2.5-flash', turn())).status).toBe(200);
    expect((await gen('gemini-2.5-flash', turn('a1', 'a1'))).status).toBe(400);
  });

  it('fileData URLs need a mimeType; sampling within range', async () => {
    const file = (fd: Record<string, unknown>) => ({
      contents: [
        { role: 'user', parts: [{ text: 'x' }, { fileData: { fileUri: 'https://e.com/i', ...fd } }] },
      ],
    });
    expect((await gen('gemini-3-flash', file({}))).status).toBe(400);
    expect((await gen('gemini-3-flash', file({ mimeType: 'image/png' }))).status).toBe(200);
    const text = { contents: [{ role: 'user', parts: [{ text: 'x' }] }] };
    expect((await gen('gemini-3-flash', { ...text, generationConfig: { temperature: 2.5 } })).status).toBe(
      400,
    );
    expect((await gen('gemini-3-flash', { ...text, generationConfig: { temperature: 2 } })).status).toBe(200);
  });
});

describe('Bedrock mock', () => {
  const converse = (modelId: string, b: Record<string, unknown>) =>
    post(`${bedrock.url}/model/${encodeURIComponent(modelId)}/converse`, {
      messages: [{ role: 'user', content: [{ text: 'hi' }] }],
      ...b,
    });
  const claude = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';

  it('temperature and topP within [0, 1]; Claude 4.5 refuses both together', async () => {
    expect((await converse('amazon.nova-pro-v1:0', { inferenceConfig: { temperature: 1.2 } })).status).toBe(
      400,
    );
    expect(
      (await converse('amazon.nova-pro-v1:0', { inferenceConfig: { temperature: 0.2, topP: 0.9 } })).status,
    ).toBe(200);
    expect((await converse(claude, { inferenceConfig: { temperature: 0.2, topP: 0.9 } })).status).toBe(400);
    expect((await converse(claude, { inferenceConfig: { temperature: 0.2 } })).status).toBe(200);
  });

  it('toolConfig with tool blocks; documents with a valid name and format', async () => {
    const history = [
      { role: 'user', content: [{ text: 'hi' }] },
      { role: 'assistant', content: [{ toolUse: { toolUseId: 't1', name: 'f', input: {} } }] },
      { role: 'user', content: [{ toolResult: { toolUseId: 't1', content: [{ text: 'r' }] } }] },
    ];
    expect((await converse(claude, { messages: history })).status).toBe(400);
    const toolConfig = { tools: [{ toolSpec: { name: 'f', inputSchema: { json: { type: 'object' } } } }] };
    expect((await converse(claude, { messages: history, toolConfig })).status).toBe(200);
    const doc = (name: string) => ({
      messages: [
        {
          role: 'user',
          content: [{ text: 'x' }, { document: { format: 'pdf', name, source: { bytes: 'JVBE' } } }],
        },
      ],
    });
    expect((await converse(claude, doc('Q3 report (final)'))).status).toBe(200);
    expect((await converse(claude, doc('report.pdf'))).status).toBe(400);
  });
});
