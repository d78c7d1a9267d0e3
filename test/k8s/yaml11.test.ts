// YAML as kubectl and helm read it. They decode YAML 1.1 (sigs.k8s.io/yaml, go-yaml), where an
// unquoted off/on/yes/no is a boolean and 0644 an octal number; our tests and tools otherwise parse
// YAML 1.2, where those stay strings or decimals. Every YAML file we ship for kubectl, helm or
// Prometheus (crds/, charts/ and what the chart renders, examples/, observability/) must mean the
// same under both; and a natural manifest with an unquoted `off` must be accepted by the CRD and mean off.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { compileConfig } from '../../src/core/config/compile.js';
import { Secret } from '../../src/core/secret.js';
import { buildCrd } from '../../src/k8s/crds.js';
import { RESOURCES } from '../../src/k8s/resources.js';
import { validateObject } from '../../src/k8s/namespace-config.js';
import { renderChartText } from './helm.js';

type Json = Record<string, any>;
const root = join(import.meta.dirname, '..', '..');

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e)) out.push(p);
    }
  };
  walk(join(root, dir));
  return out;
}

const docs = (text: string, version: '1.1' | '1.2') =>
  parseAllDocuments(text, { version }).map((d) => {
    if (d.errors.length) throw new Error(d.errors[0]!.message);
    return d.toJS() as unknown;
  });

