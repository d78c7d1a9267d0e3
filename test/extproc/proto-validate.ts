// A strict walker that checks a YAML/JSON Envoy config against Envoy's real protos (protobuf JSON
// mapping, as Envoy loads YAML): unknown fields, wrong types, unknown enum names, several members
// of one oneof, deprecated fields, and `required` rules from protoc-gen-validate. `typed_config`
// and any other google.protobuf.Any is resolved by its `@type` to the real message and walked.
// protobufjs' fromObject is no help here: it drops unknown fields and coerces types silently.
import { envoyMessageType, lookupEnvoyType, protobuf } from './envoy-protos.js';

export interface ProtoIssue {
  path: string;
  message: string;
}

const WRAPPERS: Record<string, string> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};

const DURATION = /^-?\d+(\.\d{1,9})?s$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function validateEnvoyMessage(typeName: string, value: unknown, path = ''): ProtoIssue[] {
  const issues: ProtoIssue[] = [];
  walkMessage(envoyMessageType(typeName), value, path || typeName, issues);
  return issues;
}

/** The whole bootstrap. */
export function validateBootstrap(value: unknown): ProtoIssue[] {
  return validateEnvoyMessage('envoy.config.bootstrap.v3.Bootstrap', value, '$');
}

function fullName(t: protobuf.ReflectionObject): string {
  return t.fullName.replace(/^\./, '');
}

function walkMessage(type: protobuf.Type, value: unknown, path: string, issues: ProtoIssue[]): void {
  const name = fullName(type);
  const err = (message: string, at = path) => issues.push({ path: at, message });

  // Well-known types with their own JSON form.
  if (name === 'google.protobuf.Any') return walkAny(value, path, issues);
  if (name === 'google.protobuf.Duration') {
    if (typeof value !== 'string' || !DURATION.test(value))
      err(`expected a Duration string like "5s", got ${show(value)}`);
    return;
  }
  if (name === 'google.protobuf.Timestamp') {
    if (typeof value !== 'string' || !TIMESTAMP.test(value))
      err(`expected an RFC 3339 timestamp, got ${show(value)}`);
    return;
  }
  if (name === 'google.protobuf.Struct') {
    if (!isObject(value)) err(`expected an object (Struct), got ${show(value)}`);
    return;
  }
  if (name === 'google.protobuf.Value') return;
  if (name === 'google.protobuf.ListValue') {
    if (!Array.isArray(value)) err(`expected a list, got ${show(value)}`);
    return;
  }
  if (name === 'google.protobuf.FieldMask') {
    if (typeof value !== 'string') err(`expected a FieldMask string, got ${show(value)}`);
    return;
  }
  const wrapped = WRAPPERS[name];
  if (wrapped) return walkScalar(wrapped, value, path, issues);

  if (!isObject(value)) {
    err(`expected an object (${name}), got ${show(value)}`);
    return;
  }
  const byJson = new Map<string, protobuf.Field>();
  for (const f of type.fieldsArray) {
    byJson.set(f.name, f);
    byJson.set(camel(f.name), f);
  }
  const seen = new Set<protobuf.Field>();
  for (const [key, v] of Object.entries(value)) {
    const at = `${path}.${key}`;
    const field = byJson.get(key);
    if (!field) {
      err(`unknown field "${key}" in ${name}`, at);
      continue;
    }
    if (seen.has(field))
      err(`field ${field.name} given twice (as ${field.name} and ${camel(field.name)})`, at);
    seen.add(field);
    if (field.options?.deprecated === true) err(`field ${field.name} of ${name} is deprecated`, at);
    if (v === null) {
      err(`null value for ${field.name} (leave the field out instead)`, at);
      continue;
    }
    walkField(field, v, at, issues);
  }
  // oneofs: at most one member; `(validate.required)` oneofs: exactly one.
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => seen.has(f));
    if (set.length > 1)
      err(`oneof ${oneof.name} of ${name} has several members set: ${set.map((f) => f.name).join(', ')}`);
    if (set.length === 0 && oneof.options?.['(validate.required)'] === true)
      err(
        `oneof ${oneof.name} of ${name} requires one of ${oneof.fieldsArray.map((f) => f.name).join(', ')}`,
      );
  }
  for (const f of type.fieldsArray) {
    // (a oneof member's `required` only applies when that member is the one chosen)
    if (!seen.has(f) && !f.partOf && f.options?.['(validate.rules).message.required'] === true)
      err(`required field ${f.name} of ${name} is missing`);
  }
}

