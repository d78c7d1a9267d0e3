// Builds compiled configs for tests from a FileConfig-shaped object.
import { compileConfig } from '../../src/core/config/compile.js';
import type { CompiledConfig } from '../../src/core/config/compiled.js';
import type { FileConfig } from '../../src/core/config/schema.js';
import { Secret } from '../../src/core/secret.js';

export const CAPS = ['tools', 'vision', 'jsonSchema', 'streaming'] as const;

export function model(
  name: string,
  tier: string,
  input: number,
  output: number,
  extra: Record<string, unknown> = {},
) {
  return {
    name,
    tier,
    pricing: { inputPerMTok: input, outputPerMTok: output },
    contextWindow: 128_000,
    maxOutputTokens: 16_000,
    capabilities: [...CAPS],
    ...extra,
  };
}

/** Two providers (openai-type "alpha", anthropic-type "beta") and one policy "auto". */
export function sampleFile(urls: { alpha?: string; beta?: string } = {}): FileConfig {
  return {
    providers: [
      {
        name: 'alpha',
        type: 'openai',
        baseUrl: urls.alpha ?? 'http://127.0.0.1:9/v1',
        credentials: { apiKey: 'sk-alpha-secret' },
        models: [model('alpha-mini', 'lightweight', 0.15, 0.6), model('alpha-large', 'flagship', 2.5, 10)],
      },
      {
        name: 'beta',
        type: 'anthropic',
        baseUrl: urls.beta ?? 'http://127.0.0.1:9/v1',
        credentials: { apiKey: 'sk-beta-secret' },
        models: [model('beta-small', 'lightweight', 0.8, 4), model('beta-big', 'flagship', 3, 15)],
      },
    ],
    policies: [
      {
        name: 'default',
        virtualModels: ['auto'],
        tiers: [{ name: 'lightweight', maxScore: 0.5 }, { name: 'flagship' }],
      },
    ],
  } as FileConfig;
}

export function compile(file: unknown): CompiledConfig {
  const r = compileConfig(file, {
    resolveCredentials: (_p, spec) => (spec.apiKey ? { apiKey: new Secret(spec.apiKey) } : {}),
  });
  if (!r.config) throw new Error('config did not compile: ' + JSON.stringify(r.issues));
  return r.config;
}
