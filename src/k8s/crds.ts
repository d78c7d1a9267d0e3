// CustomResourceDefinitions generated from the one config schema (src/core/config/schema.ts).
// scripts/gen-crds.ts writes them to crds/ and charts/tierflow/crds/; test/k8s/crds.test.ts fails
// when the committed files differ from what this module produces.
//
// JSON Schema -> Kubernetes structural schema:
// - `additionalProperties: false` is dropped next to `properties` (the API server prunes unknown
//   fields; `kubectl apply` rejects them with strict field validation);
// - Type.Record (`patternProperties`) becomes `additionalProperties: {type: string}`;
// - `uniqueItems` (forbidden in CRDs) becomes `x-kubernetes-list-type: set`;
// - numeric `exclusiveMinimum: n` (JSON Schema 2019) becomes `minimum: n, exclusiveMinimum: true` (OpenAPI 3.0);
// - fields that only make sense in a file (inline keys, environment variables) are left out;
// - list bounds (needed to keep CEL rule cost bounded), list-map keys and CEL rules are added here,
//   per kind, because they are about the Kubernetes API rather than the config model.
import { stringify } from 'yaml';
import { ProviderSpec, RoutingPolicySpec, VirtualKeySpec } from '../core/config/schema.js';
import { FALSE_IS } from '../core/config/json-schema.js';
import { providerTypeRules } from './provider-rules.js';
import { CATEGORY, CONDITION_TYPES, GROUP, RESOURCE_BY_KEY, VERSION, type ResourceKey } from './resources.js';

type Json = Record<string, unknown>;

interface CelRule {
  rule: string;
  message: string;
  /** Field the error is reported at, relative to the node the rule is on (e.g. `.baseUrl`). */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueForbidden' | 'FieldValueDuplicate';
}

interface KindOverlay {
  /** Dotted paths inside spec to leave out of the CRD ("credentials.apiKey"). */
  omit: string[];
  /** Dotted path inside spec ('' = spec itself; `[]` steps into array items) -> keys merged into that node. */
  patch: Record<string, Json>;
  /** CEL rules per dotted path (same addressing as patch). */
  rules: Record<string, CelRule[]>;
  printerColumns: Json[];
  selectableFields?: Json[];
}

const READY_COLUMNS: Json[] = [
  {
    name: 'Ready',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].status',
    description: 'Whether the sidecars of the namespace serve this generation of the object.',
  },
  {
    name: 'Reason',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
    description: 'Reason of the Ready condition.',
    priority: 1,
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

const MAP_BY_NAME = { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] };

