// Health of every (provider, model): its circuit breaker, latency statistics and any
// Retry-After cool-down. Survives config reloads for models that stay configured.
import type { CompiledConfig, CompiledModel } from '../config/compiled.js';
import { type AttemptSettle, type BreakerState, ModelBreaker } from './breaker.js';
import { ModelLatency } from './latency.js';

export type FailureKind =
  | 'connect_error'
  | 'timeout'
  | 'reset'
  | 'http_429'
  | 'http_5xx'
  | 'http_4xx'
  | 'stream_error'
  | 'auth_error';

export type Clock = () => number;

interface Entry {
  breaker: ModelBreaker;
  breakerSettings: string;
  /** The settings object breakerSettings was last checked against. */
  settingsSeen: object;
  latency: ModelLatency;
  coolDownUntil: number;
}

export interface HealthEvents {
  breakerState?(model: CompiledModel, state: BreakerState): void;
  /** A provider refused TierFlow's credentials (true) or is back in rotation (false). */
  credentialsRejected?(provider: string, rejected: boolean): void;
  /** A successful attempt's output rate: tokens per second from its first token (or byte) to its end. */
  outputTokenRate?(model: CompiledModel, tokensPerSecond: number): void;
}

/** How long a provider that refused TierFlow's credentials stays out of rotation before one probe. */
export const CREDENTIALS_RETRY_MS = 60_000;

export class HealthRegistry {
  readonly #entries = new Map<string, Entry>();
  /** Provider name -> until when it is out of rotation for refusing TierFlow's credentials. */
  readonly #rejected = new Map<string, number>();

  constructor(
    private readonly clock: Clock = () => performance.now(),
    private readonly events: HealthEvents = {},
  ) {}

