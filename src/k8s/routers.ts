// Routers fitted by `tierflow train`, read from the ConfigMaps RoutingPolicies name in
// classifier.configMapRef. The sidecar's config source and the controller both resolve them from
// their informer's cache of labelled ConfigMaps, so status says what the sidecars do.
import { Buffer } from 'node:buffer';
import { type Classifier, loadClassifier } from '../core/classifier/index.js';
import {
  ROUTER_CONFIGMAP_KEY,
  ROUTER_CONFIGMAP_LABEL,
  type ConfigMapRouterRef,
} from '../core/config/schema.js';
import type { TierflowObject } from './namespace-config.js';

/**
 * The informers list only ConfigMaps carrying the label (any value): a namespace's other
 * ConfigMaps, up to 1 MiB each, are never held in memory by the controller or a sidecar.
 */
export const ROUTER_LABEL_SELECTOR = ROUTER_CONFIGMAP_LABEL;

export interface ConfigMapObject extends TierflowObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export interface LoadedRouter {
  classifier: Classifier;
  /** Which ConfigMap version it came from, for status messages and change detection. */
  source: string;
}

export type RouterProblemReason =
  'ConfigMapNotFound' | 'ConfigMapKeyNotFound' | 'RouterInvalid' | 'ConfigMapsForbidden';

export interface RouterProblem {
  reason: RouterProblemReason;
  message: string;
}

export type RouterResult = LoadedRouter | RouterProblem;

export function isLoaded(r: RouterResult): r is LoadedRouter {
  return 'classifier' in r;
}

/**
 * Loads routers from ConfigMaps, parsing each ConfigMap version (uid, resourceVersion, key) once:
 * the controller and the sidecars rebuild on every change of the namespace.
 */
export class RouterCache {
  readonly #loaded = new Map<string, RouterResult>();

  /** Resolves a reference against the labelled ConfigMaps of the policy's namespace. */
  resolve(configMaps: readonly ConfigMapObject[], namespace: string, ref: ConfigMapRouterRef): RouterResult {
    const key = ref.key ?? ROUTER_CONFIGMAP_KEY;
    const map = configMaps.find((c) => c.metadata?.name === ref.name);
    if (!map)
      return {
        reason: 'ConfigMapNotFound',
        message:
          `ConfigMap '${ref.name}' with label ${ROUTER_CONFIGMAP_LABEL} not found in namespace '${namespace}' ` +
          `(TierFlow reads only labelled ConfigMaps: kubectl -n ${namespace} label configmap ${ref.name} ${ROUTER_CONFIGMAP_LABEL}=true)`,
      };
    const rv = map.metadata?.resourceVersion ?? '';
    const cacheKey = `${map.metadata?.uid ?? ref.name}@${rv}/${key}`;
    const cached = this.#loaded.get(cacheKey);
    if (cached) return cached;
    const result = loadFromConfigMap(map, ref.name, key, rv);
    this.#loaded.set(cacheKey, result);
    return result;
  }

  /** Forgets ConfigMap versions that are no longer current. */
  retain(configMaps: readonly ConfigMapObject[]): void {
    const live = new Set(
      configMaps.map((c) => `${c.metadata?.uid ?? c.metadata?.name}@${c.metadata?.resourceVersion ?? ''}/`),
    );
    for (const k of this.#loaded.keys())
      if (!live.has(k.slice(0, k.indexOf('/') + 1))) this.#loaded.delete(k);
  }
}

function loadFromConfigMap(map: ConfigMapObject, name: string, key: string, rv: string): RouterResult {
  const where = `ConfigMap '${name}' key '${key}'`;
  let text: string;
  if (map.data && Object.hasOwn(map.data, key)) text = map.data[key]!;
  else if (map.binaryData && Object.hasOwn(map.binaryData, key))
    text = Buffer.from(map.binaryData[key]!, 'base64').toString('utf8');
  else {
    const keys = [...Object.keys(map.data ?? {}), ...Object.keys(map.binaryData ?? {})];
    return {
      reason: 'ConfigMapKeyNotFound',
      message: `ConfigMap '${name}' has no key '${key}' (it has: ${keys.length ? keys.join(', ') : 'no keys'})`,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { reason: 'RouterInvalid', message: `${where} is not JSON: ${(e as Error).message}` };
  }
  try {
    return { classifier: loadClassifier(json), source: `${where}, resourceVersion ${rv}` };
  } catch (e) {
    return {
      reason: 'RouterInvalid',
      message: `${where} is not a router for this TierFlow release: ${(e as Error).message}`,
    };
  }
}

/**
 * Whether the router ConfigMaps may not be listed (HTTP 403, e.g. a hand-made Role without
 * ConfigMaps). TierFlow then still serves everything else: only a policy naming a router is
 * affected, and its status says why (see forbiddenRouters).
 */
export function routerMapsForbidden(informer: { synced: boolean; lastError?: { status?: number } }): boolean {
  return !informer.synced && informer.lastError?.status === 403;
}

export function forbiddenRouters(who: string, namespace?: string): RouterProblem {
  return {
    reason: 'ConfigMapsForbidden',
    message:
      `${who} may not list ConfigMaps${namespace ? ` in namespace '${namespace}'` : ''} (HTTP 403), so it cannot read the router: ` +
      `the TierFlow chart's RBAC grants it (helm upgrade); a hand-made Role needs configmaps get, list and watch`,
  };
}

/** The informer's view of router ConfigMaps (core/v1, labelled). */
export const ROUTER_CONFIGMAPS = {
  plural: 'configmaps',
  group: '',
  labelSelector: ROUTER_LABEL_SELECTOR,
} as const;
