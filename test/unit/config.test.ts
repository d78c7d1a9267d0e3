import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileConfig, validateFileConfig } from '../../src/core/config/compile.js';
import { loadConfigFile, loadConfigText } from '../../src/config/load.js';
import { Secret } from '../../src/core/secret.js';
import { compile, sampleFile } from '../helpers/config.js';

const resolveCredentials = (_p: string, spec: { apiKey?: string }) =>
  spec.apiKey ? { apiKey: new Secret(spec.apiKey) } : {};

describe('config schema validation', () => {
  it('accepts the sample config', () => {
    expect(validateFileConfig(sampleFile())).toEqual([]);
  });

  it('names the field of a wrong type, an unknown field and a bad enum', () => {
    const f = sampleFile() as unknown as { providers: Record<string, unknown>[] };
    f.providers[0]!.type = 'openia';
    (f.providers[1]!.models as Record<string, unknown>[])[0]!.contextWindow = 'big';
    f.providers[1]!.colour = 'blue';
    const issues = validateFileConfig(f);
    expect(issues).toContainEqual(
      expect.objectContaining({
        path: '/providers/0/type',
        message: expect.stringContaining('openai-compatible'),
      }),
    );
    expect(issues).toContainEqual(expect.objectContaining({ path: '/providers/1/models/0/contextWindow' }));
    expect(issues).toContainEqual(
      expect.objectContaining({ path: '/providers/1/colour', message: "unknown field 'colour'" }),
    );
  });

  it('reports a missing required field by name', () => {
    const f = sampleFile() as unknown as { policies: Record<string, unknown>[] };
    delete f.policies[0]!.tiers;
    expect(validateFileConfig(f)).toContainEqual(
      expect.objectContaining({ path: '/policies/0/tiers', message: "missing required field 'tiers'" }),
    );
  });
});

describe('config compile', () => {
  it('builds tiers from model tiers and indexes models by id and name', () => {
    const c = compile(sampleFile());
    const policy = c.virtualModels.get('auto')!;
    expect(policy.tiers.map((t) => [t.name, t.maxScore, t.candidates.map((m) => m.id)])).toEqual([
      ['lightweight', 0.5, ['alpha/alpha-mini', 'beta/beta-small']],
      ['flagship', 1, ['alpha/alpha-large', 'beta/beta-big']],
    ]);
    expect(c.models.get('beta/beta-big')?.provider.name).toBe('beta');
    expect(c.modelsByName.get('alpha-mini')?.map((m) => m.id)).toEqual(['alpha/alpha-mini']);
    expect(policy.failover.maxAttempts).toBe(3);
  });

  it('rejects references to unknown models and thresholds that do not increase', () => {
    const f = sampleFile();
    f.policies[0]!.tiers = [
      { name: 'lightweight', maxScore: 0.6, models: ['alpha/nope'] },
      { name: 'middle', maxScore: 0.4 },
      { name: 'flagship' },
    ];
    const r = compileConfig(f, { resolveCredentials });
    expect(r.config).toBeUndefined();
    expect(r.issues).toContainEqual(
      expect.objectContaining({ path: '/policies/0/tiers/0/models/0', severity: 'error' }),
    );
    expect(r.issues).toContainEqual(
      expect.objectContaining({ path: '/policies/0/tiers/1/maxScore', severity: 'error' }),
    );
  });

  it('disables a provider without credentials and keeps the demo provider off while a real one works', () => {
    const f = sampleFile();
    f.providers[1]!.credentials = { apiKeyEnv: 'NOPE_NOT_SET' };
    f.providers.push({
      name: 'demo',
      type: 'demo',
      models: [
        {
          name: 'demo-mini',
          tier: 'lightweight',
          pricing: { inputPerMTok: 0, outputPerMTok: 0 },
          contextWindow: 1000,
          maxOutputTokens: 100,
        },
      ],
    });
    const r = compileConfig(f, { resolveCredentials });
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.issues).toContainEqual(
      expect.objectContaining({ path: '/providers/1/credentials', severity: 'warning' }),
    );
    expect(r.config!.providers.get('beta')!.enabled).toBe(false);
    expect(r.config!.providers.get('demo')!.enabled).toBe(false);
    expect([...r.config!.models.keys()]).toEqual(['alpha/alpha-mini', 'alpha/alpha-large']);
  });

  it('turns the demo provider on when no real provider has credentials', () => {
    const f = sampleFile();
    for (const p of f.providers) p.credentials = { apiKeyEnv: 'NOPE_NOT_SET' };
    f.providers.push({
      name: 'demo',
      type: 'demo',
      models: [
        {
          name: 'demo-mini',
          tier: 'lightweight',
          pricing: { inputPerMTok: 0, outputPerMTok: 0 },
          contextWindow: 1000,
          maxOutputTokens: 100,
        },
      ],
    });
    const r = compileConfig(f, { resolveCredentials, demoBaseUrl: 'http://127.0.0.1:1234/v1' });
    expect(r.config!.providers.get('demo')).toMatchObject({
      enabled: true,
      baseUrl: 'http://127.0.0.1:1234/v1',
    });
    expect(r.config!.virtualModels.get('auto')!.tiers[0]!.candidates.map((m) => m.id)).toEqual([
      'demo/demo-mini',
    ]);
  });

  it('rejects a virtual model that shadows a real model and duplicate names', () => {
    const f = sampleFile();
    f.policies[0]!.virtualModels = ['auto', 'alpha-mini'];
    f.providers[1]!.name = 'alpha';
    const r = compileConfig(f, { resolveCredentials });
    expect(r.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['/providers/1/name']));
  });

  it('never prints a key: credentials are Secret objects', () => {
    const c = compile(sampleFile());
    const key = c.providers.get('alpha')!.credentials.apiKey!;
    expect(key.reveal()).toBe('sk-alpha-secret');
    expect(JSON.stringify(c.providers.get('alpha')!.credentials)).not.toContain('sk-alpha');
    expect(String(key)).not.toContain('sk-alpha');
  });
});

