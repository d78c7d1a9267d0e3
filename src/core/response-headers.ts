// The x-tierflow-* headers every response carries, from both data planes.
import type { CompiledModel } from './config/compiled.js';
import type { RoutePlan } from './router.js';

export const TIERFLOW_HEADER_PREFIX = 'x-tierflow-';
export const COST_HEADER = 'x-tierflow-cost-usd';

export function tierflowHeaders(
  plan: RoutePlan | undefined,
  served: CompiledModel | undefined,
  attempts: number,
  costUsd: number | undefined,
): Record<string, string> {
  const h: Record<string, string> = { 'x-tierflow-attempts': String(attempts) };
  if (served) {
    h['x-tierflow-model'] = served.name;
    h['x-tierflow-provider'] = served.provider.name;
    h['x-tierflow-tier'] = served.tier;
  }
  if (plan?.score !== undefined) h['x-tierflow-score'] = plan.score.toFixed(4);
  else if (plan) h['x-tierflow-score'] = 'explicit';
  if (plan?.policy) h['x-tierflow-policy'] = plan.policy.name;
  if (plan?.conversation?.applied) h['x-tierflow-sticky'] = plan.conversation.applied;
  if (costUsd !== undefined) h[COST_HEADER] = costUsd.toFixed(8);
  if (plan?.limitHeaders) Object.assign(h, plan.limitHeaders);
  return h;
}

/** True for a header name the client must not be able to set. */
export function isTierflowHeader(name: string): boolean {
  return name.length > 11 && name.toLowerCase().startsWith(TIERFLOW_HEADER_PREFIX);
}
