// Strict validation of Kubernetes manifests against the Kubernetes 1.34 API.
//
// Source of the schemas: @kubernetes/client-node 1.4.0 (installed as the dev dependency alias
// `k8s-openapi-1.34`), whose models are generated from the Kubernetes v1.34.0 OpenAPI spec (each
// model file says "OpenAPI spec version: v1.34.0"). Its model classes carry every field with its
// type (attributeTypeMap) and its .d.ts marks which fields are required. From those we build JSON
// Schemas with `additionalProperties: false` on every object and validate with ajv in strict mode,
// so an unknown or misspelt field anywhere fails, as does a wrong type or a missing required field.
//
// Why not the others: kubectl 1.34.5 from the Lambda layer cannot print schemas without an API
// server, and `kubernetes-models` ships precompiled validators (from other Kubernetes versions) that
// accept unknown fields.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

type Schema = Record<string, unknown>;
interface Attr {
  name: string;
  baseName: string;
  type: string;
  format: string;
}
type ModelClass = { attributeTypeMap?: Attr[] };

const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('k8s-openapi-1.34/package.json'));
const modelsDir = join(pkgDir, 'dist', 'gen', 'models');

export const SCHEMA_SOURCE = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
};

/** The Kubernetes version the models were generated from, read from a generated file's header. */
export function schemaKubernetesVersion(): string {
  const head = readFileSync(join(modelsDir, 'V1Pod.js'), 'utf8').slice(0, 600);
  return /OpenAPI spec version: (v[\d.]+)/.exec(head)?.[1] ?? 'unknown';
}

/** apiVersion/kind -> model class. Listed explicitly so a wrong group fails too. */
const KINDS: Record<string, string> = {
  'v1/ConfigMap': 'V1ConfigMap',
  'v1/Secret': 'V1Secret',
  'v1/Service': 'V1Service',
  'v1/ServiceAccount': 'V1ServiceAccount',
  'v1/Pod': 'V1Pod',
  'v1/Namespace': 'V1Namespace',
  'apps/v1/Deployment': 'V1Deployment',
  'policy/v1/PodDisruptionBudget': 'V1PodDisruptionBudget',
  'rbac.authorization.k8s.io/v1/ClusterRole': 'V1ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'V1ClusterRoleBinding',
  'rbac.authorization.k8s.io/v1/Role': 'V1Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'V1RoleBinding',
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': 'V1MutatingWebhookConfiguration',
  'apiextensions.k8s.io/v1/CustomResourceDefinition': 'V1CustomResourceDefinition',
  'coordination.k8s.io/v1/Lease': 'V1Lease',
};

/** Fields the generator typed as `any` that the API defines precisely. */
const OVERRIDES: Record<string, Record<string, Schema>> = {
  V1JSONSchemaProps: {
    items: {
      anyOf: [
        { $ref: '#/definitions/V1JSONSchemaProps' },
        { type: 'array', items: { $ref: '#/definitions/V1JSONSchemaProps' } },
      ],
    },
    additionalProperties: { anyOf: [{ $ref: '#/definitions/V1JSONSchemaProps' }, { type: 'boolean' }] },
  },
};

function requiredFields(className: string, attrs: Attr[]): string[] {
  let dts: string;
  try {
    dts = readFileSync(join(modelsDir, `${className}.d.ts`), 'utf8');
  } catch {
    return [];
  }
  const byName = new Map(attrs.map((a) => [a.name, a.baseName]));
  const out: string[] = [];
  for (const m of dts.matchAll(/^ {4}'([^']+)'(\?)?:/gm)) {
    if (!m[2] && byName.has(m[1]!)) out.push(byName.get(m[1]!)!);
  }
  return out;
}

function typeSchema(type: string, format: string, classes: Record<string, ModelClass>): Schema {
  const t = type.trim();
  if (t === 'string') return { type: 'string' };
  if (t === 'Date' || t === 'V1MicroTime') return { type: 'string' };
  if (t === 'boolean') return { type: 'boolean' };
  if (t === 'number')
    return format === 'int32' || format === 'int64' ? { type: 'integer' } : { type: 'number' };
  if (t === 'any' || t === 'object') return {};
  if (t === 'IntOrString') return { type: ['string', 'integer'] };
  const arr = /^Array<(.+)>$/.exec(t);
  if (arr) return { type: 'array', items: typeSchema(arr[1]!, '', classes) };
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(t);
  if (map) return { type: 'object', additionalProperties: typeSchema(map[1]!, '', classes) };
  if (classes[t]) return { $ref: `#/definitions/${t}` };
  throw new Error(`k8s-schema: unknown type ${t}`);
}

let cached: Promise<{ ajv: Ajv; validators: Map<string, ValidateFunction> }> | undefined;

async function load() {
  const mod = (await import(pathToFileURL(join(modelsDir, 'ObjectSerializer.js')).href)) as Record<
    string,
    unknown
  >;
  const classes: Record<string, ModelClass> = {};
  for (const [name, value] of Object.entries(mod)) {
    if (typeof value === 'function' && Array.isArray((value as ModelClass).attributeTypeMap))
      classes[name] = value as ModelClass;
  }
  const definitions: Record<string, Schema> = {};
  for (const [name, cls] of Object.entries(classes)) {
    const attrs = cls.attributeTypeMap!;
    const properties: Record<string, Schema> = {};
    for (const a of attrs)
      properties[a.baseName] = OVERRIDES[name]?.[a.baseName] ?? typeSchema(a.type, a.format, classes);
    const required = requiredFields(name, attrs);
    definitions[name] = {
      type: 'object',
      properties,
      additionalProperties: false,
      ...(required.length ? { required } : {}),
    };
  }
  const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true });
  ajv.addSchema({ $id: 'k8s', definitions });
  const validators = new Map<string, ValidateFunction>();
  for (const [key, cls] of Object.entries(KINDS)) {
    if (!definitions[cls]) throw new Error(`k8s-schema: no model ${cls} for ${key}`);
    validators.set(key, ajv.compile({ $ref: `k8s#/definitions/${cls}` }));
  }
  return { ajv, validators };
}

export interface ManifestProblem {
  kind: string;
  name: string;
  errors: string[];
}

function describe(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const extra =
      e.keyword === 'additionalProperties'
        ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'`
        : '';
    return `${e.instancePath || '/'}: ${e.message}${extra}`;
  });
}

/** Validates one manifest; returns the problems (empty when valid). Unknown kinds are problems too. */
export async function validateManifest(
  doc: Record<string, any>,
  extra: Record<string, ValidateFunction> = {},
): Promise<string[]> {
  const { validators } = await (cached ??= load());
  const key = `${doc.apiVersion}/${doc.kind}`;
  const validate = validators.get(key) ?? extra[key];
  if (!validate) return [`no Kubernetes 1.34 schema for ${key}`];
  return validate(doc) ? [] : describe(validate.errors);
}

/** A strict validator for a non-core kind, with ObjectMeta from the 1.34 API. */
export async function compileExtra(spec: Schema): Promise<ValidateFunction> {
  const { ajv } = await (cached ??= load());
  return ajv.compile({
    type: 'object',
    additionalProperties: false,
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { $ref: 'k8s#/definitions/V1ObjectMeta' },
      spec,
    },
  });
}
