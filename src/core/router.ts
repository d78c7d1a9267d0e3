// The decision, written once for both data planes:
// parse -> authenticate -> resolve policy -> the policy's steps (./policy-steps.ts) or the named
// model's providers. Pure: no I/O.
import { createHash } from 'node:crypto';
import { type Classification, classify as defaultClassify } from './classifier/index.js';
import { TargetThreshold } from './classifier/quantile.js';
import type { CompiledConfig, CompiledModel, CompiledPolicy, CompiledVirtualKey } from './config/compiled.js';
import { ApiError } from './errors.js';
import type { HealthRegistry } from './health/registry.js';
import { KeyLimits } from './limits.js';
import type { ChatCompletionRequest } from './openai.js';
import { embeddingsParsedRequest, parseEmbeddingsRequest } from './embeddings/request.js';
import { DEFAULT_BODY_LIMIT, type ParsedRequest, parseChatRequest } from './parse.js';
import {
  POLICY_STEPS,
  type PolicyDecision,
  type PolicyStep,
  type ShareThreshold,
  type StepContext,
} from './policy-steps.js';
import { headerValue, type RequestHeaders, type RouteRequest } from './route-request.js';
import { selectExplicit } from './select.js';
import { SpendTarget, type SpendStatus } from './spend-target.js';
import { StickyConversations } from './stickiness.js';

export type { ShareThreshold } from './policy-steps.js';
export type { RequestHeaders, RouteRequest } from './route-request.js';

export interface RoutePlan {
  request: ParsedRequest;
  /** The policy of a virtual model; undefined for an explicit model name. */
  policy: CompiledPolicy | undefined;
  /** Complexity score; undefined for an explicit model name (not classified). */
  score: number | undefined;
  reasons: string[];
  /** Tier the score chose (for explicit models, the model's tier). */
  tier: string;
  /** Ordered: the primary first, then fallbacks. Models with open breakers are already left out. */
  candidates: CompiledModel[];
  virtualKey: CompiledVirtualKey | undefined;
  /** What the virtual key has left after admitting this request (x-ratelimit-* headers). */
  limitHeaders?: Record<string, string>;
  /** Clock readings (ms, the router's clock). */
  startedAt: number;
  deadlineAt: number;
  maxAttempts: number;
  firstByteTimeoutMs: number;
  maxRetryAfterMs: number;
  /** The failover rules of this request (its policy's, or for a named model see CompiledConfig.explicitFailover). */
  failover: CompiledPolicy['failover'];
  /** Estimated cost reserved against the virtual key's budget; settled when the request ends. */
  reservedUsd: number;
  /** Set when the policy has conversation stickiness (see Router.remember). */
  conversation?: {
    key: string;
    /** The tier an earlier turn was served by, when this request continues a known conversation. */
    tierIndex?: number;
    /** How stickiness changed the decision: 'tier' (raised the tier), 'model' (chose the model). */
    applied?: 'tier' | 'model';
  };
}

export interface RouterOptions {
  config: CompiledConfig;
  health: HealthRegistry;
  classify?: (req: ChatCompletionRequest) => Classification;
  /** Creates the running threshold of a policy that sets flagshipShare (default: TargetThreshold). */
  shareThreshold?: (policy: CompiledPolicy) => ShareThreshold;
  clock?: () => number;
  /** Wall-clock time in epoch ms, for spend-target periods (default Date.now). */
  wallClock?: () => number;
  bodyLimit?: number;
  /** The policy branch of the decision, in order (default POLICY_STEPS). */
  policySteps?: readonly PolicyStep[];
}

export class Router {
  #config: CompiledConfig;
  readonly health: HealthRegistry;
  readonly limits = new KeyLimits();
  readonly #classify: (req: ChatCompletionRequest) => Classification;
  readonly #shareThreshold: (policy: CompiledPolicy) => ShareThreshold;
  #thresholds = new Map<string, ShareThreshold>();
  #spendTargets = new Map<string, SpendTarget>();
  readonly #wallClock: () => number;
  readonly #sticky = new StickyConversations();
  readonly #clock: () => number;
  readonly #steps: readonly PolicyStep[];
  readonly #stepContext: StepContext;
  readonly bodyLimit: number;

