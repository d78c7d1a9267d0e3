// The CEL rules of the Provider CRD that depend on the provider type, generated from the provider
// table (src/core/providers/table.ts): which types need a baseUrl, which a region, and which
// credential sources each type takes.
import type { ProviderType } from '../core/config/schema.js';
import type { CredentialSource } from '../core/providers/spec.js';
import { PROVIDER_TYPES, providerSpec } from '../core/providers/table.js';

interface TypeRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueRequired';
}

const quoted = (types: readonly string[]): string => types.map((t) => `'${t}'`).join(', ');
const words = (types: readonly string[]): string =>
  types.length === 1 ? types[0]! : `${types.slice(0, -1).join(', ')} and ${types.at(-1)!}`;
/** CEL: the object's type is none of `types`. */
const notType = (types: readonly string[]): string =>
  types.length === 1 ? `self.type != '${types[0]}'` : `!(self.type in [${quoted(types)}])`;

const SOURCE_WORDS: Record<CredentialSource, string> = {
  secretRef: 'secretRef',
  entra: 'entra',
  awsAccessKeyIdRef: 'awsAccessKeyIdRef and awsSecretAccessKeyRef',
};

export function providerTypeRules(): TypeRule[] {
  const types = [...PROVIDER_TYPES].sort();
  const endpoint = (kind: string) => types.filter((t) => providerSpec(t).endpoint.kind === kind);
  const rules: TypeRule[] = [];
  const needBase = endpoint('baseUrl-required');
  if (needBase.length) {
    rules.push({
      rule: `${notType(needBase)} || has(self.baseUrl)`,
      message: `baseUrl is required for type${needBase.length > 1 ? 's' : ''} ${words(needBase)}`,
      fieldPath: '.baseUrl',
      reason: 'FieldValueRequired',
    });
  }
  const regional = endpoint('regional');
  if (regional.length) {
    rules.push({
      rule: `${notType(regional)} || has(self.region) || has(self.baseUrl)`,
      message: `a ${words(regional)} provider needs region (or baseUrl)`,
      fieldPath: '.region',
      reason: 'FieldValueRequired',
    });
  }
  rules.push(credentialSourcesRule(types));
  return rules;
}

/** Each type names only the credential sources it takes (types grouped by the same sources). */
function credentialSourcesRule(types: readonly ProviderType[]): TypeRule {
  const groups = new Map<string, { sources: readonly CredentialSource[]; types: ProviderType[] }>();
  for (const t of types) {
    const sources = providerSpec(t).credentials.sources;
    const g = groups.get(sources.join('+')) ?? { sources, types: [] };
    g.types.push(t);
    groups.set(sources.join('+'), g);
  }
  // The largest group is "every other type"; the others are tested by type, in name order.
  const all = [...groups.values()];
  const fallback = all.reduce((a, b) => (b.types.length > a.types.length ? b : a));
  const others = all.filter((g) => g !== fallback).sort((a, b) => (a.types[0]! < b.types[0]! ? -1 : 1));
  const has = (g: { sources: readonly CredentialSource[] }) =>
    g.sources.map((s) => `has(self.credentials.${s})`).join(' || ');
  const isType = (ts: readonly string[]) =>
    ts.length === 1 ? `self.type == '${ts[0]}'` : `self.type in [${quoted(ts)}]`;
  let expr = has(fallback);
  for (const g of [...others].reverse()) expr = `${isType(g.types)} ? ${has(g)} : ${expr}`;
  const said = (g: { sources: readonly CredentialSource[] }) =>
    g.sources.map((s) => SOURCE_WORDS[s]).join(' or ');
  const message = [
    ...others.map((g) => `${words(g.types)} take${g.types.length > 1 ? '' : 's'} ${said(g)}`),
    `every other type takes ${said(fallback)}`,
  ].join('; ');
  return {
    rule: others.length ? `!has(self.credentials) || (${expr})` : `!has(self.credentials) || ${expr}`,
    message,
    fieldPath: '.credentials',
  };
}
