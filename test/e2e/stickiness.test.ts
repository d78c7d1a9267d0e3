// Conversation stickiness through the gateway with the official SDK: the short follow-up of a
// conversation whose first turn needed the flagship stays on the flagship tier.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatCompletionRequest } from '../../src/core/openai.js';
import { model } from '../helpers/config.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import type { MockServer } from '../mocks/faults.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';

const KEY = 'sk-sticky-e2e';
let oa: MockServer;
let gw: TestGateway;
let sdk: OpenAI;

// The score of a request is that of its newest message only, as for a real short follow-up.
const classify = (req: ChatCompletionRequest) => {
  const last = JSON.stringify(req.messages[req.messages.length - 1]);
  return { score: last.includes('[hard]') ? 0.9 : 0.1, reasons: ['test'] };
};

const config = (stickiness?: object) => ({
  providers: [
    {
      name: 'oa',
      type: 'openai',
      baseUrl: oa.url,
      credentials: { apiKey: '${OA_KEY}' },
      models: [model('oa-mini', 'lightweight', 0.15, 0.6), model('oa-large', 'flagship', 2.5, 10)],
    },
  ],
  policies: [
    {
      name: 'chat',
      virtualModels: ['auto'],
      tiers: [{ name: 'lightweight', maxScore: 0.5 }, { name: 'flagship' }],
      ...(stickiness ? { stickiness } : {}),
    },
  ],
});

beforeAll(async () => {
  oa = await startOpenAIMock({ apiKey: KEY });
  gw = await startTestGateway(config({ mode: 'tier', ttlSeconds: 600 }), { env: { OA_KEY: KEY }, classify });
  sdk = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await gw?.close();
  await oa?.close();
});

async function turn(messages: OpenAI.ChatCompletionMessageParam[]) {
  const { data, response } = await sdk.chat.completions.create({ model: 'auto', messages }).withResponse();
  return {
    data,
    tier: response.headers.get('x-tierflow-tier'),
    sticky: response.headers.get('x-tierflow-sticky'),
  };
}

describe('conversation stickiness', () => {
  it('keeps the follow-up of a flagship conversation on the flagship tier', async () => {
    const history: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'You are a math tutor.' },
      { role: 'user', content: 'Prove that there are infinitely many primes. [hard]' },
    ];
    const first = await turn(history);
    expect(first.tier).toBe('flagship');
    expect(first.sticky).toBeNull();
    history.push({ role: 'assistant', content: first.data.choices[0]!.message.content ?? '' });
    history.push({ role: 'user', content: 'Shorter please.' });
    const second = await turn(history);
    expect(second.tier).toBe('flagship');
    expect(second.sticky).toBe('tier');
    expect(oa.requests.at(-1)!.body).toMatchObject({ model: 'oa-large' });

    // the same follow-up in another conversation is routed by its own score
    const other = await turn([
      { role: 'system', content: 'You are a math tutor.' },
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', content: '4' },
      { role: 'user', content: 'Shorter please.' },
    ]);
    expect(other.tier).toBe('lightweight');

    // the metrics say how often stickiness changed a route, and where scores fall
    const text = await gw.metrics.registry.metrics();
    expect(text).toMatch(/^tierflow_sticky_routes_total\{policy="chat",applied="tier"\} 1$/m);
    expect(text).toMatch(/^tierflow_complexity_score_count\{policy="chat"\} 3$/m);
    expect(text).toMatch(/^tierflow_complexity_score_bucket\{le="0.1",policy="chat"\} 2$/m);
  });

  it('does nothing once the policy turns it off (hot reload)', async () => {
    gw.writeConfig(config());
    for (let i = 0; gw.router.config.policies.get('chat')?.stickiness && i < 250; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(gw.router.config.policies.get('chat')?.stickiness).toBeUndefined();
    const history: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'Derive the quadratic formula. [hard]' },
    ];
    expect((await turn(history)).tier).toBe('flagship');
    history.push({ role: 'assistant', content: 'x = ...' }, { role: 'user', content: 'thanks' });
    const followUp = await turn(history);
    expect(followUp.tier).toBe('lightweight');
    expect(followUp.sticky).toBeNull();
  });
});
