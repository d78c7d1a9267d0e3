// `tierflow inject`: the webhook's injection applied to manifests instead of admission requests
// (the `istioctl kube-inject` habit, for GitOps and for review). Pods and the pod templates of
// workloads get exactly the JSON patch injectPod() returns to the API server; other objects pass
// through unchanged.
import type { V1Pod } from '@kubernetes/client-node';
import { injectPod, type InjectorConfig, type PatchOp } from './inject.js';
import { RESOURCES } from './resources.js';
import { referencedSecretNames } from './secrets.js';

type Obj = Record<string, unknown>;
interface Meta {
  name?: string;
  generateName?: string;
  namespace?: string;
}
const meta = (o: Obj): Meta => (o.metadata ?? {}) as Meta;

/** Where the pod template of each workload kind is (Pods are their own template). */
const TEMPLATE_PATHS: Record<string, string[]> = {
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

const unescape = (s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~');

/** Applies the add/replace/remove operations injectPod produces (RFC 6902 semantics for those). */
export function applyPatch(target: Obj, patch: readonly PatchOp[]): void {
  for (const op of patch) {
    const keys = op.path.split('/').slice(1).map(unescape);
    const last = keys.pop()!;
    let parent: unknown = target;
    for (const k of keys) {
      parent = Array.isArray(parent) ? parent[Number(k)] : (parent as Obj | undefined)?.[k];
      if (parent === undefined || parent === null) throw new Error(`patch path ${op.path} does not exist`);
    }
    if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : Number(last);
      if (op.op === 'add') parent.splice(i, 0, op.value);
      else if (op.op === 'replace') parent[i] = op.value;
      else parent.splice(i, 1);
    } else if (op.op === 'remove') delete (parent as Obj)[last];
    else (parent as Obj)[last] = op.value;
  }
}

/** Secret names the LLMProviders and VirtualKeys of each namespace reference (what the webhook's informers know). */
export function secretsByNamespace(objects: readonly Obj[], defaultNamespace: string): Map<string, string[]> {
  const kinds = new Set(RESOURCES.filter((r) => r.key !== 'policies').map((r) => r.kind));
  const specs = new Map<string, unknown[]>();
  for (const o of objects) {
    if (!o || !kinds.has(String(o.kind))) continue;
    const ns = meta(o).namespace ?? defaultNamespace;
    specs.set(ns, [...(specs.get(ns) ?? []), o.spec]);
  }
  return new Map([...specs].map(([ns, s]) => [ns, referencedSecretNames(s)]));
}

export interface InjectManifestsOptions {
  config: InjectorConfig;
  /** Namespace of objects that name none (kubectl's -n). */
  namespace: string;
  /** Secret names per namespace (from --objects). */
  secrets: Map<string, string[]>;
  /** Treat every pod as in a namespace labelled tierflow.dev/inject=enabled. */
  namespaceEnabled?: boolean;
}

export interface InjectedObject {
  object: unknown;
  /** `Kind/name` and what happened, for stderr. */
  note?: string;
  warnings: string[];
}

export function injectObject(object: unknown, options: InjectManifestsOptions): InjectedObject {
  if (!object || typeof object !== 'object') return { object, warnings: [] };
  const o = structuredClone(object) as Obj;
  const kind = String(o.kind ?? '');
  const path = kind === 'Pod' ? [] : TEMPLATE_PATHS[kind];
  if (!path) return { object: o, warnings: [] };
  const name = `${kind}/${meta(o).name ?? meta(o).generateName ?? '?'}`;
  let holder: Obj | undefined = o;
  for (const k of path) holder = holder?.[k] as Obj | undefined;
  if (!holder || typeof holder !== 'object')
    return { object: o, note: `${name}: no pod template`, warnings: [] };
  const namespace = meta(o).namespace ?? options.namespace;
  // The patch's paths are relative to a pod: /metadata/... and /spec/...
  const pod: Obj = { metadata: holder.metadata, spec: holder.spec };
  const result = injectPod(pod as V1Pod, options.config, {
    namespace,
    referencedSecrets: options.secrets.get(namespace) ?? [],
    ...(options.namespaceEnabled ? { namespaceEnabled: true } : {}),
  });
  if (result.injected && result.patch.length) {
    if (pod.metadata === undefined) pod.metadata = {};
    applyPatch(pod, result.patch);
    holder.metadata = pod.metadata;
    holder.spec = pod.spec;
  }
  const note = result.injected
    ? result.patch.length
      ? `${name}: injected`
      : `${name}: already injected`
    : `${name}: not injected (${result.skipped})`;
  return { object: o, note, warnings: result.warnings };
}
