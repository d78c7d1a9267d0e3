// Prometheus metrics shared by both data planes. Labels are bounded: configured provider and
// model names, tier, policy, outcome and status class; never keys, prompts or client input.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CompiledConfig, CompiledModel } from '../core/config/compiled.js';
import type { AttemptOutcome } from '../core/failover.js';
import type { BreakerState } from '../core/health/breaker.js';
import type { HealthEvents } from '../core/health/registry.js';
import { BoundCounter } from './bound-metric.js';
import { FastHistogram, type HistogramSeries } from './histogram.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120];
const SCORE_BUCKETS = Array.from({ length: 19 }, (_, i) => Number(((i + 1) * 0.05).toFixed(2)));
const DECISION_BUCKETS = [5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3];
const TOKEN_RATE_BUCKETS = [5, 10, 20, 30, 40, 60, 80, 100, 150, 200, 300, 500, 1000];

export interface VirtualKeyUsage {
  name: string;
  spentUsd: number;
  budgetUsd?: number;
  requests: number;
  tokens: number;
  rpm?: number;
  tpm?: number;
}

/** What the routing-state gauges read at scrape time: the live config and breaker states. */
export interface RoutingView {
  readonly config: CompiledConfig;
  readonly health: { breakerState(model: CompiledModel): BreakerState };
  /** Policies with a spend target: target, spend so far and projection of the current period. */
  spendStatus?(): Iterable<{
    policy: string;
    targetUsd: number;
    spentUsd: number;
    projectedUsd: number;
    threshold: number | undefined;
  }>;
}

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'mode' | 'policy' | 'tier' | 'provider' | 'model' | 'status_class'>;
  readonly attempts: Counter<'provider' | 'model' | 'outcome'>;
  readonly failovers: Counter<'provider' | 'model' | 'reason'>;
  readonly decisionSeconds: FastHistogram;
  readonly complexityScore: FastHistogram<'policy'>;
  readonly stickyRoutes: Counter<'policy' | 'applied'>;
  readonly ttfbSeconds: FastHistogram<'provider' | 'model'>;
  readonly ttftSeconds: FastHistogram<'provider' | 'model'>;
  readonly outputTokensPerSecond: FastHistogram<'provider' | 'model'>;
  readonly durationSeconds: FastHistogram<'provider' | 'model' | 'tier'>;
  readonly tokens: Counter<'provider' | 'model' | 'kind'>;
  readonly costUsd: Counter<'provider' | 'model' | 'tier'>;
  readonly flagshipCostUsd: Counter<'policy'>;
  readonly savedUsd: Counter<'policy'>;
  readonly configReloads: Counter<'result'>;
  readonly credentialsRejected: Gauge<'provider'>;
  readonly configLastReloadSuccessful: Gauge<never>;

  #sharedState: { up: Gauge<never>; syncErrors: Counter<never> } | undefined;

  /** Metrics of the shared (Redis) limit store, registered only when one is configured. */
  sharedState(): { up: Gauge<never>; syncErrors: Counter<never> } {
    this.#sharedState ??= {
      up: new Gauge({
        name: 'tierflow_shared_state_up',
        help: '1 while the shared store for virtual-key limits (Redis) is reachable, else 0.',
        registers: [this.registry],
      }),
      syncErrors: new Counter({
        name: 'tierflow_shared_state_sync_errors_total',
        help: 'Syncs with the shared store that failed (the usage is kept and retried).',
        registers: [this.registry],
      }),
    };
    return this.#sharedState;
  }

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: 'tierflow_' });
    this.requests = new Counter({
      name: 'tierflow_requests_total',
      help: 'Requests answered, by routing mode (auto or explicit), policy, chosen tier, serving provider and model, and HTTP status class.',
      labelNames: ['mode', 'policy', 'tier', 'provider', 'model', 'status_class'],
      registers,
    });
    this.attempts = new Counter({
      name: 'tierflow_upstream_attempts_total',
      help: 'Attempts sent to providers, by outcome.',
      labelNames: ['provider', 'model', 'outcome'],
      registers,
    });
    this.failovers = new Counter({
      name: 'tierflow_failovers_total',
      help: 'Failovers away from a provider/model, by the reason of the failed attempt.',
      labelNames: ['provider', 'model', 'reason'],
      registers,
    });
    this.decisionSeconds = new FastHistogram({
      name: 'tierflow_decision_seconds',
      help: 'Time to parse, classify and select (the routing decision).',
      buckets: DECISION_BUCKETS,
      registers,
    });
    this.complexityScore = new FastHistogram({
      name: 'tierflow_complexity_score',
      help: 'Complexity scores of auto requests, by policy: the quantile of the share you want on the flagship is the maxScore to set (docs/routing.md).',
      labelNames: ['policy'],
      buckets: SCORE_BUCKETS,
      registers,
    });
    this.stickyRoutes = new Counter({
      name: 'tierflow_sticky_routes_total',
      help: "Auto requests whose route conversation stickiness changed: applied=tier (raised to an earlier turn's tier) or model (the last turn's model first).",
      labelNames: ['policy', 'applied'],
      registers,
    });
    this.ttfbSeconds = new FastHistogram({
      name: 'tierflow_upstream_time_to_first_byte_seconds',
      help: 'Time from sending an attempt to the provider response headers.',
      labelNames: ['provider', 'model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.ttftSeconds = new FastHistogram({
      name: 'tierflow_time_to_first_token_seconds',
      help: 'Time from sending an attempt to the first content token.',
      labelNames: ['provider', 'model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.outputTokensPerSecond = new FastHistogram({
      name: 'tierflow_output_tokens_per_second',
      help: 'Output tokens per second of successful attempts, from the first token (or byte) to the end.',
      labelNames: ['provider', 'model'],
      buckets: TOKEN_RATE_BUCKETS,
      registers,
    });
    this.durationSeconds = new FastHistogram({
      name: 'tierflow_request_duration_seconds',
      help: 'Time from the request arriving to the last byte of the response.',
      labelNames: ['provider', 'model', 'tier'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.tokens = new Counter({
      name: 'tierflow_tokens_total',
      help: 'Tokens reported by providers, by kind (input, cached_input, cache_write, output).',
      labelNames: ['provider', 'model', 'kind'],
      registers,
    });
    this.costUsd = new Counter({
      name: 'tierflow_cost_usd_total',
      help: 'Spend in USD computed from usage and the price catalog.',
      labelNames: ['provider', 'model', 'tier'],
      registers,
    });
    this.flagshipCostUsd = new Counter({
      name: 'tierflow_flagship_cost_usd_total',
      help: "What the same requests would have cost on the policy's flagship model.",
      labelNames: ['policy'],
      registers,
    });
    this.savedUsd = new Counter({
      name: 'tierflow_saved_usd_total',
      help: 'Flagship cost minus actual cost, for requests where routing saved money.',
      labelNames: ['policy'],
      registers,
    });
    this.credentialsRejected = new Gauge({
      name: 'tierflow_provider_credentials_rejected',
      help: "1 while a provider is out of rotation because it refused TierFlow's credentials (401/403): fix its credentials.",
      labelNames: ['provider'],
      registers,
    });
    this.configReloads = new Counter({
      name: 'tierflow_config_reloads_total',
      help: 'Configuration reloads, by result (applied, rejected).',
      labelNames: ['result'],
      registers,
    });
    this.configLastReloadSuccessful = new Gauge({
      name: 'tierflow_config_last_reload_successful',
      help: '1 when the latest configuration change was applied (or none came since start), 0 when it was rejected and the previous one keeps serving.',
      registers,
    });
    this.configLastReloadSuccessful.set(1);
    // Both results exist from the start, so the first reload shows in increase() and changes().
    for (const result of ['applied', 'rejected']) this.configReloads.inc({ result }, 0);
  }

  /** A configuration change was applied or rejected. */
  configReloaded(result: 'applied' | 'rejected'): void {
    this.configReloads.inc({ result });
    this.configLastReloadSuccessful.set(result === 'applied' ? 1 : 0);
  }

  readonly #perModel = new WeakMap<CompiledModel, ModelMetrics>();

  /** The score histogram of one policy, resolved once (as forModel, for the per-request path). */
  scoreOf(policy: string): { observe(score: number): void } {
    let h = this.#scoreByPolicy.get(policy);
    if (!h) {
      h = this.complexityScore.labels({ policy });
      this.#scoreByPolicy.set(policy, h);
    }
    return h;
  }

  readonly #scoreByPolicy = new Map<string, { observe(score: number): void }>();

  /** The policy's flagship-cost and saved counters, resolved once (as forModel). */
  spendOf(policy: string): { flagshipCost: BoundCounter; saved: BoundCounter } {
    let s = this.#spendByPolicy.get(policy);
    if (!s) {
      s = {
        flagshipCost: new BoundCounter(this.flagshipCostUsd, { policy }),
        saved: new BoundCounter(this.savedUsd, { policy }),
      };
      this.#spendByPolicy.set(policy, s);
    }
    return s;
  }

  readonly #spendByPolicy = new Map<string, { flagshipCost: BoundCounter; saved: BoundCounter }>();

  /**
   * The metric children of one model, resolved once: prom-client hashes the label set on every
   * labelled call, which costs more than the update itself on the per-request path.
   */
  forModel(model: CompiledModel): ModelMetrics {
    let m = this.#perModel.get(model);
    if (!m) {
      m = new ModelMetrics(this, model);
      this.#perModel.set(model, m);
    }
    return m;
  }

  /** Responses kept for previous_response_id (src/core/responses/store.ts), read on scrape. */
  trackResponseStore(read: () => { size: number; bytes: number }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'tierflow_responses_stored',
      help: 'Translated Responses API conversations kept in memory for previous_response_id.',
      registers,
      collect() {
        this.set(read().size);
      },
    });
    new Gauge({
      name: 'tierflow_responses_stored_bytes',
      help: 'Size (JSON bytes) of the Responses API conversations kept in memory.',
      registers,
      collect() {
        this.set(read().bytes);
      },
    });
  }

  /** Sidecar: open ext_proc streams (one per HTTP request in flight through Envoy), read on scrape. */
  trackOpenStreams(read: () => number): void {
    new Gauge({
      name: 'tierflow_extproc_open_streams',
      help: 'Open ext_proc Process streams: HTTP requests in flight through Envoy.',
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /**
   * Per configured virtual key (label: its name, never the key): spend in the current budget
   * period, the budget, and requests and tokens in the current minute, read at scrape time. With
   * shared limits these are the totals of all replicas as of the last sync.
   */
  trackVirtualKeys(read: () => Iterable<VirtualKeyUsage>): void {
    const fields = [
      [
        'tierflow_virtual_key_spend_usd',
        'Spend of a virtual key in its current budget period (USD).',
        'spentUsd',
      ],
      ['tierflow_virtual_key_budget_usd', 'Budget of a virtual key per period (USD).', 'budgetUsd'],
      [
        'tierflow_virtual_key_minute_requests',
        'Requests of a virtual key in the current minute.',
        'requests',
      ],
      ['tierflow_virtual_key_minute_tokens', 'Tokens of a virtual key in the current minute.', 'tokens'],
      ['tierflow_virtual_key_rpm_limit', 'Requests per minute a virtual key may send.', 'rpm'],
      ['tierflow_virtual_key_tpm_limit', 'Tokens per minute a virtual key may use.', 'tpm'],
    ] as const;
    for (const [name, help, field] of fields) {
      new Gauge({
        name,
        help,
        labelNames: ['key'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const u of read()) {
            const v = u[field];
            if (v !== undefined) this.set({ key: u.name }, v);
          }
        },
      });
    }
  }

  /** Health events that feed metrics: give them to the HealthRegistry. */
  healthEvents(): HealthEvents {
    return {
      outputTokenRate: (model, rate) => this.forModel(model).tokenRate.observe(rate),
      credentialsRejected: (provider, rejected) =>
        this.credentialsRejected.set({ provider }, rejected ? 1 : 0),
    };
  }

  /**
   * Routing state read at scrape time from the live config: the circuit breaker of every enabled
   * model (so a model whose breaker never moved still has a series, and a removed one has none),
   * each policy's flagship tier (its last), and the flagship share it targets, if any. Dashboards
   * and alerts join request counters with these to compute shares per policy.
   */
  trackRouting(read: () => RoutingView | undefined): void {
    const registers = [this.registry];
    new Gauge({
      name: 'tierflow_circuit_breaker_state',
      help: 'Circuit breaker per provider/model (and its tier): 0 closed, 1 half-open, 2 open.',
      labelNames: ['provider', 'model', 'tier'],
      registers,
      collect() {
        this.reset();
        const view = read();
        if (!view) return;
        for (const m of view.config.models.values()) {
          const state = view.health.breakerState(m);
          this.set(
            { provider: m.provider.name, model: m.name, tier: m.tier },
            state === 'closed' ? 0 : state === 'half-open' ? 1 : 2,
          );
        }
      },
    });
    new Gauge({
      name: 'tierflow_policy_flagship_tier',
      help: "1 for each policy's flagship tier (its last): requests_total on it over all auto requests of the policy is its flagship share.",
      labelNames: ['policy', 'tier'],
      registers,
      collect() {
        this.reset();
        for (const p of read()?.config.policies.values() ?? []) {
          const last = p.tiers[p.tiers.length - 1];
          if (last) this.set({ policy: p.name, tier: last.name }, 1);
        }
      },
    });
    new Gauge({
      name: 'tierflow_policy_flagship_share_target',
      help: 'The share of auto requests a policy aims to send to its flagship tier (policies with flagshipShare only).',
      labelNames: ['policy'],
      registers,
      collect() {
        this.reset();
        for (const p of read()?.config.policies.values() ?? []) {
          if (p.flagshipShare !== undefined) this.set({ policy: p.name }, p.flagshipShare);
        }
      },
    });
    const spend = [
      [
        'tierflow_policy_spend_target_usd',
        'Spend target of a policy per period (policies with spendTarget).',
        'targetUsd',
      ],
      [
        'tierflow_policy_spend_usd',
        'Spend of a policy in the current spend-target period, as seen by this process.',
        'spentUsd',
      ],
      [
        'tierflow_policy_spend_projected_usd',
        'Projected spend of a policy at the end of the current period at the current threshold and traffic.',
        'projectedUsd',
      ],
      [
        'tierflow_policy_spend_threshold',
        'The maxScore a spend target has set for the tier below the flagship (absent during warm-up).',
        'threshold',
      ],
    ] as const;
    for (const [name, help, field] of spend) {
      new Gauge({
        name,
        help,
        labelNames: ['policy'],
        registers,
        collect() {
          this.reset();
          for (const s of read()?.spendStatus?.() ?? []) {
            const v = s[field];
            if (v !== undefined && Number.isFinite(v)) this.set({ policy: s.policy }, v);
          }
        },
      });
    }
  }
}

// The classes of the statuses a request ends with, made once (statusClass runs per request).
const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

export function statusClass(status: number): string {
  const c = Math.floor(status / 100);
  return STATUS_CLASSES[c] ?? `${c}xx`;
}

type HistogramChild = HistogramSeries;

export class ModelMetrics {
  readonly ttfb: HistogramChild;
  readonly ttft: HistogramChild;
  readonly tokenRate: HistogramChild;
  readonly duration: HistogramChild;
  readonly cost: BoundCounter;
  readonly tokens: Record<'input' | 'output' | 'cached_input' | 'cache_write', BoundCounter>;
  readonly #attempts = new Map<AttemptOutcome, BoundCounter>();
  readonly #failovers = new Map<AttemptOutcome, BoundCounter>();
  /** requests_total by mode, policy, tier and status class (nested: no key built per request). */
  readonly #requests = new Map<string, Map<string, Map<string, Map<string, BoundCounter>>>>();
  readonly #labels: { provider: string; model: string };

  constructor(
    private readonly metrics: Metrics,
    model: CompiledModel,
  ) {
    const l = (this.#labels = { provider: model.provider.name, model: model.name });
    this.ttfb = metrics.ttfbSeconds.labels(l);
    this.ttft = metrics.ttftSeconds.labels(l);
    this.tokenRate = metrics.outputTokensPerSecond.labels(l);
    this.duration = metrics.durationSeconds.labels({ ...l, tier: model.tier });
    this.cost = new BoundCounter(metrics.costUsd, { ...l, tier: model.tier });
    this.tokens = {
      input: new BoundCounter(metrics.tokens, { ...l, kind: 'input' }),
      output: new BoundCounter(metrics.tokens, { ...l, kind: 'output' }),
      cached_input: new BoundCounter(metrics.tokens, { ...l, kind: 'cached_input' }),
      cache_write: new BoundCounter(metrics.tokens, { ...l, kind: 'cache_write' }),
    };
  }

  attempt(outcome: AttemptOutcome): BoundCounter {
    let c = this.#attempts.get(outcome);
    if (!c)
      this.#attempts.set(
        outcome,
        (c = new BoundCounter(this.metrics.attempts, { ...this.#labels, outcome })),
      );
    return c;
  }

  failover(reason: AttemptOutcome): BoundCounter {
    let c = this.#failovers.get(reason);
    if (!c)
      this.#failovers.set(
        reason,
        (c = new BoundCounter(this.metrics.failovers, { ...this.#labels, reason })),
      );
    return c;
  }

  /** requests_total for a request this model served. */
  request(mode: string, policy: string, tier: string, status: string): BoundCounter {
    const byStatus = inner(inner(inner(this.#requests, mode), policy), tier);
    let c = byStatus.get(status);
    if (!c) {
      const { provider, model } = this.#labels;
      c = new BoundCounter(this.metrics.requests, {
        mode,
        policy,
        tier,
        provider,
        model,
        status_class: status,
      });
      byStatus.set(status, c);
    }
    return c;
  }
}

function inner<V>(outer: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let m = outer.get(key);
  if (!m) outer.set(key, (m = new Map()));
  return m;
}