describe('config file loading', () => {
  const yaml = `providers:
  - name: alpha
    type: openai
    baseUrl: \${ALPHA_URL:-http://127.0.0.1:9/v1}
    credentials:
      apiKey: \${ALPHA_KEY}
    models:
      - name: m1
        tier: lightweight
        pricing: { inputPerMTok: 1, outputPerMTok: 2 }
        contextWindow: 1000
        maxOutputTokens: 100
policies:
  - name: default
    virtualModels: [auto]
    tiers:
      - name: lightweight
`;

  it('interpolates environment variables, with defaults', () => {
    const r = loadConfigText(yaml, { env: { ALPHA_KEY: 'k-1' } });
    expect(r.config!.providers.get('alpha')!.baseUrl).toBe('http://127.0.0.1:9/v1');
    expect(r.config!.providers.get('alpha')!.credentials.apiKey!.reveal()).toBe('k-1');
    const r2 = loadConfigText(yaml, { env: { ALPHA_KEY: 'k-1', ALPHA_URL: 'http://example.test/v1' } });
    expect(r2.config!.providers.get('alpha')!.baseUrl).toBe('http://example.test/v1');
  });

  it('a missing key variable disables the provider; a missing other variable is an error', () => {
    const r = loadConfigText(yaml, { env: {} });
    expect(r.config!.providers.get('alpha')!.enabled).toBe(false);
    const bad = loadConfigText(yaml.replace('${ALPHA_URL:-http://127.0.0.1:9/v1}', '${ALPHA_URL}'), {
      env: { ALPHA_KEY: 'k' },
    });
    expect(bad.config).toBeUndefined();
    expect(bad.issues).toContainEqual(
      expect.objectContaining({
        path: '/providers/0/baseUrl',
        message: expect.stringContaining('ALPHA_URL'),
        line: 4,
      }),
    );
  });

  it('gives the line of a bad field', () => {
    const r = loadConfigText(yaml.replace('tier: lightweight', 'tier: Light Weight'), {
      env: { ALPHA_KEY: 'k' },
    });
    expect(r.config).toBeUndefined();
    expect(r.issues[0]).toMatchObject({ path: '/providers/0/models/0/tier', line: 9 });
  });

  it('a Bedrock provider without a credentials block uses the standard AWS environment', () => {
    const bedrock = (creds: string) => `providers:
  - name: aws
    type: bedrock
${creds}    models:
      - { name: nova, tier: lightweight, pricing: { inputPerMTok: 0.035, outputPerMTok: 0.14 }, contextWindow: 128000, maxOutputTokens: 10000 }
policies:
  - { name: default, virtualModels: [auto], tiers: [{ name: lightweight }] }
`;
    const env = {
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_REGION: 'eu-west-1',
    };
    const fromEnv = loadConfigText(bedrock(''), { env }).config!.providers.get('aws')!;
    expect(fromEnv.enabled).toBe(true);
    expect(fromEnv.region).toBe('eu-west-1');
    expect(fromEnv.baseUrl).toBe('https://bedrock-runtime.eu-west-1.amazonaws.com');
    expect(fromEnv.credentials.awsAccessKeyId!.reveal()).toBe('AKIAEXAMPLE');
    // Declared credentials that are missing disable it, even with AWS keys in the environment.
    const declared = loadConfigText(bedrock('    credentials: { apiKeyEnv: AWS_BEARER_TOKEN_BEDROCK }\n'), {
      env,
    });
    expect(declared.config!.providers.get('aws')!.enabled).toBe(false);
    const withToken = loadConfigText(bedrock('    credentials: { apiKeyEnv: AWS_BEARER_TOKEN_BEDROCK }\n'), {
      env: { AWS_BEARER_TOKEN_BEDROCK: 'bedrock-api-key' },
    });
    expect(withToken.config!.providers.get('aws')!).toMatchObject({ enabled: true, region: 'us-east-1' });
  });

  it('reports YAML syntax errors with a line', () => {
    const r = loadConfigText('providers:\n  - name: [unclosed\n', {});
    expect(r.config).toBeUndefined();
    expect(r.issues[0]!.message).toMatch(/YAML syntax/);
    expect(r.issues[0]!.line).toBeGreaterThan(0);
  });

  it('the shipped tierflow.yaml compiles, in demo mode without keys and with real providers with keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tf-'));
    writeFileSync(join(dir, 'x'), '');
    const noKeys = loadConfigFile('tierflow.yaml', { env: {}, demoBaseUrl: 'http://127.0.0.1:1/v1' });
    expect(noKeys.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const enabled = [...noKeys.config!.providers.values()].filter((p) => p.enabled).map((p) => p.type);
    expect(enabled).toEqual(['demo']);
    const withKeys = loadConfigFile('tierflow.yaml', {
      env: { OPENAI_API_KEY: 'a', ANTHROPIC_API_KEY: 'b', GEMINI_API_KEY: 'c' },
    });
    const types = [...withKeys.config!.providers.values()].filter((p) => p.enabled).map((p) => p.type);
    expect(types).toEqual(expect.arrayContaining(['openai', 'anthropic', 'gemini']));
    expect(types).not.toContain('demo');
    const auto = withKeys.config!.virtualModels.get('auto')!;
    expect(auto.tiers.every((t) => t.candidates.length > 0)).toBe(true);
  });
});
