// Status of TierFlow objects: conditions computed from a namespace build, and the writer that
// patches the status subresource only when something changed.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import {
  fieldPath,
  type NamespaceBuild,
  type ObjectOutcome,
  type TierflowObject,
} from './namespace-config.js';
import { ROUTER_CONFIGMAP_LABEL } from '../core/config/schema.js';
import { GROUP, RESOURCE_BY_KEY, VERSION, type ConditionType, type ResourceKey } from './resources.js';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface TierflowStatus {
  observedGeneration: number;
  conditions: Condition[];
}

const MAX_MESSAGE = 2048;

function summarize(lines: string[]): string {
  let text = '';
  for (const [i, line] of lines.entries()) {
    const next = text ? `${text}; ${line}` : line;
    if (next.length > MAX_MESSAGE) return `${text}; and ${lines.length - i} more`;
    text = next;
  }
  return text;
}

type Draft = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** The three conditions of one object, from what the namespace build did with it. */
export function conditionsFor(outcome: ObjectOutcome, build: NamespaceBuild): Draft[] {
  const refPaths = new Set(outcome.refs.map((r) => r.path));
  const errors = outcome.issues.filter((i) => i.severity === 'error' && !refPaths.has(i.path));
  const warnings = outcome.issues.filter((i) => i.severity === 'warning' && !refPaths.has(i.path));
  const accepted: Draft = errors.length
    ? {
        type: 'Accepted',
        status: 'False',
        reason: 'Invalid',
        message: summarize(errors.map((i) => `${fieldPath(i.path)}: ${i.message}`)),
      }
    : {
        type: 'Accepted',
        status: 'True',
        reason: 'Accepted',
        message: warnings.length
          ? `valid, with warnings: ${summarize(warnings.map((i) => `${fieldPath(i.path)}: ${i.message}`))}`
          : 'The spec is valid.',
      };
  const firstRef = outcome.refs[0];
  const resolved: Draft = firstRef
    ? {
        type: 'ResolvedRefs',
        status: 'False',
        reason: firstRef.reason,
        message: summarize(outcome.refs.map((r) => `${fieldPath(r.path)}: ${r.message}`)),
      }
    : {
        type: 'ResolvedRefs',
        status: 'True',
        reason: 'ResolvedRefs',
        message:
          outcome.key === 'providers'
            ? 'Nothing to resolve in the namespace; secret references are read by the sidecars from the Secrets mounted into the tierflow container.'
            : 'Every referenced LLMProvider and model exists.',
      };
  let ready: Draft;
  if (!build.config) {
    ready = {
      type: 'Ready',
      status: 'False',
      reason: 'NamespaceConfigInvalid',
      message: summarize([
        'The TierFlow objects of this namespace do not compile together; the sidecars keep their last good configuration',
        ...build.issues.map((i) => `${i.path}: ${i.message}`),
      ]),
    };
  } else if (outcome.state === 'current' && outcome.lastGoodRouter) {
    ready = {
      type: 'Ready',
      status: 'False',
      reason: 'LastGoodRouterInUse',
      message: `The sidecars serve this generation with the last router that loaded (${outcome.lastGoodRouter}); the router it references now does not load (see ResolvedRefs).`,
    };
  } else if (outcome.state === 'current' && outcome.shippedRouter) {
    ready = {
      type: 'Ready',
      status: 'False',
      reason: 'ShippedRouterInUse',
      message: `The sidecars serve this generation with the model shipped with TierFlow, not a fitted router: the router it references does not load (see ResolvedRefs) and none loaded for it before (a sidecar that loaded one earlier keeps it). The policy routes with the shipped model until the ConfigMap holds a router this release can load: refit it with this release's \`tierflow train\`, put it in the ConfigMap and keep the label ${ROUTER_CONFIGMAP_LABEL}.`,
    };
  } else if (outcome.state === 'current') {
    ready = {
      type: 'Ready',
      status: 'True',
      reason: 'Ready',
      message: outcome.router
        ? `The sidecars of the namespace serve this generation, scoring with the router of ${outcome.router}.`
        : 'The sidecars of the namespace serve this generation.',
    };
  } else if (outcome.state === 'lastGood') {
    ready = {
      type: 'Ready',
      status: 'False',
      reason: 'LastGoodInUse',
      message: `Generation ${outcome.generation} is not used; the sidecars keep serving generation ${outcome.servedGeneration}${outcome.shippedRouter ? ', with the model shipped with TierFlow: the router it references does not load (see ResolvedRefs)' : ''}.`,
    };
  } else {
    ready = {
      type: 'Ready',
      status: 'False',
      reason: 'NotInUse',
      message: 'No generation of this object is valid; the sidecars leave it out.',
    };
  }
  return [accepted, resolved, ready];
}

