// The generated CRDs: up to date with the one config schema, valid CustomResourceDefinitions of the
// Kubernetes 1.34 API (unknown fields rejected), structural, documented field by field, with CEL
// rules that hold on the examples and catch what they are meant to catch.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Environment } from '@marcbachmann/cel-js';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { buildCrd, CRD_KEYS, crdFileName, renderCrdYaml } from '../../src/k8s/crds.js';
import {
  buildNamespaceConfig,
  LastGoodStore,
  type NamespaceObjects,
} from '../../src/k8s/namespace-config.js';
import { RESOURCES, type ResourceKey } from '../../src/k8s/resources.js';
import { Secret } from '../../src/core/secret.js';
import { schemaKubernetesVersion, validateManifest } from './k8s-schema.js';

type Json = Record<string, any>;
const root = join(import.meta.dirname, '..', '..');

function crdSchema(key: ResourceKey): Json {
  return (buildCrd(key) as Json).spec.versions[0].schema.openAPIV3Schema;
}

function readYamlDocs(file: string): Json[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as Json)
    .filter(Boolean);
}

function exampleObjects(): { file: string; doc: Json }[] {
  const out: { file: string; doc: Json }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(entry.name)) for (const doc of readYamlDocs(p)) out.push({ file: p, doc });
    }
  };
  walk(join(root, 'examples'));
  return out;
}

const keyOfKind = (kind: string) => RESOURCES.find((r) => r.kind === kind)?.key;

/** The CRD schema as a draft-07 schema that rejects unknown fields (like kubectl's strict validation). */
function toAjvSchema(node: Json): Json {
  const out: Json = {};
  for (const k of [
    'type',
    'required',
    'enum',
    'minimum',
    'maximum',
    'minLength',
    'maxLength',
    'pattern',
    'minItems',
    'maxItems',
    'maxProperties',
  ]) {
    if (node[k] !== undefined) out[k] = node[k];
  }
  if (node.exclusiveMinimum === true) {
    out.exclusiveMinimum = node.minimum;
    delete out.minimum;
  }
  if (node.exclusiveMaximum === true) {
    out.exclusiveMaximum = node.maximum;
    delete out.maximum;
  }
  if (node.properties) {
    out.properties = Object.fromEntries(
      Object.entries(node.properties as Json).map(([k, v]) => [k, toAjvSchema(v)]),
    );
    out.additionalProperties = false;
  }
  if (node.additionalProperties && typeof node.additionalProperties === 'object')
    out.additionalProperties = toAjvSchema(node.additionalProperties);
  if (node.items) out.items = toAjvSchema(node.items);
  if (node['x-kubernetes-list-type'] === 'set') out.uniqueItems = true;
  return out;
}

const cel = new Environment({ unlistedVariablesAreDyn: true }).registerFunction(
  'list.isSorted(): bool',
  (l: unknown[]) => {
    for (let i = 1; i < l.length; i++) if ((l[i - 1] as number) > (l[i] as number)) return false;
    return true;
  },
);

/** Evaluates every x-kubernetes-validations rule of the schema against the value; returns failed messages. */
function celFailures(schema: Json, value: unknown, path = ''): string[] {
  if (value === undefined || value === null) return [];
  const failures: string[] = [];
  for (const rule of (schema['x-kubernetes-validations'] ?? []) as { rule: string; message: string }[]) {
    let ok: unknown;
    try {
      ok = cel.evaluate(rule.rule, { self: value });
    } catch (err) {
      failures.push(`${path || '/'}: rule ${rule.rule} errored: ${(err as Error).message}`);
      continue;
    }
    if (ok !== true) failures.push(`${path || '/'}: ${rule.message}`);
  }
  if (schema.properties && typeof value === 'object') {
    for (const [k, s] of Object.entries(schema.properties as Json))
      failures.push(...celFailures(s, (value as Json)[k], `${path}/${k}`));
  }
  if (schema.items && Array.isArray(value))
    value.forEach((v, i) => failures.push(...celFailures(schema.items, v, `${path}/${i}`)));
  return failures;
}

