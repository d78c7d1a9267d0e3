// The attempt engine's bookkeeping that no end-to-end test sees directly: breaker slots are
// always given back, the candidate order after provider-wide failures, budget reservations.
import { describe, expect, it } from 'vitest';
import type { CompiledVirtualKey } from '../../src/core/config/compiled.js';
import { ApiError } from '../../src/core/errors.js';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { KeyLimits } from '../../src/core/limits.js';
import { Router } from '../../src/core/router.js';
import { PROVIDERS } from '../../src/core/providers/table.js';
import { Metrics } from '../../src/observe/metrics.js';
import { silentLogger } from '../../src/observe/log.js';
import { RequestAttempts } from '../../src/pipeline/engine.js';
import { compile, model, sampleFile } from '../helpers/config.js';

const tick = () => new Promise((r) => setTimeout(r, 0));
const body = (m: string) => JSON.stringify({ model: m, messages: [{ role: 'user', content: 'hi' }] });

function setup(file = sampleFile()) {
  const health = new HealthRegistry();
  const router = new Router({ config: compile(file), health, classify: () => ({ score: 0.1, reasons: [] }) });
  const deps = { router, metrics: new Metrics({ defaultMetrics: false }), log: silentLogger };
  return { health, router, deps };
}

describe('breaker accounting', () => {
  it('a half-open probe whose request cannot even be built (a bug) is given back', async () => {
    const file = sampleFile();
    file.providers[0]!.breaker = { volumeThreshold: 1, errorThresholdPercentage: 50, resetTimeoutMs: 100 };
    const { health, router, deps } = setup(file);
    const m = router.config.models.get('alpha/alpha-mini')!;
    health.begin(m)!.fail('http_5xx');
    await tick();
    await new Promise((r) => setTimeout(r, 150));
    expect(health.breakerState(m)).toBe('half-open');
    const real = PROVIDERS.openai.chat;
    PROVIDERS.openai.chat = (req, model) => {
      const t = real(req, model);
      return Object.assign(Object.create(t) as typeof t, {
        buildRequest: () => {
          throw new TypeError('translator bug');
        },
      });
    };
    try {
      const run = new RequestAttempts(router.plan({ body: body('alpha-mini') }), deps, 'r1');
      expect(() => run.next()).toThrow('translator bug');
    } finally {
      PROVIDERS.openai.chat = real;
    }
    // The probe slot is free again (the breaker settles on the next tick): the provider can come back.
    await tick();
    const probe = health.begin(m);
    expect(probe).toBeDefined();
    probe!.succeed(1);
    await tick();
    expect(health.breakerState(m)).toBe('closed');
    health.close();
  });
});

describe('candidate order', () => {
  it('after a provider-wide failure the other provider comes first; the failed one stays last', () => {
    const file = sampleFile();
    file.providers[0]!.models.push(model('alpha-mid', 'lightweight', 0.2, 0.8));
    const { health, router, deps } = setup(file);
    const plan = router.plan({ body: body('auto') });
    expect(plan.candidates.map((c) => c.id).slice(0, 3)).toEqual([
      'alpha/alpha-mini',
      'alpha/alpha-mid',
      'beta/beta-small',
    ]);
    plan.maxAttempts = 10;
    const run = new RequestAttempts(plan, deps, 'r2');
    const first = run.next()!;
    first.failedTransport('connect_error', 'ECONNREFUSED');
    const order = [first.model.id];
    for (let a = run.next(); a; a = run.next()) {
      order.push(a.model.id);
      a.failedStatus(500, {}, Buffer.from('{"error":{"message":"x","code":"model_overloaded"}}'));
    }
    // beta's 500 carries no model error code in Anthropic's shape: provider-wide too, so once both
    // providers failed as a whole the rest go in plan order.
    expect(order).toEqual([
      'alpha/alpha-mini',
      'beta/beta-small',
      'alpha/alpha-mid',
      'alpha/alpha-large',
      'beta/beta-big',
    ]);
    const err = run.error();
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toContain('1. alpha/alpha-mini: connect_error, ECONNREFUSED');
    expect(err.message).toContain('5. beta/beta-big: http_5xx');
    health.close();
  });
});

