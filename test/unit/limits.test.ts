// KeyLimits: local enforcement, and the shared-store protocol (takePending / settle) played
// against an in-memory store with the same add-and-return-totals semantics as the Redis sync,
// including a store that takes only part of a sync.
import { describe, expect, it } from 'vitest';
import type { CompiledVirtualKey } from '../../src/core/config/compiled.js';
import { KeyLimits, type PendingUsage, type SharedTotals } from '../../src/core/limits.js';

const key = (over: Partial<CompiledVirtualKey> = {}): CompiledVirtualKey => ({
  name: 'team-a',
  keyHash: 'a'.repeat(64),
  ...over,
});

/** What Redis does for one sync: add each delta, answer with the new totals. */
class Store {
  readonly minutes = new Map<string, { requests: number; tokens: number }>();
  readonly spend = new Map<string, number>();
  down = false;

  /** Spend of these keys is refused (like a Redis key of the wrong type); the rest is taken. */
  readonly refuseSpend = new Set<string>();

  exchange(pending: readonly PendingUsage[]): SharedTotals[] {
    if (this.down) throw new Error('down');
    return pending.map((p) => {
      const out: SharedTotals = {};
      if (p.minute >= 0) {
        const m = this.minutes.get(`${p.keyHash}:${p.minute}`) ?? { requests: 0, tokens: 0 };
        m.requests += p.requests;
        m.tokens += p.tokens;
        this.minutes.set(`${p.keyHash}:${p.minute}`, m);
        out.minute = { ...m };
      }
      if (!this.refuseSpend.has(p.keyHash)) {
        const s = (this.spend.get(`${p.keyHash}:${p.period}`) ?? 0) + p.spentUsd;
        this.spend.set(`${p.keyHash}:${p.period}`, s);
        out.spentUsd = s;
      }
      return out;
    });
  }

  sync(limits: KeyLimits, prime: CompiledVirtualKey[] = []): void {
    const pending = limits.takePending(prime);
    let answers: SharedTotals[] = [];
    try {
      answers = this.exchange(pending);
    } catch {
      /* unreachable: everything goes back */
    }
    limits.settle(pending, answers);
  }
}

const T0 = Date.UTC(2026, 10, 25, 12, 0, 5);

function admits(limits: KeyLimits, k: CompiledVirtualKey): boolean {
  try {
    limits.admit(k);
    return true;
  } catch (err) {
    return !(err as { status?: number }).status;
  }
}

describe('KeyLimits, one process', () => {
  it('enforces rpm within a minute and starts afresh the next minute', () => {
    let now = T0;
    const limits = new KeyLimits(() => now);
    const k = key({ rpm: 2 });
    expect(admits(limits, k)).toBe(true);
    expect(admits(limits, k)).toBe(true);
    expect(() => limits.admit(k)).toThrow(
      expect.objectContaining({ status: 429, code: 'rate_limit_exceeded' }),
    );
    now += 60_000;
    expect(admits(limits, k)).toBe(true);
  });

  it('slides: the last minute weighs on the next by its overlap with the last 60 s', () => {
    let now = Date.UTC(2026, 10, 25, 12, 0, 50);
    const limits = new KeyLimits(() => now);
    const k = key({ rpm: 10, tpm: 1000 });
    for (let i = 0; i < 10; i++) limits.admit(k);
    limits.record(k, 900, 0);
    // 12:01:05: a fixed window would allow 10 at once; here 10 x 55/60 = 9.2 still count
    now = Date.UTC(2026, 10, 25, 12, 1, 5);
    expect(admits(limits, k)).toBe(true);
    expect(admits(limits, k)).toBe(false);
    // 12:01:30: half of the last minute counts (5), plus the 1 admitted at 12:01:05
    now = Date.UTC(2026, 10, 25, 12, 1, 30);
    let admitted = 0;
    while (admits(limits, k)) admitted++;
    expect(admitted).toBe(4);
    // two minutes on, nothing of 12:00 is left
    now = Date.UTC(2026, 10, 25, 12, 3, 0);
    for (let i = 0; i < 10; i++) expect(admits(limits, k)).toBe(true);
  });

  it('enforces tpm and the budget of the period', () => {
    let now = T0;
    const limits = new KeyLimits(() => now);
    const k = key({ tpm: 100, budget: { usd: 1, period: 'day' } });
    limits.admit(k);
    limits.record(k, 100, 0.4);
    expect(() => limits.admit(k)).toThrow(expect.objectContaining({ code: 'rate_limit_exceeded' }));
    now += 60_000;
    limits.admit(k);
    limits.record(k, 10, 0.7);
    expect(limits.spentUsd(k)).toBeCloseTo(1.1, 9);
    expect(() => limits.admit(k)).toThrow(expect.objectContaining({ status: 429, code: 'budget_exceeded' }));
    now += 24 * 3600_000; // next day: a new budget period
    expect(limits.spentUsd(k)).toBe(0);
    expect(admits(limits, k)).toBe(true);
  });
});

