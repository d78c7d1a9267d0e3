// Two OpenAI-wire providers for failover tests: a is the cheapest for everything (tried first),
// b the healthy alternative; both offer the model 'shared'.
import { model } from './config.js';

export const KEY_A = 'sk-provider-a-secret';
export const KEY_B = 'sk-provider-b-secret';

export function failoverConfig(
  urls: { a: string; b: string },
  failover: object = {},
  keys: { a?: string } = {},
) {
  return {
    providers: [
      {
        name: 'a',
        type: 'openai',
        baseUrl: urls.a,
        credentials: { apiKey: keys.a ?? KEY_A },
        models: [
          model('a-mini', 'lightweight', 0.1, 0.2),
          model('shared', 'lightweight', 0.2, 0.4),
          model('a-small-context', 'lightweight', 0.1, 0.2, {
            contextWindow: 1000,
            capabilities: ['streaming'],
          }),
        ],
      },
      {
        name: 'b',
        type: 'openai',
        baseUrl: urls.b,
        credentials: { apiKey: KEY_B },
        models: [model('b-mini', 'lightweight', 0.5, 1), model('shared', 'lightweight', 0.6, 1.2)],
      },
    ],
    policies: [
      {
        name: 'default',
        virtualModels: ['auto'],
        tiers: [{ name: 'lightweight', models: ['a/a-mini', 'a/shared', 'b/b-mini', 'b/shared'] }],
        objective: { cost: 1, latency: 0 },
        failover: { firstByteTimeoutMs: 400, deadlineMs: 10_000, maxAttempts: 2, ...failover },
      },
    ],
  };
}