/** Structural-schema and documentation rules; returns the problems found. */
function structuralProblems(node: Json, path: string, inSpec: boolean): string[] {
  const problems: string[] = [];
  const isMetadataRoot = path === '.metadata';
  if (!node.type && !node['x-kubernetes-int-or-string'] && !node['x-kubernetes-preserve-unknown-fields'])
    problems.push(`${path}: no type`);
  for (const banned of [
    '$ref',
    'anyOf',
    'oneOf',
    'allOf',
    'not',
    'uniqueItems',
    'patternProperties',
    'definitions',
    'dependencies',
  ]) {
    if (banned in node) problems.push(`${path}: ${banned} is not allowed`);
  }
  if (node.properties && node.additionalProperties !== undefined)
    problems.push(`${path}: properties with additionalProperties`);
  if (node.type === 'array') {
    if (!node.items) problems.push(`${path}: array without items`);
    if (inSpec && node.maxItems === undefined) problems.push(`${path}: array without maxItems (CEL cost)`);
    if (node['x-kubernetes-list-type'] === 'map') {
      for (const k of node['x-kubernetes-list-map-keys'] ?? []) {
        if (!(node.items?.required ?? []).includes(k))
          problems.push(`${path}: list-map key ${k} is not required`);
      }
    }
  }
  if (node.properties) {
    for (const [k, child] of Object.entries(node.properties as Json)) {
      const p = `${path}.${k}`;
      if (p !== '.metadata' && !(typeof child.description === 'string' && child.description.length > 10))
        problems.push(`${p}: no description`);
      problems.push(...structuralProblems(child, p, inSpec || p === '.spec'));
    }
  }
  if (node.items) problems.push(...structuralProblems(node.items, `${path}[]`, inSpec));
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    problems.push(...structuralProblems(node.additionalProperties, `${path}{}`, inSpec));
  }
  if (isMetadataRoot && node.properties) problems.push('.metadata: only type object is allowed');
  return problems;
}

