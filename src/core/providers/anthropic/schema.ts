// JSON Schema -> the subset Anthropic structured outputs (output_config.format) accept, following
// what the official SDK does before it sends a schema (anthropic-sdk-typescript
// src/lib/transform-json-schema.ts, read for its behaviour; this is an independent implementation):
// - every object gets `additionalProperties: false` (and `properties`, possibly empty);
// - oneOf becomes anyOf; anyOf / allOf / $ref / $defs are kept, their members rewritten;
// - string `format` is kept for the formats the API knows, array `minItems` only as 0 or 1;
// - every other keyword (minimum, maxLength, pattern, uniqueItems, ...) is removed and written
//   into the description as `{keyword: value, ...}`, so the model still sees the constraint.
// One deliberate difference: `enum` and `const` of scalar values stay keywords (the structured
// outputs documentation lists them as supported; the SDK moves them into the description too).
// A legacy `definitions` table is rewritten like `$defs` so `#/definitions/...` references resolve.

type Json = Record<string, unknown>;

const STRING_FORMATS = new Set([
  'date-time',
  'time',
  'date',
  'duration',
  'email',
  'hostname',
  'uri',
  'ipv4',
  'ipv6',
  'uuid',
]);

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown): boolean => v === null || ['string', 'number', 'boolean'].includes(typeof v);

function defsOf(table: unknown): Json {
  const out: Json = {};
  if (isObj(table)) for (const [name, def] of Object.entries(table)) out[name] = strictSchema(def);
  return out;
}

/** The schema rewritten for Anthropic structured outputs; the input is not modified. */
export function strictSchema(schema: unknown): unknown {
  if (!isObj(schema)) return schema;
  if (typeof schema.$ref === 'string') return { $ref: schema.$ref };
  const rest: Json = { ...schema };
  const take = (k: string): unknown => {
    const v = rest[k];
    delete rest[k];
    return v;
  };
  const out: Json = {};
  const defs = take('$defs');
  if (defs !== undefined) out.$defs = defsOf(defs);
  const legacyDefs = take('definitions');
  if (legacyDefs !== undefined) out.definitions = defsOf(legacyDefs);

  const type = take('type');
  const anyOf = take('anyOf');
  const oneOf = take('oneOf');
  const allOf = take('allOf');
  if (Array.isArray(anyOf) || Array.isArray(oneOf)) {
    const variants = [...(Array.isArray(anyOf) ? anyOf : []), ...(Array.isArray(oneOf) ? oneOf : [])];
    out.anyOf = variants.map(strictSchema);
  } else if (Array.isArray(allOf)) {
    out.allOf = allOf.map(strictSchema);
  }
  if (type !== undefined && out.anyOf === undefined && out.allOf === undefined) out.type = type;
  if (Array.isArray(anyOf) && Array.isArray(allOf)) rest.allOf = allOf; // rare: kept as a hint

  const en = take('enum');
  if (Array.isArray(en) && en.every(isScalar)) out.enum = en;
  else if (en !== undefined) rest.enum = en;
  if ('const' in rest) {
    const c = take('const');
    if (isScalar(c)) out.const = c;
    else rest.const = c;
  }
  const description = take('description');
  const title = take('title');
  if (title !== undefined) out.title = title;

  const types = Array.isArray(type) ? type : [type];
  if (types.includes('object')) {
    const props = take('properties');
    const strictProps: Json = {};
    if (isObj(props)) for (const [k, v] of Object.entries(props)) strictProps[k] = strictSchema(v);
    out.properties = strictProps;
    take('additionalProperties');
    out.additionalProperties = false;
    const required = take('required');
    if (Array.isArray(required)) out.required = required;
  }
  if (types.includes('string')) {
    const format = rest.format;
    if (typeof format === 'string' && STRING_FORMATS.has(format)) out.format = take('format');
  }
  if (types.includes('array')) {
    const items = take('items');
    if (items !== undefined) out.items = strictSchema(items);
    const minItems = rest.minItems;
    if (minItems === 0 || minItems === 1) out.minItems = take('minItems');
  }

  const moved = Object.entries(rest);
  if (moved.length > 0 || description !== undefined) {
    const hint =
      moved.length > 0 ? `{${moved.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')}}` : '';
    out.description =
      typeof description === 'string' && description.length > 0
        ? hint
          ? `${description}\n\n${hint}`
          : description
        : hint || description;
  }
  return out;
}
