// Resolves provider credentials from the process environment and from mounted Secret files
// (Kubernetes mounts the namespace's Secrets into the tierflow container only).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProviderCredentials } from '../core/config/compiled.js';
import type { CredentialsSpec } from '../core/config/schema.js';
import { Secret } from '../core/secret.js';
import { entraSettings, type EntraTokens } from './entra.js';

export const DEFAULT_SECRETS_DIR = '/var/run/tierflow/secrets';

export interface CredentialSources {
  env: Record<string, string | undefined>;
  /** Directory holding <secret-name>/<key> files. */
  secretsDir?: string;
  /**
   * Where Entra tokens come from (shared across reloads). Without it, a provider with
   * `credentials.entra` gets an empty credential and nothing is fetched (validate, explain).
   */
  entraTokens?: EntraTokens;
}

export function resolveCredentials(sources: CredentialSources) {
  const readRef = (ref: { name: string; key: string } | undefined): Secret | undefined => {
    if (!ref) return undefined;
    const dir = sources.secretsDir ?? DEFAULT_SECRETS_DIR;
    if (
      ref.name.includes('/') ||
      ref.key.includes('/') ||
      ref.name.startsWith('.') ||
      ref.key.startsWith('.')
    ) {
      throw new Error(`invalid secret reference ${ref.name}/${ref.key}`);
    }
    try {
      const value = readFileSync(join(dir, ref.name, ref.key), 'utf8').trim();
      return value ? new Secret(value) : undefined;
    } catch {
      throw new Error(`secret ${ref.name}/${ref.key} is not mounted under ${dir}`);
    }
  };
  const fromEnv = (name: string | undefined) => {
    const v = name ? sources.env[name] : undefined;
    return v ? new Secret(v) : undefined;
  };
  return (_provider: string, spec: CredentialsSpec): ProviderCredentials => {
    const apiKey = spec.apiKey
      ? new Secret(spec.apiKey)
      : (fromEnv(spec.apiKeyEnv) ?? readRef(spec.secretRef));
    const creds: ProviderCredentials = {};
    if (apiKey) creds.apiKey = apiKey;
    if (spec.entra) {
      const clientSecret = fromEnv(spec.entra.clientSecretEnv) ?? readRef(spec.entra.clientSecretRef);
      const settings = entraSettings(spec.entra, sources.env, clientSecret);
      creds.apiKey = sources.entraTokens ? sources.entraTokens.get(settings) : new Secret('');
    }
    const id = readRef(spec.awsAccessKeyIdRef);
    const secret = readRef(spec.awsSecretAccessKeyRef);
    const token = readRef(spec.awsSessionTokenRef);
    if (id) creds.awsAccessKeyId = id;
    if (secret) creds.awsSecretAccessKey = secret;
    if (token) creds.awsSessionToken = token;
    return creds;
  };
}