  constructor(options: RouterOptions) {
    this.#config = options.config;
    this.health = options.health;
    this.#classify = options.classify ?? defaultClassify;
    this.#shareThreshold = options.shareThreshold ?? defaultShareThreshold;
    this.#clock = options.clock ?? (() => performance.now());
    this.#wallClock = options.wallClock ?? Date.now;
    this.bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    this.#steps = options.policySteps ?? POLICY_STEPS;
    const classify = this.#classify;
    this.#stepContext = {
      health: this.health,
      sticky: this.#sticky,
      classify: (policy, body) => (policy.classifier ? policy.classifier.classify(body) : classify(body)),
      shareThreshold: (policy) => this.#thresholds.get(shareKey(policy)),
      spendTarget: (policy) => this.#spendTargets.get(spendKey(policy)),
      wallClock: this.#wallClock,
    };
    this.#rebuildThresholds();
  }

  get config(): CompiledConfig {
    return this.#config;
  }

  /** Swaps in a new config atomically: requests already planned keep the one they started with. */
  setConfig(config: CompiledConfig): void {
    this.#config = config;
    this.health.retain(config);
    this.#rebuildThresholds();
  }

  #rebuildThresholds(): void {
    const next = new Map<string, ShareThreshold>();
    for (const p of this.#config.policies.values()) {
      if (p.flagshipShare === undefined) continue;
      // Keep the running distribution across reloads while the target and classifier are unchanged.
      const key = shareKey(p);
      next.set(key, this.#thresholds.get(key) ?? this.#shareThreshold(p));
    }
    this.#thresholds = next;
    const spend = new Map<string, SpendTarget>();
    for (const p of this.#config.policies.values()) {
      if (!p.spendTarget || p.tiers.length < 2) continue;
      const max = p.tiers[p.tiers.length - 2]!.maxScore;
      const min = p.tiers.length > 2 ? p.tiers[p.tiers.length - 3]!.maxScore : 0;
      const key = spendKey(p);
      spend.set(key, this.#spendTargets.get(key) ?? new SpendTarget({ ...p.spendTarget, min, max }));
    }
    this.#spendTargets = spend;
  }

  /** Target vs projection of every policy with a spend target (metrics). */
  spendStatus(): Array<SpendStatus & { policy: string }> {
    const now = this.#wallClock();
    const out: Array<SpendStatus & { policy: string }> = [];
    for (const p of this.#config.policies.values()) {
      const t = p.spendTarget ? this.#spendTargets.get(spendKey(p)) : undefined;
      if (t) out.push({ policy: p.name, ...t.status(now) });
    }
    return out;
  }

  /** A served request's cost, for its policy's spend target. */
  recordCost(plan: RoutePlan, served: CompiledModel, usd: number): void {
    const p = plan.policy;
    if (!p?.spendTarget) return;
    const last = p.tiers[p.tiers.length - 1]!;
    this.#spendTargets.get(spendKey(p))?.recordCost(usd, served.tier === last.name, this.#wallClock());
  }

  /** The whole decision for one request. Throws ApiError for anything the client must hear. */
  plan(route: RouteRequest): RoutePlan {
    const startedAt = this.#clock();
    const config = this.#config;
    const { body } = route;
    const request =
      typeof body === 'string' || Buffer.isBuffer(body) ? parseChatRequest(body, this.bodyLimit) : body;
    const virtualKey = authenticate(config, headerValue(route.headers, 'authorization'));
    const policy = config.virtualModels.get(request.model);
    refuseModelNotAllowed(virtualKey, request.model);
    const plan = policy
      ? this.#planForPolicy(policy, request, route, virtualKey, startedAt)
      : this.#planForModel(config, request, virtualKey, startedAt);
    return this.#admitted(plan);
  }

  /**
   * The decision for an embeddings request: an explicit embedding model (a virtual model such as
   * `auto` is refused: there is nothing to classify), every enabled provider offering it as
   * candidates, healthy ones first, cheapest first; the top-level failover rules.
   */
  planEmbeddings(received: { body: Buffer; headers?: RequestHeaders }): RoutePlan {
    const startedAt = this.#clock();
    const config = this.#config;
    const embeddings = parseEmbeddingsRequest(received.body, this.bodyLimit);
    const request = embeddingsParsedRequest(embeddings);
    const virtualKey = authenticate(config, headerValue(received.headers, 'authorization'));
    refuseModelNotAllowed(virtualKey, request.model);
    const named = embeddingCandidates(config, request.model);
    const candidates = named.filter((m) => this.health.available(m));
    if (candidates.length === 0) {
      throw new ApiError(
        503,
        `Model '${request.model}' is temporarily unavailable: every provider of it has an open circuit breaker or is out of rotation.`,
        'api_error',
        'model_unavailable',
      );
    }
    candidates.sort((a, b) => a.pricing.inputPerMTok - b.pricing.inputPerMTok);
    const plan = newPlan({
      request,
      tier: 'embeddings',
      candidates,
      virtualKey,
      startedAt,
      failover: config.failover,
    });
    return this.#admitted(plan);
  }

  #planForModel(
    config: CompiledConfig,
    request: ParsedRequest,
    virtualKey: CompiledVirtualKey | undefined,
    startedAt: number,
  ): RoutePlan {
    const byId = config.models.get(request.model);
    const named = byId ? [byId] : config.modelsByName.get(request.model);
    if (!named) {
      throw new ApiError(
        404,
        `The model '${request.model}' does not exist or is not configured. ${modelHint(config)}`,
        'invalid_request_error',
        'model_not_found',
        'model',
      );
    }
    const candidates = selectExplicit(named, request, this.health);
    const f = config.explicitFailover.get(candidates[0]!.id)?.failover ?? config.failover;
    return newPlan({ request, tier: candidates[0]!.tier, candidates, virtualKey, startedAt, failover: f });
  }

  #planForPolicy(
    policy: CompiledPolicy,
    request: ParsedRequest,
    route: RouteRequest,
    virtualKey: CompiledVirtualKey | undefined,
    startedAt: number,
  ): RoutePlan {
    const d: PolicyDecision = {
      policy,
      request,
      headers: route.headers,
      virtualKey,
      startedAt,
      score: 0,
      reasons: [],
      scoredTier: 0,
      tierIndex: 0,
      candidates: [],
    };
    const steps = this.#steps;
    for (let i = 0; i < steps.length; i++) steps[i]!(d, this.#stepContext);
    const plan = newPlan({
      request,
      tier: policy.tiers[d.tierIndex]!.name,
      candidates: d.candidates,
      virtualKey,
      startedAt,
      failover: policy.failover,
      policy,
      score: d.score,
      reasons: d.reasons,
    });
    const c = d.conversation;
    if (c) {
      const conversation: NonNullable<RoutePlan['conversation']> = { key: c.key };
      if (c.tierIndex !== undefined) conversation.tierIndex = c.tierIndex;
      if (d.sticky) conversation.applied = d.sticky;
      plan.conversation = conversation;
    }
    return plan;
  }

  /** The plan, its request admitted against the key's limits: last, when nothing can reject it any more (the reservation is always settled). */
  #admitted(plan: RoutePlan): RoutePlan {
    const key = plan.virtualKey;
    if (key) {
      plan.reservedUsd = key.budget ? expectedCostUsd(plan.request, plan.candidates[0]!) : 0;
      this.limits.admit(key, plan.reservedUsd);
    }
    return plan;
  }

  now(): number {
    return this.#clock();
  }

  /** Usage of every configured virtual key (by name): for metrics. */
  keyUsage(): Array<{
    name: string;
    budgetUsd?: number;
    rpm?: number;
    tpm?: number;
    requests: number;
    tokens: number;
    spentUsd: number;
  }> {
    return [...this.#config.virtualKeys.values()].map((k) => ({
      name: k.name,
      ...(k.budget ? { budgetUsd: k.budget.usd } : {}),
      ...(k.rpm !== undefined ? { rpm: k.rpm } : {}),
      ...(k.tpm !== undefined ? { tpm: k.tpm } : {}),
      ...this.limits.usage(k),
    }));
  }

  /**
   * A request of a sticky policy was served by `served`: remember the conversation's tier (never
   * lower than an earlier turn's) and model for its next turns.
   */
  remember(plan: RoutePlan, served: CompiledModel): void {
    const sticky = plan.policy?.stickiness;
    if (!sticky || !plan.conversation) return;
    const tiers = plan.policy!.tiers;
    let tierIndex = 0;
    while (tierIndex < tiers.length && tiers[tierIndex]!.name !== served.tier) tierIndex++;
    if (tierIndex === tiers.length) return;
    this.#sticky.set(plan.conversation.key, {
      tierIndex: Math.max(tierIndex, plan.conversation.tierIndex ?? 0),
      modelId: served.id,
      expiresAt: this.#clock() + sticky.ttlMs,
    });
  }
}

