// One tool-using conversation whose turns are served by different families: Gemini 3, then OpenAI,
// then Anthropic, then Bedrock (each time the providers before it fail, stickiness off), then
// Gemini again with the whole mixed history. The client is the official openai SDK keeping its
// history the way applications do; every mock is strict (ids, lengths, echo rules, pairing,
// toolConfig, thought signatures), and each provider's request is checked for results paired with
// the right calls, in its own wire format. It runs on both data planes: the gateway, and the
// sidecar (the Envoy harness in front of the ext_proc server, failing over from response_headers).
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicMock } from '../mocks/anthropic-mock.js';
import { startBedrockMock } from '../mocks/bedrock-mock.js';
import type { MockServer } from '../mocks/faults.js';
import { startGeminiMock } from '../mocks/gemini-mock.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { compileConfig } from '../../src/core/config/compile.js';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { Secret } from '../../src/core/secret.js';
import { createLogger, type Logger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import { type SidecarUnderTest, startSidecar } from '../extproc/sidecar.js';

type Msg = OpenAI.Chat.Completions.ChatCompletionMessageParam;
type Json = Record<string, any>;

const KEYS = {
  GEMINI: 'gem-key-123456',
  OPENAI: 'sk-openai-123456',
  ANTHROPIC: 'sk-ant-123456',
  BEDROCK: 'bedrock-123456',
};
const pricing = { inputPerMTok: 1, outputPerMTok: 1 };
const caps = ['tools', 'vision', 'jsonSchema', 'streaming'];
const model = (name: string, upstreamModel: string) => ({
  name,
  upstreamModel,
  tier: 'pool',
  pricing,
  contextWindow: 200_000,
  maxOutputTokens: 16_000,
  capabilities: caps,
});

let gemini: MockServer;
let openaiMock: MockServer;
let anthropic: MockServer;
let bedrock: MockServer;
let gw: TestGateway;
/** The sidecar: the Envoy harness in front of TierFlow's ext_proc server. */
let sidecar: SidecarUnderTest & { upstream: UpstreamClient; health: HealthRegistry };
const clients: Record<'gateway' | 'sidecar', OpenAI> = {} as never;
/** Each plane's request log lines. */
const requestLog: Record<'gateway' | 'sidecar', Json[]> = { gateway: [], sidecar: [] };
const capture = (plane: 'gateway' | 'sidecar'): Logger =>
  createLogger('info', {}, (line) => {
    const entry = JSON.parse(line) as Json;
    if (entry.msg === 'request') requestLog[plane].push(entry);
  });

function configFile() {
  return {
    providers: [
      {
        name: 'google',
        type: 'gemini',
        baseUrl: gemini.url,
        credentials: { apiKeyEnv: 'GEMINI' },
        models: [model('gem', 'gemini-3-flash')],
      },
      {
        name: 'openai',
        type: 'openai',
        baseUrl: openaiMock.url,
        credentials: { apiKeyEnv: 'OPENAI' },
        models: [model('gpt', 'gpt-6.2-sol')],
      },
      {
        name: 'anthropic',
        type: 'anthropic',
        baseUrl: anthropic.url,
        credentials: { apiKeyEnv: 'ANTHROPIC' },
        models: [model('claude', 'claude-sonnet-5-5')],
      },
      {
        name: 'aws',
        type: 'bedrock',
        baseUrl: bedrock.url,
        region: 'us-east-1',
        credentials: { apiKeyEnv: 'BEDROCK' },
        models: [model('bedrock-claude', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0')],
      },
    ],
    policies: [
      {
        name: 'pool',
        virtualModels: ['pool'],
        objective: { cost: 0, latency: 0 },
        tiers: [
          { name: 'pool', models: ['google/gem', 'openai/gpt', 'anthropic/claude', 'aws/bedrock-claude'] },
        ],
        failover: { maxAttempts: 4 },
        stickiness: { mode: 'off' },
      },
    ],
  };
}

beforeAll(async () => {
  [gemini, openaiMock, anthropic, bedrock] = await Promise.all([
    startGeminiMock({ apiKey: KEYS.GEMINI }),
    startOpenAIMock({ apiKey: KEYS.OPENAI }),
    startAnthropicMock({ apiKey: KEYS.ANTHROPIC }),
    startBedrockMock({ apiKey: KEYS.BEDROCK }),
  ]);
  gw = await startTestGateway(configFile(), { env: KEYS, log: capture('gateway') });
  clients.gateway = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 });

  const compiled = compileConfig(configFile(), {
    resolveCredentials: (_p, spec) => ({ apiKey: new Secret(KEYS[spec.apiKeyEnv as keyof typeof KEYS]) }),
  }).config!;
  const health = new HealthRegistry();
  const upstream = new UpstreamClient();
  const deps = {
    router: new Router({ config: compiled, health }),
    metrics: new Metrics({ defaultMetrics: false }),
    log: capture('sidecar'),
    client: upstream,
  };
  sidecar = { ...(await startSidecar(deps)), upstream, health };
  clients.sidecar = new OpenAI({ baseURL: `${sidecar.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close(0);
  await sidecar?.close();
  await sidecar?.upstream.close();
  sidecar?.health.close();
  await Promise.all([gemini, openaiMock, anthropic, bedrock].map((m) => m?.close()));
});

const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];
const weatherOf = (city: string) => `${city}: ${city.length + 10}C`;

/** One turn: the providers in `failing` answer 503, the next one serves. */
async function turn(client: OpenAI, history: Msg[], failing: MockServer[]) {
  for (const m of failing) m.failNext({ kind: 'status', status: 503 });
  const { data, response } = await client.chat.completions
    .create({ model: 'pool', messages: history, tools, temperature: 0.3 })
    .withResponse();
  return { data, headers: response.headers };
}

/** The client runs the tools, answering the calls in reverse order (pairing must follow ids). */
function answer(history: Msg[], message: OpenAI.Chat.Completions.ChatCompletionMessage): void {
  history.push(message as Msg);
  for (const call of [...(message.tool_calls ?? [])].reverse()) {
    if (call.type !== 'function') continue;
    const { city } = JSON.parse(call.function.arguments) as { city: string };
    history.push({ role: 'tool', tool_call_id: call.id, content: weatherOf(city) });
  }
}

/** call id -> city, result id -> text, as a provider received them. */
interface Pairs {
  calls: Map<string, string>;
  results: Map<string, string>;
}

function expectPaired(p: Pairs, expectedCalls: number): void {
  expect(p.calls.size).toBe(expectedCalls);
  expect(p.results.size).toBe(expectedCalls);
  for (const [id, city] of p.calls) expect(p.results.get(id), `result for ${id}`).toBe(weatherOf(city));
}

function openaiPairs(b: Json): Pairs {
  const p: Pairs = { calls: new Map(), results: new Map() };
  for (const m of b.messages) {
    for (const c of m.tool_calls ?? []) p.calls.set(c.id, JSON.parse(c.function.arguments).city);
    if (m.role === 'tool') p.results.set(m.tool_call_id, m.content);
  }
  return p;
}

function anthropicPairs(b: Json): Pairs {
  const p: Pairs = { calls: new Map(), results: new Map() };
  for (const m of b.messages) {
    if (!Array.isArray(m.content)) continue;
    for (const blk of m.content) {
      if (blk.type === 'tool_use') p.calls.set(blk.id, blk.input.city);
      if (blk.type === 'tool_result') p.results.set(blk.tool_use_id, blk.content);
    }
  }
  return p;
}

function bedrockPairs(b: Json): Pairs {
  const p: Pairs = { calls: new Map(), results: new Map() };
  for (const m of b.messages)
    for (const blk of m.content) {
      if (blk.toolUse) p.calls.set(blk.toolUse.toolUseId, blk.toolUse.input.city);
      if (blk.toolResult) p.results.set(blk.toolResult.toolUseId, blk.toolResult.content[0].text);
    }
  return p;
}

function geminiPairs(b: Json): Pairs {
  const p: Pairs = { calls: new Map(), results: new Map() };
  for (const c of b.contents)
    for (const part of c.parts) {
      if (part.functionCall) p.calls.set(part.functionCall.id, part.functionCall.args.city);
      if (part.functionResponse)
        p.results.set(part.functionResponse.id, part.functionResponse.response.result);
    }
  return p;
}

describe.each(['gateway', 'sidecar'] as const)(
  'a tool conversation across Gemini, OpenAI, Anthropic and Bedrock (%s)',
  (plane) => {
    it('keeps valid ids and correctly paired results on every turn', async () => {
      const client = clients[plane];
      const log = requestLog[plane];
      for (const m of [gemini, openaiMock, anthropic, bedrock]) m.reset();
      const history: Msg[] = [
        { role: 'developer', content: 'Use metric units.' },
        { role: 'user', content: 'Weather in Paris and London? Then Tokyo, Berlin, and a summary.' },
      ];

      // Turn 1, Gemini 3: two parallel calls of the same function, each with Gemini's own id.
      gemini.setResponse({
        content: '',
        toolCalls: [
          { id: 'gc-paris', name: 'get_weather', arguments: { city: 'Paris' } },
          { id: 'gc-london', name: 'get_weather', arguments: { city: 'London' } },
        ],
      });
      const t1 = await turn(client, history, []);
      expect(t1.headers.get('x-tierflow-provider')).toBe('google');
      const calls1 = t1.data.choices[0]!.message.tool_calls!;
      expect(calls1).toHaveLength(2);
      expect(new Set(calls1.map((c) => c.id)).size).toBe(2);
      // The first call carries Gemini 3's thought signature: its id is longer than OpenAI allows.
      expect(calls1[0]!.id.length).toBeGreaterThan(40);
      for (const c of calls1) expect(c.id).toMatch(/^[A-Za-z0-9_-]+$/);
      answer(history, t1.data.choices[0]!.message);

      // Turn 2, OpenAI (Gemini fails): ids over 40 characters shortened, consistently.
      openaiMock.setResponse({
        content: '',
        toolCalls: [{ id: 'call_openai_tokyo', name: 'get_weather', arguments: { city: 'Tokyo' } }],
      });
      const t2 = await turn(client, history, [gemini]);
      expect(t2.headers.get('x-tierflow-provider')).toBe('openai');
      expect(t2.headers.get('x-tierflow-adjusted')).toBe('temperature,tool_call_ids');
      expect(log.at(-1)).toMatchObject({
        provider: 'openai',
        adjusted: ['temperature', 'tool_call_ids'],
      });
      const sent2 = openaiMock.lastRequest!.body;
      expect(sent2.temperature).toBeUndefined();
      for (const id of openaiPairs(sent2).calls.keys()) expect(id.length).toBeLessThanOrEqual(40);
      expectPaired(openaiPairs(sent2), 2);
      answer(history, t2.data.choices[0]!.message);

      // Turn 3, Anthropic (Gemini and OpenAI fail).
      anthropic.setResponse({
        content: '',
        toolCalls: [{ id: 'toolu_berlin', name: 'get_weather', arguments: { city: 'Berlin' } }],
      });
      const t3 = await turn(client, history, [gemini, openaiMock]);
      expect(t3.headers.get('x-tierflow-provider')).toBe('anthropic');
      expect(t3.headers.get('x-tierflow-adjusted')).toBe('temperature');
      expectPaired(anthropicPairs(anthropic.lastRequest!.body), 3);
      answer(history, t3.data.choices[0]!.message);

      // Turn 4, Bedrock (the three others fail): ids within 64 characters, toolConfig present.
      bedrock.setResponse({ content: 'Paris 15C, London 16C, Tokyo 15C, Berlin 16C.' });
      const t4 = await turn(client, history, [gemini, openaiMock, anthropic]);
      expect(t4.headers.get('x-tierflow-provider')).toBe('aws');
      expect(t4.headers.get('x-tierflow-attempts')).toBe('4');
      const sent4 = bedrock.lastRequest!.body;
      expect(sent4.inferenceConfig.temperature).toBe(0.3);
      expectPaired(bedrockPairs(sent4), 4);
      for (const id of bedrockPairs(sent4).calls.keys()) expect(id).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
      history.push(t4.data.choices[0]!.message as Msg);

      // Turn 5, Gemini again with the mixed history: its own ids come back as it minted them, other
      // providers' calls carry the client's ids, every result pairs by id.
      history.push({ role: 'user', content: 'Thanks. Any of them below 16C?' });
      gemini.setResponse({ content: 'Paris and Tokyo.' });
      const t5 = await turn(client, history, []);
      expect(t5.headers.get('x-tierflow-provider')).toBe('google');
      expect(t5.data.choices[0]!.message.content).toBe('Paris and Tokyo.');
      const pairs5 = geminiPairs(gemini.lastRequest!.body);
      expectPaired(pairs5, 4);
      expect([...pairs5.calls.keys()].slice(0, 2)).toEqual(['gc-paris', 'gc-london']);
      if (plane === 'sidecar') {
        expect(sidecar.harness.violations).toEqual([]);
        expect(sidecar.harness.grpcErrors).toEqual([]);
      }
    });
  },
);
