// Azure OpenAI translator. Azure speaks OpenAI's chat-completions wire format; only the URL and
// the auth differ, so this reuses the OpenAI translator and overrides those two hooks:
//   deployments API: {base}/openai/deployments/{deployment}/chat/completions?api-version={v}
//   v1 API (apiVersion "v1"): {base}/openai/v1/chat/completions, the deployment sent as `model`
//   auth "apiKey" (default): api-key: <key>;  auth "entra": Authorization: Bearer <Entra token>
// The api-version is the provider's, raised to the model's minApiVersion fact when older; the
// developer role is sent as system below api-version 2024-12-01-preview, which introduced it.
// Content filtering passes through in OpenAI form: a filtered prompt is a 400 with
// code "content_filter" (kept by onError; not failover-eligible), a filtered completion is
// finish_reason "content_filter"; Azure's extra prompt_filter_results / content_filter_results
// fields are forwarded untouched (the openai SDK ignores them).
import type { CompiledModel, CompiledProvider } from '../config/compiled.js';
import { AZURE_REASONING_API_VERSION, compareApiVersions } from '../config/model-facts.js';
import { ApiError } from '../errors.js';
import type { ParsedRequest } from '../parse.js';
import { registerTranslator } from './index.js';
import { OpenAITranslator, joinUrl } from './openai.js';
import type { Translator } from './types.js';

/** api-version used when the provider sets none: the latest GA version of the deployments API. */
export const AZURE_DEFAULT_API_VERSION = '2024-10-21';

/** `auth` comes from the provider spec (schema field); CompiledProvider may not carry it yet. */
type AzureProvider = CompiledProvider & { auth?: 'apiKey' | 'entra' };

/**
 * The api-version for this model: the provider's (default 2024-10-21), raised to the model's
 * minApiVersion when older (reasoning models answer older versions with "Model o1 is enabled only
 * for api versions 2024-12-01-preview and later").
 */
export function azureApiVersion(model: CompiledModel): string {
  const configured = model.provider.apiVersion ?? AZURE_DEFAULT_API_VERSION;
  const min = model.facts.minApiVersion;
  return min !== undefined && compareApiVersions(configured, min) < 0 ? min : configured;
}

export function azureUrl(model: CompiledModel): URL {
  const p = model.provider;
  if (!p.baseUrl) {
    throw new ApiError(
      500,
      `Provider '${p.name}' (azure-openai) needs a baseUrl such as https://my-resource.openai.azure.com.`,
      'api_error',
      'provider_misconfigured',
    );
  }
  // Accept the resource endpoint with or without a trailing /openai or /openai/v1.
  const base = p.baseUrl.replace(/\/+$/, '').replace(/\/openai(\/v1)?$/, '');
  const version = azureApiVersion(model);
  if (version === 'v1') return joinUrl(base, '/openai/v1/chat/completions');
  const url = joinUrl(
    base,
    `/openai/deployments/${encodeURIComponent(model.upstreamModel)}/chat/completions`,
  );
  url.searchParams.set('api-version', version);
  return url;
}

export class AzureOpenAITranslator extends OpenAITranslator {
  constructor(request: ParsedRequest, model: CompiledModel) {
    // Azure honours stream_options.include_usage on every current GA api-version.
    super(request, model, { injectIncludeUsage: true, maxCompletionTokens: true });
  }

  protected override url(): URL {
    return azureUrl(this.model);
  }

  /** The developer role exists from api-version 2024-12-01-preview on (and in the v1 API). */
  protected override developerRoleAccepted(): boolean {
    return (
      this.model.facts.developerRole &&
      compareApiVersions(azureApiVersion(this.model), AZURE_REASONING_API_VERSION) >= 0
    );
  }

  protected override authHeaders(): Record<string, string> {
    const p = this.model.provider as AzureProvider;
    const key = p.credentials.apiKey;
    if (!key) {
      throw new ApiError(
        500,
        `Provider '${p.name}' (azure-openai) has no credential configured.`,
        'api_error',
        'provider_misconfigured',
      );
    }
    const value = key.reveal();
    if (!value) {
      // An Entra token TierFlow fetches itself has not arrived yet (or expired and cannot be
      // renewed): nothing is sent, and the next candidate may serve the request.
      throw new ApiError(
        503,
        `Provider '${p.name}' (azure-openai) has no Microsoft Entra token yet.`,
        'api_error',
        'credentials_unavailable',
      );
    }
    return p.auth === 'entra' ? { authorization: `Bearer ${value}` } : { 'api-key': value };
  }
}

export function createAzureOpenAITranslator(request: ParsedRequest, model: CompiledModel): Translator {
  return new AzureOpenAITranslator(request, model);
}

registerTranslator('azure-openai', createAzureOpenAITranslator);