const spendKey = (p: CompiledPolicy): string =>
  `${p.name}@${p.spendTarget?.usd}/${p.spendTarget?.period}@${p.tiers.map((t) => t.maxScore).join(',')}@${p.classifier?.id ?? ''}`;

const shareKey = (p: CompiledPolicy): string => `${p.name}@${p.flagshipShare}@${p.classifier?.id ?? ''}`;

type PlanFields = Pick<
  RoutePlan,
  'request' | 'tier' | 'candidates' | 'virtualKey' | 'startedAt' | 'failover'
> &
  Partial<Pick<RoutePlan, 'policy' | 'score' | 'reasons'>>;

/** A plan that sends the request to `candidates` in order under its failover rules. */
function newPlan(p: PlanFields): RoutePlan {
  const f = p.failover;
  return {
    request: p.request,
    policy: p.policy,
    score: p.score,
    reasons: p.reasons ?? [],
    tier: p.tier,
    candidates: p.candidates,
    virtualKey: p.virtualKey,
    startedAt: p.startedAt,
    deadlineAt: p.startedAt + f.deadlineMs,
    maxAttempts: f.maxAttempts,
    firstByteTimeoutMs: f.firstByteTimeoutMs,
    maxRetryAfterMs: f.maxRetryAfterMs,
    failover: f,
    reservedUsd: 0,
  };
}

