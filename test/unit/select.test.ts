import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/core/errors.js';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { parseChatRequest } from '../../src/core/parse.js';
import { selectCandidates, tierIndexForScore } from '../../src/core/select.js';
import { sha256Hex } from '../../src/core/config/compile.js';
import { compile, model, sampleFile } from '../helpers/config.js';

const req = (body: Record<string, unknown>) =>
  parseChatRequest(JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }], ...body }));

function fixedRouter(score: number, file = sampleFile(), clock?: () => number) {
  const health = new HealthRegistry(clock);
  const router = new Router({
    config: compile(file),
    health,
    classify: () => ({ score, reasons: ['test'] }),
    clock,
  });
  return { router, health };
}

describe('tier choice', () => {
  it('maps scores to tiers by maxScore, last tier takes the rest', () => {
    const policy = compile(sampleFile()).virtualModels.get('auto')!;
    expect(tierIndexForScore(policy, 0)).toBe(0);
    expect(tierIndexForScore(policy, 0.5)).toBe(0);
    expect(tierIndexForScore(policy, 0.5001)).toBe(1);
    expect(tierIndexForScore(policy, 0.3, 0.2)).toBe(1); // a running threshold overrides maxScore
  });
});

describe('selection', () => {
  it('orders a tier by price, then escalates to the flagship tier as fallback', () => {
    const { router } = fixedRouter(0.1);
    const plan = router.plan({
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(plan.tier).toBe('lightweight');
    expect(plan.candidates.map((m) => m.id)).toEqual([
      'alpha/alpha-mini',
      'beta/beta-small',
      'alpha/alpha-large',
      'beta/beta-big',
    ]);
  });

  it('a high score goes straight to the flagship tier and does not escalate down', () => {
    const { router } = fixedRouter(0.9);
    const plan = router.plan({
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(plan.tier).toBe('flagship');
    expect(plan.candidates.map((m) => m.id)).toEqual(['alpha/alpha-large', 'beta/beta-big']);
  });

  it('filters by capability and context window', () => {
    const file = sampleFile();
    file.providers[0]!.models[0] = model('alpha-mini', 'lightweight', 0.15, 0.6, {
      capabilities: ['streaming'],
      contextWindow: 2000,
    });
    const config = compile(file);
    const health = new HealthRegistry();
    const policy = config.virtualModels.get('auto')!;
    const tools = selectCandidates(
      policy,
      0,
      req({ tools: [{ type: 'function', function: { name: 'f' } }] }),
      health,
    );
    expect(tools.candidates[0]!.id).toBe('beta/beta-small');
    const long = selectCandidates(
      policy,
      0,
      req({ messages: [{ role: 'user', content: 'x'.repeat(9000) }] }),
      health,
    );
    expect(long.candidates.map((m) => m.id)).not.toContain('alpha/alpha-mini');
  });

  it('prefers the faster model when prices are close and latency weight is high', () => {
    const file = sampleFile();
    file.providers[1]!.models[0] = model('beta-small', 'lightweight', 0.16, 0.6);
    file.policies[0]!.objective = { cost: 0.3, latency: 0.7 };
    const config = compile(file);
    const health = new HealthRegistry();
    const slow = config.models.get('alpha/alpha-mini')!;
    const fast = config.models.get('beta/beta-small')!;
    for (let i = 0; i < 5; i++) {
      const t1 = health.begin(slow)!;
      t1.firstToken();
      const t2 = health.begin(fast)!;
      t2.firstToken();
    }
    // Inject latency samples directly: 2000 ms vs 200 ms.
    for (let i = 0; i < 10; i++) {
      health.latency(slow)!.ttftMs.add(2000);
      health.latency(fast)!.ttftMs.add(200);
    }
    const s = selectCandidates(config.virtualModels.get('auto')!, 0, req({}), health);
    expect(s.candidates[0]!.id).toBe('beta/beta-small');
  });

  it('skips models whose breaker is open and says 503 when nothing is left', () => {
    const file = sampleFile();
    for (const p of file.providers)
      p.breaker = { volumeThreshold: 1, errorThresholdPercentage: 1, resetTimeoutMs: 60_000 };
    const { router, health } = fixedRouter(0.9, file);
    for (const id of ['alpha/alpha-large', 'beta/beta-big']) {
      health.begin(router.config.models.get(id)!)!.fail('http_5xx');
    }
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        const e = (() => {
          try {
            router.plan({
              body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'x' }] }),
            });
          } catch (err) {
            return err as ApiError;
          }
        })();
        expect(e).toBeInstanceOf(ApiError);
        expect(e!.status).toBe(503);
        resolve();
      }),
    );
  });

  it('explicit model names bypass classification and may be served by several providers', () => {
    const file = sampleFile();
    file.providers[1]!.models.push(model('alpha-mini', 'lightweight', 0.2, 0.8));
    let classified = 0;
    const router = new Router({
      config: compile(file),
      health: new HealthRegistry(),
      classify: () => (classified++, { score: 0, reasons: [] }),
    });
    const plan = router.plan({
      body: JSON.stringify({ model: 'alpha-mini', messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(classified).toBe(0);
    expect(plan.score).toBeUndefined();
    expect(plan.candidates.map((m) => m.id).sort()).toEqual(['alpha/alpha-mini', 'beta/alpha-mini']);
    const byId = router.plan({
      body: JSON.stringify({ model: 'beta/beta-big', messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(byId.candidates.map((m) => m.id)).toEqual(['beta/beta-big']);
  });

  it('unknown model -> 404 model_not_found', () => {
    const { router } = fixedRouter(0);
    expect(() =>
      router.plan({ body: JSON.stringify({ model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] }) }),
    ).toThrow(expect.objectContaining({ status: 404, code: 'model_not_found' }));
  });
});

describe('virtual keys', () => {
  const file = () => {
    const f = sampleFile();
    f.virtualKeys = [
      { name: 'team-a', keyHash: sha256Hex('tf-team-a'), allowedModels: ['auto'], rpm: 1 },
      { name: 'team-b', key: 'tf-team-b', budget: { usd: 0.000001, period: 'day' } },
    ];
    return f;
  };
  const body = (model = 'auto') => JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }] });

  it('requires a known key once keys are configured', () => {
    const { router } = fixedRouter(0, file());
    expect(() => router.plan({ body: body() })).toThrow(expect.objectContaining({ status: 401 }));
    expect(() => router.plan({ body: body(), headers: { authorization: 'Bearer wrong' } })).toThrow(
      expect.objectContaining({ status: 401 }),
    );
    expect(
      router.plan({ body: body(), headers: { authorization: 'Bearer tf-team-a' } }).virtualKey?.name,
    ).toBe('team-a');
  });

  it('enforces allowed models, rpm and budget', () => {
    const { router } = fixedRouter(0, file());
    expect(() =>
      router.plan({ body: body('alpha-mini'), headers: { authorization: 'Bearer tf-team-a' } }),
    ).toThrow(expect.objectContaining({ status: 403 }));
    router.plan({ body: body(), headers: { authorization: 'Bearer tf-team-a' } });
    expect(() => router.plan({ body: body(), headers: { authorization: 'Bearer tf-team-a' } })).toThrow(
      expect.objectContaining({ status: 429, code: 'rate_limit_exceeded' }),
    );
    const plan = router.plan({ body: body(), headers: { authorization: 'Bearer tf-team-b' } });
    router.limits.record(plan.virtualKey!, 100, 0.01);
    expect(() => router.plan({ body: body(), headers: { authorization: 'Bearer tf-team-b' } })).toThrow(
      expect.objectContaining({ status: 429, code: 'budget_exceeded' }),
    );
  });
});

describe('flagship share target', () => {
  it('moves the last threshold so about the target share of requests reaches the flagship tier', () => {
    const file = sampleFile();
    file.policies[0]!.flagshipShare = 0.3;
    let i = 0;
    // Scores spread uniformly over [0, 0.4]: a fixed maxScore of 0.5 would never pick the flagship.
    const router = new Router({
      config: compile(file),
      health: new HealthRegistry(),
      classify: () => ({ score: ((i++ * 7919) % 1000) / 2500, reasons: [] }),
    });
    const body = JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'x' }] });
    let flagship = 0;
    const n = 4000;
    for (let k = 0; k < n; k++) if (router.plan({ body: body }).tier === 'flagship') flagship++;
    // Warm-up uses maxScore (no flagship); afterwards about 30% go to the flagship.
    expect(flagship / n).toBeGreaterThan(0.22);
    expect(flagship / n).toBeLessThan(0.32);
  });
});
