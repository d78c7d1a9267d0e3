// Per virtual key: requests and tokens per minute (a sliding window: the current minute plus the
// previous one, weighted by its overlap with the last 60 s), and spend per budget period.
//
// Enforcement is always local and synchronous (no I/O on the request path). When several
// replicas must agree, a shared store (src/state/redis-sync.ts) periodically takes what this
// process counted since the last sync (takePending), adds it to the shared totals and hands the
// new totals back (settle). A key's usage is then "shared totals + what this process counted
// since": replicas can overshoot a limit by at most what they admit in one sync interval, and
// when the store is unreachable every replica keeps enforcing with what it knows.
import type { CompiledVirtualKey } from './config/compiled.js';
import { ApiError } from './errors.js';
import { limitErrorHeaders } from './limit-headers.js';

export type BudgetPeriod = 'day' | 'month';

/** Usage of one key counted by this process and not yet acknowledged by the shared store. */
export interface PendingUsage {
  /** sha256 hex of the virtual key (never the key itself). */
  keyHash: string;
  /** Epoch minute the requests and tokens belong to; -1 when only spend is carried. */
  minute: number;
  requests: number;
  tokens: number;
  /** Budget period the spend belongs to: "2026-11" (month) or "2026-11-25" (day). */
  period: string;
  periodKind: BudgetPeriod;
  spentUsd: number;
}

/**
 * What the shared store answered for one PendingUsage: the new totals over all replicas of the
 * parts it took. A part left undefined was not taken (the store failed): it is counted locally
 * again and offered at the next sync.
 */
export interface SharedTotals {
  /** Requests and tokens of the minute (both or neither). */
  minute?: { requests: number; tokens: number };
  /** Spend of the budget period. */
  spentUsd?: number;
}

interface Counts {
  requests: number;
  tokens: number;
  spentUsd: number;
}

interface KeyState {
  keyHash: string;
  minute: number;
  period: string;
  periodKind: BudgetPeriod;
  /** Totals of all replicas at the last sync (this process's flushed usage included). */
  shared: Counts;
  /** Taken by the sync under way (at most one at a time). */
  inFlight: Counts;
  /** Counted here since the last takePending. */
  local: Counts;
  /** Requests and tokens of the minute before `minute`, as known when it ended. */
  previous: { requests: number; tokens: number };
  /** Estimated cost of admitted requests still running (this process only; never synced). */
  reservedUsd: number;
  lastUsed: number;
}

const zero = (): Counts => ({ requests: 0, tokens: 0, spentUsd: 0 });
const isZero = (c: Counts): boolean => c.requests === 0 && c.tokens === 0 && c.spentUsd === 0;

/** Keys used within this long are synced even when this process has nothing to add. */
const ACTIVE_MS = 2 * 60_000;

