// A small typed JSON Schema builder and validator: enough for TierFlow's config schema, with
// static types inferred from the schema (one source for validation, CRDs and TypeScript).
// The built objects are plain JSON Schema (they serialise as-is into CRDs).

declare const phantom: unique symbol;
declare const optionalMark: unique symbol;

export interface Schema<T = unknown> {
  readonly [key: string]: unknown;
  readonly [phantom]?: T;
}
export type OptionalSchema<T = unknown> = Schema<T> & { readonly [optionalMark]: true };

export type Static<S> = S extends Schema<infer T> ? T : never;

type Props = Record<string, Schema<unknown>>;
type RequiredKeys<P extends Props> = {
  [K in keyof P]: P[K] extends { readonly [optionalMark]: true } ? never : K;
}[keyof P];
type OptionalKeys<P extends Props> = Exclude<keyof P, RequiredKeys<P>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOf<P extends Props> = Simplify<
  { [K in RequiredKeys<P>]: Static<P[K]> } & { [K in OptionalKeys<P>]?: Static<P[K]> }
>;

type Extra = Record<string, unknown>;
/** Schema annotation of S.offEnum: the boolean false stands for this value. */
export const FALSE_IS = 'x-tierflow-false-is';

/** The value an S.offEnum field means: false (YAML 1.1's reading of an unquoted off) is 'off'. */
export function offValue<T extends string>(v: T | false | undefined): T | 'off' | undefined {
  return v === false ? 'off' : v;
}
const optionals = new WeakSet<object>();

export const S = {
  string: (description: string, extra: Extra = {}) =>
    ({ type: 'string', description, ...extra }) as Schema<string>,
  number: (description: string, extra: Extra = {}) =>
    ({ type: 'number', description, ...extra }) as Schema<number>,
  integer: (description: string, extra: Extra = {}) =>
    ({ type: 'integer', description, ...extra }) as Schema<number>,
  boolean: (description: string) => ({ type: 'boolean', description }) as Schema<boolean>,
  enum: <const T extends readonly string[]>(values: T, description: string) =>
    ({ type: 'string', enum: [...values], description }) as Schema<T[number]>,
  /**
   * An enum whose "off" value YAML 1.1 readers (kubectl, helm: sigs.k8s.io/yaml) turn into the
   * boolean false when it is written unquoted. `false` is accepted and means `off`; the CRD makes
   * the field untyped so the API server accepts it (see toStructural in src/k8s/crds.ts).
   */
  offEnum: <const T extends readonly string[]>(values: T, description: string) => {
    if (!values.includes('off')) throw new Error('S.offEnum: the values must include off');
    return { type: 'string', enum: [...values], description, [FALSE_IS]: 'off' } as Schema<T[number] | false>;
  },
  array: <T>(items: Schema<T>, description: string, extra: Extra = {}) =>
    ({ type: 'array', items, description, ...extra }) as Schema<T[]>,
  stringMap: (description: string) =>
    ({ type: 'object', additionalProperties: { type: 'string' }, description }) as Schema<
      Record<string, string>
    >,
  /** Marks a property optional (it is left out of `required`). */
  optional: <T>(schema: Schema<T>): OptionalSchema<T> => {
    const copy = { ...schema };
    optionals.add(copy);
    return copy as never;
  },
  /** A closed object: unknown fields are errors in the file config (CRDs prune them instead). */
  object: <P extends Props>(properties: P, description: string) => {
    const required = Object.keys(properties).filter((k) => !optionals.has(properties[k]!));
    return {
      type: 'object',
      description,
      properties,
      ...(required.length ? { required } : {}),
      additionalProperties: false,
    } as unknown as Schema<ObjectOf<P>> & { properties: P };
  },
};

export interface SchemaIssue {
  path: string;
  message: string;
}

type Json = Record<string, unknown>;

/** Validates against the subset of JSON Schema the builder produces. */
export function validate(schema: Schema, value: unknown, path = ''): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  check(schema as Json, value, path, issues);
  return issues;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function check(s: Json, v: unknown, path: string, out: SchemaIssue[]): void {
  const at = path || '/';
  switch (s.type) {
    case 'object': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        out.push({ path: at, message: `expected an object, got ${typeName(v)}` });
        return;
      }
      const obj = v as Record<string, unknown>;
      const props = (s.properties ?? {}) as Record<string, Json>;
      for (const name of (s.required as string[] | undefined) ?? []) {
        if (obj[name] === undefined)
          out.push({ path: `${path}/${name}`, message: `missing required field '${name}'` });
      }
      for (const [k, val] of Object.entries(obj)) {
        if (val === undefined) continue;
        const ps = props[k];
        if (ps) check(ps, val, `${path}/${k}`, out);
        else if (s.additionalProperties === false)
          out.push({ path: `${path}/${k}`, message: `unknown field '${k}'` });
        else if (typeof s.additionalProperties === 'object')
          check(s.additionalProperties as Json, val, `${path}/${k}`, out);
      }
      return;
    }
    case 'array': {
      if (!Array.isArray(v)) {
        out.push({ path: at, message: `expected an array, got ${typeName(v)}` });
        return;
      }
      if (typeof s.minItems === 'number' && v.length < s.minItems) {
        out.push({
          path: at,
          message: `must have at least ${s.minItems} item${s.minItems === 1 ? '' : 's'}`,
        });
      }
      if (s.uniqueItems && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) {
        out.push({ path: at, message: 'items must be unique' });
      }
      v.forEach((item, i) => check(s.items as Json, item, `${path}/${i}`, out));
      return;
    }
    case 'string': {
      if (v === false && typeof s[FALSE_IS] === 'string') return;
      if (typeof v === 'boolean' && Array.isArray(s.enum)) {
        out.push({
          path: at,
          message: `must be one of ${s.enum.join(', ')} (got ${v}: YAML 1.1, as kubectl reads it, turns unquoted on/off/yes/no into booleans; quote the value)`,
        });
        return;
      }
      if (typeof v !== 'string') {
        out.push({ path: at, message: `expected a string, got ${typeName(v)}` });
        return;
      }
      if (Array.isArray(s.enum) && !s.enum.includes(v)) {
        out.push({ path: at, message: `must be one of ${s.enum.join(', ')} (got '${v}')` });
      }
      if (typeof s.minLength === 'number' && v.length < s.minLength)
        out.push({ path: at, message: 'must not be empty' });
      if (typeof s.pattern === 'string' && !new RegExp(s.pattern).test(v)) {
        out.push({ path: at, message: `'${v}' does not match ${s.pattern}` });
      }
      return;
    }
    case 'number':
    case 'integer': {
      if (typeof v !== 'number' || !Number.isFinite(v) || (s.type === 'integer' && !Number.isInteger(v))) {
        out.push({
          path: at,
          message: `expected ${s.type === 'integer' ? 'an integer' : 'a number'}, got ${typeName(v)}${typeof v === 'number' ? ` ${v}` : ''}`,
        });
        return;
      }
      if (typeof s.minimum === 'number' && v < s.minimum)
        out.push({ path: at, message: `must be >= ${s.minimum}` });
      if (typeof s.maximum === 'number' && v > s.maximum)
        out.push({ path: at, message: `must be <= ${s.maximum}` });
      if (typeof s.exclusiveMinimum === 'number' && v <= s.exclusiveMinimum) {
        out.push({ path: at, message: `must be > ${s.exclusiveMinimum}` });
      }
      return;
    }
    case 'boolean':
      if (typeof v !== 'boolean')
        out.push({ path: at, message: `expected true or false, got ${typeName(v)}` });
      return;
  }
}
