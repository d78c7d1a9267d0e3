import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { compileConfig, validateFileConfig } from '../../src/core/config/compile.js';
import { claudeVersion, compareApiVersions, PARAM_NAMES } from '../../src/core/config/model-facts.js';
import { defaultModelFacts, resolveModelFacts } from '../../src/core/providers/table.js';
import {
  Adjustments,
  adaptParam,
  adaptSampling,
  fitToolCallId,
} from '../../src/core/providers/shared/common.js';
import { Secret } from '../../src/core/secret.js';

describe('default model facts by provider type and family', () => {
  it('OpenAI reasoning models take only default sampling; chat models take ranges', () => {
    for (const m of ['o3', 'o4-mini', 'gpt-5', 'gpt-5-mini', 'gpt-5.1', 'gpt-6.2-sol', 'gpt-6-luna']) {
      const f = defaultModelFacts('openai', m);
      expect(f.temperature, m).toEqual({ support: 'defaultOnly', default: 1 });
      expect(f.topP.support, m).toBe('defaultOnly');
    }
    for (const m of ['gpt-4.1', 'gpt-4o-mini', 'gpt-5-chat-latest', 'gpt-5.2-chat']) {
      expect(defaultModelFacts('openai', m).temperature, m).toMatchObject({
        support: 'range',
        min: 0,
        max: 2,
      });
    }
    expect(defaultModelFacts('openai', 'gpt-4.1').toolCallIdMaxLength).toBe(40);
    expect(defaultModelFacts('openai', 'o1-mini')).toMatchObject({ systemRole: false, developerRole: false });
    expect(defaultModelFacts('openai-compatible', 'llama-3.3').developerRole).toBe(false);
    expect(defaultModelFacts('azure-openai', 'o4-mini').minApiVersion).toBe('2024-12-01-preview');
    expect(defaultModelFacts('azure-openai', 'gpt-4.1').minApiVersion).toBeUndefined();
    // An Azure deployment name says nothing; the model name does.
    expect(defaultModelFacts('azure-openai', 'prod-1', 'gpt-6.2-sol').minApiVersion).toBe(
      '2024-12-01-preview',
    );
  });

  it('Claude: versions from Anthropic and Bedrock ids, and the rules of each generation', () => {
    expect(claudeVersion('claude-opus-4-6')).toBe(4.6);
    expect(claudeVersion('claude-opus-4-20250514')).toBe(4);
    expect(claudeVersion('claude-sonnet-4-5-20250929')).toBe(4.5);
    expect(claudeVersion('us.anthropic.claude-haiku-4-5-20251001-v1:0')).toBe(4.5);
    expect(claudeVersion('claude-3-5-sonnet-20240620')).toBe(3.5);
    expect(claudeVersion('claude-opus-5-5')).toBe(5.5);
    expect(claudeVersion('amazon.nova-pro-v1:0')).toBeUndefined();

    const opus46 = defaultModelFacts('anthropic', 'claude-opus-4-6');
    expect(opus46.temperature).toMatchObject({ support: 'range', min: 0, max: 1 });
    expect(opus46.temperatureWithTopP).toBe(false);
    const later = defaultModelFacts('anthropic', 'claude-sonnet-5-5');
    expect(later.temperature).toEqual({ support: 'defaultOnly', default: 1 });
    expect(later.topP).toEqual({ support: 'range', min: 0.99, max: 1, outside: 'drop' });
    expect(later.topK.support).toBe('none');
    expect(defaultModelFacts('anthropic', 'claude-3-5-sonnet-20240620').temperatureWithTopP).toBe(true);
    expect(
      defaultModelFacts('bedrock', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0').temperatureWithTopP,
    ).toBe(false);
    const nova = defaultModelFacts('bedrock', 'amazon.nova-pro-v1:0');
    expect(nova).toMatchObject({ temperatureWithTopP: true, toolCallIdMaxLength: 64 });
    expect(nova.topK.support).toBe('none');
  });

  it('Gemini: ids echoed from Gemini 3 on, never on 1.x / 2.x', () => {
    expect(defaultModelFacts('gemini', 'gemini-2.5-flash').toolCallIdEcho).toBe(false);
    expect(defaultModelFacts('gemini', 'models/gemini-1.5-pro').toolCallIdEcho).toBe(false);
    expect(defaultModelFacts('gemini', 'gemini-3-pro-preview').toolCallIdEcho).toBe(true);
    expect(defaultModelFacts('gemini', 'gemini-4-neon').toolCallIdEcho).toBe(true);
  });

  it('catalog facts replace the defaults field by field', () => {
    const f = resolveModelFacts('openai', 'gpt-4.1', 'gpt-4.1', {
      temperature: { support: 'none' },
      toolCallIdMaxLength: 64,
    });
    expect(f.temperature).toEqual({ support: 'none' });
    expect(f.toolCallIdMaxLength).toBe(64);
    expect(f.topP).toEqual(defaultModelFacts('openai', 'gpt-4.1').topP);
  });

  it('orders api-versions by date, a preview before its GA, v1 last', () => {
    expect(compareApiVersions('2024-10-21', '2024-12-01-preview')).toBeLessThan(0);
    expect(compareApiVersions('2025-04-01-preview', '2024-12-01-preview')).toBeGreaterThan(0);
    expect(compareApiVersions('2024-12-01-preview', '2024-12-01')).toBeLessThan(0);
    expect(compareApiVersions('v1', '2025-04-01-preview')).toBeGreaterThan(0);
    expect(compareApiVersions('2024-10-21', '2024-10-21')).toBe(0);
  });
});

describe('adapting parameters', () => {
  it('clamps, drops or keeps a value and records only real changes', () => {
    const a = new Adjustments();
    expect(adaptParam(1.5, { support: 'range', min: 0, max: 1 }, 'temperature', a)).toBe(1);
    expect(
      adaptParam(0.5, { support: 'range', min: 0.99, max: 1, outside: 'drop' }, 'top_p', a),
    ).toBeUndefined();
    expect(adaptParam(1, { support: 'defaultOnly', default: 1 }, 'x', a)).toBe(1);
    expect(adaptParam(0.2, { support: 'defaultOnly', default: 1 }, 'temperature', a)).toBeUndefined();
    expect(adaptParam(40, { support: 'none' }, 'top_k', a)).toBeUndefined();
    expect(adaptParam(undefined, { support: 'none' }, 'seed', a)).toBeUndefined();
    expect(a.list).toEqual(['temperature', 'top_p', 'top_k']);
    expect(a.headers({})).toEqual({ 'x-tierflow-adjusted': 'temperature,top_p,top_k' });
    expect(new Adjustments().headers({})).toEqual({});
  });

  it('drops top_p next to temperature where the model takes only one', () => {
    const facts = defaultModelFacts('anthropic', 'claude-sonnet-4-5');
    const a = new Adjustments();
    expect(adaptSampling({ model: 'x', messages: [], temperature: 0.3, top_p: 0.9 }, facts, a)).toMatchObject(
      {
        temperature: 0.3,
        topP: undefined,
      },
    );
    expect(a.list).toEqual(['top_p']);
    expect(adaptSampling({ model: 'x', messages: [], top_p: 0.9 }, facts, new Adjustments()).topP).toBe(0.9);
  });

  it('fits tool-call ids: unchanged when valid, else a stable short id', () => {
    expect(fitToolCallId('call_abc-123', 40)).toBe('call_abc-123');
    const long = 'x'.repeat(300);
    const a = fitToolCallId(long, 40);
    expect(a).toMatch(/^call_[A-Za-z0-9_-]+$/);
    expect(a.length).toBeLessThanOrEqual(40);
    expect(fitToolCallId(long, 40)).toBe(a);
    expect(fitToolCallId(`${long}y`, 40)).not.toBe(a);
    expect(fitToolCallId('functions.get:0', 64)).toMatch(/^call_[A-Za-z0-9_-]+$/);
  });
});

describe('facts in the configuration', () => {
  const file = (facts: unknown) => ({
    providers: [
      {
        name: 'p',
        type: 'openai',
        credentials: { apiKey: 'k' },
        models: [
          {
            name: 'm',
            tier: 't',
            pricing: { inputPerMTok: 1, outputPerMTok: 1 },
            contextWindow: 1000,
            maxOutputTokens: 100,
            facts,
          },
        ],
      },
    ],
    policies: [{ name: 'd', virtualModels: ['auto'], tiers: [{ name: 't' }] }],
  });
  const compile = (f: unknown) =>
    compileConfig(f, { resolveCredentials: (_p, s) => (s.apiKey ? { apiKey: new Secret(s.apiKey) } : {}) });

  it('compiles catalog facts over the defaults, and rejects malformed ones', () => {
    const r = compile(
      file({ temperature: { support: 'range', min: 0, max: 1 }, minApiVersion: '2025-04-01-preview' }),
    );
    const m = r.config!.models.get('p/m')!;
    expect(m.facts.temperature).toEqual({ support: 'range', min: 0, max: 1 });
    expect(m.facts.minApiVersion).toBe('2025-04-01-preview');
    expect(m.facts.toolCallIdMaxLength).toBe(40);
    expect(validateFileConfig(file({ temperature: { support: 'sometimes' } })).length).toBeGreaterThan(0);
    expect(validateFileConfig(file({ minApiVersion: 'latest' })).length).toBeGreaterThan(0);
    expect(validateFileConfig(file({ toolCallIdMaxLength: 4 })).length).toBeGreaterThan(0);
  });

  it('the shipped catalog states the facts of every model it lists, with their source', () => {
    const catalog = parse(readFileSync('tierflow.yaml', 'utf8')) as {
      providers: { name: string; models: { name: string; facts?: Record<string, unknown> }[] }[];
    };
    let count = 0;
    for (const p of catalog.providers) {
      for (const m of p.models) {
        const at = `${p.name}/${m.name}`;
        expect(m.facts, at).toBeDefined();
        expect(typeof m.facts!.source, at).toBe('string');
        if (p.name === 'demo') continue;
        for (const k of [
          ...PARAM_NAMES,
          'temperatureWithTopP',
          'developerRole',
          'systemRole',
          'toolCallIdMaxLength',
        ])
          expect(m.facts![k], `${at} ${k}`).toBeDefined();
        count++;
      }
    }
    expect(count).toBeGreaterThanOrEqual(16);
  });
});

describe('the shipped examples', () => {
  it('are valid providers whose models state their facts with a source', async () => {
    const { parseAllDocuments } = await import('yaml');
    const { validate } = await import('../../src/core/config/json-schema.js');
    const { ProviderSpec } = await import('../../src/core/config/schema.js');
    const docs = parseAllDocuments(readFileSync('examples/01-providers.yaml', 'utf8')).map((d) => d.toJS());
    const providers = docs.filter((d) => d?.kind === 'LLMProvider');
    expect(providers.length).toBeGreaterThan(0);
    for (const p of providers) {
      expect(validate(ProviderSpec, p.spec)).toEqual([]);
      for (const m of p.spec.models) expect(typeof m.facts?.source, m.name).toBe('string');
    }
  });
});
