// Bedrock credentials: SigV4 (service "bedrock") with the provider's access key, secret and
// session token, or a Bedrock API key sent as a bearer token. Kept apart from the translators:
// every Bedrock API (Converse, InvokeModel) signs the same way.
import type { CompiledModel, ProviderCredentials } from '../../config/compiled.js';
import { ApiError } from '../../errors.js';
import { signSigV4 } from '../shared/sigv4.js';
import { bedrockRegion } from './endpoint.js';

/** Access keys (SigV4) or a Bedrock API key (bearer). */
export function bedrockCredentialsPresent(c: ProviderCredentials): boolean {
  return Boolean((c.awsAccessKeyId && c.awsSecretAccessKey) || c.apiKey);
}

export interface UnsignedRequest {
  method: 'POST' | 'GET';
  url: URL;
  /** Lower-case names; the auth headers are added to a copy. */
  headers: Record<string, string>;
  body: Buffer;
}

/** The headers to add so Bedrock accepts the request. */
export function bedrockAuthHeaders(
  model: CompiledModel,
  req: UnsignedRequest,
  now: () => Date = () => new Date(),
): Record<string, string> {
  const p = model.provider;
  const c = p.credentials;
  if (c.awsAccessKeyId && c.awsSecretAccessKey) {
    return signSigV4({
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: req.body,
      region: bedrockRegion(model),
      service: 'bedrock',
      accessKeyId: c.awsAccessKeyId.reveal(),
      secretAccessKey: c.awsSecretAccessKey.reveal(),
      sessionToken: c.awsSessionToken?.reveal(),
      date: now(),
    });
  }
  if (c.apiKey) return { authorization: `Bearer ${c.apiKey.reveal()}` };
  throw new ApiError(
    500,
    `Provider ${p.name} (bedrock) has no AWS credentials: set credentials or the AWS environment.`,
    'api_error',
    'provider_misconfigured',
  );
}
