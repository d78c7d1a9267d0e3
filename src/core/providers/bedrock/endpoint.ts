// Where a Bedrock provider's requests go: bedrock-runtime.{region}.amazonaws.com unless the
// provider sets a baseUrl (a VPC endpoint, a FIPS endpoint, a proxy).
import type { CompiledModel } from '../../config/compiled.js';

/** Region used when neither the provider nor the AWS environment names one. */
export const BEDROCK_DEFAULT_REGION = 'us-east-1';

export const bedrockDefaultBaseUrl = (region: string): string =>
  `https://bedrock-runtime.${region}.amazonaws.com`;

/** Region from the provider, else from a bedrock-runtime.{region}.amazonaws.com base URL. */
export function bedrockRegion(model: CompiledModel): string {
  const p = model.provider;
  if (p.region) return p.region;
  const m = /bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com/.exec(p.baseUrl ?? '');
  return m?.[1] ?? BEDROCK_DEFAULT_REGION;
}

/** The provider's base URL without a trailing slash. */
export function bedrockBase(model: CompiledModel): string {
  return (model.provider.baseUrl || bedrockDefaultBaseUrl(bedrockRegion(model))).replace(/\/+$/, '');
}
