// Sample TierFlow specs shared by the Kubernetes tests.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const openaiProvider = (models: string[] = ['gpt-4o-mini', 'gpt-4o']) => ({
  type: 'openai',
  credentials: { secretRef: { name: 'openai', key: 'apiKey' } },
  models: models.map((name, i) => ({
    name,
    tier: i === 0 ? 'lightweight' : 'flagship',
    pricing: { inputPerMTok: i === 0 ? 0.15 : 2.5, outputPerMTok: i === 0 ? 0.6 : 10 },
    contextWindow: 128000,
    maxOutputTokens: 16384,
  })),
});

export const autoPolicy = (
  refs: [string, string] = ['openai/gpt-4o-mini', 'openai/gpt-4o'],
  virtualModels = ['auto'],
) => ({
  virtualModels,
  tiers: [
    { name: 'lightweight', maxScore: 0.4, models: [refs[0]] },
    { name: 'flagship', models: [refs[1]] },
  ],
});

export const virtualKey = () => ({
  keyHash: 'a'.repeat(64),
  allowedModels: ['auto'],
  budget: { usd: 10, period: 'day' },
  rpm: 60,
});

/** A secrets directory laid out like the webhook mounts it: <dir>/<secret>/<key>. */
export function secretsDir(
  values: Record<string, Record<string, string>> = { openai: { apiKey: 'sk-test-1' } },
) {
  const dir = mkdtempSync(join(tmpdir(), 'tierflow-secrets-'));
  const write = (secret: string, key: string, value: string) => {
    mkdirSync(join(dir, secret), { recursive: true });
    writeFileSync(join(dir, secret, key), value);
  };
  for (const [s, kv] of Object.entries(values)) for (const [k, v] of Object.entries(kv)) write(s, k, v);
  return { dir, write, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