describe('KeyLimits shared through a store', () => {
  it('two replicas share one rpm once they have synced', () => {
    const now = T0;
    const store = new Store();
    const a = new KeyLimits(() => now);
    const b = new KeyLimits(() => now);
    const k = key({ rpm: 5 });
    for (let i = 0; i < 3; i++) a.admit(k);
    for (let i = 0; i < 2; i++) b.admit(k);
    store.sync(a);
    store.sync(b);
    store.sync(a);
    expect(store.minutes.get(`${k.keyHash}:${Math.floor(now / 60_000)}`)).toEqual({ requests: 5, tokens: 0 });
    expect(admits(a, k)).toBe(false);
    expect(admits(b, k)).toBe(false);
  });

  it('a budget spent on one replica stops the other, and a fresh replica starts from the totals', () => {
    const now = T0;
    const store = new Store();
    const a = new KeyLimits(() => now);
    const k = key({ budget: { usd: 2, period: 'month' } });
    a.admit(k);
    a.record(k, 1000, 2.5);
    store.sync(a);
    const fresh = new KeyLimits(() => now);
    store.sync(fresh, [k]); // primed with the configured keys on its first sync
    expect(fresh.spentUsd(k)).toBeCloseTo(2.5, 9);
    expect(() => fresh.admit(k)).toThrow(expect.objectContaining({ code: 'budget_exceeded' }));
  });

  it('keeps counting locally while the store is down and loses nothing when it is back', () => {
    const now = T0;
    const store = new Store();
    const a = new KeyLimits(() => now);
    const k = key({ rpm: 100, budget: { usd: 100, period: 'month' } });
    a.admit(k);
    a.record(k, 10, 0.5);
    store.down = true;
    store.sync(a);
    a.admit(k);
    a.record(k, 20, 0.25);
    store.sync(a);
    expect(a.spentUsd(k)).toBeCloseTo(0.75, 9);
    store.down = false;
    store.sync(a);
    expect(store.minutes.get(`${k.keyHash}:${Math.floor(now / 60_000)}`)).toEqual({
      requests: 2,
      tokens: 30,
    });
    expect(store.spend.get(`${k.keyHash}:2026-11`)).toBeCloseTo(0.75, 9);
    expect(a.spentUsd(k)).toBeCloseTo(0.75, 9);
    // and nothing is counted twice afterwards
    store.sync(a);
    expect(store.spend.get(`${k.keyHash}:2026-11`)).toBeCloseTo(0.75, 9);
  });

  it('a part the store refused is offered again alone; the parts it took are not sent twice', () => {
    const now = T0;
    const store = new Store();
    const a = new KeyLimits(() => now);
    const k = key({ rpm: 100, budget: { usd: 100, period: 'month' } });
    a.admit(k);
    a.record(k, 10, 0.5);
    store.refuseSpend.add(k.keyHash);
    store.sync(a);
    expect(a.spentUsd(k)).toBeCloseTo(0.5, 9);
    store.refuseSpend.clear();
    store.sync(a);
    expect(store.minutes.get(`${k.keyHash}:${Math.floor(now / 60_000)}`)).toEqual({
      requests: 1,
      tokens: 10,
    });
    expect(store.spend.get(`${k.keyHash}:2026-11`)).toBeCloseTo(0.5, 9);
    expect(a.usage(k)).toEqual({ requests: 1, tokens: 10, spentUsd: 0.5 });
  });

  it('a period that ends before its spend reached the store still pays it to the old period', () => {
    let now = Date.UTC(2026, 10, 30, 23, 59, 50);
    const store = new Store();
    const a = new KeyLimits(() => now);
    const k = key({ budget: { usd: 1, period: 'month' } });
    a.admit(k);
    a.record(k, 10, 0.9);
    store.down = true;
    store.sync(a);
    now += 20_000; // December
    store.down = false;
    store.sync(a);
    expect(store.spend.get(`${k.keyHash}:2026-11`)).toBeCloseTo(0.9, 9);
    expect(a.spentUsd(k)).toBe(0);
    expect(admits(a, k)).toBe(true);
  });

  it('reads other replicas for recently used keys only, unless primed', () => {
    let now = T0;
    const a = new KeyLimits(() => now);
    const k = key();
    a.admit(k);
    expect(a.takePending().map((p) => p.keyHash)).toEqual([k.keyHash]);
    now += 5 * 60_000;
    expect(a.takePending()).toEqual([]);
    expect(a.takePending([k])).toHaveLength(1);
    // reading a key's usage (metrics) does not make it a key to sync
    const other = key({ keyHash: 'b'.repeat(64) });
    expect(a.usage(other)).toEqual({ requests: 0, tokens: 0, spentUsd: 0 });
    expect(a.takePending().map((p) => p.keyHash)).not.toContain(other.keyHash);
  });
});