function walkField(field: protobuf.Field, v: unknown, path: string, issues: ProtoIssue[]): void {
  field.resolve();
  if (field instanceof protobuf.MapField) {
    if (!isObject(v)) {
      issues.push({ path, message: `expected a map (object) for ${field.name}, got ${show(v)}` });
      return;
    }
    for (const [k, item] of Object.entries(v)) {
      if (!validMapKey(field.keyType, k))
        issues.push({ path: `${path}.${k}`, message: `invalid ${field.keyType} map key "${k}"` });
      walkValue(field, item, `${path}.${k}`, issues);
    }
    return;
  }
  if (field.repeated) {
    if (!Array.isArray(v)) {
      issues.push({ path, message: `expected a list for repeated ${field.name}, got ${show(v)}` });
      return;
    }
    v.forEach((item, i) => walkValue(field, item, `${path}[${i}]`, issues));
    return;
  }
  walkValue(field, v, path, issues);
}

function walkValue(field: protobuf.Field, v: unknown, path: string, issues: ProtoIssue[]): void {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return walkMessage(rt, v, path, issues);
  if (rt instanceof protobuf.Enum) return walkEnum(rt, v, path, issues);
  walkScalar(field.type, v, path, issues);
}

function walkEnum(e: protobuf.Enum, v: unknown, path: string, issues: ProtoIssue[]): void {
  if (typeof v === 'string') {
    if (!(v in e.values))
      issues.push({
        path,
        message: `unknown enum value "${v}" for ${fullName(e)} (known: ${Object.keys(e.values).join(', ')})`,
      });
    else if (e.valuesOptions?.[v]?.deprecated === true)
      issues.push({ path, message: `enum value ${v} of ${fullName(e)} is deprecated` });
    return;
  }
  if (typeof v === 'number' && Number.isInteger(v)) {
    if (!Object.values(e.values).includes(v))
      issues.push({ path, message: `unknown enum number ${v} for ${fullName(e)}` });
    return;
  }
  issues.push({ path, message: `expected an enum name of ${fullName(e)}, got ${show(v)}` });
}

function walkScalar(type: string, v: unknown, path: string, issues: ProtoIssue[]): void {
  const err = (m: string) => issues.push({ path, message: m });
  const intLike = (min: number, max: number) => {
    const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n))
      return err(`expected an integer (${type}), got ${show(v)}`);
    if (n < min || n > max) err(`${type} out of range: ${n}`);
  };
  const ret = (f: () => unknown): void => void f();
  switch (type) {
    case 'string':
      if (typeof v !== 'string') err(`expected a string, got ${show(v)}`);
      return;
    case 'bool':
      if (typeof v !== 'boolean') err(`expected a boolean, got ${show(v)}`);
      return;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return ret(() => intLike(-(2 ** 31), 2 ** 31 - 1));
    case 'uint32':
    case 'fixed32':
      return ret(() => intLike(0, 2 ** 32 - 1));
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return ret(() => intLike(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
    case 'uint64':
    case 'fixed64':
      return ret(() => intLike(0, Number.MAX_SAFE_INTEGER));
    case 'double':
    case 'float':
      if (typeof v !== 'number' && !(typeof v === 'string' && ['NaN', 'Infinity', '-Infinity'].includes(v)))
        err(`expected a number, got ${show(v)}`);
      return;
    case 'bytes':
      if (typeof v !== 'string' || !BASE64.test(v)) err(`expected base64 bytes, got ${show(v)}`);
      return;
    default:
      err(`unresolved type ${type}`);
  }
}

function walkAny(value: unknown, path: string, issues: ProtoIssue[]): void {
  if (!isObject(value)) {
    issues.push({ path, message: `expected an Any object with "@type", got ${show(value)}` });
    return;
  }
  const url = value['@type'];
  if (typeof url !== 'string' || !url.includes('/')) {
    issues.push({ path, message: `Any without a valid "@type" (got ${show(url)})` });
    return;
  }
  const typeName = url.slice(url.lastIndexOf('/') + 1);
  const t = lookupEnvoyType(typeName);
  if (!(t instanceof protobuf.Type)) {
    issues.push({ path: `${path}.@type`, message: `unknown message type ${typeName}` });
    return;
  }
  const { '@type': _ignored, ...rest } = value;
  const special = [
    'google.protobuf.Duration',
    'google.protobuf.Timestamp',
    'google.protobuf.Struct',
    'google.protobuf.Value',
    'google.protobuf.ListValue',
    'google.protobuf.FieldMask',
    ...Object.keys(WRAPPERS),
  ];
  if (special.includes(typeName)) {
    const extra = Object.keys(rest).filter((k) => k !== 'value');
    if (extra.length)
      issues.push({ path, message: `Any of ${typeName} takes only "value", got ${extra.join(', ')}` });
    walkMessage(t, rest.value, `${path}<${typeName}>`, issues);
    return;
  }
  walkMessage(t, rest, `${path}<${typeName}>`, issues);
}

function validMapKey(keyType: string, k: string): boolean {
  if (keyType === 'string') return true;
  if (keyType === 'bool') return k === 'true' || k === 'false';
  return /^-?\d+$/.test(k);
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s;
}