function refuseModelNotAllowed(key: CompiledVirtualKey | undefined, model: string): void {
  if (key?.allowedModels && !key.allowedModels.has(model)) {
    throw new ApiError(
      403,
      `This key may not use model '${model}'.`,
      'permission_error',
      'model_not_allowed',
    );
  }
}

/** What the client may ask for instead of an unknown model. */
function modelHint(config: CompiledConfig): string {
  const virtual = [...config.virtualModels.keys()];
  if (virtual.length > 0)
    return `Use ${virtual.map((v) => `'${v}'`).join(' or ')}, or one of GET /v1/models.`;
  if (config.models.size > 0) return 'Use one of GET /v1/models.';
  return 'No provider is usable: check the provider credentials in the TierFlow configuration.';
}

/** The embedding models a request's `model` names, or the 400/404 that says why there are none. */
function embeddingCandidates(config: CompiledConfig, name: string): CompiledModel[] {
  const byId = config.embeddingModels.get(name);
  const named = byId ? [byId] : config.embeddingModelsByName.get(name);
  if (named) return [...named];
  if (config.virtualModels.has(name)) {
    throw new ApiError(
      400,
      `Embeddings need an explicit embedding model; '${name}' routes chat requests. ${embeddingHint(config)}`,
      'invalid_request_error',
      'model_not_embeddings',
      'model',
    );
  }
  if (config.models.has(name) || config.modelsByName.has(name)) {
    throw new ApiError(
      400,
      `Model '${name}' is a chat model, not an embedding model. ${embeddingHint(config)}`,
      'invalid_request_error',
      'model_not_embeddings',
      'model',
    );
  }
  throw new ApiError(
    404,
    `The embedding model '${name}' does not exist or is not configured. ${embeddingHint(config)}`,
    'invalid_request_error',
    'model_not_found',
    'model',
  );
}

function embeddingHint(config: CompiledConfig): string {
  const names = [...config.embeddingModelsByName.keys()];
  return names.length
    ? `Embedding models: ${names.map((n) => `'${n}'`).join(', ')}.`
    : 'No embedding model is configured (embeddingModels of a provider).';
}

/** Output tokens assumed when the request sets no limit, for the budget reservation. */
const TYPICAL_OUTPUT_TOKENS = 400;

/** What the request is expected to cost on `model` (prompt, plus its max_tokens or a typical answer). */
function expectedCostUsd(request: ParsedRequest, model: CompiledModel): number {
  const out = request.maxOutputTokens ?? TYPICAL_OUTPUT_TOKENS;
  return (request.promptTokens * model.pricing.inputPerMTok + out * model.pricing.outputPerMTok) / 1e6;
}

function defaultShareThreshold(policy: CompiledPolicy): ShareThreshold {
  const belowFlagship = policy.tiers[policy.tiers.length - 2];
  return new TargetThreshold({ share: policy.flagshipShare!, fallback: belowFlagship?.maxScore ?? 0.5 });
}

/** With virtual keys configured, a valid `Authorization: Bearer <key>` is required; otherwise none is. */
export function authenticate(
  config: CompiledConfig,
  authorization: string | undefined,
): CompiledVirtualKey | undefined {
  if (config.virtualKeys.size === 0) return undefined;
  const m = authorization && /^Bearer\s+(.+)$/i.exec(authorization.trim());
  if (!m) {
    throw new ApiError(
      401,
      'Missing API key: send your TierFlow virtual key as "Authorization: Bearer <key>".',
      'authentication_error',
      'invalid_api_key',
    );
  }
  const hash = createHash('sha256').update(m[1]!).digest('hex');
  const key = config.virtualKeys.get(hash);
  if (!key) throw new ApiError(401, 'Incorrect API key provided.', 'authentication_error', 'invalid_api_key');
  return key;
}