  #entry(model: CompiledModel): Entry {
    const settings = model.provider.breaker;
    let e = this.#entries.get(model.id);
    // The same settings object as last time (no reload since): nothing to compare.
    if (e && e.settingsSeen === settings) return e;
    const key = `${settings.errorThresholdPercentage}/${settings.volumeThreshold}/${settings.resetTimeoutMs}/${settings.rollingWindowMs}`;
    if (e && e.breakerSettings !== key) {
      e.breaker.shutdown();
      e.breaker = this.#newBreaker(model);
      e.breakerSettings = key;
    }
    if (!e) {
      e = {
        breaker: this.#newBreaker(model),
        breakerSettings: key,
        latency: new ModelLatency(),
        coolDownUntil: 0,
        settingsSeen: settings,
      };
      this.#entries.set(model.id, e);
    }
    e.settingsSeen = settings;
    return e;
  }

  #newBreaker(model: CompiledModel): ModelBreaker {
    const notify = this.events.breakerState;
    return new ModelBreaker(model.provider.breaker, notify ? (s) => notify(model, s) : undefined);
  }

  /** May this model take an attempt now? (breaker closed or probe free, not cooling down) */
  available(model: CompiledModel): boolean {
    if (this.#rejected.size > 0 && this.#credentialsOut(model.provider.name, false)) return false;
    const e = this.#entries.get(model.id);
    if (!e) return true;
    return e.breaker.available && e.coolDownUntil <= this.clock();
  }

  breakerState(model: CompiledModel): BreakerState {
    return this.#entries.get(model.id)?.breaker.state ?? 'closed';
  }

  latency(model: CompiledModel): ModelLatency | undefined {
    return this.#entries.get(model.id)?.latency;
  }

  /** Starts an attempt; undefined when the breaker refuses it right now. */
  begin(model: CompiledModel): AttemptTracker | undefined {
    if (this.#rejected.size > 0 && this.#credentialsOut(model.provider.name, true)) return undefined;
    const e = this.#entry(model);
    if (e.coolDownUntil > this.clock()) return undefined;
    const settle = e.breaker.begin();
    return settle && new AttemptTracker(e.latency, settle, this.clock, model, this.events);
  }

  /** The provider asked us (Retry-After) not to call this model before `ms` from now. */
  coolDown(model: CompiledModel, ms: number): void {
    const e = this.#entry(model);
    e.coolDownUntil = Math.max(e.coolDownUntil, this.clock() + ms);
  }

  /**
   * The provider refused TierFlow's credentials: every model of it leaves rotation for
   * CREDENTIALS_RETRY_MS (a config reload ends it sooner), then one attempt probes it again.
   */
  credentialsRejected(provider: string): void {
    const was = this.#rejected.has(provider);
    this.#rejected.set(provider, this.clock() + CREDENTIALS_RETRY_MS);
    if (!was) this.events.credentialsRejected?.(provider, true);
  }

  /** The provider answered a request with its current credentials. */
  credentialsAccepted(provider: string): void {
    if (this.#rejected.size > 0 && this.#rejected.delete(provider))
      this.events.credentialsRejected?.(provider, false);
  }

  /** Providers currently out of rotation for refusing TierFlow's credentials. */
  rejectedProviders(): string[] {
    return [...this.#rejected.keys()];
  }

  #credentialsOut(provider: string, takeProbe: boolean): boolean {
    const until = this.#rejected.get(provider);
    if (until === undefined) return false;
    if (until > this.clock()) return true;
    // Time for one probe: this attempt may go; the others wait for its outcome.
    if (takeProbe) this.#rejected.set(provider, this.clock() + CREDENTIALS_RETRY_MS);
    return false;
  }

  /** Drops state of models no longer configured. */
  retain(config: CompiledConfig): void {
    // New configuration, perhaps new credentials: rejected providers get another chance.
    for (const p of this.#rejected.keys()) this.credentialsAccepted(p);
    for (const [id, e] of this.#entries) {
      if (!config.models.has(id)) {
        e.breaker.shutdown();
        this.#entries.delete(id);
      }
    }
  }

  close(): void {
    for (const e of this.#entries.values()) e.breaker.shutdown();
    this.#entries.clear();
  }
}

/** One attempt's timeline; feeds latency statistics and settles the breaker exactly once. */
export class AttemptTracker {
  readonly startedAt: number;
  firstByteAt: number | undefined;
  firstTokenAt: number | undefined;
  #settled = false;

  constructor(
    private readonly latency: ModelLatency,
    private readonly settle: AttemptSettle,
    private readonly clock: Clock,
    private readonly model?: CompiledModel,
    private readonly events?: HealthEvents,
  ) {
    this.startedAt = clock();
  }

  firstByte(): void {
    if (this.firstByteAt !== undefined) return;
    this.firstByteAt = this.clock();
    this.latency.ttfbMs.add(this.firstByteAt - this.startedAt);
  }

  firstToken(): void {
    if (this.firstTokenAt !== undefined) return;
    this.firstTokenAt = this.clock();
    this.latency.ttftMs.add(this.firstTokenAt - this.startedAt);
  }

  /** The provider did its job. */
  succeed(outputTokens: number | undefined): void {
    if (this.#settled) return;
    this.#settled = true;
    const end = this.clock();
    this.latency.totalMs.add(end - this.startedAt);
    const from = this.firstTokenAt ?? this.firstByteAt;
    if (outputTokens && from !== undefined && end - from > 0) {
      const rate = (outputTokens * 1000) / (end - from);
      this.latency.tokensPerSecond.add(rate);
      if (this.model) this.events?.outputTokenRate?.(this.model, rate);
    }
    this.settle.succeed();
  }

  /** The provider failed (counts toward opening its breaker). */
  fail(_kind: FailureKind): void {
    if (this.#settled) return;
    this.#settled = true;
    this.settle.fail();
  }

  /** The request failed for a reason that is not the provider's (e.g. a 400): no health signal. */
  neutral(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.settle.succeed();
  }

  get elapsedMs(): number {
    return this.clock() - this.startedAt;
  }
}
