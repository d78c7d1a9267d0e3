// select: which models may serve a request, best first. Filter (capabilities, context window,
// breakers), then order within a tier by price and live latency, then append fallbacks.
import type { CompiledModel, CompiledPolicy } from './config/compiled.js';
import { ApiError } from './errors.js';
import type { HealthRegistry } from './health/registry.js';
import type { ParsedRequest } from './parse.js';

/** Output tokens assumed when the request sets no limit, for the expected-cost estimate. */
const TYPICAL_OUTPUT_TOKENS = 400;

export type Unfit = 'capability' | 'context' | 'unavailable';

/** Why a model cannot take this request, or undefined when it can. */
export function unfitReason(
  model: CompiledModel,
  req: ParsedRequest,
  health: HealthRegistry,
): Unfit | undefined {
  const caps = model.capabilities;
  if (
    (req.needs.tools && !caps.has('tools')) ||
    (req.needs.vision && !caps.has('vision')) ||
    (req.needs.jsonSchema && !caps.has('jsonSchema')) ||
    (req.stream && !caps.has('streaming'))
  ) {
    return 'capability';
  }
  const out = req.maxOutputTokens ?? 0;
  if (out > model.maxOutputTokens || req.promptTokens + out > model.contextWindow) return 'context';
  if (!health.available(model)) return 'unavailable';
  return undefined;
}

/** Index of the tier a score falls in; `lastThreshold` overrides the bound below the last tier. */
export function tierIndexForScore(policy: CompiledPolicy, score: number, lastThreshold?: number): number {
  const last = policy.tiers.length - 1;
  for (let i = 0; i < last; i++) {
    const bound = i === last - 1 && lastThreshold !== undefined ? lastThreshold : policy.tiers[i]!.maxScore;
    if (score <= bound) return i;
  }
  return last;
}

export interface Selection {
  candidates: CompiledModel[];
  /** Tier the score asked for (candidates may start in another tier if it had none fit). */
  tierIndex: number;
}

export function selectCandidates(
  policy: CompiledPolicy,
  tierIndex: number,
  req: ParsedRequest,
  health: HealthRegistry,
): Selection {
  // Per request: no Sets or per-tier arrays (tiers hold a handful of models each).
  const candidates: CompiledModel[] = [];
  let reasons = 0;
  const escalate = policy.failover.escalate;
  const end = escalate === 'none' ? tierIndex + 1 : policy.tiers.length;
  for (let t = tierIndex; t < end; t++) reasons |= addTier(policy, t, tierIndex, req, health, candidates);
  if (escalate !== 'none' && escalate !== 'up') {
    for (let t = tierIndex - 1; t >= 0; t--)
      reasons |= addTier(policy, t, tierIndex, req, health, candidates);
  }
  if (candidates.length === 0) throw noCandidate(policy.name, unfitSet(reasons), req);
  return { candidates, tierIndex };
}

const UNFIT_BIT: Record<Unfit, number> = { capability: 1, context: 2, unavailable: 4 };

function unfitSet(bits: number): Set<Unfit> {
  const set = new Set<Unfit>();
  for (const k of Object.keys(UNFIT_BIT) as Unfit[]) if (bits & UNFIT_BIT[k]) set.add(k);
  return set;
}

/**
 * Appends the fit models of tier `t` not already seen in an earlier tier (tiers are visited from
 * `start` up, then down) to `out`, ranked; returns the unfit reasons seen, as UNFIT_BIT bits.
 */
function addTier(
  policy: CompiledPolicy,
  t: number,
  start: number,
  req: ParsedRequest,
  health: HealthRegistry,
  out: CompiledModel[],
): number {
  const models = policy.tiers[t]!.candidates;
  let reasons = 0;
  const from = out.length;
  for (let i = 0; i < models.length; i++) {
    const m = models[i]!;
    if (seenBefore(policy, t, start, i, m.id)) continue;
    const why = unfitReason(m, req, health);
    if (why) reasons |= UNFIT_BIT[why];
    else out.push(m);
  }
  if (out.length - from > 1) rankWithinTier(out, from, policy, req, health);
  return reasons;
}

/** Whether the model id at `policy.tiers[t].candidates[i]` came up before in the visiting order. */
function seenBefore(policy: CompiledPolicy, t: number, start: number, i: number, id: string): boolean {
  const tiers = policy.tiers;
  const here = tiers[t]!.candidates;
  for (let k = 0; k < i; k++) if (here[k]!.id === id) return true;
  // Visited before t: start..t-1 when t is at or above start; start..end and then t+1..start-1 below it.
  if (t >= start) {
    for (let u = start; u < t; u++) if (hasId(tiers[u]!.candidates, id)) return true;
    return false;
  }
  for (let u = start; u < tiers.length; u++) if (hasId(tiers[u]!.candidates, id)) return true;
  for (let u = start - 1; u > t; u--) if (hasId(tiers[u]!.candidates, id)) return true;
  return false;
}

function hasId(models: readonly CompiledModel[], id: string): boolean {
  for (let k = 0; k < models.length; k++) if (models[k]!.id === id) return true;
  return false;
}

/**
 * Explicit model name: every enabled provider offering it that can serve the request (the same
 * capability and context checks as a policy's candidates), healthy ones ordered by latency.
 */