/** Full status, keeping lastTransitionTime of conditions whose status did not change. */
export function computeStatus(
  object: TierflowObject,
  drafts: Draft[],
  now: Date = new Date(),
): TierflowStatus {
  const generation = object.metadata?.generation ?? 0;
  const previous = readConditions(object);
  return {
    observedGeneration: generation,
    conditions: drafts.map((d) => {
      const before = previous.find((c) => c.type === d.type);
      return {
        ...d,
        observedGeneration: generation,
        lastTransitionTime:
          before && before.status === d.status
            ? before.lastTransitionTime
            : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      };
    }),
  };
}

function readConditions(object: TierflowObject): Condition[] {
  const status = object.status as { conditions?: unknown } | undefined;
  return Array.isArray(status?.conditions) ? (status.conditions as Condition[]) : [];
}

/** True when writing `next` would change what the object already shows. */
export function statusDiffers(object: TierflowObject, next: TierflowStatus): boolean {
  const current = object.status as Partial<TierflowStatus> | undefined;
  if (!current || current.observedGeneration !== next.observedGeneration) return true;
  const before = readConditions(object);
  if (before.length !== next.conditions.length) return true;
  return next.conditions.some((c) => {
    const b = before.find((x) => x.type === c.type);
    return (
      !b ||
      b.status !== c.status ||
      b.reason !== c.reason ||
      b.message !== c.message ||
      b.observedGeneration !== c.observedGeneration ||
      b.lastTransitionTime !== c.lastTransitionTime
    );
  });
}

export interface StatusPatcher {
  patchStatus(
    key: ResourceKey,
    namespace: string,
    name: string,
    status: TierflowStatus,
    resourceVersion?: string,
  ): Promise<void>;
}

/** Writes the status subresource with a JSON merge patch. */
export class KubeStatusPatcher implements StatusPatcher {
  readonly #api: CustomObjectsApi;
  constructor(kc: KubeConfig) {
    this.#api = kc.makeApiClient(CustomObjectsApi);
  }
  async patchStatus(
    key: ResourceKey,
    namespace: string,
    name: string,
    status: TierflowStatus,
    resourceVersion?: string,
  ) {
    // resourceVersion makes the write conditional: a status computed from an older object is refused (409).
    const body = { metadata: resourceVersion ? { resourceVersion } : {}, status };
    await this.#api.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: RESOURCE_BY_KEY[key].plural,
        name,
        body,
        fieldManager: 'tierflow-controller',
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}

export interface StatusWriteResult {
  written: number;
  unchanged: number;
  conflicts: number;
  failed: number;
}

/** Computes and writes the status of every object of a namespace build. */
export async function writeStatuses(
  patcher: StatusPatcher,
  namespace: string,
  objects: Map<string, TierflowObject>,
  build: NamespaceBuild,
  now: Date = new Date(),
): Promise<StatusWriteResult> {
  const result: StatusWriteResult = { written: 0, unchanged: 0, conflicts: 0, failed: 0 };
  for (const outcome of build.outcomes) {
    const object = objects.get(`${outcome.key}/${outcome.name}`);
    if (!object) continue;
    const status = computeStatus(object, conditionsFor(outcome, build), now);
    if (!statusDiffers(object, status)) {
      result.unchanged++;
      continue;
    }
    try {
      await patcher.patchStatus(
        outcome.key,
        namespace,
        outcome.name,
        status,
        object.metadata?.resourceVersion,
      );
      result.written++;
    } catch (err) {
      const code =
        (err as { code?: number; statusCode?: number }).code ?? (err as { statusCode?: number }).statusCode;
      if (code === 409 || code === 404) result.conflicts++;
      else result.failed++;
    }
  }
  return result;
}
