// The standalone config file: YAML -> env interpolation -> schema validation -> compile.
// Issues name the field and, where the YAML has it, the line.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { readClassifierFile } from './classifier-file.js';
import { type CompileResult, type ConfigIssue, compileConfig } from '../core/config/compile.js';
import { unservableReason } from '../core/config/servable.js';
import { Secret } from '../core/secret.js';
import { type CredentialSources, resolveCredentials } from './credentials.js';
import { interpolateEnv, type MissingVariable } from './interpolate.js';
import { awsCredentialsFromEnv, awsRegionFromEnv } from './aws-env.js';

export interface LocatedIssue extends ConfigIssue {
  line?: number;
}

export interface LoadResult extends CompileResult {
  issues: LocatedIssue[];
  source: string;
  /** Other files the config read (policies' classifier model files): watch them too. */
  files?: string[];
}

export interface LoadOptions extends Partial<CredentialSources> {
  demoBaseUrl?: string;
  /** Directory that relative paths in the config (classifier.modelFile) start from. */
  baseDir?: string;
}

export function loadConfigFile(path: string, options: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return {
      source: '',
      issues: [{ path: '/', message: `cannot read ${path}: ${(e as Error).message}`, severity: 'error' }],
    };
  }
  return loadConfigText(text, { baseDir: dirname(resolve(path)), ...options });
}

export function loadConfigText(text: string, options: LoadOptions = {}): LoadResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length) {
    return {
      source: text,
      issues: doc.errors.map((e) => ({
        path: '/',
        message: `YAML syntax: ${e.message.split('\n')[0]}`,
        severity: 'error' as const,
        line: e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line,
      })),
    };
  }
  const env = options.env ?? process.env;
  const missing: MissingVariable[] = [];
  const data = interpolateEnv(doc.toJS() ?? {}, env, missing);
  const issues: ConfigIssue[] = [];
  for (const m of missing) {
    // A missing key disables its provider (a warning from compile); anything else is an error.
    if (!/\/credentials\//.test(m.path) && !/\/virtualKeys\/\d+\/key$/.test(m.path)) {
      issues.push({
        path: m.path,
        message: `environment variable ${m.variable} is not set`,
        severity: 'error',
      });
    }
  }
  const files: string[] = [];
  const result = compileConfig(data, {
    resolveClassifier: (_policy, spec) => {
      if (spec.modelFile === undefined)
        throw new Error(
          'classifier.configMapRef names a Kubernetes ConfigMap and works in a RoutingPolicy only; the standalone file config takes classifier.modelFile (a path)',
        );
      const path = resolve(options.baseDir ?? process.cwd(), spec.modelFile);
      files.push(path);
      return readClassifierFile(path);
    },
    resolveCredentials: resolveCredentials({
      env,
      secretsDir: options.secretsDir,
      ...(options.entraTokens ? { entraTokens: options.entraTokens } : {}),
    }),
    resolveVirtualKey: (_name, spec) => {
      const ref = spec.secretRef;
      if (!ref) return undefined;
      const creds = resolveCredentials({ env, secretsDir: options.secretsDir })('', { secretRef: ref });
      return creds.apiKey instanceof Secret ? creds.apiKey : undefined;
    },
    demoBaseUrl: options.demoBaseUrl,
    aws: { credentials: awsCredentialsFromEnv(env), region: awsRegionFromEnv(env) },
  });
  const all = [...issues, ...result.issues];
  const located = all.map((i) => ({ ...i, line: lineOf(doc, lineCounter, i.path) }));
  if (issues.length) return { source: text, issues: located, files };
  return { ...result, source: text, issues: located, files };
}

function lineOf(doc: Document, lc: LineCounter, pointer: string): number | undefined {
  const segments = pointer.split('/').slice(1).filter(Boolean);
  // Walk as deep as the document goes: a missing field points at its parent object.
  let node: unknown = doc.contents;
  let offset: number | undefined = (node as { range?: number[] })?.range?.[0];
  for (const seg of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown })?.value === seg);
      if (!pair) break;
      offset = (pair.key as { range?: number[] })?.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)];
      if (!item) break;
      offset = (item as { range?: number[] }).range?.[0] ?? offset;
      node = item;
    } else break;
  }
  return offset === undefined ? undefined : lc.linePos(offset).line;
}

export function formatIssue(i: LocatedIssue, file?: string): string {
  const where = file ? `${file}${i.line ? `:${i.line}` : ''}` : i.line ? `line ${i.line}` : '';
  return `${i.severity}: ${where ? where + ': ' : ''}${i.path}: ${i.message}`;
}

/**
 * `loadConfigFile`, refusing a config that compiles but could serve no request (see
 * src/core/config/servable.ts): what `tierflow validate` and hot reload apply (start-up only warns).
 */
export function loadServableConfigFile(path: string, options: LoadOptions = {}): LoadResult {
  const r = loadConfigFile(path, options);
  const reason = r.config ? unservableReason(r.config) : undefined;
  if (!reason) return r;
  const { config: _refused, ...rest } = r;
  return { ...rest, issues: [...r.issues, { path: '/', message: reason, severity: 'error' }] };
}
