// The TierFlow objects of one namespace -> one FileConfig -> the same compileConfig() the file
// config uses. Shared by the sidecar (which serves the result) and the controller (which reports it
// in status), so that status says exactly what the sidecars do.
//
// An invalid object never replaces what was serving: when an object's current generation does not
// validate or compile, its last good generation is used instead (or, if it never had one, it is
// left out), and compilation is retried. If nothing compiles, the caller keeps its previous config.
import {
  compileConfig,
  validateFileConfig,
  type CompileOptions,
  type ConfigIssue,
} from '../core/config/compile.js';
import type { CompiledConfig } from '../core/config/compiled.js';
import type { FileConfig } from '../core/config/schema.js';
import { RESOURCES, type ResourceKey } from './resources.js';

export interface TierflowObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
}

export interface TierflowObject {
  apiVersion?: string;
  kind?: string;
  metadata?: TierflowObjectMeta;
  spec?: unknown;
  status?: unknown;
}

export type NamespaceObjects = Record<ResourceKey, readonly TierflowObject[]>;

/** current: this generation is served; lastGood: an earlier generation is; excluded: none is. */
export type ObjectState = 'current' | 'lastGood' | 'excluded';

export interface RefProblem {
  /** Path inside the object, e.g. /tiers/1/models/0 */
  path: string;
  reason: 'ProviderNotFound' | 'ModelNotFound';
  message: string;
}

export interface ObjectOutcome {
  key: ResourceKey;
  name: string;
  uid: string;
  generation: number;
  state: ObjectState;
  /** Generation served when state is lastGood. */
  servedGeneration?: number;
  /** Problems of the current generation; paths are relative to the object (/tiers/1/maxScore, /name). */
  issues: ConfigIssue[];
  refs: RefProblem[];
}

export interface NamespaceBuild {
  /** Undefined when nothing compiles: keep serving the previous config. */
  config?: CompiledConfig;
  /** Config-wide problems that no single object could be blamed for. */
  issues: ConfigIssue[];
  outcomes: ObjectOutcome[];
}

interface GoodEntry {
  generation: number;
  spec: Record<string, unknown>;
}

