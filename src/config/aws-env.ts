// The "standard AWS environment" for Bedrock providers that declare no credentials of their own.
// Pure: the caller passes the environment (process.env in the config loaders), so src/core never
// reads it. Instance roles / IRSA web identity are not resolved here (they need network calls);
// in Kubernetes, mount keys as a Secret or use the pod's environment.
import type { ProviderCredentials } from '../core/config/compiled.js';
import { Secret } from '../core/secret.js';

export type Env = Record<string, string | undefined>;

const val = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim();
  return v ? v : undefined;
};

/**
 * Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (both of the
 * first two or none), or a Bedrock API key from AWS_BEARER_TOKEN_BEDROCK.
 */
export function awsCredentialsFromEnv(env: Env): ProviderCredentials {
  const creds: ProviderCredentials = {};
  const id = val(env, 'AWS_ACCESS_KEY_ID');
  const secret = val(env, 'AWS_SECRET_ACCESS_KEY');
  if (id && secret) {
    creds.awsAccessKeyId = new Secret(id);
    creds.awsSecretAccessKey = new Secret(secret);
    const token = val(env, 'AWS_SESSION_TOKEN');
    if (token) creds.awsSessionToken = new Secret(token);
  }
  const bearer = val(env, 'AWS_BEARER_TOKEN_BEDROCK');
  if (bearer) creds.apiKey = new Secret(bearer);
  return creds;
}

/** AWS_REGION, else AWS_DEFAULT_REGION. */
export function awsRegionFromEnv(env: Env): string | undefined {
  return val(env, 'AWS_REGION') ?? val(env, 'AWS_DEFAULT_REGION');
}

/**
 * For a Bedrock provider: its own credentials when it has any usable ones, else the environment's.
 * Explicit access keys win over the environment entirely (no mixing of key id and secret).
 */
export function withAwsEnvDefaults(own: ProviderCredentials, env: Env): ProviderCredentials {
  if ((own.awsAccessKeyId && own.awsSecretAccessKey) || own.apiKey) return own;
  return awsCredentialsFromEnv(env);
}
