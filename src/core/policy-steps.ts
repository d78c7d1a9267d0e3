// The policy branch of the routing decision as an ordered list of steps. Each step reads the
// request and refines one PolicyDecision; the router runs POLICY_STEPS in order and builds the
// plan from the result. A new routing signal (a client's hint header, a tenant rule) is one more
// step in that list: it sees the whole request (body, headers, virtual key) and the decision so far.
import type { Classification } from './classifier/index.js';
import type { CompiledModel, CompiledPolicy, CompiledVirtualKey } from './config/compiled.js';
import type { HealthRegistry } from './health/registry.js';
import type { ChatCompletionRequest } from './openai.js';
import type { ParsedRequest } from './parse.js';
import type { RequestHeaders } from './route-request.js';
import { selectCandidates, tierIndexForScore } from './select.js';
import type { SpendTarget } from './spend-target.js';
import { conversationKey, type StickyConversations } from './stickiness.js';

/** Keeps a policy's last threshold at the quantile that yields its target flagship share. */
export interface ShareThreshold {
  observe(score: number): void;
  /** Undefined while warming up (the configured maxScore applies). */
  threshold(): number | undefined;
}

/** The decision for a request of a virtual model, filled in step by step. */
export interface PolicyDecision {
  readonly policy: CompiledPolicy;
  readonly request: ParsedRequest;
  readonly headers: RequestHeaders | undefined;
  readonly virtualKey: CompiledVirtualKey | undefined;
  /** The router's clock when the request arrived (ms). */
  readonly startedAt: number;
  /** Complexity score (classify). */
  score: number;
  reasons: string[];
  /** Tier the score chose (threshold or target). */
  scoredTier: number;
  /** Tier the request goes to: the scored tier, possibly raised by a later step. */
  tierIndex: number;
  /** Ordered candidates (select): the primary first, then fallbacks. */
  candidates: CompiledModel[];
  /** Conversation stickiness: the conversation's key and what an earlier turn was served by. */
  conversation?: { key: string; tierIndex?: number; modelId?: string };
  /** How stickiness changed the decision: 'tier' (raised the tier), 'model' (chose the model). */
  sticky?: 'tier' | 'model';
}

/** What the steps may use of the router: its state across requests. */
export interface StepContext {
  readonly health: HealthRegistry;
  readonly sticky: StickyConversations;
  classify(policy: CompiledPolicy, body: ChatCompletionRequest): Classification;
  /** The running flagship-share threshold of a policy that sets flagshipShare. */
  shareThreshold(policy: CompiledPolicy): ShareThreshold | undefined;
  /** The spend target of a policy that sets spendTarget. */
  spendTarget(policy: CompiledPolicy): SpendTarget | undefined;
  /** Wall-clock time, epoch ms (spend-target periods). */
  wallClock(): number;
}

export type PolicyStep = (d: PolicyDecision, ctx: StepContext) => void;

/** Scores the request with the policy's classifier (or the shipped one). */
export const classifyStep: PolicyStep = (d, ctx) => {
  const c = ctx.classify(d.policy, d.request.body);
  d.score = c.score;
  d.reasons = c.reasons;
};

/**
 * Maps the score to a tier: through the configured maxScores, or with a flagship share or a spend
 * target, through their running threshold below the flagship (which then sees this score).
 */
export const thresholdStep: PolicyStep = (d, ctx) => {
  const share = d.policy.flagshipShare !== undefined ? ctx.shareThreshold(d.policy) : undefined;
  const spend = d.policy.spendTarget ? ctx.spendTarget(d.policy) : undefined;
  d.scoredTier = tierIndexForScore(d.policy, d.score, share?.threshold() ?? spend?.threshold());
  d.tierIndex = Math.max(d.tierIndex, d.scoredTier);
  share?.observe(d.score);
  spend?.observe(d.score, ctx.wallClock());
};

/**
 * Conversation stickiness: a request that continues a known conversation goes no lower than the
 * tier an earlier turn was served by.
 */
export const stickinessStep: PolicyStep = (d, ctx) => {
  const policy = d.policy;
  if (!policy.stickiness) return;
  const body = d.request.body;
  const key = conversationKey(body, `${d.virtualKey?.keyHash ?? '-'}\u0000${policy.name}`);
  if (key === undefined) return;
  // Only a request that continues a conversation (it carries an earlier answer) reads it.
  const continues = hasAssistantMessage(body.messages);
  const entry = continues ? ctx.sticky.get(key, d.startedAt) : undefined;
  if (!entry) {
    d.conversation = { key };
    return;
  }
  d.conversation =
    policy.stickiness.mode === 'model'
      ? { key, tierIndex: entry.tierIndex, modelId: entry.modelId }
      : { key, tierIndex: entry.tierIndex };
  const raised = Math.min(entry.tierIndex, policy.tiers.length - 1);
  if (raised > d.tierIndex) {
    d.tierIndex = raised;
    d.sticky = 'tier';
  }
};

function hasAssistantMessage(messages: ChatCompletionRequest['messages']): boolean {
  for (let i = 0; i < messages.length; i++) if (messages[i]?.role === 'assistant') return true;
  return false;
}

/** The candidates of the chosen tier, healthy and able to take the request (and a sticky model first). */
export const selectStep: PolicyStep = (d, ctx) => {
  d.candidates = selectCandidates(d.policy, d.tierIndex, d.request, ctx.health).candidates;
  const pinned = d.conversation?.modelId;
  if (pinned !== undefined && moveToFront(d.candidates, pinned)) d.sticky = 'model';
};

/** The policy branch, in order. */
export const POLICY_STEPS: readonly PolicyStep[] = [classifyStep, thresholdStep, stickinessStep, selectStep];

/** Moves the model `id` to the front of `candidates`; false when it is not among them. */
function moveToFront(candidates: CompiledModel[], id: string): boolean {
  const k = candidates.findIndex((m) => m.id === id);
  if (k < 0) return false;
  if (k > 0) candidates.unshift(...candidates.splice(k, 1));
  return true;
}