describe('candidates tried', () => {
  it('each candidate is tried once, beyond the 31st too', () => {
    const { router, deps } = setup();
    const plan = router.plan({ body: body('auto') });
    const models = plan.candidates;
    plan.candidates = Array.from({ length: 40 }, (_, i) => models[i % models.length]!);
    plan.maxAttempts = 100;
    const run = new RequestAttempts(plan, deps, 'r5');
    let n = 0;
    for (let a = run.next(); a; a = run.next()) {
      expect(a.model).toBe(plan.candidates[n]);
      n++;
      a.clientError(new ApiError(400, 'no', 'invalid_request_error'));
    }
    expect(n).toBe(40);
  });
});

describe('budget reservation', () => {
  const key: CompiledVirtualKey = {
    name: 'k',
    keyHash: 'b'.repeat(64),
    budget: { usd: 0.05, period: 'day' },
  };

  it('concurrent admissions stop once reserved estimates reach the budget', () => {
    const limits = new KeyLimits();
    let admitted = 0;
    for (let i = 0; i < 64; i++) {
      try {
        limits.admit(key, 0.01);
        admitted++;
      } catch (err) {
        expect((err as ApiError).code).toBe('budget_exceeded');
      }
    }
    expect(admitted).toBe(5);
    // Settling with the real (smaller) cost frees the difference for new requests.
    for (let i = 0; i < 5; i++) limits.record(key, 100, 0.004, 0.01);
    expect(limits.spentUsd(key)).toBeCloseTo(0.02);
    let more = 0;
    for (let i = 0; i < 64; i++) {
      try {
        limits.admit(key, 0.01);
        more++;
      } catch {
        /* over budget */
      }
    }
    expect(more).toBe(3);
  });

  it('the router reserves the expected cost of the primary and the request log settles it', () => {
    const file = sampleFile();
    (file as { virtualKeys?: unknown[] }).virtualKeys = [
      { name: 'team', key: 'vk-secret', budget: { usd: 0.000_001, period: 'day' } },
    ];
    const { router } = setup(file);
    const plan = router.plan({ body: body('auto'), headers: { authorization: 'Bearer vk-secret' } });
    expect(plan.reservedUsd).toBeGreaterThan(0.000_001);
    // Reserved past the budget: the next request is refused until the first one settles.
    expect(() => router.plan({ body: body('auto'), headers: { authorization: 'Bearer vk-secret' } })).toThrow(
      /Budget/,
    );
    router.limits.record(plan.virtualKey!, 0, 0, plan.reservedUsd);
    expect(() =>
      router.plan({ body: body('auto'), headers: { authorization: 'Bearer vk-secret' } }),
    ).not.toThrow();
    router.health.close();
  });
});

describe('what a request holds while its attempt waits', () => {
  it('its messages are set aside; a failover parses them again from its bytes', () => {
    const { router, deps } = setup();
    const text = JSON.stringify({
      model: 'auto',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Tell me about é and 😀.' },
      ],
    });
    const plan = router.plan({ body: Buffer.from(text) });
    plan.maxAttempts = 2;
    const run = new RequestAttempts(plan, deps, 'r4');
    const first = run.next()!;
    expect(first.model.provider.name).toBe('alpha');
    expect(plan.request.body.messages).toHaveLength(0);
    first.failedTransport('connect_error', 'ECONNREFUSED');
    // The next candidate is of another family (Anthropic): its request is built from the messages.
    const second = run.next()!;
    expect(second.model.provider.name).toBe('beta');
    const sent = JSON.parse(Buffer.from(second.request.body as Uint8Array).toString('utf8')) as {
      system: unknown;
      messages: Array<{ content: unknown }>;
    };
    expect(JSON.stringify(sent)).toContain('Be brief.');
    expect(JSON.stringify(sent.messages)).toContain('Tell me about é and 😀.');
    expect(plan.request.body.messages).toHaveLength(0);
    second.succeeded();
  });
});