describe('generated CRDs', () => {
  it('are up to date in crds/ and charts/tierflow/crds/', () => {
    for (const key of CRD_KEYS) {
      const expected = renderCrdYaml(key);
      for (const dir of ['crds', 'charts/tierflow/crds']) {
        const file = join(root, dir, crdFileName(key));
        expect(
          readFileSync(file, 'utf8'),
          `${file} is stale: run node_modules/.bin/node scripts/gen-crds.ts`,
        ).toBe(expected);
      }
    }
  });

  it('are valid CustomResourceDefinitions of the Kubernetes 1.34 API (unknown fields rejected)', async () => {
    expect(schemaKubernetesVersion()).toBe('v1.34.0');
    for (const key of CRD_KEYS) {
      const [doc] = readYamlDocs(join(root, 'crds', crdFileName(key)));
      expect(await validateManifest(doc!), crdFileName(key)).toEqual([]);
    }
    // The validator does reject what the API would.
    const bad = buildCrd('providers') as Json;
    bad.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.type.descripton = 'typo';
    expect((await validateManifest(bad)).join('\n')).toContain(
      "must NOT have additional properties 'descripton'",
    );
  });

  it('are structural, bounded and documented on every field', () => {
    for (const key of CRD_KEYS) {
      const crd = buildCrd(key) as Json;
      expect(crd.spec.scope).toBe('Namespaced');
      expect(crd.spec.group).toBe('tierflow.dev');
      const version = crd.spec.versions[0];
      expect(version.name).toBe('v1alpha1');
      expect(version.subresources).toEqual({ status: {} });
      expect(structuralProblems(version.schema.openAPIV3Schema, '', false)).toEqual([]);
      const status = version.schema.openAPIV3Schema.properties.status;
      expect(Object.keys(status.properties)).toEqual(['observedGeneration', 'conditions']);
      expect(status.properties.conditions['x-kubernetes-list-map-keys']).toEqual(['type']);
      // printer columns point at fields that exist
      for (const col of version.additionalPrinterColumns as Json[]) {
        const m = /^\.spec\.([A-Za-z]+)/.exec(col.jsonPath);
        if (m)
          expect(version.schema.openAPIV3Schema.properties.spec.properties, col.jsonPath).toHaveProperty(
            m[1]!,
          );
      }
      expect(version.additionalPrinterColumns.map((c: Json) => c.name)).toContain('Ready');
    }
  });

  it('leave out the file-only fields that would put keys into objects', () => {
    const provider = crdSchema('providers').properties.spec.properties.credentials.properties;
    expect(Object.keys(provider).sort()).toEqual([
      'awsAccessKeyIdRef',
      'awsSecretAccessKeyRef',
      'awsSessionTokenRef',
      'entra',
      'secretRef',
    ]);
    expect(provider.entra.properties).not.toHaveProperty('clientSecretEnv');
    expect(provider.entra.properties).toHaveProperty('clientSecretRef');
    expect(crdSchema('virtualKeys').properties.spec.properties).not.toHaveProperty('key');
  });

  it('accept every example object, schema and CEL rules included; the examples compile together', async () => {
    const objects: NamespaceObjects = { providers: [], policies: [], virtualKeys: [] };
    const examples = exampleObjects();
    expect(examples.length).toBeGreaterThanOrEqual(5);
    const ajv = new Ajv({ strict: true, allErrors: true });
    for (const { file, doc } of examples) {
      const key = keyOfKind(doc.kind);
      if (!key) {
        expect(await validateManifest(doc), `${file} ${doc.kind}`).toEqual([]);
        continue;
      }
      expect(doc.apiVersion).toBe('tierflow.dev/v1alpha1');
      const schema = crdSchema(key);
      const validate = ajv.compile(toAjvSchema(schema));
      expect(validate(doc) ? [] : validate.errors, `${file} ${doc.metadata.name}`).toEqual([]);
      expect(celFailures(schema, doc), `${file} ${doc.metadata.name}`).toEqual([]);
      (objects[key] as Json[]).push({
        ...doc,
        metadata: { ...doc.metadata, namespace: 'team-a', uid: doc.metadata.name, generation: 1 },
      });
    }
    const build = buildNamespaceConfig(objects, {
      lastGood: new LastGoodStore(),
      compile: {
        resolveCredentials: () => ({ apiKey: new Secret('x') }),
        resolveVirtualKey: () => new Secret('y'),
      },
    });
    expect(build.outcomes.flatMap((o) => o.issues.filter((i) => i.severity === 'error'))).toEqual([]);
    expect(build.outcomes.every((o) => o.state === 'current' && o.refs.length === 0)).toBe(true);
    expect([...build.config!.virtualModels.keys()].sort()).toEqual(['auto', 'auto-quality']);
  });

  const provider = () => structuredClone(exampleObjects().find((e) => e.doc.kind === 'LLMProvider')!.doc);
  const policy = () => structuredClone(exampleObjects().find((e) => e.doc.kind === 'RoutingPolicy')!.doc);
  const vkey = () => structuredClone(exampleObjects().find((e) => e.doc.kind === 'VirtualKey')!.doc);

  it.each([
    [
      'a tier before the last without maxScore',
      'policies',
      () => {
        const p = policy();
        p.spec.tiers = [{ name: 'a' }, { name: 'b', maxScore: 0.5 }, { name: 'c' }];
        return p;
      },
      'every tier but the last needs maxScore',
    ],
    [
      'decreasing maxScore',
      'policies',
      () => {
        const p = policy();
        p.spec.tiers = [{ name: 'a', maxScore: 0.6 }, { name: 'b', maxScore: 0.5 }, { name: 'c' }];
        return p;
      },
      'maxScore must increase from tier to tier',
    ],
    [
      'equal maxScore',
      'policies',
      () => {
        const p = policy();
        p.spec.tiers = [{ name: 'a', maxScore: 0.5 }, { name: 'b', maxScore: 0.5 }, { name: 'c' }];
        return p;
      },
      'two tiers have the same maxScore',
    ],
    [
      'flagshipShare with one tier',
      'policies',
      () => {
        const p = policy();
        p.spec.tiers = [{ name: 'a' }];
        p.spec.flagshipShare = 0.3;
        return p;
      },
      'flagshipShare needs at least two tiers',
    ],
    [
      'two credential sources',
      'providers',
      () => {
        const p = provider();
        p.spec.credentials.awsAccessKeyIdRef = { name: 'aws', key: 'id' };
        p.spec.credentials.awsSecretAccessKeyRef = { name: 'aws', key: 'secret' };
        return p;
      },
      'set exactly one credential source',
    ],
    [
      'no credential source',
      'providers',
      () => {
        const p = provider();
        p.spec.credentials = {};
        return p;
      },
      'set exactly one credential source',
    ],
    [
      'an AWS key id without its secret',
      'providers',
      () => {
        const p = provider();
        p.spec.type = 'bedrock';
        p.spec.region = 'us-east-1';
        p.spec.credentials = { awsAccessKeyIdRef: { name: 'aws', key: 'id' } };
        return p;
      },
      'awsAccessKeyIdRef and awsSecretAccessKeyRef go together',
    ],
    [
      'bedrock with an API key',
      'providers',
      () => {
        const p = provider();
        p.spec.type = 'bedrock';
        p.spec.region = 'us-east-1';
        return p;
      },
      'bedrock takes awsAccessKeyIdRef',
    ],
    [
      'azure-openai without baseUrl',
      'providers',
      () => {
        const p = provider();
        p.spec.type = 'azure-openai';
        return p;
      },
      'baseUrl is required',
    ],
    [
      'bedrock without region',
      'providers',
      () => {
        const p = provider();
        p.spec.type = 'bedrock';
        p.spec.credentials = {
          awsAccessKeyIdRef: { name: 'a', key: 'b' },
          awsSecretAccessKeyRef: { name: 'a', key: 'c' },
        };
        return p;
      },
      'a bedrock provider needs region',
    ],
    [
      'both keyHash and secretRef',
      'virtualKeys',
      () => {
        const v = vkey();
        v.spec.keyHash = 'b'.repeat(64);
        return v;
      },
      'set exactly one of keyHash and secretRef',
    ],
    [
      'entra credentials on a provider that is not azure-openai',
      'providers',
      () => {
        const p = provider();
        p.spec.credentials = { entra: { tenantId: 't', clientId: 'c' } };
        return p;
      },
      'azure-openai takes secretRef or entra',
    ],
    [
      'entra credentials without auth: entra',
      'providers',
      () => {
        const p = provider();
        p.spec.type = 'azure-openai';
        p.spec.baseUrl = 'https://r.openai.azure.com';
        p.spec.credentials = { entra: { tenantId: 't', clientId: 'c' } };
        return p;
      },
      'credentials.entra needs auth: entra',
    ],
    [
      'entra and secretRef together',
      'providers',
      () => {
        const p = provider();
        p.spec.type = 'azure-openai';
        p.spec.baseUrl = 'https://r.openai.azure.com';
        p.spec.auth = 'entra';
        p.spec.credentials = { secretRef: { name: 's', key: 'k' }, entra: { tenantId: 't', clientId: 'c' } };
        return p;
      },
      'set exactly one credential source',
    ],
    [
      'a name too long for references',
      'providers',
      () => {
        const p = provider();
        p.metadata.name = 'p'.repeat(64);
        return p;
      },
      'at most 63 characters',
    ],
  ] as const)('CEL rejects %s', (_label, key, make, message) => {
    const failures = celFailures(crdSchema(key as ResourceKey), make());
    expect(failures.join('\n')).toContain(message);
  });

  it('rejects schema violations the examples would hide (enum, range, pattern, unknown field)', () => {
    const ajv = new Ajv({ strict: true, allErrors: true });
    const validate = ajv.compile(toAjvSchema(crdSchema('policies')));
    const p = policy();
    p.spec.tiers[0].maxScore = 1.5;
    p.spec.failover.escalate = 'sideways';
    p.spec.tiers[1].models = ['no-slash'];
    p.spec.extra = true;
    expect(validate(p)).toBe(false);
    const paths = (validate.errors ?? []).map((e) => `${e.instancePath}:${e.keyword}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/spec/tiers/0/maxScore:maximum',
        '/spec/failover/escalate:enum',
        '/spec/tiers/1/models/0:pattern',
        '/spec:additionalProperties',
      ]),
    );
  });
});
