// protobufjs reflection over Envoy's real API protos (the same files src/extproc/protos.ts loads),
// for the test side: the Envoy harness (wire-level presence checks) and the strict config walker.
// Types are loaded on demand: an index maps every message/enum full name to the file declaring it.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { envoyProtoDirs } from '../../src/extproc/protos.js';

const dirs = envoyProtoDirs();

function makeRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target) && existsSync(target)) return target;
    for (const d of dirs) {
      const p = path.join(d, target);
      if (existsSync(p)) return p;
    }
    return target; // google/protobuf/* are bundled with protobufjs
  };
  return root;
}

let shared: protobuf.Root | undefined;
const loaded = new Set<string>();

/** One shared Root; files are added as needed. keepCase: field names stay snake_case. */
export function envoyRoot(files: string[] = []): protobuf.Root {
  shared ??= makeRoot();
  const missing = files.filter((f) => !loaded.has(f));
  if (missing.length > 0) {
    shared.loadSync(missing, { keepCase: true });
    for (const f of missing) loaded.add(f);
    shared.resolveAll();
  }
  return shared;
}

let index: Map<string, string> | undefined;

/** Full type name (message or enum, nested included) -> proto file path relative to its include dir. */
function typeIndex(): Map<string, string> {
  if (index) return index;
  index = new Map();
  for (const base of dirs) {
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.proto')) indexFile(base, p);
      }
    };
    walk(base);
  }
  return index;
}

function indexFile(base: string, file: string): void {
  const text = readFileSync(file, 'utf8');
  const pkg = /^package\s+([\w.]+)\s*;/m.exec(text)?.[1];
  if (!pkg) return;
  const rel = path.relative(base, file);
  // Track nesting with a brace-depth stack of declared names.
  const stack: (string | null)[] = [];
  const re = /\b(message|enum)\s+(\w+)\s*\{|\{|\}/g;
  const clean = text.replace(/\/\/[^\n]*/g, '').replace(/"(?:[^"\\]|\\.)*"/g, '""');
  let m: RegExpExecArray | null;
  while ((m = re.exec(clean))) {
    if (m[1]) {
      const names = stack.filter((s): s is string => s !== null);
      index!.set([pkg, ...names, m[2]].join('.'), rel);
      stack.push(m[2]!);
    } else if (m[0] === '{') stack.push(null);
    else stack.pop();
  }
}

/** Looks a message or enum up by full name, loading the file that declares it if needed. */
export function lookupEnvoyType(fullName: string): protobuf.Type | protobuf.Enum | undefined {
  const name = fullName.replace(/^\./, '');
  let root = envoyRoot();
  let found = root.lookup(name);
  if (!found) {
    const file = typeIndex().get(name);
    if (!file) return undefined;
    root = envoyRoot([file]);
    found = root.lookup(name);
  }
  return found instanceof protobuf.Type || found instanceof protobuf.Enum ? found : undefined;
}

export function envoyMessageType(fullName: string): protobuf.Type {
  const t = lookupEnvoyType(fullName);
  if (!(t instanceof protobuf.Type)) throw new Error(`no message type ${fullName} in Envoy's protos`);
  return t;
}

export { protobuf };
