// What a key has left, and when to come back: KeyLimits.status, the 429's Retry-After, the
// x-ratelimit-* headers in OpenAI's format, and spend carried across a restart (snapshot/restore).
import { describe, expect, it } from 'vitest';
import type { CompiledVirtualKey } from '../../src/core/config/compiled.js';
import type { ApiError } from '../../src/core/errors.js';
import { formatDuration, limitHeaders } from '../../src/core/limit-headers.js';
import { KeyLimits } from '../../src/core/limits.js';

const key = (over: Partial<CompiledVirtualKey> = {}): CompiledVirtualKey => ({
  name: 'team-a',
  keyHash: 'a'.repeat(64),
  ...over,
});

function refusal(limits: KeyLimits, k: CompiledVirtualKey): ApiError {
  try {
    limits.admit(k);
  } catch (err) {
    return err as ApiError;
  }
  throw new Error('admitted');
}

describe('formatDuration', () => {
  it('writes durations the way OpenAI does', () => {
    expect(formatDuration(20)).toBe('20ms');
    expect(formatDuration(1000)).toBe('1s');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(360_000)).toBe('6m0s');
    expect(formatDuration(3_723_000)).toBe('1h2m3s');
    expect(formatDuration(-5)).toBe('0ms');
  });
});

describe('KeyLimits.status and limitHeaders', () => {
  it('counts down requests and tokens, and says when the window is empty again', () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 15);
    const limits = new KeyLimits(() => now);
    const k = key({ rpm: 10, tpm: 1000, budget: { usd: 5, period: 'day' } });
    limits.admit(k);
    limits.admit(k);
    limits.record(k, 300, 1.25);
    const h = limitHeaders(limits.status(k));
    expect(h).toEqual({
      'x-ratelimit-limit-requests': '10',
      'x-ratelimit-remaining-requests': '8',
      // this minute's requests weigh until the end of the next minute: 12:02:00 - 12:00:15
      'x-ratelimit-reset-requests': '1m45s',
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '700',
      'x-ratelimit-reset-tokens': '1m45s',
      'x-tierflow-budget-remaining-usd': '3.750000',
    });
  });

  it('a key without limits gets no headers', () => {
    const limits = new KeyLimits(() => 0);
    expect(limitHeaders(limits.status(key()))).toEqual({});
  });
});

describe('429 of a key limit', () => {
  it('rpm: Retry-After is when the sliding window first admits again', () => {
    let now = Date.UTC(2026, 10, 25, 12, 0, 30);
    const limits = new KeyLimits(() => now);
    const k = key({ rpm: 4 });
    for (let i = 0; i < 4; i++) limits.admit(k);
    const err = refusal(limits, k);
    expect(err.status).toBe(429);
    expect(err.code).toBe('rate_limit_exceeded');
    // next minute: (1 - f) * 4 < 4 as soon as f > 0, so 30 s (+1 ms) from now
    expect(Number(err.headers!['retry-after-ms'])).toBe(30_001);
    expect(err.headers!['retry-after']).toBe('31');
    expect(err.headers!['x-ratelimit-remaining-requests']).toBe('0');
    expect(err.headers!['x-should-retry']).toBeUndefined();
    // the promise holds: just before, still refused; at that time, admitted
    now += 30_000;
    expect(refusal(limits, k).status).toBe(429);
    now += 1;
    expect(() => limits.admit(k)).not.toThrow();
  });

  it('rpm carried from the last minute: Retry-After is when enough of it has slid out', () => {
    let now = Date.UTC(2026, 10, 25, 12, 0, 50);
    const limits = new KeyLimits(() => now);
    const k = key({ rpm: 10 });
    for (let i = 0; i < 10; i++) limits.admit(k);
    now = Date.UTC(2026, 10, 25, 12, 1, 12); // 10 x 48/60 = 8 still count
    limits.admit(k);
    limits.admit(k);
    now += 1000;
    limits.admit(k); // 3 + 10 x (1 - f) < 10 needs f > 0.3: 12:01:18
    const err = refusal(limits, k);
    const wait = Number(err.headers!['retry-after-ms']);
    expect(wait).toBe(5_001);
    now += wait - 2;
    expect(refusal(limits, k).status).toBe(429);
    now += 2;
    expect(() => limits.admit(k)).not.toThrow();
  });

  it('tpm refusals carry the token headers', () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 0);
    const limits = new KeyLimits(() => now);
    const k = key({ tpm: 100 });
    limits.admit(k);
    limits.record(k, 150, 0);
    const err = refusal(limits, k);
    expect(err.headers!['x-ratelimit-remaining-tokens']).toBe('0');
    expect(err.headers!['x-ratelimit-limit-tokens']).toBe('100');
    // 150 tokens this minute: (1 - f) x 150 < 100 from a third into the next minute
    expect(Number(err.headers!['retry-after-ms'])).toBe(60_000 + 20_000 + 1);
  });

  it('a spent budget: Retry-After is the end of the period, and SDKs are told not to retry', () => {
    const now = Date.UTC(2026, 10, 25, 18, 0, 0);
    const limits = new KeyLimits(() => now);
    const k = key({ budget: { usd: 1, period: 'day' } });
    limits.admit(k);
    limits.record(k, 10, 1.5);
    const err = refusal(limits, k);
    expect(err.code).toBe('budget_exceeded');
    expect(err.headers!['retry-after']).toBe(String(6 * 3600));
    expect(err.headers!['x-should-retry']).toBe('false');
    expect(err.headers!['x-tierflow-budget-remaining-usd']).toBe('0.000000');
  });
});

describe('spend across a restart', () => {
  it('a new process restores the spend of the current period and refuses a spent budget', () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 0);
    const before = new KeyLimits(() => now);
    const k = key({ budget: { usd: 2, period: 'month' } });
    const other = key({ name: 'b', keyHash: 'b'.repeat(64) });
    before.admit(k);
    before.record(k, 10, 2.5);
    before.admit(other);
    before.record(other, 10, 0.25);
    const saved = JSON.parse(JSON.stringify(before.spendSnapshot()));
    expect(saved).toHaveLength(2);

    const after = new KeyLimits(() => now);
    after.restoreSpend(saved);
    expect(after.spentUsd(k)).toBeCloseTo(2.5, 9);
    expect(after.spentUsd(other)).toBeCloseTo(0.25, 9);
    expect(refusal(after, k).code).toBe('budget_exceeded');
  });

  it('spend of a period that has ended is not restored', () => {
    let now = Date.UTC(2026, 10, 30, 23, 0, 0);
    const before = new KeyLimits(() => now);
    const k = key({ budget: { usd: 2, period: 'month' } });
    before.admit(k);
    before.record(k, 10, 1.5);
    const saved = before.spendSnapshot();
    now = Date.UTC(2026, 11, 1, 0, 5, 0);
    const after = new KeyLimits(() => now);
    after.restoreSpend(saved);
    expect(after.spentUsd(k)).toBe(0);
    expect(after.spendSnapshot()).toEqual([]);
  });
});
