// Per virtual key: requests and tokens per minute, and spend per budget period. In-memory,
// local to this process (each replica enforces its own share).
import type { CompiledVirtualKey } from './config/compiled.js';
import { ApiError } from './errors.js';

interface KeyState {
  minute: number;
  requests: number;
  tokens: number;
  period: string;
  spentUsd: number;
}

export class KeyLimits {
  readonly #state = new Map<string, KeyState>();

  constructor(private readonly now: () => number = Date.now) {}

  #get(key: CompiledVirtualKey): KeyState {
    const t = this.now();
    const minute = Math.floor(t / 60_000);
    const period = periodOf(t, key.budget?.period ?? 'month');
    let s = this.#state.get(key.keyHash);
    if (!s) {
      s = { minute, requests: 0, tokens: 0, period, spentUsd: 0 };
      this.#state.set(key.keyHash, s);
    }
    if (s.minute !== minute) {
      s.minute = minute;
      s.requests = 0;
      s.tokens = 0;
    }
    if (s.period !== period) {
      s.period = period;
      s.spentUsd = 0;
    }
    return s;
  }

  /** Admits one request or throws a 429. */
  admit(key: CompiledVirtualKey): void {
    const s = this.#get(key);
    if (key.budget && s.spentUsd >= key.budget.usd) {
      throw new ApiError(
        429,
        `Budget of virtual key '${key.name}' is used up for this ${key.budget.period} (${key.budget.usd} USD).`,
        'insufficient_quota',
        'budget_exceeded',
      );
    }
    if (key.rpm !== undefined && s.requests >= key.rpm) {
      throw new ApiError(
        429,
        `Rate limit of virtual key '${key.name}' reached: ${key.rpm} requests per minute.`,
        'rate_limit_error',
        'rate_limit_exceeded',
      );
    }
    if (key.tpm !== undefined && s.tokens >= key.tpm) {
      throw new ApiError(
        429,
        `Token limit of virtual key '${key.name}' reached: ${key.tpm} tokens per minute.`,
        'rate_limit_error',
        'rate_limit_exceeded',
      );
    }
    s.requests++;
  }

  record(key: CompiledVirtualKey, tokens: number, costUsd: number): void {
    const s = this.#get(key);
    s.tokens += tokens;
    s.spentUsd += costUsd;
  }

  spentUsd(key: CompiledVirtualKey): number {
    return this.#get(key).spentUsd;
  }
}

function periodOf(epochMs: number, period: 'day' | 'month'): string {
  const iso = new Date(epochMs).toISOString();
  return period === 'day' ? iso.slice(0, 10) : iso.slice(0, 7);
}
