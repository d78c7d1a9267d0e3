// account: what a request cost, and what the policy's flagship would have cost for the same usage.
import type { CompiledModel, CompiledPolicy } from './config/compiled.js';
import type { Usage } from './openai.js';

export function costUsd(usage: Usage, pricing: CompiledModel['pricing']): number {
  const uncachedInput = Math.max(0, usage.promptTokens - usage.cachedPromptTokens - usage.cacheWriteTokens);
  return (
    (uncachedInput * pricing.inputPerMTok +
      usage.cachedPromptTokens * pricing.cachedInputPerMTok +
      usage.cacheWriteTokens * pricing.cacheWritePerMTok +
      usage.completionTokens * pricing.outputPerMTok) /
    1e6
  );
}

/** The model the policy's top tier would put first with no live data: its first configured candidate. */
export function flagshipOf(policy: CompiledPolicy | undefined): CompiledModel | undefined {
  return policy?.tiers[policy.tiers.length - 1]?.candidates[0];
}

export interface RequestCost {
  costUsd: number;
  /** Cost of the same usage on the policy's flagship (equal to costUsd when there is none). */
  flagshipCostUsd: number;
}

export function accountRequest(
  usage: Usage,
  served: CompiledModel,
  policy: CompiledPolicy | undefined,
): RequestCost {
  const cost = costUsd(usage, served.pricing);
  const flagship = flagshipOf(policy);
  return { costUsd: cost, flagshipCostUsd: flagship ? costUsd(usage, flagship.pricing) : cost };
}

/** A rough cost before the response is known: the prompt estimate at the input price. */
export function promptCostEstimateUsd(promptTokens: number, model: CompiledModel): number {
  return (promptTokens * model.pricing.inputPerMTok) / 1e6;
}