export class KeyLimits {
  readonly #state = new Map<string, KeyState>();
  /** Spend of an earlier budget period still to be added to the shared store. */
  #carry: PendingUsage[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  #get(key: CompiledVirtualKey, t: number): KeyState {
    const periodKind = key.budget?.period ?? 'month';
    let s = this.#state.get(key.keyHash);
    if (!s) {
      s = {
        keyHash: key.keyHash,
        minute: Math.floor(t / 60_000),
        period: periodOf(t, periodKind),
        periodKind,
        shared: zero(),
        inFlight: zero(),
        local: zero(),
        previous: { requests: 0, tokens: 0 },
        reservedUsd: 0,
        lastUsed: Number.NEGATIVE_INFINITY, // reading a key (metrics) does not make it active
      };
      this.#state.set(key.keyHash, s);
    }
    this.#roll(s, t, periodKind);
    return s;
  }

  /** Start a new minute / budget period when the clock has moved on. */
  #roll(s: KeyState, t: number, periodKind: BudgetPeriod): void {
    const minute = Math.floor(t / 60_000);
    if (s.minute !== minute) {
      // the minute that just ended weighs on the next one (sliding window); older ones do not
      const adjacent = minute === s.minute + 1;
      s.previous.requests = adjacent ? s.shared.requests + s.inFlight.requests + s.local.requests : 0;
      s.previous.tokens = adjacent ? s.shared.tokens + s.inFlight.tokens + s.local.tokens : 0;
      s.minute = minute;
      for (const c of [s.shared, s.inFlight, s.local]) {
        c.requests = 0;
        c.tokens = 0;
      }
    }
    const period = periodOf(t, periodKind);
    if (s.period !== period || s.periodKind !== periodKind) {
      // the old period's spend not yet shared is still owed to the store
      if (s.local.spentUsd !== 0) {
        this.#carry.push({
          keyHash: s.keyHash,
          minute: -1,
          requests: 0,
          tokens: 0,
          period: s.period,
          periodKind: s.periodKind,
          spentUsd: s.local.spentUsd,
        });
      }
      s.period = period;
      s.periodKind = periodKind;
      s.shared.spentUsd = 0;
      s.inFlight.spentUsd = 0;
      s.local.spentUsd = 0;
    }
  }

  /**
   * Admits one request or throws a 429 that says when to come back (see limitHeaders).
   * `reserveUsd`, the request's estimated cost, counts against the budget until record() settles
   * it with the real cost, so concurrent requests cannot together spend far past the budget
   * before any of them finished (the overshoot is at most one request's cost beyond its estimate).
   */
  admit(key: CompiledVirtualKey, reserveUsd = 0): void {
    const t = this.now();
    const s = this.#get(key, t);
    s.lastUsed = t;
    if (key.budget && spent(s) + s.reservedUsd >= key.budget.usd) {
      throw limitError(
        this.#status(key, s, t),
        `Budget of virtual key '${key.name}' is used up for this ${key.budget.period} (${key.budget.usd} USD).`,
        'insufficient_quota',
        'budget_exceeded',
        nextPeriodStart(t, key.budget.period) - t,
      );
    }
    // Sliding window: this minute's count plus the last minute's, weighted by how much of the
    // 60 s ending now it still covers (so a burst at a minute's end is not followed by another).
    if (key.rpm !== undefined) {
      const w = window(
        s.shared.requests + s.inFlight.requests + s.local.requests,
        s.previous.requests,
        s.minute,
        t,
      );
      if (w.count >= key.rpm) {
        throw limitError(
          this.#status(key, s, t),
          `Rate limit of virtual key '${key.name}' reached: ${key.rpm} requests per minute.`,
          'rate_limit_error',
          'rate_limit_exceeded',
          waitBelow(w, key.rpm, s.minute, t),
        );
      }
    }
    if (key.tpm !== undefined) {
      const w = window(s.shared.tokens + s.inFlight.tokens + s.local.tokens, s.previous.tokens, s.minute, t);
      if (w.count >= key.tpm) {
        throw limitError(
          this.#status(key, s, t),
          `Token limit of virtual key '${key.name}' reached: ${key.tpm} tokens per minute.`,
          'rate_limit_error',
          'rate_limit_exceeded',
          waitBelow(w, key.tpm, s.minute, t),
        );
      }
    }
    s.local.requests++;
    if (key.budget) s.reservedUsd += reserveUsd;
  }

  /** What is left of the key's limits right now (for the x-ratelimit-* answer headers). */
  status(key: CompiledVirtualKey): KeyStatus {
    const t = this.now();
    return this.#status(key, this.#get(key, t), t);
  }

  #status(key: CompiledVirtualKey, s: KeyState, t: number): KeyStatus {
    const out: KeyStatus = {};
    if (key.rpm !== undefined) {
      const w = window(
        s.shared.requests + s.inFlight.requests + s.local.requests,
        s.previous.requests,
        s.minute,
        t,
      );
      out.requests = windowStatus(w, key.rpm, s.minute, t);
    }
    if (key.tpm !== undefined) {
      const w = window(s.shared.tokens + s.inFlight.tokens + s.local.tokens, s.previous.tokens, s.minute, t);
      out.tokens = windowStatus(w, key.tpm, s.minute, t);
    }
    if (key.budget) {
      out.budget = {
        limitUsd: key.budget.usd,
        remainingUsd: Math.max(0, key.budget.usd - spent(s)),
        resetMs: nextPeriodStart(t, key.budget.period) - t,
      };
    }
    return out;
  }

  /** The request is over: its real tokens and cost replace what admit() reserved. */
  record(key: CompiledVirtualKey, tokens: number, costUsd: number, reservedUsd = 0): void {
    const s = this.#get(key, this.now());
    s.local.tokens += tokens;
    s.local.spentUsd += costUsd;
    if (key.budget) s.reservedUsd = Math.max(0, s.reservedUsd - reservedUsd);
  }

  /** Spend of the key in its current budget period, as far as this process knows. */
  spentUsd(key: CompiledVirtualKey): number {
    return spent(this.#get(key, this.now()));
  }

  /** Usage of the key in the current minute and budget period, as far as this process knows. */
  usage(key: CompiledVirtualKey): { requests: number; tokens: number; spentUsd: number } {
    const s = this.#get(key, this.now());
    return {
      requests: s.shared.requests + s.inFlight.requests + s.local.requests,
      tokens: s.shared.tokens + s.inFlight.tokens + s.local.tokens,
      spentUsd: spent(s),
    };
  }

  /** Spend of every key in its current budget period, for a state file (keys with none left out). */
  spendSnapshot(): SpendEntry[] {
    const t = this.now();
    const out: SpendEntry[] = [];
    for (const s of this.#state.values()) {
      this.#roll(s, t, s.periodKind);
      const usd = spent(s);
      if (usd > 0)
        out.push({ keyHash: s.keyHash, period: s.period, periodKind: s.periodKind, spentUsd: usd });
    }
    return out;
  }

  /**
   * Spend an earlier run of this process saved (spendSnapshot): counted again, as this process's
   * own. Entries of a budget period that has ended are dropped. Not for use with a shared store,
   * which holds the spend itself.
   */
  restoreSpend(entries: readonly SpendEntry[]): void {
    const t = this.now();
    for (const e of entries) {
      if (e.period !== periodOf(t, e.periodKind) || !(e.spentUsd > 0)) continue;
      let s = this.#state.get(e.keyHash);
      if (!s) {
        s = {
          keyHash: e.keyHash,
          minute: Math.floor(t / 60_000),
          period: e.period,
          periodKind: e.periodKind,
          shared: zero(),
          inFlight: zero(),
          local: zero(),
          previous: { requests: 0, tokens: 0 },
          reservedUsd: 0,
          lastUsed: Number.NEGATIVE_INFINITY,
        };
        this.#state.set(e.keyHash, s);
      }
      if (s.period === e.period && s.periodKind === e.periodKind) s.local.spentUsd += e.spentUsd;
    }
  }

  /**
   * For the shared store: what this process counted since the last call, per key, moved to
   * "in flight" until settle answers (one sync at a time). Includes
   * recently used keys with nothing to add (to read the other replicas' usage) and every key of
   * `prime` (the configured keys, so a fresh replica starts from the shared totals).
   */
  takePending(prime: Iterable<CompiledVirtualKey> = []): PendingUsage[] {
    const t = this.now();
    const primed = new Set<string>();
    for (const key of prime) {
      this.#get(key, t);
      primed.add(key.keyHash);
    }
    for (const s of this.#state.values()) this.#roll(s, t, s.periodKind);
    const out = this.#carry;
    this.#carry = [];
    for (const s of this.#state.values()) {
      if (isZero(s.local) && t - s.lastUsed > ACTIVE_MS && !primed.has(s.keyHash)) continue;
      out.push({
        keyHash: s.keyHash,
        minute: s.minute,
        requests: s.local.requests,
        tokens: s.local.tokens,
        period: s.period,
        periodKind: s.periodKind,
        spentUsd: s.local.spentUsd,
      });
      s.inFlight = s.local;
      s.local = zero();
    }
    return out;
  }

  /**
   * The shared store's answer to `pending` (from takePending), entry by entry: totals for the
   * parts it took; the rest is counted here again for the next sync. A missing answer (the store
   * was unreachable) gives every part back.
   */
  settle(pending: readonly PendingUsage[], answers: ReadonlyArray<SharedTotals | undefined> = []): void {
    pending.forEach((p, i) => {
      const answer = answers[i];
      const s = this.#state.get(p.keyHash);
      const current = s !== undefined && p.minute >= 0;
      if (current && s.minute === p.minute) {
        s.inFlight.requests = 0;
        s.inFlight.tokens = 0;
        if (answer?.minute) {
          s.shared.requests = answer.minute.requests;
          s.shared.tokens = answer.minute.tokens;
        } else {
          s.local.requests += p.requests;
          s.local.tokens += p.tokens;
        }
      }
      if (answer?.spentUsd !== undefined) {
        if (current && s.period === p.period && s.periodKind === p.periodKind) {
          s.shared.spentUsd = answer.spentUsd;
          s.inFlight.spentUsd = 0;
        }
      } else if (current && s.period === p.period && s.periodKind === p.periodKind) {
        s.local.spentUsd += p.spentUsd;
        s.inFlight.spentUsd = 0;
      } else if (p.spentUsd !== 0) {
        // an earlier period's spend (or one that ended meanwhile) is still owed to the store
        this.#carry.push(p.minute < 0 ? p : { ...p, minute: -1, requests: 0, tokens: 0 });
      }
    });
  }
}

function spent(s: KeyState): number {
  return s.shared.spentUsd + s.inFlight.spentUsd + s.local.spentUsd;
}

export function periodOf(epochMs: number, period: BudgetPeriod): string {
  const iso = new Date(epochMs).toISOString();
  return period === 'day' ? iso.slice(0, 10) : iso.slice(0, 7);
}

/** Spend of one key in one budget period, as a state file keeps it. */
export interface SpendEntry {
  keyHash: string;
  period: string;
  periodKind: BudgetPeriod;
  spentUsd: number;
}

/** One per-minute limit: the limit, what is left of it, and when the window is empty again. */
export interface WindowStatus {
  limit: number;
  remaining: number;
  /** Until nothing counted so far weighs on the window any more. */
  resetMs: number;
}

export interface KeyStatus {
  requests?: WindowStatus;
  tokens?: WindowStatus;
  budget?: { limitUsd: number; remainingUsd: number; resetMs: number };
}

/** A 429 of the key's own limits, with headers saying what is left and when to come back. */
function limitError(
  status: KeyStatus,
  message: string,
  type: string,
  code: string,
  retryAfterMs: number,
): ApiError {
  const err = new ApiError(429, message, type, code);
  err.headers = limitErrorHeaders(status, Math.max(1, Math.ceil(retryAfterMs)), code !== 'budget_exceeded');
  return err;
}

interface Window {
  /** This minute's count. */
  current: number;
  /** The previous minute's count. */
  previous: number;
  /** current + the previous minute weighted by its overlap with the 60 s ending now. */
  count: number;
}

function window(current: number, previous: number, minute: number, t: number): Window {
  const carry = 1 - (t - minute * 60_000) / 60_000;
  return { current, previous, count: current + carry * previous };
}

function windowStatus(w: Window, limit: number, minute: number, t: number): WindowStatus {
  const minuteEnd = (minute + 1) * 60_000;
  // This minute's count weighs until the end of the next minute; the previous one's until this one ends.
  const resetMs = w.current > 0 ? minuteEnd + 60_000 - t : w.previous > 0 ? minuteEnd - t : 0;
  return { limit, remaining: Math.max(0, Math.floor(limit - w.count)), resetMs };
}

/** How long until the window's count falls below `limit`, with no new traffic. */
function waitBelow(w: Window, limit: number, minute: number, t: number): number {
  const start = minute * 60_000;
  if (w.current < limit) {
    // still in this minute: current + (1 - f) * previous < limit  <=>  f > 1 - (limit - current) / previous
    const f = 1 - (limit - w.current) / w.previous;
    return start + f * 60_000 - t + 1;
  }
  // next minute: (1 - f) * current < limit
  return start + 60_000 + (1 - limit / w.current) * 60_000 - t + 1;
}

/** Epoch ms at which the budget period containing `t` ends (UTC). */
export function nextPeriodStart(t: number, period: BudgetPeriod): number {
  const d = new Date(t);
  return period === 'day'
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}
