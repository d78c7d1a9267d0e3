// The compiled, immutable form of a configuration, built once per config change and swapped
// atomically. Everything the per-request path needs is precomputed here.
import type { Classifier } from '../classifier/index.js';
import type { Secret } from '../secret.js';
import type { ModelFacts } from './model-facts.js';
import type { BreakerSpec, Capability, FailoverSpec, ProviderType } from './schema.js';

export interface ProviderCredentials {
  apiKey?: Secret;
  awsAccessKeyId?: Secret;
  awsSecretAccessKey?: Secret;
  awsSessionToken?: Secret;
}

export interface CompiledProvider {
  name: string;
  type: ProviderType;
  /** Base URL without a trailing slash, e.g. https://api.openai.com/v1 */
  baseUrl: string;
  credentials: ProviderCredentials;
  headers: Record<string, string>;
  apiVersion?: string;
  region?: string;
  /** Azure OpenAI: send the key as `api-key`, or as an Entra ID bearer token. */
  auth: 'apiKey' | 'entra';
  /** Anthropic: add prompt-cache breakpoints when the client set none. */
  promptCaching: 'auto' | 'off';
  breaker: Required<BreakerSpec>;
  models: CompiledModel[];
  /** False when its credentials are missing (or it is the demo provider while a real one is usable). */
  enabled: boolean;
  /** Why it is disabled, for start-up messages and logs (never holds a secret). */
  disabledReason?: string;
}

export interface CompiledModel {
  /** provider/model, unique across the config. */
  id: string;
  name: string;
  upstreamModel: string;
  tier: string;
  provider: CompiledProvider;
  pricing: {
    inputPerMTok: number;
    outputPerMTok: number;
    cachedInputPerMTok: number;
    cacheWritePerMTok: number;
  };
  contextWindow: number;
  maxOutputTokens: number;
  capabilities: ReadonlySet<Capability>;
  /** What the model accepts on the wire (catalog facts over the family defaults). */
  facts: ModelFacts;
}

export interface CompiledTier {
  name: string;
  /** Upper score bound; the last tier's is 1. */
  maxScore: number;
  candidates: CompiledModel[];
}

export interface CompiledPolicy {
  name: string;
  virtualModels: string[];
  tiers: CompiledTier[];
  flagshipShare?: number;
  /** Spend-targeted routing (spendTarget); the threshold's upper bound is the tier's maxScore. */
  spendTarget?: { usd: number; period: 'hour' | 'day' | 'month' };
  objective: { cost: number; latency: number };
  latencySloMs?: number;
  failover: Required<FailoverSpec>;
  /** Conversation stickiness; undefined when off. */
  stickiness?: { mode: 'tier' | 'model'; ttlMs: number };
  /** The policy's own classifier (classifier.modelFile or .configMapRef); undefined: the shipped model. */
  classifier?: Classifier;
}

export interface CompiledVirtualKey {
  name: string;
  /** sha256 hex of the key. */
  keyHash: string;
  allowedModels?: ReadonlySet<string>;
  budget?: { usd: number; period: 'day' | 'month' };
  rpm?: number;
  tpm?: number;
}

export interface CompiledConfig {
  providers: ReadonlyMap<string, CompiledProvider>;
  /** Every enabled model by `provider/model`. */
  models: ReadonlyMap<string, CompiledModel>;
  /** Enabled models by bare name: one name may be offered by several providers (failover between them). */
  modelsByName: ReadonlyMap<string, readonly CompiledModel[]>;
  /**
   * Enabled embedding models (a provider's embeddingModels) by `provider/model`, and by bare name
   * (failover between the providers offering one). Never chat candidates: policies do not see them.
   */
  embeddingModels: ReadonlyMap<string, CompiledModel>;
  embeddingModelsByName: ReadonlyMap<string, readonly CompiledModel[]>;
  policies: ReadonlyMap<string, CompiledPolicy>;
  /** Virtual model name -> policy. */
  virtualModels: ReadonlyMap<string, CompiledPolicy>;
  /** Key hash -> virtual key. Empty map: authentication is off. */
  virtualKeys: ReadonlyMap<string, CompiledVirtualKey>;
  /** Failover of requests that name a model no policy lists (the file's top-level `failover`). */
  failover: Required<FailoverSpec>;
  /** `provider/model` -> the policy whose failover applies when a request names that model. */
  explicitFailover: ReadonlyMap<string, CompiledPolicy>;
  /** A hash of the source, for logs and status. */
  revision: string;
}
