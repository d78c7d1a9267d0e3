// The TierFlow objects of one namespace -> one FileConfig -> the same compileConfig() the file
// config uses. Shared by the sidecar (which serves the result) and the controller (which reports it
// in status), so that status says exactly what the sidecars do.
//
// An invalid object never replaces what was serving: when an object's current generation does not
// validate or compile, its last good generation is used instead (or, if it never had one, it is
// left out), and compilation is retried. If nothing compiles, the caller keeps its previous config.
// A policy whose router (classifier.configMapRef) does not load scores with the last router that
// loaded for it, or, if none did, with the shipped model: a missing or stale router never takes a
// policy out of service (e.g. new pods of an upgrade to a release whose model the router predates).
import {
  compileConfig,
  validateFileConfig,
  type CompileOptions,
  type ConfigIssue,
} from '../core/config/compile.js';
import type { CompiledConfig } from '../core/config/compiled.js';
import type { ClassifierSpec, ConfigMapRouterRef, FileConfig } from '../core/config/schema.js';
import { RESOURCES, type ResourceKey } from './resources.js';
import { isLoaded, type LoadedRouter, type RouterProblemReason, type RouterResult } from './routers.js';

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
  reason: 'ProviderNotFound' | 'ModelNotFound' | RouterProblemReason;
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
  /**
   * A policy served with the last router that loaded (its ConfigMap is missing or does not hold a
   * router now): where that router came from.
   */
  lastGoodRouter?: string;
  /**
   * A policy that names a router, served with the shipped model: its router does not load and none
   * loaded for it before (in this process).
   */
  shippedRouter?: boolean;
  /** Where the router a served policy scores with comes from (classifier.configMapRef). */
  router?: string;
}

export interface NamespaceBuild {
  /** Undefined when nothing compiles: keep serving the previous config. */
  config?: CompiledConfig;
  /** Config-wide problems that no single object could be blamed for. */
  issues: ConfigIssue[];
  outcomes: ObjectOutcome[];
  /** The routers the config uses (policy -> ConfigMap version): a change means a new config. */
  routers: string;
}

interface GoodEntry {
  generation: number;
  spec: Record<string, unknown>;
  /** The router from the ConfigMap that generation was compiled with. */
  router?: LoadedRouter;
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
  /** Loads the router a policy's classifier.configMapRef names, from the namespace's ConfigMaps. */
  resolveRouter?: (ref: ConfigMapRouterRef) => RouterResult;
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
  /** The router the current generation names (policies with classifier.configMapRef). */
  router?: RouterResult;
  /**
   * The router the latest attempt compiled this policy with, and, when its ConfigMap's router does
   * not load, what stands in: the last good router (routerUsed) or the shipped model (none).
   */
  routerUsed?: LoadedRouter;
  routerFallback?: 'lastGood' | 'shipped';
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

function routerRef(entry: Record<string, unknown>): ConfigMapRouterRef | undefined {
  const ref = isRecord(entry.classifier) ? entry.classifier.configMapRef : undefined;
  return isRecord(ref) && typeof ref.name === 'string' ? (ref as ConfigMapRouterRef) : undefined;
}

const NO_ROUTERS = (): RouterResult => ({
  reason: 'ConfigMapNotFound',
  message: 'ConfigMaps are not read here',
});

/**
 * The router a policy compiles with: the one its ConfigMap holds now, else (missing, or not a
 * router) the last one that loaded for this object, so that a broken ConfigMap loses nothing, else
 * undefined: the shipped model, so that the policy stays in service.
 */
function routerFor(slot: Slot, spec: ClassifierSpec, options: BuildOptions): LoadedRouter | undefined {
  if (spec.modelFile !== undefined)
    throw new Error(
      'classifier.modelFile is for the standalone file config; a RoutingPolicy names its router with classifier.configMapRef (a ConfigMap in its namespace)',
    );
  const ref = spec.configMapRef!;
  const resolve = options.resolveRouter ?? NO_ROUTERS;
  const now = slot.state === 'current' && slot.router ? slot.router : resolve(ref);
  if (isLoaded(now)) {
    slot.routerUsed = now;
    slot.routerFallback = undefined;
    return now;
  }
  const good = options.lastGood.get(slot.uid)?.router;
  slot.routerUsed = good;
  slot.routerFallback = good ? 'lastGood' : 'shipped';
  return good;
}

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
      const refs = findRefProblems(key, current, objects);
      const ref = key === 'policies' ? routerRef(current) : undefined;
      const router = ref && (options.resolveRouter ?? NO_ROUTERS)(ref);
      if (router && !isLoaded(router))
        refs.push({ path: '/classifier/configMapRef', reason: router.reason, message: router.message });
      slots.push({
        key,
        object,
        uid,
        name,
        generation: object.metadata?.generation ?? 0,
        current,
        state: hasErrors ? (options.lastGood.get(uid) ? 'lastGood' : 'excluded') : 'current',
        issues,
        refs,
        index: -1,
        ...(router ? { router } : {}),
      });
    }
  }
  const policySlots = new Map(slots.filter((s) => s.key === 'policies').map((s) => [s.name, s]));
  const compileOptions: CompileOptions = {
    ...options.compile,
    resolveClassifier: (policy, spec) => routerFor(policySlots.get(policy)!, spec, options)?.classifier,
  };

  let config: CompiledConfig | undefined;
  let orphanIssues: ConfigIssue[] = [];
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const file = emptyFile();
    const byPath = new Map<string, Slot>();
    for (const slot of slots) {
      slot.index = -1;
      slot.routerUsed = undefined;
      slot.routerFallback = undefined;
      if (slot.state === 'excluded') continue;
      const entry =
        slot.state === 'current' ? slot.current : toEntry(slot.object, options.lastGood.get(slot.uid)!.spec);
      const list = file[slot.key] as unknown[];
      slot.index = list.length;
      list.push(entry);
      byPath.set(`/${slot.key}/${slot.index}`, slot);
    }
    const result = compileConfig(file, compileOptions);
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
        options.lastGood.set(slot.uid, {
          generation: slot.generation,
          spec: stripName(slot.current),
          ...(slot.routerUsed ? { router: slot.routerUsed } : {}),
        });
    }
    const present = new Set<string>();
    for (const { key } of RESOURCES) for (const o of objects[key] ?? []) present.add(objectUid(o));
    options.lastGood.retain(present);
  }

  return {
    config,
    issues: orphanIssues,
    routers: config
      ? slots
          .filter((s) => s.index >= 0 && s.routerUsed)
          .map((s) => `${s.name}=${s.routerUsed!.source}`)
          .join('\n')
      : '',
    outcomes: slots.map((s) => ({
      key: s.key,
      name: s.name,
      uid: s.uid,
      generation: s.generation,
      state: s.state,
      ...(s.state === 'lastGood' ? { servedGeneration: options.lastGood.get(s.uid)?.generation } : {}),
      issues: s.issues,
      refs: s.refs,
      ...(config && s.index >= 0 && s.routerUsed ? { router: s.routerUsed.source } : {}),
      ...(config && s.index >= 0 && s.routerFallback === 'lastGood'
        ? { lastGoodRouter: s.routerUsed!.source }
        : {}),
      ...(config && s.index >= 0 && s.routerFallback === 'shipped' ? { shippedRouter: true } : {}),
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
