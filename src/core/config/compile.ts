// validate + compile: a FileConfig-shaped object -> CompiledConfig, or the issues that stop it.
// Pure: credentials are resolved by a callback supplied by the caller (file/env or Kubernetes).
import { createHash } from 'node:crypto';
import type { Classifier } from '../classifier/index.js';
import type { Secret } from '../secret.js';
import type {
  CompiledConfig,
  CompiledModel,
  CompiledPolicy,
  CompiledProvider,
  CompiledTier,
  CompiledVirtualKey,
  ProviderCredentials,
} from './compiled.js';
import {
  type Capability,
  type ClassifierSpec,
  type CredentialsSpec,
  type EmbeddingModelSpec,
  FileConfig,
  type FileConfig as FileConfigType,
} from './schema.js';
import { offValue, validate } from './json-schema.js';
import { PROVIDER_TYPES, providerSpec, resolveModelFacts } from '../providers/table.js';
import type { CredentialSource, ProviderSpec } from '../providers/spec.js';

export interface ConfigIssue {
  /** JSON pointer into the config, e.g. /policies/0/tiers/1/models/0 */
  path: string;
  message: string;
  severity: 'error' | 'warning';
}

export interface CompileResult {
  config?: CompiledConfig;
  issues: ConfigIssue[];
}

export interface CompileOptions {
  /** Resolves a provider's credentials; called once per provider that declares any. */
  resolveCredentials: (provider: string, spec: CredentialsSpec) => ProviderCredentials;
  /** Resolves a virtual key's secret (file: the `key` field is used directly). */
  resolveVirtualKey?: (
    name: string,
    spec: { secretRef?: { name: string; key: string } },
  ) => Secret | undefined;
  /** Base URL of the in-process demo provider, when the caller runs one. */
  demoBaseUrl?: string;
  /** The standard AWS environment, used by Bedrock providers that declare no credentials or region. */
  aws?: { credentials: ProviderCredentials; region?: string };
  /**
   * Loads a policy's classifier (classifier.modelFile in the file config, classifier.configMapRef in
   * Kubernetes); throws an Error saying what is wrong, including a reference of the other kind.
   * Undefined: the policy scores with the shipped model (the caller reports why).
   * Without it, a policy that names a classifier is an error.
   */
  resolveClassifier?: (policy: string, spec: ClassifierSpec) => Classifier | undefined;
}

export const BREAKER_DEFAULTS = {
  errorThresholdPercentage: 50,
  volumeThreshold: 5,
  resetTimeoutMs: 30_000,
  rollingWindowMs: 10_000,
};

export const FAILOVER_DEFAULTS = {
  maxAttempts: 3,
  deadlineMs: 120_000,
  firstByteTimeoutMs: 30_000,
  escalate: 'up' as const,
  maxRetryAfterMs: 2_000,
  onStatusCodes: [] as number[],
  rateLimitRetries: 0,
  rateLimitBackoffMs: 500,
};

const DEFAULT_CAPABILITIES: Capability[] = ['tools', 'streaming'];

/** Schema check only: every problem with the path it sits at. */
export function validateFileConfig(input: unknown): ConfigIssue[] {
  return validate(FileConfig, input).map((i) => ({ ...i, severity: 'error' as const }));
}

