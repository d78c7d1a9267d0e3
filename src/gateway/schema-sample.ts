// A small value that satisfies a JSON Schema, for the demo provider's structured outputs and tool
// arguments. Covers what OpenAI's structured outputs accept (objects, arrays, scalars, enum,
// const, anyOf, local $ref, nullable type lists) plus common bounds; not a general generator.
type Schema = Record<string, unknown>;

const MAX_DEPTH = 12;

export function sampleFromSchema(schema: unknown): unknown {
  return sample(asSchema(schema), asSchema(schema), 0);
}

function sample(s: Schema, root: Schema, depth: number): unknown {
  if (depth > MAX_DEPTH) return null;
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  if (typeof s.$ref === 'string') return sample(resolveRef(s.$ref, root), root, depth + 1);
  for (const k of ['anyOf', 'oneOf'] as const) {
    const options = s[k];
    if (Array.isArray(options) && options.length > 0) {
      // a non-null branch shows more of the shape
      const pick = options.find((o) => asSchema(o).type !== 'null') ?? options[0];
      return sample(asSchema(pick), root, depth + 1);
    }
  }
  if (Array.isArray(s.allOf) && s.allOf.length > 0) {
    const merged: Schema = { ...s, allOf: undefined };
    const properties: Schema = { ...asSchema(s.properties) };
    const required = new Set<string>(Array.isArray(s.required) ? (s.required as string[]) : []);
    for (const part of s.allOf) {
      const p = asSchema(part);
      Object.assign(properties, asSchema(p.properties));
      if (Array.isArray(p.required)) for (const r of p.required as string[]) required.add(r);
      if (p.type && !merged.type) merged.type = p.type;
    }
    return sample({ ...merged, properties, required: [...required] }, root, depth + 1);
  }
  const type = Array.isArray(s.type) ? (s.type.find((t) => t !== 'null') ?? 'null') : s.type;
  switch (type ?? (s.properties ? 'object' : s.items ? 'array' : undefined)) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const props = asSchema(s.properties);
      for (const [name, sub] of Object.entries(props)) out[name] = sample(asSchema(sub), root, depth + 1);
      return out;
    }
    case 'array': {
      const max = typeof s.maxItems === 'number' ? s.maxItems : Infinity;
      // one item shows the shape; none once deep (recursive schemas end)
      const n = typeof s.minItems === 'number' ? s.minItems : Math.min(depth > 4 ? 0 : 1, max);
      if (Array.isArray(s.prefixItems)) return s.prefixItems.map((p) => sample(asSchema(p), root, depth + 1));
      return Array.from({ length: n }, () => sample(asSchema(s.items), root, depth + 1));
    }
    case 'string':
      return sampleString(s);
    case 'integer':
    case 'number':
      return sampleNumber(s, type === 'integer');
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return 'demo';
  }
}

function sampleString(s: Schema): string {
  switch (s.format) {
    case 'date-time':
      return '2026-01-01T00:00:00Z';
    case 'date':
      return '2026-01-01';
    case 'time':
      return '00:00:00Z';
    case 'email':
      return 'demo@example.com';
    case 'uri':
      return 'https://example.com/';
    case 'uuid':
      return '00000000-0000-4000-8000-000000000000';
  }
  let text = 'demo';
  const min = typeof s.minLength === 'number' ? s.minLength : 0;
  const max = typeof s.maxLength === 'number' ? s.maxLength : Infinity;
  while (text.length < min) text += ' demo';
  return text.slice(0, Math.max(min, Math.min(max, text.length)));
}

function sampleNumber(s: Schema, integer: boolean): number {
  const num = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : undefined);
  let lo =
    num('minimum') ?? (num('exclusiveMinimum') !== undefined ? num('exclusiveMinimum')! + 1 : undefined);
  const hi =
    num('maximum') ?? (num('exclusiveMaximum') !== undefined ? num('exclusiveMaximum')! - 1 : undefined);
  lo ??= hi !== undefined ? Math.min(0, hi) : 0;
  const v = integer ? Math.ceil(lo) : lo;
  const step = num('multipleOf');
  return step ? Math.ceil(v / step) * step : v;
}

function resolveRef(ref: string, root: Schema): Schema {
  if (!ref.startsWith('#')) return {};
  let node: unknown = root;
  for (const part of ref.slice(1).split('/').filter(Boolean)) {
    node = asSchema(node)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return asSchema(node);
}

function asSchema(v: unknown): Schema {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Schema) : {};
}