export const OVERLAYS: Record<ResourceKey, KindOverlay> = {
  providers: {
    omit: ['credentials.apiKey', 'credentials.apiKeyEnv', 'credentials.entra.clientSecretEnv'],
    patch: {
      baseUrl: { maxLength: 2048 },
      headers: { maxProperties: 32 },
      models: { maxItems: 128, ...MAP_BY_NAME },
      embeddingModels: { maxItems: 64, ...MAP_BY_NAME },
      'embeddingModels[].name': { maxLength: 253 },
      'models[].capabilities': { maxItems: 8 },
      'models[].name': { maxLength: 253 },
    },
    rules: {
      '': [
        ...providerTypeRules(),
        {
          rule: 'size(self.models) > 0 || (has(self.embeddingModels) && size(self.embeddingModels) > 0)',
          message: 'a provider needs at least one model or embedding model',
          fieldPath: '.models',
          reason: 'FieldValueRequired',
        },
        {
          rule: "!has(self.credentials) || !has(self.credentials.entra) || (has(self.auth) && self.auth == 'entra')",
          message: 'credentials.entra needs auth: entra',
          fieldPath: '.auth',
          reason: 'FieldValueRequired',
        },
      ],
      credentials: [
        {
          rule: '[has(self.secretRef), has(self.awsAccessKeyIdRef), has(self.entra)].filter(x, x).size() == 1',
          message:
            'set exactly one credential source: secretRef, entra, or awsAccessKeyIdRef with awsSecretAccessKeyRef',
        },
        {
          rule: 'has(self.awsAccessKeyIdRef) == has(self.awsSecretAccessKeyRef)',
          message: 'awsAccessKeyIdRef and awsSecretAccessKeyRef go together',
        },
        {
          rule: '!has(self.awsSessionTokenRef) || has(self.awsAccessKeyIdRef)',
          message: 'awsSessionTokenRef needs awsAccessKeyIdRef and awsSecretAccessKeyRef',
          fieldPath: '.awsSessionTokenRef',
        },
      ],
    },
    printerColumns: [
      { name: 'Type', type: 'string', jsonPath: '.spec.type', description: 'Provider family.' },
      {
        name: 'Models',
        type: 'string',
        jsonPath: '.spec.models[*].name',
        description: 'Models offered by the provider.',
      },
      ...READY_COLUMNS,
    ],
    selectableFields: [{ jsonPath: '.spec.type' }],
  },
  policies: {
    // A RoutingPolicy's router comes from a ConfigMap; a file path means nothing to the controller.
    omit: ['classifier.modelFile'],
    patch: {
      classifier: { required: ['configMapRef'] },
      'classifier.configMapRef.name': { maxLength: 253 },
      'classifier.configMapRef.key': { maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$' },
      virtualModels: { maxItems: 32, 'x-kubernetes-list-type': 'set' },
      'virtualModels[]': { maxLength: 253 },
      tiers: { maxItems: 16, ...MAP_BY_NAME },
      'tiers[].name': { maxLength: 63 },
      'tiers[].models': { maxItems: 64 },
      'tiers[].models[]': { maxLength: 507 },
    },
    rules: {
      '': [
        {
          rule: '!has(self.flagshipShare) || size(self.tiers) >= 2',
          message: 'flagshipShare needs at least two tiers',
          fieldPath: '.flagshipShare',
        },
      ],
      tiers: [
        {
          rule: 'self.filter(t, !has(t.maxScore)).all(t, t.name == self[size(self) - 1].name)',
          message: 'every tier but the last needs maxScore',
        },
        {
          rule: 'self.filter(t, has(t.maxScore)).map(t, t.maxScore).isSorted()',
          message: 'maxScore must increase from tier to tier',
        },
        {
          rule: 'self.filter(t, has(t.maxScore)).all(a, size(self.filter(b, has(b.maxScore) && b.maxScore == a.maxScore)) == 1)',
          message: 'maxScore must increase from tier to tier (two tiers have the same maxScore)',
        },
      ],
    },
    printerColumns: [
      {
        name: 'Models',
        type: 'string',
        jsonPath: '.spec.virtualModels',
        description: 'Virtual model names that select this policy.',
      },
      {
        name: 'Tiers',
        type: 'string',
        jsonPath: '.spec.tiers[*].name',
        description: 'Tiers, cheapest first.',
      },
      {
        name: 'Router',
        type: 'string',
        jsonPath: '.spec.classifier.configMapRef.name',
        description:
          'ConfigMap the policy takes its router fitted by `tierflow train` from (empty: the shipped model). Reason ShippedRouterInUse or LastGoodRouterInUse: that router does not load and another scores.',
        priority: 1,
      },
      ...READY_COLUMNS,
    ],
  },
  virtualKeys: {
    omit: ['key'],
    patch: {
      allowedModels: { maxItems: 256, 'x-kubernetes-list-type': 'set' },
      'allowedModels[]': { maxLength: 507 },
    },
    rules: {
      '': [
        {
          rule: 'has(self.keyHash) != has(self.secretRef)',
          message: 'set exactly one of keyHash and secretRef',
        },
      ],
    },
    printerColumns: [
      { name: 'Budget', type: 'number', jsonPath: '.spec.budget.usd', description: 'Spend limit in USD.' },
      { name: 'Period', type: 'string', jsonPath: '.spec.budget.period', description: 'Budget period.' },
      {
        name: 'RPM',
        type: 'integer',
        jsonPath: '.spec.rpm',
        description: 'Requests per minute.',
        priority: 1,
      },
      { name: 'TPM', type: 'integer', jsonPath: '.spec.tpm', description: 'Tokens per minute.', priority: 1 },
      ...READY_COLUMNS,
    ],
  },
};

const SPECS: Record<ResourceKey, Json> = {
  providers: ProviderSpec as unknown as Json,
  policies: RoutingPolicySpec as unknown as Json,
  virtualKeys: VirtualKeySpec as unknown as Json,
};

const KIND_DESCRIPTIONS: Record<ResourceKey, string> = {
  providers:
    'LLMProvider is an LLM provider for the TierFlow sidecars of its namespace: where requests go, how they authenticate (a Secret mounted into the tierflow container only) and the models it offers with their prices.',
  policies:
    'RoutingPolicy maps virtual model names (such as auto) to tiers of models by the complexity score of each request, with failover rules. Tier candidates reference models as <LLMProvider name>/<model name>.',
  virtualKeys:
    'VirtualKey is a TierFlow key handed to an application, with the models it may use, a budget and rate limits. When any VirtualKey exists in a namespace, its sidecars require one.',
};

/** Deep copy of a JSON Schema made structural (see the header comment). Throws on what a CRD cannot express. */
export function toStructural(schema: Json, path = 'spec'): Json {
  if (typeof schema[FALSE_IS] === 'string') return offEnumField(schema);
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$id' || k === '$schema' || k === 'title') continue;
    out[k] = v;
  }
  if (out.type === undefined)
    throw new Error(`${path}: a structural schema needs a type (anyOf/$ref are not allowed)`);
  if (Array.isArray(out.type)) throw new Error(`${path}: a single type is required`);
  for (const banned of ['anyOf', 'oneOf', 'allOf', 'not', '$ref']) {
    if (banned in out) throw new Error(`${path}: ${banned} is not supported in the CRD generator`);
  }
  if (typeof out.exclusiveMinimum === 'number') {
    out.minimum = out.exclusiveMinimum;
    out.exclusiveMinimum = true;
  }
  if (typeof out.exclusiveMaximum === 'number') {
    out.maximum = out.exclusiveMaximum;
    out.exclusiveMaximum = true;
  }
  if (out.type === 'object') {
    const props = out.properties as Record<string, Json> | undefined;
    if (props) {
      delete out.additionalProperties;
      const converted: Record<string, Json> = {};
      for (const [name, child] of Object.entries(props)) {
        if (typeof child.description !== 'string' || !child.description) {
          throw new Error(`${path}.${name}: every field needs a description (kubectl explain shows it)`);
        }
        converted[name] = toStructural(child, `${path}.${name}`);
      }
      out.properties = converted;
    }
    const pattern = out.patternProperties as Record<string, Json> | undefined;
    if (pattern) {
      const values = Object.values(pattern);
      if (values.length !== 1) throw new Error(`${path}: only one patternProperties entry is supported`);
      out.additionalProperties = toStructural(values[0]!, `${path}{}`);
      delete out.patternProperties;
    }
    if (props && pattern) throw new Error(`${path}: properties and a record at once are not structural`);
  }
  if (out.type === 'array') {
    if (!out.items) throw new Error(`${path}: an array needs items`);
    out.items = toStructural(out.items as Json, `${path}[]`);
    if (out.uniqueItems) {
      delete out.uniqueItems;
      out['x-kubernetes-list-type'] = 'set';
    }
  }
  if (Array.isArray(out.required) && out.required.length === 0) delete out.required;
  return out;
}