/** Paths where the YAML 1.1 reading differs from the YAML 1.2 one, with both values. */
function differences(a: unknown, b: unknown, path = ''): string[] {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    if (Array.isArray(a) !== Array.isArray(b))
      return [`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => differences((a as Json)[k], (b as Json)[k], `${path}/${k}`));
  }
  return Object.is(a, b)
    ? []
    : [`${path || '/'}: YAML 1.1 reads ${JSON.stringify(a)}, YAML 1.2 ${JSON.stringify(b)}`];
}

/** Strings embedded in ConfigMaps that are themselves YAML (the Envoy bootstrap, the injector config). */
function embeddedYaml(manifest: Json): [string, string][] {
  if (manifest?.kind !== 'ConfigMap') return [];
  return Object.entries((manifest.data ?? {}) as Record<string, string>).filter(([k]) => /\.ya?ml$/.test(k));
}

describe('shipped YAML means the same to kubectl and helm (YAML 1.1) as to a YAML 1.2 reader', () => {
  const files = ['crds', 'charts', 'examples', 'observability']
    .flatMap(yamlFiles)
    // Helm templates are Go templates, not YAML: their rendered output is checked below.
    .filter((f) => !f.includes('/templates/'));
  for (const file of files) {
    it(relative(root, file), () => {
      const text = readFileSync(file, 'utf8');
      // The chart's Envoy bootstrap has Helm expressions: rendered below, through the ConfigMap.
      if (text.includes('{{')) return;
      const problems = differences(docs(text, '1.1'), docs(text, '1.2'));
      expect(problems).toEqual([]);
    });
  }

  for (const [name, values, namespace] of [
    ['default values', {}, 'tierflow-system'],
    [
      'other values',
      {
        sidecar: { namespaces: ['on', 'yes', 'team-a'], failOpen: true, env: [{ name: 'X', value: 'off' }] },
        envoy: { healthAddress: '0.0.0.0' },
        metrics: {
          podMonitor: { enabled: true },
          prometheusRule: { enabled: true },
          serviceMonitor: { enabled: true },
          grafanaDashboard: { enabled: true },
        },
        webhook: { certManager: { enabled: true } },
      },
      // Namespace names are DNS labels: "yes", "on", "no" are valid ones.
      'yes',
    ],
  ] as const) {
    it(`the chart rendered with ${name}, and the YAML inside its ConfigMaps`, () => {
      const text = renderChartText(values, namespace);
      // The manifests as helm prints them (what kubectl reads)...
      const problems = differences(docs(text, '1.1'), docs(text, '1.2'));
      // ...and the YAML inside them.
      for (const m of docs(text, '1.2') as Json[]) {
        for (const [key, inner] of embeddedYaml(m)) {
          for (const d of differences(docs(inner, '1.1'), docs(inner, '1.2')))
            problems.push(`ConfigMap ${m.metadata.name} ${key}${d}`);
        }
      }
      expect(problems).toEqual([]);
    });
  }
});

/** The API server's view: does the value fit the CRD's structural schema (types, enums)? */
function crdTypeProblems(schema: Json, value: unknown, path = ''): string[] {
  if (schema['x-kubernetes-preserve-unknown-fields'] && !schema.type) return [];
  const t = schema.type;
  const type =
    value === null
      ? 'null'
      : Array.isArray(value)
        ? 'array'
        : Number.isInteger(value)
          ? 'integer'
          : typeof value;
  const fits =
    t === type ||
    (t === 'number' && type === 'integer') ||
    (schema['x-kubernetes-int-or-string'] && (type === 'integer' || type === 'string'));
  if (!fits) return [`${path}: ${JSON.stringify(value)} is not of type ${t}`];
  if (schema.enum && !schema.enum.includes(value))
    return [`${path}: ${JSON.stringify(value)} is not one of ${schema.enum.join(', ')}`];
  if (t === 'object') {
    const props = (schema.properties ?? {}) as Record<string, Json>;
    return Object.entries(value as Json).flatMap(([k, v]) =>
      props[k]
        ? crdTypeProblems(props[k]!, v, `${path}.${k}`)
        : schema.additionalProperties
          ? crdTypeProblems(schema.additionalProperties, v, `${path}.${k}`)
          : [],
    );
  }
  if (t === 'array')
    return (value as unknown[]).flatMap((v, i) => crdTypeProblems(schema.items, v, `${path}[${i}]`));
  return [];
}

const crdSchema = (kind: string): Json => {
  const key = RESOURCES.find((r) => r.kind === kind)!.key;
  return (buildCrd(key) as Json).spec.versions[0].schema.openAPIV3Schema;
};

describe('TierFlow objects as kubectl sends them', () => {
  const NATURAL = `
apiVersion: tierflow.dev/v1alpha1
kind: LLMProvider
metadata: {name: claude}
spec:
  type: anthropic
  promptCaching: off
  credentials: {secretRef: {name: anthropic, key: apiKey}}
  models:
    - {name: claude-haiku, tier: lightweight, contextWindow: 200000, maxOutputTokens: 8192, pricing: {inputPerMTok: 1, outputPerMTok: 5}}
---
apiVersion: tierflow.dev/v1alpha1
kind: RoutingPolicy
metadata: {name: default}
spec:
  virtualModels: [auto]
  tiers: [{name: lightweight}]
  stickiness:
    mode: off
`;

  it('an unquoted off reaches the API server as false, which the CRD accepts and TierFlow reads as off', () => {
    const [provider, policy] = docs(NATURAL, '1.1') as Json[];
    expect(policy!.spec.stickiness.mode).toBe(false); // what kubectl sends
    expect(provider!.spec.promptCaching).toBe(false);
    for (const o of [provider!, policy!]) {
      expect(crdTypeProblems(crdSchema(o.kind), o.spec, '.spec')).toEqual([]);
      expect(
        validateObject(o.kind === 'LLMProvider' ? 'providers' : 'policies', {
          name: o.metadata.name,
          ...o.spec,
        }),
      ).toEqual([]);
    }
    const r = compileConfig(
      {
        providers: [{ name: 'claude', ...provider!.spec }],
        policies: [{ name: 'default', ...policy!.spec }],
      },
      { resolveCredentials: () => ({ apiKey: new Secret('sk-test') }) },
    );
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.config!.providers.get('claude')!.promptCaching).toBe('off');
    expect(r.config!.policies.get('default')!.stickiness).toBeUndefined(); // off: no stickiness
  });

  it('other values keep working, and a boolean where a string is meant gets a message that says why', () => {
    const [, policy] = docs(NATURAL.replace('mode: off', 'mode: model'), '1.1') as Json[];
    expect(crdTypeProblems(crdSchema('RoutingPolicy'), policy!.spec, '.spec')).toEqual([]);
    const on = docs(NATURAL.replace('mode: off', 'mode: on'), '1.1')[1] as Json;
    const issues = validateObject('policies', { name: 'default', ...on.spec });
    expect(issues.map((i) => i.message).join('\n')).toMatch(/got true: YAML 1\.1.*quote the value/);
  });

  it('every example object, read as kubectl reads it, fits its CRD and TierFlow schema', () => {
    const kinds = new Set(RESOURCES.map((r) => r.kind));
    let seen = 0;
    for (const file of yamlFiles('examples')) {
      for (const o of docs(readFileSync(file, 'utf8'), '1.1') as Json[]) {
        if (!o || !kinds.has(o.kind)) continue;
        seen++;
        expect(
          crdTypeProblems(crdSchema(o.kind), o.spec, `${relative(root, file)} ${o.metadata.name} .spec`),
        ).toEqual([]);
        const key = RESOURCES.find((r) => r.kind === o.kind)!.key;
        expect(
          validateObject(key, { name: o.metadata.name, ...o.spec }).filter((i) => i.severity === 'error'),
        ).toEqual([]);
      }
    }
    expect(seen).toBeGreaterThan(2);
  });
});
