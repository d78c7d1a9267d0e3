// Where an Azure OpenAI provider's requests go, per OpenAI API path (e.g. /chat/completions):
//   deployments API: {base}/openai/deployments/{deployment}{path}?api-version={v}
//   v1 API (apiVersion "v1"): {base}/openai/v1{path}, the deployment sent as `model`
// The api-version is the provider's, raised to the model's minApiVersion fact when older.
import type { CompiledModel } from '../../config/compiled.js';
import { compareApiVersions } from '../../config/model-facts.js';
import { ApiError } from '../../errors.js';
import { joinUrl } from '../shared/request.js';

/** api-version used when the provider sets none: the latest GA version of the deployments API. */
export const AZURE_DEFAULT_API_VERSION = '2024-10-21';

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

export function azureUrl(model: CompiledModel, path = '/chat/completions'): URL {
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
  if (version === 'v1') return joinUrl(base, `/openai/v1${path}`);
  const url = joinUrl(base, `/openai/deployments/${encodeURIComponent(model.upstreamModel)}${path}`);
  url.searchParams.set('api-version', version);
  return url;
}
