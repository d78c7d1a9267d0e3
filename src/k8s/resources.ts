// Names shared by the CRDs, the controller, the webhook, the sidecar's config source and the chart.
// One place, so that a rename cannot leave two spellings behind.

export const GROUP = 'tierflow.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export type ResourceKey = 'providers' | 'policies' | 'virtualKeys';

export interface ResourceInfo {
  /** Key of the FileConfig array the objects of this kind become. */
  key: ResourceKey;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
}

/** The three kinds, in FileConfig order. */
export const RESOURCES: readonly ResourceInfo[] = [
  {
    key: 'providers',
    kind: 'LLMProvider',
    listKind: 'LLMProviderList',
    plural: 'llmproviders',
    singular: 'llmprovider',
    shortNames: ['llmp'],
  },
  {
    key: 'policies',
    kind: 'RoutingPolicy',
    listKind: 'RoutingPolicyList',
    plural: 'routingpolicies',
    singular: 'routingpolicy',
    shortNames: ['rpol'],
  },
  {
    key: 'virtualKeys',
    kind: 'VirtualKey',
    listKind: 'VirtualKeyList',
    plural: 'virtualkeys',
    singular: 'virtualkey',
    shortNames: ['vkey'],
  },
];

export const RESOURCE_BY_KEY: Readonly<Record<ResourceKey, ResourceInfo>> = Object.fromEntries(
  RESOURCES.map((r) => [r.key, r]),
) as Record<ResourceKey, ResourceInfo>;

/** `kubectl get tierflow` lists every TierFlow object. */
export const CATEGORY = 'tierflow';

export const CONDITION_TYPES = ['Accepted', 'ResolvedRefs', 'Ready'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

// Pod annotations read by the webhook.
export const ANNOTATION_INJECT = 'tierflow.dev/inject';
/** Comma-separated RoutingPolicy names the pod's sidecar serves (default: every policy of the namespace). */
export const ANNOTATION_POLICY = 'tierflow.dev/policy';
/** Comma-separated extra Secret names to mount into the tierflow container. */
export const ANNOTATION_SECRETS = 'tierflow.dev/secrets';
/**
 * Whether app containers get OPENAI_BASE_URL: unset (default) sets it on containers that neither set
 * it in `env` nor use `envFrom` (whose contents the webhook cannot see, and an `env` entry would
 * override); "set" also on containers with `envFrom`; "skip" on none.
 */
export const ANNOTATION_BASE_URL = 'tierflow.dev/openai-base-url';
/** Set by the webhook on pods it injected; its value is the injector version. */
export const ANNOTATION_STATUS = 'tierflow.dev/injected';
/** Pod label set by the webhook on pods it injected ("true"): the chart's PodMonitor selects it. */
export const LABEL_INJECTED = 'tierflow.dev/injected';
/** Namespace label: `enabled` injects every pod of the namespace unless the pod opts out. */
export const NAMESPACE_LABEL_INJECT = 'tierflow.dev/inject';

// Layout inside an injected pod.
export const SECRETS_DIR = '/var/run/tierflow/secrets';
export { SOCKET_DIR, SOCKET_FILE } from '../extproc/socket-path.js';
export const SA_TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Environment of the tierflow sidecar container set by the webhook. */
export const ENV_NAMESPACE = 'TIERFLOW_NAMESPACE';
export const ENV_POLICIES = 'TIERFLOW_POLICIES';
export const ENV_SECRETS_DIR = 'TIERFLOW_SECRETS_DIR';
export const ENV_CONFIG_SOURCE = 'TIERFLOW_CONFIG_SOURCE';

export function apiPath(plural: string, namespace?: string): string {
  return namespace
    ? `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${plural}`
    : `/apis/${GROUP}/${VERSION}/${plural}`;
}