/** Last generation of each object (by uid) that was part of a successful compile. */
export class LastGoodStore {
  readonly #entries = new Map<string, GoodEntry>();
  get(uid: string): GoodEntry | undefined {
    return this.#entries.get(uid);
  }
  set(uid: string, entry: GoodEntry): void {
    this.#entries.set(uid, entry);
  }
  /** Forgets objects that no longer exist. */
  retain(uids: ReadonlySet<string>): void {
    for (const uid of this.#entries.keys()) if (!uids.has(uid)) this.#entries.delete(uid);
  }
  get size(): number {
    return this.#entries.size;
  }
}

export interface BuildOptions {
  compile: CompileOptions;
  lastGood: LastGoodStore;
  /** Only these RoutingPolicies (by name) are served; default all. */
  policies?: readonly string[];
}

export function objectUid(o: TierflowObject): string {
  const m = o.metadata ?? {};
  return m.uid || `${m.namespace ?? ''}/${m.name ?? ''}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `{name, ...spec}`: the FileConfig entry of an object. */
export function toEntry(o: TierflowObject, spec: unknown = o.spec): Record<string, unknown> {
  return { name: o.metadata?.name ?? '', ...(isRecord(spec) ? spec : {}) };
}

interface Slot {
  key: ResourceKey;
  object: TierflowObject;
  uid: string;
  name: string;
  generation: number;
  current: Record<string, unknown>;
  state: ObjectState;
  issues: ConfigIssue[];
  refs: RefProblem[];
  /** Index inside its FileConfig array in the latest attempt, or -1. */
  index: number;
}

function emptyFile(): FileConfig {
  return { providers: [], policies: [], virtualKeys: [] } as FileConfig;
}

/** Problems of one object on its own (schema only). */
export function validateObject(key: ResourceKey, entry: Record<string, unknown>): ConfigIssue[] {
  const file: Record<string, unknown> = { providers: [], policies: [], virtualKeys: [] };
  file[key] = [entry];
  const prefix = `/${key}/0`;
  return validateFileConfig(file)
    .filter((i) => i.path === prefix || i.path.startsWith(`${prefix}/`))
    .map((i) => ({ ...i, path: i.path.slice(prefix.length) || '/' }));
}

/** Tier candidates and allowed models that name a provider or model the namespace does not have. */
export function findRefProblems(
  key: ResourceKey,
  entry: Record<string, unknown>,
  objects: NamespaceObjects,
): RefProblem[] {
  // Per provider: its chat models (tier candidates), and those plus its embedding models (what a
  // virtual key may name).
  const providers = new Map<string, Set<string>>();
  const withEmbeddings = new Map<string, Set<string>>();
  const names = (list: unknown): string[] =>
    (Array.isArray(list) ? list : [])
      .map((m) => (isRecord(m) && typeof m.name === 'string' ? m.name : ''))
      .filter(Boolean);
  for (const p of objects.providers) {
    const spec = isRecord(p.spec) ? p.spec : {};
    const chat = names(spec.models);
    providers.set(p.metadata?.name ?? '', new Set(chat));
    withEmbeddings.set(p.metadata?.name ?? '', new Set([...chat, ...names(spec.embeddingModels)]));
  }
  const check = (ref: unknown, path: string, allowVirtual: boolean): RefProblem | undefined => {
    // allowVirtual: a virtual key's allowedModels, which may also name embedding models.
    const known = allowVirtual ? withEmbeddings : providers;
    if (typeof ref !== 'string') return undefined;
    const slash = ref.indexOf('/');
    if (slash < 0) {
      if (!allowVirtual) return undefined; // the schema reports the format
      const virtualModels = new Set(
        objects.policies.flatMap((p) =>
          isRecord(p.spec) && Array.isArray(p.spec.virtualModels) ? p.spec.virtualModels : [],
        ),
      );
      const bare = [...known.values()].some((models) => models.has(ref));
      return virtualModels.has(ref) || bare
        ? undefined
        : {
            path,
            reason: 'ModelNotFound',
            message: `'${ref}' is neither a virtual model nor a model of an LLMProvider`,
          };
    }
    const provider = ref.slice(0, slash);
    const model = ref.slice(slash + 1);
    const models = known.get(provider);
    if (!models)
      return {
        path,
        reason: 'ProviderNotFound',
        message: `LLMProvider '${provider}' not found (in '${ref}')`,
      };
    if (!models.has(model))
      return { path, reason: 'ModelNotFound', message: `LLMProvider '${provider}' has no model '${model}'` };
    return undefined;
  };
  const problems: RefProblem[] = [];
  if (key === 'policies' && Array.isArray(entry.tiers)) {
    entry.tiers.forEach((t, j) => {
      if (!isRecord(t) || !Array.isArray(t.models)) return;
      t.models.forEach((ref, k) => {
        const p = check(ref, `/tiers/${j}/models/${k}`, false);
        if (p) problems.push(p);
      });
    });
  }
  if (key === 'virtualKeys' && Array.isArray(entry.allowedModels)) {
    entry.allowedModels.forEach((ref, k) => {
      const p = check(ref, `/allowedModels/${k}`, true);
      if (p) problems.push(p);
    });
  }
  return problems;
}

const MAX_ROUNDS = 8;

export function buildNamespaceConfig(objects: NamespaceObjects, options: BuildOptions): NamespaceBuild {
  const slots: Slot[] = [];
  const policyFilter = options.policies?.length ? new Set(options.policies) : undefined;
  for (const { key } of RESOURCES) {
    const list = [...(objects[key] ?? [])].sort((a, b) =>
      (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
    );
    for (const object of list) {
      const name = object.metadata?.name ?? '';
      if (key === 'policies' && policyFilter && !policyFilter.has(name)) continue;
      const current = toEntry(object);
      const issues = validateObject(key, current);
      const uid = objectUid(object);
      const hasErrors = issues.some((i) => i.severity === 'error');
      slots.push({
        key,
        object,
        uid,
        name,
        generation: object.metadata?.generation ?? 0,
        current,
        state: hasErrors ? (options.lastGood.get(uid) ? 'lastGood' : 'excluded') : 'current',
        issues,
        refs: findRefProblems(key, current, objects),
        index: -1,
      });
    }
  }

  let config: CompiledConfig | undefined;
  let orphanIssues: ConfigIssue[] = [];
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const file = emptyFile();
    const byPath = new Map<string, Slot>();
    for (const slot of slots) {
      slot.index = -1;
      if (slot.state === 'excluded') continue;
      const entry =
        slot.state === 'current' ? slot.current : toEntry(slot.object, options.lastGood.get(slot.uid)!.spec);
      const list = file[slot.key] as unknown[];
      slot.index = list.length;
      list.push(entry);
      byPath.set(`/${slot.key}/${slot.index}`, slot);
    }
    const result = compileConfig(file, options.compile);
    const blamed = new Set<Slot>();
    orphanIssues = [];
    for (const issue of result.issues) {
      const m = /^\/(providers|policies|virtualKeys)\/(\d+)(\/.*)?$/.exec(issue.path);
      const slot = m ? byPath.get(`/${m[1]}/${m[2]}`) : undefined;
      if (!slot) {
        orphanIssues.push(issue);
        continue;
      }
      const relative = { ...issue, path: m![3] ?? '/' };
      // Issues are reported for the generation the user wrote, not for a fallback.
      if (
        slot.state === 'current' &&
        !slot.issues.some((i) => i.path === relative.path && i.message === relative.message)
      ) {
        slot.issues.push(relative);
      }
      if (issue.severity === 'error') blamed.add(slot);
    }
    if (result.config) {
      config = result.config;
      break;
    }
    if (blamed.size === 0) break; // a config-wide error: nothing to fall back from
    for (const slot of blamed) {
      const good = options.lastGood.get(slot.uid);
      slot.state = slot.state === 'current' && good ? 'lastGood' : 'excluded';
    }
  }

  if (config) {
    for (const slot of slots) {
      if (slot.state === 'current')
        options.lastGood.set(slot.uid, { generation: slot.generation, spec: stripName(slot.current) });
    }
    const present = new Set<string>();
    for (const { key } of RESOURCES) for (const o of objects[key] ?? []) present.add(objectUid(o));
    options.lastGood.retain(present);
  }

  return {
    config,
    issues: orphanIssues,
    outcomes: slots.map((s) => ({
      key: s.key,
      name: s.name,
      uid: s.uid,
      generation: s.generation,
      state: s.state,
      ...(s.state === 'lastGood' ? { servedGeneration: options.lastGood.get(s.uid)?.generation } : {}),
      issues: s.issues,
      refs: s.refs,
    })),
  };
}

function stripName(entry: Record<string, unknown>): Record<string, unknown> {
  const { name: _name, ...spec } = entry;
  return spec;
}

/** `/tiers/1/maxScore` -> `spec.tiers[1].maxScore`; `/name` -> `metadata.name`. */
export function fieldPath(path: string): string {
  if (path === '/name') return 'metadata.name';
  if (path === '/' || path === '') return 'spec';
  return (
    'spec' +
    path
      .split('/')
      .slice(1)
      .map((seg) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg}`))
      .join('')
  );
}
