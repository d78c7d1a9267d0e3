// Credentials in Kubernetes: a provider's `credentials.secretRef {name, key}` is read from
// <secretsDir>/<name>/<key>, where the webhook mounted Secret <name> into the tierflow container
// only (app containers do not get the volume; no service account needs RBAC on Secrets). The
// kubelet refreshes mounted Secrets, so a rotated key is picked up by the fingerprint poll below.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CompileOptions } from '../core/config/compile.js';
import type { ProviderCredentials } from '../core/config/compiled.js';
import type { CredentialsSpec } from '../core/config/schema.js';
import { Secret } from '../core/secret.js';
import { entraSettings, type EntraTokens } from '../config/entra.js';

export interface SecretKeyRef {
  name: string;
  key: string;
}

const SAFE = /^[A-Za-z0-9._-]+$/;

/** Path of a referenced key; refuses names that could leave the secrets directory. */
export function secretPath(dir: string, ref: SecretKeyRef): string {
  if (!SAFE.test(ref.name) || !SAFE.test(ref.key) || ref.name.startsWith('..') || ref.key.startsWith('..')) {
    throw new Error(`invalid secret reference ${JSON.stringify(ref.name)}/${JSON.stringify(ref.key)}`);
  }
  return join(dir, ref.name, ref.key);
}

export function readSecretRef(dir: string, ref: SecretKeyRef): Secret {
  const path = secretPath(dir, ref);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES')
      throw new Error(
        `key '${ref.key}' of Secret '${ref.name}' is mounted but this process (uid ${process.getuid?.()}) may not read it: the volume's defaultMode must let it (the webhook mounts Secrets 0444 into the tierflow container only)`,
        { cause: err },
      );
    throw new Error(
      `key '${ref.key}' of Secret '${ref.name}' is not mounted (is the Secret missing, or was the pod created before the reference?)`,
      { cause: err },
    );
  }
  const value = text.trim();
  if (!value) throw new Error(`key '${ref.key}' of Secret '${ref.name}' is empty`);
  return new Secret(value);
}

/** Compile callbacks that resolve secret references from the mounted Secrets. */
export function mountedSecretResolvers(
  dir: string,
  entraTokens?: EntraTokens,
  env: Record<string, string | undefined> = process.env,
): Pick<CompileOptions, 'resolveCredentials' | 'resolveVirtualKey'> {
  return {
    resolveCredentials: (_provider: string, spec: CredentialsSpec): ProviderCredentials => {
      const out: ProviderCredentials = {};
      if (spec.secretRef) out.apiKey = readSecretRef(dir, spec.secretRef);
      if (spec.entra) {
        const clientSecret = spec.entra.clientSecretRef
          ? readSecretRef(dir, spec.entra.clientSecretRef)
          : undefined;
        const settings = entraSettings(spec.entra, env, clientSecret);
        out.apiKey = entraTokens ? entraTokens.get(settings) : new Secret('');
      }
      if (spec.awsAccessKeyIdRef) out.awsAccessKeyId = readSecretRef(dir, spec.awsAccessKeyIdRef);
      if (spec.awsSecretAccessKeyRef) out.awsSecretAccessKey = readSecretRef(dir, spec.awsSecretAccessKeyRef);
      if (spec.awsSessionTokenRef) out.awsSessionToken = readSecretRef(dir, spec.awsSessionTokenRef);
      return out;
    },
    resolveVirtualKey: (_name, spec) => (spec.secretRef ? readSecretRef(dir, spec.secretRef) : undefined),
  };
}

/** Every Secret name a set of specs references (providers' credentials, virtual keys' secretRef). */
export function referencedSecretNames(specs: readonly unknown[]): string[] {
  const names = new Set<string>();
  const visit = (v: unknown) => {
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    for (const field of [
      'secretRef',
      'awsAccessKeyIdRef',
      'awsSecretAccessKeyRef',
      'awsSessionTokenRef',
      'clientSecretRef',
    ]) {
      const ref = o[field] as { name?: unknown } | undefined;
      if (ref && typeof ref.name === 'string' && ref.name) names.add(ref.name);
    }
    if (o.credentials) visit(o.credentials);
    if (o.entra) visit(o.entra);
  };
  specs.forEach(visit);
  return [...names].sort();
}

/**
 * A cheap fingerprint of the mounted Secrets: the kubelet swaps a `..data` symlink on every update,
 * so its target changes; plain directories (tests, other mounts) fall back to mtime and size.
 * Never reads secret contents.
 */
export function secretsFingerprint(dir: string, names: readonly string[]): string {
  const parts: string[] = [];
  for (const name of names) {
    if (!SAFE.test(name)) continue;
    const base = join(dir, name);
    try {
      parts.push(`${name}:${readlinkSync(join(base, '..data'))}`);
      continue;
    } catch {
      // not an atomic-writer directory
    }
    try {
      const st = statSync(base);
      let entries = `${st.mtimeMs}`;
      // a file replaced in place changes its own mtime, not always the directory's
      for (const f of safeList(base)) {
        const fst = statSync(join(base, f));
        entries += `|${f}:${fst.mtimeMs}:${fst.size}`;
      }
      parts.push(`${name}:${entries}`);
    } catch {
      parts.push(`${name}:-`);
    }
  }
  return parts.join(',');
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => !f.startsWith('.'))
      .sort();
  } catch {
    return [];
  }
}