/**
 * An S.offEnum field: kubectl and helm read an unquoted `off` as the boolean false (YAML 1.1), and
 * a string-typed field would refuse it (and "false" is not in the enum either). So the field is
 * untyped for the API server (x-kubernetes-preserve-unknown-fields, which a structural schema
 * allows on a leaf) and TierFlow validates it: the string values or false (= off); anything else
 * is reported in the object's status (Accepted=False) with the field path.
 */
function offEnumField(schema: Json): Json {
  const values = (schema.enum as string[]).join(', ');
  return {
    description: `${String(schema.description)} One of: ${values} (an unquoted off, which kubectl reads as false, means off).`,
    'x-kubernetes-preserve-unknown-fields': true,
  };
}

/** Walks dotted paths (`a.b`, `a[].b`, '' = root). */
function nodeAt(root: Json, dotted: string): Json {
  if (dotted === '') return root;
  let node = root;
  for (const raw of dotted.split('.')) {
    const items = raw.endsWith('[]');
    const name = items ? raw.slice(0, -2) : raw;
    const props = node.properties as Record<string, Json> | undefined;
    const next = props?.[name];
    if (!next) throw new Error(`CRD overlay: no field '${dotted}'`);
    node = next;
    if (items) {
      if (!node.items) throw new Error(`CRD overlay: '${dotted}' is not an array`);
      node = node.items as Json;
    }
  }
  return node;
}

function omitField(root: Json, dotted: string): void {
  const at = dotted.lastIndexOf('.');
  const parent = nodeAt(root, at < 0 ? '' : dotted.slice(0, at));
  const name = at < 0 ? dotted : dotted.slice(at + 1);
  const props = parent.properties as Record<string, Json> | undefined;
  if (!props?.[name]) throw new Error(`CRD overlay: cannot omit missing field '${dotted}'`);
  delete props[name];
  if (Array.isArray(parent.required)) {
    parent.required = (parent.required as string[]).filter((r) => r !== name);
    if ((parent.required as string[]).length === 0) delete parent.required;
  }
}

