// The one configuration schema. It is used three ways: validation of the standalone YAML file,
// the CRDs' openAPIV3Schema (scripts/gen-crds.ts), and the TypeScript types (Static<>).
// Every field carries a description: `kubectl explain` shows them.
import { S, type Schema, type Static } from './json-schema.js';

const str = S.string;
const num = S.number;
const int = S.integer;
const Opt = S.optional;

export const StringEnum = S.enum;
const Obj = S.object;

export const PROVIDER_TYPES = [
  'openai',
  'openai-compatible',
  'anthropic',
  'gemini',
  'azure-openai',
  'bedrock',
  'demo',
] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

export const CAPABILITIES = ['tools', 'vision', 'jsonSchema', 'streaming'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export const NAME_PATTERN = '^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$';

export const SecretKeyRef = Obj(
  {
    name: str('Name of a Secret in the same namespace.', { minLength: 1 }),
    key: str('Key inside the Secret whose value is used.', { minLength: 1 }),
  },
  'Reference to one key of a Kubernetes Secret. The sidecar reads it from the Secret mounted into the tierflow container only.',
);

export const EntraSpec = Obj(
  {
    tenantId: Opt(str('Directory (tenant) id. Default: environment variable AZURE_TENANT_ID.')),
    clientId: Opt(
      str('Application (client) id, or the user-assigned identity client id. Default: AZURE_CLIENT_ID.'),
    ),
    federatedTokenFile: Opt(
      str(
        'Workload identity: a file holding a token from a trusted issuer (e.g. the projected Kubernetes service-account token), exchanged for an Entra token. Default: AZURE_FEDERATED_TOKEN_FILE. Used when no client secret is given.',
      ),
    ),
    clientSecretRef: Opt(SecretKeyRef),
    clientSecretEnv: Opt(str('Environment variable holding the client secret (file config).')),
    authorityHost: Opt(
      str('Entra authority. Default: AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com.', {
        pattern: '^https?://',
      }),
    ),
    scope: Opt(str('Token scope. Default: https://cognitiveservices.azure.com/.default.')),
  },
  'Microsoft Entra ID: TierFlow obtains and refreshes the access token itself (OAuth 2.0 client credentials with a federated workload-identity token or a client secret). For azure-openai providers with auth: entra.',
);

export const Credentials = Obj(
  {
    apiKey: Opt(
      str('The API key itself. File config only; write it as ${ENV_VAR} so the key never sits in the file.'),
    ),
    apiKeyEnv: Opt(str('Name of an environment variable that holds the API key.')),
    secretRef: Opt(SecretKeyRef),
    awsAccessKeyIdRef: Opt(SecretKeyRef),
    awsSecretAccessKeyRef: Opt(SecretKeyRef),
    awsSessionTokenRef: Opt(SecretKeyRef),
    entra: Opt(EntraSpec),
  },
  'Where the provider credentials come from. Keys never come from, or go back to, the client.',
);

export const Pricing = Obj(
  {
    inputPerMTok: num('USD per 1M input (prompt) tokens.', { minimum: 0 }),
    outputPerMTok: num('USD per 1M output (completion) tokens.', { minimum: 0 }),
    cachedInputPerMTok: Opt(
      num('USD per 1M input tokens read from the prompt cache. Defaults to the input price.', { minimum: 0 }),
    ),
    cacheWritePerMTok: Opt(
      num('USD per 1M input tokens written to the prompt cache. Defaults to the input price.', {
        minimum: 0,
      }),
    ),
  },
  'List prices of the model, per million tokens.',
);

export const ParamFactSpec = (what: string) =>
  Obj(
    {
      support: StringEnum(
        ['range', 'defaultOnly', 'none'] as const,
        'range: accepted within min..max; defaultOnly: only the default value is accepted (others are dropped, so the model uses its default); none: never sent.',
      ),
      min: Opt(num('Smallest accepted value (support: range).')),
      max: Opt(num('Largest accepted value (support: range).')),
      default: Opt(num("The model's default value.")),
      outside: Opt(
        StringEnum(
          ['clamp', 'drop'] as const,
          'What happens to a value outside min..max: clamp (default) or drop.',
        ),
      ),
    },
    `How the model takes ${what}.`,
  );

export const ModelFactsSpec = Obj(
  {
    source: Opt(str('Where these facts come from (documentation URL or SDK source file).')),
    temperature: Opt(ParamFactSpec('temperature')),
    topP: Opt(ParamFactSpec('top_p')),
    topK: Opt(ParamFactSpec('top_k')),
    frequencyPenalty: Opt(ParamFactSpec('frequency_penalty')),
    presencePenalty: Opt(ParamFactSpec('presence_penalty')),
    temperatureWithTopP: Opt(
      S.boolean(
        'False when temperature and top_p are rejected together: temperature is kept, top_p dropped.',
      ),
    ),
    developerRole: Opt(S.boolean('The developer role is accepted; otherwise it is sent as system.')),
    systemRole: Opt(
      S.boolean(
        'The system role is accepted; otherwise system messages are sent as developer (or user) text.',
      ),
    ),
    toolCallIdMaxLength: Opt(
      int(
        'Longest tool-call id accepted; longer ids (and ids outside [A-Za-z0-9_-]) are shortened consistently.',
        {
          minimum: 16,
        },
      ),
    ),
    toolCallIdEcho: Opt(
      S.boolean(
        'The provider mints tool-call ids and wants them back on the call and its result (Gemini 3).',
      ),
    ),
    minApiVersion: Opt(
      str(
        'Azure OpenAI: oldest api-version serving the model; a provider apiVersion older than this is raised to it.',
        {
          pattern: '^(v1|\\d{4}-\\d{2}-\\d{2}(-preview)?)$',
        },
      ),
    ),
  },
  'What the model accepts on the wire, so any request routed to it is adapted (parameters dropped, clamped or mapped) instead of refused. Fields left out come from the documented defaults of the provider type and model family.',
);

export const ModelSpec = Obj(
  {
    name: str('Model name clients may request explicitly, unique within the provider.', { minLength: 1 }),
    upstreamModel: Opt(
      str('Model id sent to the provider (Azure: the deployment name). Defaults to name.', { minLength: 1 }),
    ),
    tier: str('Tier this model serves, e.g. lightweight or flagship; policies map scores to tiers.', {
      pattern: '^[a-z0-9-]+$',
    }),
    pricing: Pricing,
    contextWindow: int('Largest prompt plus output, in tokens.', { minimum: 1 }),
    maxOutputTokens: int('Largest output the model produces, in tokens.', { minimum: 1 }),
    capabilities: Opt(
      S.array(
        StringEnum(CAPABILITIES, 'A capability.'),
        'What the model supports beyond plain text chat. Default: tools, streaming.',
        {
          uniqueItems: true,
        },
      ),
    ),
    facts: Opt(ModelFactsSpec),
  },
  'One model offered by the provider.',
);

export const EmbeddingModelSpec = Obj(
  {
    name: str('Model name clients send as `model` to POST /v1/embeddings, unique within the provider.', {
      minLength: 1,
    }),
    upstreamModel: Opt(
      str('Model id sent to the provider (Azure: the deployment name). Defaults to name.', { minLength: 1 }),
    ),
    pricing: Obj(
      { inputPerMTok: num('USD per 1M input tokens.', { minimum: 0 }) },
      'List price of the embedding model.',
    ),
    maxInputTokens: Opt(int('Largest input the model takes, in tokens (informational).', { minimum: 1 })),
  },
  'One embedding model offered by the provider (POST /v1/embeddings).',
);

export const BreakerSpec = Obj(
  {
    errorThresholdPercentage: Opt(
      num('Failure percentage within the rolling window that opens the breaker.', {
        minimum: 1,
        maximum: 100,
      }),
    ),
    volumeThreshold: Opt(int('Minimum attempts in the window before the breaker may open.', { minimum: 1 })),
    resetTimeoutMs: Opt(
      int('How long an open breaker waits before letting one probe through (half-open).', { minimum: 100 }),
    ),
    rollingWindowMs: Opt(int('Length of the rolling statistics window.', { minimum: 1000 })),
  },
  'Circuit breaker per (provider, model).',
);

export const ProviderSpec = Obj(
  {
    type: StringEnum(PROVIDER_TYPES, 'Provider family; picks the wire-format translator.'),
    baseUrl: Opt(
      str(
        'Base URL of the API, e.g. https://api.openai.com/v1. Defaults to the public endpoint of the type.',
        {
          pattern: '^https?://',
        },
      ),
    ),
    credentials: Opt(Credentials),
    headers: Opt(S.stringMap('Extra headers sent to this provider on every request (not for secrets).')),
    apiVersion: Opt(
      str(
        'Azure OpenAI: the api-version query parameter of the deployments API (default 2024-10-21), or "v1" for the v1 API (/openai/v1/chat/completions, deployment name sent as the model).',
      ),
    ),
    region: Opt(
      str('Cloud region: AWS Bedrock (default: AWS_REGION of the TierFlow process, else us-east-1).'),
    ),
    auth: Opt(
      StringEnum(
        ['apiKey', 'entra'] as const,
        'Azure OpenAI: how the credential is sent. apiKey (default): the api-key header. entra: a Microsoft Entra ID access token sent as a bearer token, either obtained and refreshed by TierFlow (credentials.entra) or given as the credential (keep that Secret refreshed).',
      ),
    ),
    promptCaching: Opt(
      S.offEnum(
        ['auto', 'off'] as const,
        'Anthropic: auto (default) marks a long system prompt, and the conversation so far once a conversation is under way, as cacheable (cache_control) when the client marked nothing, so repeated prefixes are billed at the cache-read price as on providers that cache by themselves. off sends only what the client marked.',
      ),
    ),
    breaker: Opt(BreakerSpec),
    models: S.array(
      ModelSpec,
      'Chat models offered by this provider (may be empty for a provider that offers only embeddingModels).',
    ),
    embeddingModels: Opt(
      S.array(
        EmbeddingModelSpec,
        'Embedding models offered by this provider (types openai, openai-compatible, azure-openai, gemini and bedrock).',
      ),
    ),
  },
  'An LLM provider: where to send requests, how to authenticate, and the models with their prices.',
);

export const TierSpec = Obj(
  {
    name: str('Tier name; models of this tier are its candidates.', { pattern: '^[a-z0-9-]+$' }),
    maxScore: Opt(
      num(
        'Requests with a complexity score at or below this value use this tier. The last tier takes the rest.',
        { minimum: 0, maximum: 1 },
      ),
    ),
    models: Opt(
      S.array(
        str('A model as provider/model.', { pattern: '^[^/]+/.+$' }),
        'Candidate models as provider/model. Default: every configured model of this tier.',
      ),
    ),
  },
  'One tier of a policy, from the cheapest to the most capable.',
);

export const ObjectiveSpec = Obj(
  {
    cost: Opt(num('Weight of price when ordering candidates of a tier.', { minimum: 0, maximum: 1 })),
    latency: Opt(
      num('Weight of live latency (time to first token) when ordering candidates.', {
        minimum: 0,
        maximum: 1,
      }),
    ),
  },
  'How candidates within a tier are ordered. Default cost 0.7, latency 0.3.',
);

export const FailoverSpec = Obj(
  {
    maxAttempts: Opt(
      int('Most attempts per request, the first included. Default 3.', { minimum: 1, maximum: 10 }),
    ),
    deadlineMs: Opt(
      int('Overall deadline for all attempts until the first byte reaches the client. Default 120000.', {
        minimum: 100,
      }),
    ),
    firstByteTimeoutMs: Opt(
      int('Per-attempt timeout until the provider sends response headers. Default 30000.', { minimum: 100 }),
    ),
    escalate: Opt(
      StringEnum(
        ['none', 'up', 'any'] as const,
        'Whether fallbacks may come from other tiers: none, up (more capable tiers only, the default) or any.',
      ),
    ),
    maxRetryAfterMs: Opt(
      int(
        'Longest Retry-After a same-model 429 retry waits (rateLimitRetries); a longer one moves on to the next candidate at once. Default 2000.',
        {
          minimum: 0,
        },
      ),
    ),
    onStatusCodes: Opt(
      S.array(
        int('An HTTP status.', { minimum: 400, maximum: 599 }),
        'Provider statuses that fail over like a 5xx besides 429 and 5xx (e.g. [408, 409]). Default none.',
        { maxItems: 50 },
      ),
    ),
    rateLimitRetries: Opt(
      int(
        'Times to retry the same model after a 429 before moving to the next candidate, waiting its Retry-After (up to maxRetryAfterMs) or rateLimitBackoffMs, doubled per retry. Default 0.',
        { minimum: 0, maximum: 5 },
      ),
    ),
    rateLimitBackoffMs: Opt(
      int('First wait of a same-model 429 retry without Retry-After. Default 500.', { minimum: 0 }),
    ),
  },
  "Failover: when and how far to try other candidates after a connect error, reset, timeout, 429, 5xx or a provider refusing TierFlow's credentials. Applies to every request of the policy, and to requests that name a model the policy lists.",
);

export const StickinessSpec = Obj(
  {
    mode: Opt(
      S.offEnum(
        ['off', 'tier', 'model'] as const,
        'off: every turn is routed on its own. tier (the default): a later turn never goes to a cheaper tier than an earlier turn of the conversation was served by. model: also the same model as the previous turn while it is healthy and able to serve the request (keeps provider prompt caches warm).',
      ),
    ),
    ttlSeconds: Opt(
      int('How long a conversation is remembered after its last turn. Default 3600.', {
        minimum: 1,
        maximum: 604_800,
      }),
    ),
  },
  'Conversation stickiness. A conversation is recognised by the prompt_cache_key of the request or, without one, by its system prompt and first user message (per virtual key). The first turn is always routed by its own score.',
);

export const SpendTargetSpec = Obj(
  {
    usd: num('What the policy should spend per period (USD).', { minimum: 0 }),
    period: StringEnum(['hour', 'day', 'month'] as const, 'The period (UTC).'),
  },
  "Spend-targeted routing: the threshold of the tier below the flagship moves (never above its maxScore, never below the previous tier's) so that the period's projected spend meets the target. Instead of flagshipShare.",
);

/** Key of a router ConfigMap read when configMapRef.key is not given. */
export const ROUTER_CONFIGMAP_KEY = 'router.json';
/** Label a ConfigMap needs for TierFlow to read it as a router (its informers list only these). */
export const ROUTER_CONFIGMAP_LABEL = 'tierflow.dev/router';

export const ConfigMapRouterRef = Obj(
  {
    name: str(
      `Name of a ConfigMap in the RoutingPolicy's namespace. It must carry the label ${ROUTER_CONFIGMAP_LABEL}: "true" (TierFlow watches only ConfigMaps with that label).`,
      { minLength: 1 },
    ),
    key: Opt(
      str(
        `Key of the ConfigMap holding the router file, in data or binaryData. Default: ${ROUTER_CONFIGMAP_KEY}.`,
        { minLength: 1 },
      ),
    ),
  },
  `A router file written by \`tierflow train\`, stored in a ConfigMap (at most 1 MiB): kubectl create configmap my-router --from-file=${ROUTER_CONFIGMAP_KEY}=my-router.json, then kubectl label configmap my-router ${ROUTER_CONFIGMAP_LABEL}=true. A change to the ConfigMap applies without a restart; a ConfigMap that is missing or does not hold a router for this TierFlow release keeps the last good router serving and is reported in the RoutingPolicy's status.`,
);

export const ClassifierSpec = Obj(
  {
    modelFile: Opt(
      str(
        'Standalone file config only: a router written by `tierflow train` (JSON), as a path relative to the config file; the file is watched and a change reloads it. A RoutingPolicy uses configMapRef instead.',
        { minLength: 1 },
      ),
    ),
    configMapRef: Opt(ConfigMapRouterRef),
  },
  'The classifier that scores requests for this policy, instead of the model shipped with TierFlow: a router fitted by `tierflow train`. Set one of modelFile (standalone file config) or configMapRef (Kubernetes RoutingPolicy).',
);

export const RoutingPolicySpec = Obj(
  {
    virtualModels: S.array(
      str('A virtual model name, e.g. auto.', { minLength: 1 }),
      'Model names that select this policy, e.g. ["auto"].',
      { minItems: 1 },
    ),
    tiers: S.array(TierSpec, 'Tiers from the cheapest to the most capable; the score picks one.', {
      minItems: 1,
    }),
    flagshipShare: Opt(
      num(
        'Target share of requests sent to the last tier (e.g. 0.3). When set, the last threshold follows the running score distribution instead of maxScore.',
        { exclusiveMinimum: 0, maximum: 1 },
      ),
    ),
    spendTarget: Opt(SpendTargetSpec),
    objective: Opt(ObjectiveSpec),
    latencySloMs: Opt(
      int('Skip candidates whose p95 time to first token exceeds this, while another candidate meets it.', {
        minimum: 1,
      }),
    ),
    failover: Opt(FailoverSpec),
    stickiness: Opt(StickinessSpec),
    classifier: Opt(ClassifierSpec),
  },
  'Routing policy: virtual model names mapped to tiers by complexity score, with candidates and failover rules.',
);

export const BudgetSpec = Obj(
  {
    usd: num('Spend limit in USD per period.', { minimum: 0 }),
    period: StringEnum(['day', 'month'] as const, 'Budget period (UTC).'),
  },
  'A spend budget.',
);

export const VirtualKeySpec = Obj(
  {
    keyHash: Opt(
      str('SHA-256 of the virtual key, hex. Clients send the key as a bearer token.', {
        pattern: '^[a-f0-9]{64}$',
      }),
    ),
    key: Opt(str('The virtual key itself (file config only; write it as ${ENV_VAR}).')),
    secretRef: Opt(SecretKeyRef),
    allowedModels: Opt(
      S.array(
        str('A virtual model or provider/model.'),
        'Models this key may use (virtual names or provider/model). Default: all.',
      ),
    ),
    budget: Opt(BudgetSpec),
    rpm: Opt(
      int('Requests per minute allowed (a sliding minute: the previous minute counts by its overlap).', {
        minimum: 1,
      }),
    ),
    tpm: Opt(int('Tokens per minute allowed (a sliding minute, like rpm).', { minimum: 1 })),
  },
  'A TierFlow key handed to an application: maps to allowed models, budgets and rate limits.',
);

const named = <P extends Record<string, Schema>>(
  spec: { properties: P; description?: unknown },
  what: string,
) =>
  S.object(
    { name: str(`Name of the ${what}.`, { pattern: NAME_PATTERN }), ...spec.properties },
    String(spec.description ?? what),
  );

export const FileProvider = named(ProviderSpec, 'provider');
export const FilePolicy = named(RoutingPolicySpec, 'policy');
export const FileVirtualKey = named(VirtualKeySpec, 'virtual key');

export const FileConfig = S.object(
  {
    apiVersion: Opt(StringEnum(['tierflow.dev/v1alpha1'] as const, 'Config format version.')),
    providers: S.array(FileProvider, 'LLM providers.'),
    policies: S.array(FilePolicy, 'Routing policies.'),
    virtualKeys: Opt(S.array(FileVirtualKey, 'Virtual keys.')),
    failover: Opt(FailoverSpec),
  },
  'TierFlow configuration file.',
);

export type ProviderSpec = Static<typeof ProviderSpec>;
export type ModelSpec = Static<typeof ModelSpec>;
export type EmbeddingModelSpec = Static<typeof EmbeddingModelSpec>;
export type PricingSpec = Static<typeof Pricing>;
export type CredentialsSpec = Static<typeof Credentials>;
export type EntraSpec = Static<typeof EntraSpec>;
export type BreakerSpec = Static<typeof BreakerSpec>;
export type RoutingPolicySpec = Static<typeof RoutingPolicySpec>;
export type TierSpec = Static<typeof TierSpec>;
export type FailoverSpec = Static<typeof FailoverSpec>;
export type ClassifierSpec = Static<typeof ClassifierSpec>;
export type ConfigMapRouterRef = Static<typeof ConfigMapRouterRef>;
export type SpendTargetSpec = Static<typeof SpendTargetSpec>;
export type VirtualKeySpec = Static<typeof VirtualKeySpec>;
export type FileConfig = Static<typeof FileConfig>;
export type FileProvider = Static<typeof FileProvider>;
export type FilePolicy = Static<typeof FilePolicy>;
export type FileVirtualKey = Static<typeof FileVirtualKey>;
