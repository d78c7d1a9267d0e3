// observe + account: what happened to a request goes to metrics, key limits and the log, the
// same way from both data planes.
import { accountRequest, type RequestCost } from '../core/accounting.js';
import type { CompiledModel } from '../core/config/compiled.js';
import { ApiError } from '../core/errors.js';
import type { Usage } from '../core/openai.js';
import type { Router, RoutePlan } from '../core/router.js';
import type { Logger } from '../observe/log.js';
import type { AttemptRecord } from './engine.js';
import { type Metrics, statusClass } from '../observe/metrics.js';
import type { RequestTrace, Tracer } from '../observe/tracing.js';

export interface RequestOutcome {
  status: number;
  attempts: AttemptRecord[];
  served?: CompiledModel;
  usage?: Usage;
  cost?: RequestCost;
  error?: ApiError;
}

export interface DataPlaneDeps {
  router: Router;
  metrics: Metrics;
  log: Logger;
  /** Only when OpenTelemetry export is configured. */
  tracer?: Tracer;
}

/** Cost of the served attempt (if usage is known). */
export function costOf(
  plan: RoutePlan,
  served: CompiledModel | undefined,
  usage: Usage | undefined,
): RequestCost | undefined {
  return served && usage ? accountRequest(usage, served, plan.policy) : undefined;
}

/** The request is over: request metrics, tokens, spend, key limits, one log line. */
export function recordRequest(
  deps: DataPlaneDeps,
  plan: RoutePlan,
  outcome: RequestOutcome,
  requestId: string,
  trace?: RequestTrace,
): void {
  const { metrics } = deps;
  const served = outcome.served;
  const policyName = plan.policy?.name ?? 'none';
  const mode = plan.policy ? 'auto' : 'explicit';
  const status = statusClass(outcome.status);
  const elapsed = (deps.router.now() - plan.startedAt) / 1000;
  const u = outcome.usage;
  const cost = outcome.cost;
  if (!served) {
    metrics.requests.inc({
      mode,
      policy: policyName,
      tier: plan.tier,
      provider: 'none',
      model: 'none',
      status_class: status,
    });
  } else {
    const m = metrics.forModel(served);
    m.request(mode, policyName, plan.tier, status).inc();
    m.duration.observe(elapsed);
    if (u) {
      m.tokens.input.inc(u.promptTokens);
      m.tokens.output.inc(u.completionTokens);
      if (u.cachedPromptTokens) m.tokens.cached_input.inc(u.cachedPromptTokens);
      if (u.cacheWriteTokens) m.tokens.cache_write.inc(u.cacheWriteTokens);
    }
    if (cost) {
      m.cost.inc(cost.costUsd);
      if (plan.policy) {
        const spend = metrics.spendOf(policyName);
        spend.flagshipCost.inc(cost.flagshipCostUsd);
        const saved = cost.flagshipCostUsd - cost.costUsd;
        if (saved > 0) spend.saved.inc(saved);
      }
    }
  }
  if (served && outcome.status < 400) deps.router.remember(plan, served);
  if (served && cost) deps.router.recordCost(plan, served, cost.costUsd);
  if (plan.virtualKey) {
    deps.router.limits.record(
      plan.virtualKey,
      (u?.promptTokens ?? 0) + (u?.completionTokens ?? 0),
      cost?.costUsd ?? 0,
      plan.reservedUsd,
    );
  }
  if (deps.log.enabled?.('info') !== false) logRequest(deps, plan, outcome, requestId, elapsed);
  if (trace) deps.tracer?.end(trace, { plan, ...outcome, endedAt: deps.router.now() });
}

/** The request's log line (its fields are built only when it is written). */
function logRequest(
  deps: DataPlaneDeps,
  plan: RoutePlan,
  outcome: RequestOutcome,
  requestId: string,
  elapsed: number,
): void {
  const served = outcome.served;
  const u = outcome.usage;
  const cost = outcome.cost;
  deps.log.info('request', {
    requestId,
    status: outcome.status,
    mode: plan.policy ? 'auto' : 'explicit',
    policy: plan.policy?.name,
    score: plan.score === undefined ? undefined : Number(plan.score.toFixed(4)),
    tier: plan.tier,
    provider: served?.provider.name,
    model: served?.name,
    attempts: outcome.attempts.map(
      (a) => `${a.model.id}:${a.outcome}${a.status ? `:${a.status}` : ''}${a.cause ? ` (${a.cause})` : ''}`,
    ),
    adjusted: served ? outcome.attempts.findLast((a) => a.model === served)?.adjusted : undefined,
    promptTokens: u?.promptTokens,
    completionTokens: u?.completionTokens,
    costUsd: cost?.costUsd,
    ms: Math.round(elapsed * 1000),
    stream: plan.request.stream,
    api: plan.request.responses ? 'responses' : undefined,
    error: outcome.error?.code ?? undefined,
    key: plan.virtualKey?.name,
    sticky: plan.conversation?.applied,
  });
}

/** A request the router rejected (no plan): its trace ends with the error. */
export function traceRejected(deps: DataPlaneDeps, trace: RequestTrace | undefined, error: ApiError): void {
  if (trace)
    deps.tracer?.end(trace, { status: error.status, attempts: [], error, endedAt: deps.router.now() });
}