export function compileConfig(input: unknown, options: CompileOptions): CompileResult {
  const issues = validateFileConfig(input);
  if (issues.length) return { issues };
  const file = input as FileConfigType;
  const err = (path: string, message: string) => issues.push({ path, message, severity: 'error' });
  const warn = (path: string, message: string) => issues.push({ path, message, severity: 'warning' });

  const providers = new Map<string, CompiledProvider>();
  const models = new Map<string, CompiledModel>();
  const embeddingModels = new Map<string, CompiledModel>();
  file.providers.forEach((p, i) => {
    const at = `/providers/${i}`;
    if (providers.has(p.name)) return err(`${at}/name`, `duplicate provider name '${p.name}'`);
    if (p.models.length === 0 && !p.embeddingModels?.length)
      return err(`${at}/models`, `provider '${p.name}' offers no model: list models or embeddingModels`);
    const spec = providerSpec(p.type);
    const region =
      p.region ??
      (spec.endpoint.kind === 'regional' ? (options.aws?.region ?? spec.endpoint.defaultRegion) : undefined);
    const baseUrl = (p.type === 'demo' && options.demoBaseUrl) || p.baseUrl || defaultBaseUrl(spec, region);
    if (!baseUrl) return err(`${at}/baseUrl`, `baseUrl is required for provider type ${p.type}`);
    if (p.credentials?.entra && (!spec.credentials.sources.includes('entra') || p.auth !== 'entra')) {
      return err(
        `${at}/credentials/entra`,
        `credentials.entra is for ${typesTaking('entra')} providers with auth: entra`,
      );
    }
    let credentials: ProviderCredentials = {};
    let unavailable: string | undefined;
    if (p.credentials) {
      try {
        credentials = options.resolveCredentials(p.name, p.credentials);
      } catch (e) {
        unavailable = `credentials not available: ${(e as Error).message}`;
        warn(`${at}/credentials`, unavailable);
      }
    }
    const ambient = !p.credentials && spec.credentials.undeclared === 'aws-environment';
    // A provider of such a type that declares no credentials uses the standard AWS environment.
    if (ambient && options.aws) credentials = options.aws.credentials;
    const hasCredentials =
      p.credentials || ambient
        ? spec.credentials.present(credentials)
        : spec.credentials.undeclared === 'keyless';
    if (!hasCredentials) warn(`${at}/credentials`, `provider '${p.name}' has no credentials; it is disabled`);
    const provider: CompiledProvider = {
      name: p.name,
      type: p.type,
      baseUrl: baseUrl.replace(/\/+$/, ''),
      credentials,
      headers: lowerKeys(p.headers ?? {}),
      apiVersion: p.apiVersion,
      region,
      auth: p.auth ?? 'apiKey',
      promptCaching: offValue(p.promptCaching) ?? 'auto',
      breaker: { ...BREAKER_DEFAULTS, ...p.breaker },
      models: [],
      enabled: hasCredentials,
    };
    if (!hasCredentials) provider.disabledReason = unavailable ?? missingCredentials(spec, p.credentials);
    providers.set(p.name, provider);
    const names = new Set<string>();
    p.models.forEach((m, j) => {
      if (names.has(m.name))
        return err(`${at}/models/${j}/name`, `duplicate model '${m.name}' in provider '${p.name}'`);
      names.add(m.name);
      const model: CompiledModel = {
        id: `${p.name}/${m.name}`,
        name: m.name,
        upstreamModel: m.upstreamModel ?? m.name,
        tier: m.tier,
        provider,
        pricing: {
          inputPerMTok: m.pricing.inputPerMTok,
          outputPerMTok: m.pricing.outputPerMTok,
          cachedInputPerMTok: m.pricing.cachedInputPerMTok ?? m.pricing.inputPerMTok,
          cacheWritePerMTok: m.pricing.cacheWritePerMTok ?? m.pricing.inputPerMTok,
        },
        contextWindow: m.contextWindow,
        maxOutputTokens: m.maxOutputTokens,
        capabilities: new Set(m.capabilities ?? DEFAULT_CAPABILITIES),
        facts: resolveModelFacts(p.type, m.upstreamModel ?? m.name, m.name, m.facts),
      };
      provider.models.push(model);
      models.set(model.id, model);
    });
    (p.embeddingModels ?? []).forEach((m, j) => {
      const where = `${at}/embeddingModels/${j}`;
      if (!spec.embeddings) return err(where, `provider type ${p.type} offers no embeddings API`);
      if (names.has(m.name))
        return err(`${where}/name`, `duplicate model '${m.name}' in provider '${p.name}'`);
      names.add(m.name);
      embeddingModels.set(`${p.name}/${m.name}`, embeddingModel(provider, m));
    });
  });

  // The demo provider only serves while no real provider can.
  const realUsable = [...providers.values()].some(
    (p) => p.type !== 'demo' && p.enabled && p.models.length > 0,
  );
  for (const p of providers.values()) {
    if (p.type === 'demo' && realUsable) {
      p.enabled = false;
      p.disabledReason = 'the demo provider serves only while no real provider has credentials';
    }
  }

  const enabledModels = new Map([...models].filter(([, m]) => m.provider.enabled));
  const modelsByName = new Map<string, CompiledModel[]>();
  for (const m of enabledModels.values()) {
    const list = modelsByName.get(m.name) ?? [];
    list.push(m);
    modelsByName.set(m.name, list);
  }

  const enabledEmbeddings = new Map([...embeddingModels].filter(([, m]) => m.provider.enabled));
  const embeddingModelsByName = new Map<string, CompiledModel[]>();
  for (const m of enabledEmbeddings.values()) {
    if (modelsByName.has(m.name)) {
      err(`/providers`, `'${m.name}' is both a chat model and an embedding model`);
      continue;
    }
    const list = embeddingModelsByName.get(m.name) ?? [];
    list.push(m);
    embeddingModelsByName.set(m.name, list);
  }

  const policies = new Map<string, CompiledPolicy>();
  const virtualModels = new Map<string, CompiledPolicy>();
  file.policies.forEach((pol, i) => {
    const at = `/policies/${i}`;
    if (policies.has(pol.name)) return err(`${at}/name`, `duplicate policy name '${pol.name}'`);
    const tiers: CompiledTier[] = [];
    let previousMax = -1;
    pol.tiers.forEach((t, j) => {
      const last = j === pol.tiers.length - 1;
      if (t.maxScore === undefined && !last) {
        err(`${at}/tiers/${j}/maxScore`, 'every tier but the last needs maxScore');
      }
      const maxScore = last ? 1 : (t.maxScore ?? 1);
      if (maxScore <= previousMax) {
        err(
          `${at}/tiers/${j}/maxScore`,
          `maxScore must increase from tier to tier (${maxScore} after ${previousMax})`,
        );
      }
      previousMax = maxScore;
      let candidates: CompiledModel[];
      if (t.models) {
        candidates = [];
        t.models.forEach((ref, k) => {
          const model = models.get(ref);
          if (!model)
            return err(`${at}/tiers/${j}/models/${k}`, `unknown model '${ref}' (expected provider/model)`);
          if (model.provider.enabled) candidates.push(model);
        });
      } else {
        candidates = [...enabledModels.values()].filter((m) => m.tier === t.name);
      }
      if (candidates.length === 0) {
        warn(
          `${at}/tiers/${j}`,
          `tier '${t.name}' has no usable model (none configured, or their providers lack credentials)`,
        );
      }
      tiers.push({ name: t.name, maxScore, candidates });
    });
    if (pol.flagshipShare !== undefined && pol.tiers.length < 2) {
      err(`${at}/flagshipShare`, 'flagshipShare needs at least two tiers');
    }
    if (pol.spendTarget !== undefined) {
      if (pol.tiers.length < 2) err(`${at}/spendTarget`, 'spendTarget needs at least two tiers');
      if (pol.flagshipShare !== undefined) {
        err(`${at}/spendTarget`, 'set either spendTarget or flagshipShare, not both');
      }
    }
    const policy: CompiledPolicy = {
      name: pol.name,
      virtualModels: pol.virtualModels,
      tiers,
      flagshipShare: pol.flagshipShare,
      ...(pol.spendTarget
        ? { spendTarget: { usd: pol.spendTarget.usd, period: pol.spendTarget.period } }
        : {}),
      objective: { cost: pol.objective?.cost ?? 0.7, latency: pol.objective?.latency ?? 0.3 },
      latencySloMs: pol.latencySloMs,
      failover: { ...FAILOVER_DEFAULTS, ...pol.failover },
    };
    if (pol.classifier) {
      const { modelFile, configMapRef } = pol.classifier;
      if (modelFile !== undefined && configMapRef !== undefined) {
        err(
          `${at}/classifier`,
          'set either classifier.modelFile (standalone file config) or classifier.configMapRef (Kubernetes RoutingPolicy), not both',
        );
      } else if (modelFile === undefined && configMapRef === undefined) {
        err(
          `${at}/classifier`,
          'classifier needs modelFile (standalone file config) or configMapRef (Kubernetes RoutingPolicy)',
        );
      } else if (!options.resolveClassifier) {
        err(`${at}/classifier`, 'a policy classifier cannot be loaded here (no router source)');
      } else {
        try {
          const classifier = options.resolveClassifier(pol.name, pol.classifier);
          if (classifier) policy.classifier = classifier;
        } catch (e) {
          err(`${at}/classifier/${configMapRef ? 'configMapRef' : 'modelFile'}`, (e as Error).message);
        }
      }
    }
    const stickyMode = pol.stickiness ? (offValue(pol.stickiness.mode) ?? 'tier') : 'off';
    if (stickyMode !== 'off') {
      policy.stickiness = { mode: stickyMode, ttlMs: (pol.stickiness?.ttlSeconds ?? 3600) * 1000 };
    }
    policies.set(pol.name, policy);
    pol.virtualModels.forEach((vm, k) => {
      if (virtualModels.has(vm)) {
        err(
          `${at}/virtualModels/${k}`,
          `virtual model '${vm}' is already used by policy '${virtualModels.get(vm)!.name}'`,
        );
      } else if (modelsByName.has(vm) || models.has(vm) || embeddingModelsByName.has(vm)) {
        err(`${at}/virtualModels/${k}`, `virtual model '${vm}' has the name of a configured model`);
      } else {
        virtualModels.set(vm, policy);
      }
    });
  });

  const virtualKeys = new Map<string, CompiledVirtualKey>();
  (file.virtualKeys ?? []).forEach((vk, i) => {
    const at = `/virtualKeys/${i}`;
    let hash = vk.keyHash;
    if (!hash && vk.key) hash = sha256Hex(vk.key);
    if (!hash && vk.secretRef && options.resolveVirtualKey) {
      const secret = options.resolveVirtualKey(vk.name, vk);
      if (secret) hash = sha256Hex(secret.reveal());
    }
    if (!hash) return err(at, `virtual key '${vk.name}' needs keyHash, key or secretRef`);
    (vk.allowedModels ?? []).forEach((m, k) => {
      if (
        !virtualModels.has(m) &&
        !models.has(m) &&
        !modelsByName.has(m) &&
        !embeddingModels.has(m) &&
        !embeddingModelsByName.has(m)
      ) {
        warn(`${at}/allowedModels/${k}`, `'${m}' is neither a virtual model nor a configured model`);
      }
    });
    virtualKeys.set(hash, {
      name: vk.name,
      keyHash: hash,
      allowedModels: vk.allowedModels ? new Set(vk.allowedModels) : undefined,
      budget: vk.budget,
      rpm: vk.rpm,
      tpm: vk.tpm,
    });
  });

  if (issues.some((i) => i.severity === 'error')) return { issues };
  return {
    issues,
    config: {
      providers,
      models: enabledModels,
      modelsByName,
      embeddingModels: enabledEmbeddings,
      embeddingModelsByName,
      policies,
      virtualModels,
      virtualKeys,
      failover: { ...FAILOVER_DEFAULTS, ...file.failover },
      explicitFailover: explicitFailover(policies),
      revision: sha256Hex(JSON.stringify(file)).slice(0, 12),
    },
  };
}

