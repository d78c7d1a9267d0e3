import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { WindowedQuantile, Ewma } from '../../src/core/health/latency.js';
import { costUsd, accountRequest } from '../../src/core/accounting.js';
import { retryAfterMs, isRetryableStatus } from '../../src/core/failover.js';
import { compile, sampleFile } from '../helpers/config.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('latency statistics', () => {
  it('windowed quantile matches a sort of the last N samples', () => {
    const w = new WindowedQuantile(50);
    const all: number[] = [];
    let seed = 7;
    for (let i = 0; i < 500; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const x = seed % 1000;
      all.push(x);
      w.add(x);
      const last = all.slice(-50).sort((a, b) => a - b);
      expect(w.quantile(0.95)).toBe(last[Math.min(last.length - 1, Math.floor(0.95 * last.length))]);
    }
  });

  it('ewma moves toward new samples', () => {
    const e = new Ewma(0.5);
    e.add(100);
    e.add(200);
    expect(e.value).toBe(150);
  });
});

describe('circuit breaker per (provider, model)', () => {
  it('opens after failures, lets one probe through after resetTimeout, closes on success', async () => {
    const file = sampleFile();
    file.providers[0]!.breaker = { volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: 100 };
    const config = compile(file);
    const m = config.models.get('alpha/alpha-mini')!;
    const states: string[] = [];
    const health = new HealthRegistry(undefined, { breakerState: (_m, s) => states.push(s) });
    for (let i = 0; i < 3; i++) health.begin(m)!.fail('http_5xx');
    await tick();
    expect(health.breakerState(m)).toBe('open');
    expect(health.available(m)).toBe(false);
    expect(health.begin(m)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 150));
    expect(health.breakerState(m)).toBe('half-open');
    expect(health.available(m)).toBe(true);
    const probe = health.begin(m)!;
    expect(probe).toBeDefined();
    expect(health.begin(m)).toBeUndefined(); // only one probe
    probe.succeed(10);
    await tick();
    expect(health.breakerState(m)).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'closed']);
    health.close();
  });

  it('a failed probe opens the breaker again; neutral outcomes do not count as failures', async () => {
    const file = sampleFile();
    file.providers[0]!.breaker = { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 100 };
    const m = compile(file).models.get('alpha/alpha-mini')!;
    const health = new HealthRegistry();
    for (let i = 0; i < 5; i++) health.begin(m)!.neutral();
    await tick();
    expect(health.breakerState(m)).toBe('closed');
    for (let i = 0; i < 10; i++) health.begin(m)?.fail('timeout');
    await tick();
    expect(health.breakerState(m)).toBe('open');
    await new Promise((r) => setTimeout(r, 150));
    health.begin(m)!.fail('reset');
    await tick();
    expect(health.breakerState(m)).toBe('open');
    health.close();
  });

  it('Retry-After cools a model down', () => {
    let now = 1000;
    const m = compile(sampleFile()).models.get('alpha/alpha-mini')!;
    const health = new HealthRegistry(() => now);
    health.coolDown(m, 500);
    expect(health.available(m)).toBe(false);
    now = 1501;
    expect(health.available(m)).toBe(true);
    health.close();
  });

  it('records ttfb, ttft and tokens per second', () => {
    let now = 0;
    const m = compile(sampleFile()).models.get('alpha/alpha-mini')!;
    const health = new HealthRegistry(() => now);
    const t = health.begin(m)!;
    now = 100;
    t.firstByte();
    now = 300;
    t.firstToken();
    now = 1300;
    t.succeed(50);
    const l = health.latency(m)!;
    expect(l.ttfbMs.ewma.value).toBe(100);
    expect(l.ttftMs.ewma.value).toBe(300);
    expect(l.totalMs.ewma.value).toBe(1300);
    expect(l.tokensPerSecond.ewma.value).toBe(50);
    health.close();
  });
});

describe('accounting and failover rules', () => {
  it('prices cached and uncached input separately and compares with the flagship', () => {
    const config = compile(sampleFile());
    const mini = config.models.get('alpha/alpha-mini')!;
    const usage = {
      promptTokens: 1_000_000,
      completionTokens: 1_000_000,
      cachedPromptTokens: 0,
      cacheWriteTokens: 0,
    };
    expect(costUsd(usage, mini.pricing)).toBeCloseTo(0.75, 10);
    const r = accountRequest(usage, mini, config.virtualModels.get('auto'));
    expect(r.flagshipCostUsd).toBeCloseTo(12.5, 10);
    const cached = { ...usage, cachedPromptTokens: 500_000 };
    const withCache = compile({ ...sampleFile() }).models.get('alpha/alpha-mini')!;
    expect(costUsd(cached, { ...withCache.pricing, cachedInputPerMTok: 0.075 })).toBeCloseTo(
      0.075 + 0.0375 + 0.6,
      10,
    );
  });

  it('retries 429 and 5xx only, and reads Retry-After in both forms', () => {
    expect([400, 401, 404, 413, 422, 429, 500, 502, 503, 529].map(isRetryableStatus)).toEqual([
      false,
      false,
      false,
      false,
      false,
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(retryAfterMs('2', 0)).toBe(2000);
    expect(retryAfterMs('0.5', 0)).toBe(500);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 5_000)).toBe(5000);
    expect(retryAfterMs('soon', 0)).toBeUndefined();
  });
});