export function specSchema(key: ResourceKey): Json {
  const overlay = OVERLAYS[key];
  const spec = toStructural(structuredClone(SPECS[key]));
  for (const dotted of overlay.omit) omitField(spec, dotted);
  for (const [dotted, extra] of Object.entries(overlay.patch)) Object.assign(nodeAt(spec, dotted), extra);
  for (const [dotted, rules] of Object.entries(overlay.rules)) {
    const node = nodeAt(spec, dotted);
    node['x-kubernetes-validations'] = rules.map((r) => ({ ...r }));
  }
  return spec;
}

export function statusSchema(): Json {
  return {
    type: 'object',
    description:
      'Observed state, written by the TierFlow controller. Read the conditions: Accepted (the spec is valid), ResolvedRefs (what it references exists) and Ready (the sidecars of the namespace serve this generation).',
    properties: {
      observedGeneration: {
        type: 'integer',
        format: 'int64',
        minimum: 0,
        description: 'The metadata.generation the status was computed from.',
      },
      conditions: {
        type: 'array',
        description: `Latest observations of the object's state: ${CONDITION_TYPES.join(', ')}.`,
        maxItems: 8,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
        items: {
          type: 'object',
          description: 'One condition, in the metav1.Condition format.',
          required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
          properties: {
            type: {
              type: 'string',
              description: `Condition type: ${CONDITION_TYPES.join(', ')}.`,
              maxLength: 316,
              pattern:
                '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
            },
            status: {
              type: 'string',
              description: 'True, False or Unknown.',
              enum: ['True', 'False', 'Unknown'],
            },
            observedGeneration: {
              type: 'integer',
              format: 'int64',
              minimum: 0,
              description: 'The metadata.generation the condition was set for.',
            },
            lastTransitionTime: {
              type: 'string',
              format: 'date-time',
              description: 'When the status last changed.',
            },
            reason: {
              type: 'string',
              description: 'Machine-readable CamelCase reason for the status, e.g. ProviderNotFound.',
              minLength: 1,
              maxLength: 1024,
              pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
            },
            message: {
              type: 'string',
              description: 'Human-readable details, with the field paths of the problems found.',
              maxLength: 32768,
            },
          },
        },
      },
    },
  };
}

export function buildCrd(key: ResourceKey): Json {
  const info = RESOURCE_BY_KEY[key];
  const overlay = OVERLAYS[key];
  const version: Json = {
    name: VERSION,
    served: true,
    storage: true,
    subresources: { status: {} },
    additionalPrinterColumns: overlay.printerColumns,
    ...(overlay.selectableFields ? { selectableFields: overlay.selectableFields } : {}),
    schema: {
      openAPIV3Schema: {
        type: 'object',
        description: KIND_DESCRIPTIONS[key],
        required: ['spec'],
        properties: {
          apiVersion: {
            type: 'string',
            description: `APIVersion of this object: ${GROUP}/${VERSION}.`,
          },
          kind: { type: 'string', description: `Kind of this object: ${info.kind}.` },
          metadata: { type: 'object' },
          spec: specSchema(key),
          status: statusSchema(),
        },
        'x-kubernetes-validations': [
          {
            rule: 'size(self.metadata.name) <= 63',
            message: 'the name must be at most 63 characters (it is used in <provider>/<model> references)',
          },
        ],
      },
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${info.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'tierflow', 'app.kubernetes.io/part-of': 'tierflow' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: info.kind,
        listKind: info.listKind,
        plural: info.plural,
        singular: info.singular,
        shortNames: info.shortNames,
        categories: [CATEGORY],
      },
      scope: 'Namespaced',
      versions: [version],
    },
  };
}

export const CRD_KEYS: readonly ResourceKey[] = ['providers', 'policies', 'virtualKeys'];

/** File name of a CRD in crds/ and charts/tierflow/crds/. */
export function crdFileName(key: ResourceKey): string {
  return `${GROUP}_${RESOURCE_BY_KEY[key].plural}.yaml`;
}

export const GENERATED_HEADER =
  '# Generated by scripts/gen-crds.ts from src/core/config/schema.ts (and src/k8s/crds.ts). Do not edit.\n';

/** The YAML text of a CRD file, exactly as committed. */
export function renderCrdYaml(key: ResourceKey): string {
  // YAML 1.1 output: strings that read as booleans or numbers there (off, yes, 0644) get quoted.
  return (
    GENERATED_HEADER +
    stringify(buildCrd(key), { lineWidth: 0, aliasDuplicateObjects: false, version: '1.1' })
  );
}