/**
 * Failover of a request that names a model: the first policy (in file order) listing that model
 * among its candidates; models no policy lists use the top-level default.
 */
function explicitFailover(policies: ReadonlyMap<string, CompiledPolicy>): Map<string, CompiledPolicy> {
  const byModel = new Map<string, CompiledPolicy>();
  for (const p of policies.values())
    for (const t of p.tiers) for (const m of t.candidates) if (!byModel.has(m.id)) byModel.set(m.id, p);
  return byModel;
}

/**
 * An embedding model in the shape the pipeline carries (health, breakers and accounting are the
 * same as for chat models): input price only, no output, never a chat candidate.
 */
function embeddingModel(provider: CompiledProvider, m: EmbeddingModelSpec): CompiledModel {
  const input = m.pricing.inputPerMTok;
  return {
    id: `${provider.name}/${m.name}`,
    name: m.name,
    upstreamModel: m.upstreamModel ?? m.name,
    tier: 'embeddings',
    provider,
    pricing: { inputPerMTok: input, outputPerMTok: 0, cachedInputPerMTok: input, cacheWritePerMTok: input },
    contextWindow: m.maxInputTokens ?? Number.MAX_SAFE_INTEGER,
    maxOutputTokens: 0,
    capabilities: new Set(),
    facts: resolveModelFacts(provider.type, m.upstreamModel ?? m.name, m.name, undefined),
  };
}

function defaultBaseUrl(spec: ProviderSpec, region: string | undefined): string | undefined {
  const e = spec.endpoint;
  if (e.kind === 'fixed') return e.baseUrl;
  if (e.kind === 'regional') return region ? e.baseUrl(region) : undefined;
  return undefined;
}

/** The provider types that take a credential source, for messages ("azure-openai"). */
const typesTaking = (source: CredentialSource): string =>
  PROVIDER_TYPES.filter((t) => providerSpec(t).credentials.sources.includes(source)).join(', ');

/** What a provider without usable credentials lacks, in words a user can act on. */
function missingCredentials(spec: ProviderSpec, declared: CredentialsSpec | undefined): string {
  if (declared?.apiKeyEnv) return `environment variable ${declared.apiKeyEnv} is not set`;
  if (declared?.secretRef) return `secret ${declared.secretRef.name}/${declared.secretRef.key} is empty`;
  if (spec.credentials.missingHint) return spec.credentials.missingHint;
  return declared ? 'its credentials are empty' : 'no credentials configured';
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