export function selectExplicit(models: readonly CompiledModel[], req: ParsedRequest, health: HealthRegistry) {
  const reasons = new Set<Unfit>();
  const available: CompiledModel[] = [];
  for (const m of models) {
    const why = unfitReason(m, req, health);
    if (why) reasons.add(why);
    else available.push(m);
  }
  if (available.length === 0) {
    if (reasons.has('capability')) {
      return unfit(
        `Model '${req.model}' does not support what this request needs (${needsOf(req).join(', ') || 'text'}).`,
        'unsupported_capability',
      );
    }
    if (reasons.has('context')) {
      const m = models[0]!;
      return unfit(
        `The request (about ${req.promptTokens} prompt tokens${req.maxOutputTokens ? ` + ${req.maxOutputTokens} output` : ''}) exceeds what model '${req.model}' takes (context window ${m.contextWindow}, at most ${m.maxOutputTokens} output tokens).`,
        'context_length_exceeded',
      );
    }
    throw new ApiError(
      503,
      `Model '${req.model}' is temporarily unavailable: every provider of it has an open circuit breaker or is out of rotation.`,
      'api_error',
      'model_unavailable',
    );
  }
  if (available.length > 1)
    rankWithinTier(available, 0, { objective: { cost: 0.5, latency: 0.5 } }, req, health);
  return available;
}

function unfit(message: string, code: string): never {
  throw new ApiError(400, message, 'invalid_request_error', code);
}

function needsOf(req: ParsedRequest): string[] {
  const needs = Object.entries(req.needs)
    .filter(([, v]) => v)
    .map(([k]) => k);
  if (req.stream) needs.push('streaming');
  return needs;
}

/**
 * Orders `models` from index `from` on, in place, by a weighted sum of log price ratio and log
 * latency ratio to the best in the group, so weights trade relative, not absolute, differences.
 * Models with no latency sample yet count as the best (they get explored); a latency SLO pushes
 * models whose p95 misses it to the back.
 */
function rankWithinTier(
  models: CompiledModel[],
  from: number,
  policy: Pick<CompiledPolicy, 'objective' | 'latencySloMs'>,
  req: ParsedRequest,
  health: HealthRegistry,
): void {
  const n = models.length - from;
  if (n <= 1) return;
  const out = req.maxOutputTokens ?? TYPICAL_OUTPUT_TOKENS;
  if (n > rankCost.length) growScratch(n);
  let minCost = Infinity;
  let minLat = Infinity;
  for (let i = 0; i < n; i++) {
    const m = models[from + i]!;
    rankCost[i] = Math.max(1e-12, req.promptTokens * m.pricing.inputPerMTok + out * m.pricing.outputPerMTok);
    const stats = health.latency(m);
    const ttft = stats?.ttftMs.ewma.value ?? stats?.ttfbMs.ewma.value;
    rankLat[i] = ttft === undefined ? NaN : Math.max(1, ttft);
    rankMissesSlo[i] = 0;
    if (policy.latencySloMs !== undefined) {
      const p95 = stats?.ttftMs.p95;
      if (p95 !== undefined && p95 > policy.latencySloMs) rankMissesSlo[i] = 1;
    }
    if (rankCost[i]! < minCost) minCost = rankCost[i]!;
    if (rankLat[i]! < minLat) minLat = rankLat[i]!;
  }
  const wc = policy.objective.cost;
  const wl = policy.objective.latency;
  for (let i = 0; i < n; i++) {
    const l = Number.isNaN(rankLat[i]!) || minLat === Infinity ? 0 : Math.log(rankLat[i]! / minLat);
    rankScore[i] = rankMissesSlo[i]! * 1e6 + wc * Math.log(rankCost[i]! / minCost) + wl * l;
  }
  // Insertion by score (ties keep the input order): the groups are a handful of models.
  for (let i = 1; i < n; i++) {
    const s = rankScore[i]!;
    const m = models[from + i]!;
    let j = i;
    while (j > 0 && rankScore[j - 1]! > s) {
      rankScore[j] = rankScore[j - 1]!;
      models[from + j] = models[from + j - 1]!;
      j--;
    }
    rankScore[j] = s;
    models[from + j] = m;
  }
}

// Scratch for rankWithinTier (synchronous, so one set serves every call): no typed arrays
// allocated per request.
let rankCost = new Float64Array(16);
let rankLat = new Float64Array(16);
let rankScore = new Float64Array(16);
let rankMissesSlo = new Uint8Array(16);

function growScratch(n: number): void {
  rankCost = new Float64Array(n);
  rankLat = new Float64Array(n);
  rankScore = new Float64Array(n);
  rankMissesSlo = new Uint8Array(n);
}

function noCandidate(policy: string, reasons: Set<Unfit>, req: ParsedRequest): ApiError {
  if (reasons.has('unavailable') || reasons.size === 0) {
    return new ApiError(
      503,
      `No model of policy '${policy}' is available right now (circuit breakers open or no usable provider).`,
      'api_error',
      'no_available_model',
    );
  }
  if (reasons.has('capability')) {
    const needs = needsOf(req);
    return new ApiError(
      400,
      `No model of policy '${policy}' supports what this request needs (${needs.join(', ') || 'text'}).`,
      'invalid_request_error',
      'unsupported_capability',
    );
  }
  return new ApiError(
    400,
    `The request (about ${req.promptTokens} prompt tokens${req.maxOutputTokens ? ` + ${req.maxOutputTokens} output` : ''}) exceeds the context window of every model of policy '${policy}'.`,
    'invalid_request_error',
    'context_length_exceeded',
  );
}
