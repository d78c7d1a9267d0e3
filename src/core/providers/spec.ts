// What TierFlow knows about one provider family, in one typed record. src/core/providers/table.ts
// holds one per ProviderType; config compilation, the pass-through, telemetry and the Kubernetes
// CRD generator all read it, so a new provider is a folder under src/core/providers/ plus one
// table entry (see DEVELOPERS.md, "Adding a provider").
import type { ProviderCredentials } from '../config/compiled.js';
import type { ModelFacts } from '../config/model-facts.js';
import type { TranslatorFactory } from './types.js';

/** Where a provider's requests go when its config sets no baseUrl. */
export type ProviderEndpoint =
  /** A public endpoint. */
  | { kind: 'fixed'; baseUrl: string }
  /** No default: the config must set baseUrl (a self-hosted server, an Azure resource). */
  | { kind: 'baseUrl-required' }
  /** Per region: from the provider's region, else the AWS environment's, else `defaultRegion`. */
  | { kind: 'regional'; defaultRegion: string; baseUrl: (region: string) => string };

/** Where a Kubernetes Provider may take its credentials from (fields of spec.credentials). */
export type CredentialSource = 'secretRef' | 'entra' | 'awsAccessKeyIdRef';

export interface ProviderCredentialRules {
  /** The credential sources a Kubernetes Provider of this type may name (one of them). */
  readonly sources: readonly CredentialSource[];
  /**
   * A provider that declares no credentials: `disabled` (it cannot serve), `keyless` (it serves
   * without a key: a self-hosted server) or `aws-environment` (the standard AWS environment).
   */
  readonly undeclared: 'disabled' | 'keyless' | 'aws-environment';
  /** Whether resolved credentials are enough to send a request. */
  readonly present: (c: ProviderCredentials) => boolean;
  /** What to tell a user whose provider has none, when more specific than "no credentials". */
  readonly missingHint?: string;
}

export interface ProviderSpec {
  /** Chat Completions: the translator of one attempt. */
  readonly chat: TranslatorFactory;
  /** Embeddings (POST /v1/embeddings); unset: the family offers none (its embeddingModels are refused). */
  readonly embeddings?: TranslatorFactory;
  /**
   * The Responses API, for a provider that speaks it itself: Responses requests go to it as they
   * are. Unset: they reach the provider through `chat` (src/core/responses translates).
   */
  readonly responses?: TranslatorFactory;
  readonly endpoint: ProviderEndpoint;
  readonly credentials: ProviderCredentialRules;
  /** Default facts of a model from its ids (upstream id, then name): the family's documented rules. */
  readonly modelFacts: (ids: readonly string[]) => ModelFacts;
  /**
   * Speaks the OpenAI REST API under its base URL with a bearer key: requests TierFlow does not
   * translate may pass through to it unchanged (sidecar).
   */
  readonly openaiWire: boolean;
  /** `gen_ai.provider.name` (OpenTelemetry semantic conventions); unset: the provider's own name. */
  readonly genAiProviderName?: string;
}
