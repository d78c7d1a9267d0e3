// Sidecar injection: the JSON patch that turns an annotated pod into a TierFlow pod.
//
// Added (as native sidecars: init containers with restartPolicy Always, first in order so they run
// before the app's own init containers): `tierflow` (the ext_proc server, reads the namespace's
// TierFlow objects, resolves provider keys from Secrets mounted into it alone) and `tierflow-envoy`
// (plain-HTTP listener on 127.0.0.1, ext_proc over a Unix socket on a shared emptyDir).
// App containers get OPENAI_BASE_URL unless they set it themselves.
//
// Who can read what (the pod as the kubelet builds it):
// - Both sidecars run with one shared primary group (`sharedGid`); the tierflow process makes its
//   socket 0660 after binding it, so Envoy (another UID, same group) can connect. The socket's
//   emptyDir is mounted by the two sidecars only.
// - Secret volumes are mounted into the tierflow container only, with mode 0444: without a pod
//   fsGroup the kubelet writes them root:root, so the tierflow UID reads them as "other". No other
//   container mounts them, so no other process can read them.
// - Envoy's admin API listens on a Unix socket (mode 0600) in Envoy's own /tmp volume; the app
//   reaches only the plain-HTTP listener on 127.0.0.1 and the read-only health/stats listener.
//
// Idempotent: a pod that already has the sidecars only gets what is missing (OPENAI_BASE_URL on a
// container another webhook added after us), so reinvocation is safe.
import { createHash } from 'node:crypto';
import type {
  V1Container,
  V1EnvVar,
  V1Pod,
  V1ResourceRequirements,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import {
  ANNOTATION_BASE_URL,
  ANNOTATION_INJECT,
  ANNOTATION_POLICY,
  ANNOTATION_SECRETS,
  ANNOTATION_STATUS,
  ENV_CONFIG_SOURCE,
  ENV_NAMESPACE,
  ENV_POLICIES,
  ENV_SECRETS_DIR,
  LABEL_INJECTED,
  SA_TOKEN_DIR,
  SECRETS_DIR,
  SOCKET_DIR,
} from './resources.js';

export const TIERFLOW_CONTAINER = 'tierflow';
export const ENVOY_CONTAINER = 'tierflow-envoy';
export const INJECTOR_VERSION = 'v1';

const VOL_SOCKET = 'tierflow-socket';
const VOL_TMP = 'tierflow-tmp';
const VOL_ENVOY_TMP = 'tierflow-envoy-tmp';
const VOL_TOKEN = 'tierflow-kube-api-access';
const VOL_NO_TOKEN = 'tierflow-no-token';

export interface ProbeSpec {
  /** Port on the pod IP that kubelet probes. */
  port: number;
  /** httpGet path; a gRPC health probe when undefined. */
  path?: string;
  /** gRPC health service the readiness probe asks about (liveness and startup ask about ""). */
  readinessService?: string;
}

export interface InjectorConfig {
  tierflowImage: string;
  envoyImage: string;
  imagePullPolicy?: PullPolicy;
  /** Pull policy of the Envoy image (default: imagePullPolicy). */
  envoyImagePullPolicy?: PullPolicy;
  /** Envoy bootstrap YAML, passed with --config-yaml (a ConfigMap in the release namespace cannot be mounted in other namespaces). */
  envoyBootstrap: string;
  /** Extra Envoy arguments, e.g. ["--log-level", "warn"]. */
  envoyArgs?: string[];
  /** Port of Envoy's plain-HTTP listener on 127.0.0.1 (OPENAI_BASE_URL points there). */
  listenerPort: number;
  /** Probe of the tierflow container (its gRPC health server on the pod IP). */
  tierflowProbe: ProbeSpec;
  /** Port of the sidecar's HTTP /metrics on the pod IP (declared on the container for scrapers). */
  tierflowMetricsPort?: number;
  /** Probe of Envoy (a health listener on the pod IP), or none. */
  envoyProbe?: ProbeSpec;
  /** Arguments of the tierflow container (the image's entrypoint is `tierflow`). */
  tierflowArgs: string[];
  resources: { tierflow: V1ResourceRequirements; envoy: V1ResourceRequirements };
  /** Secret mounted into every tierflow container when it exists (optional). */
  defaultCredentialsSecret?: string;
  /** UIDs of the sidecar processes (non-root). */
  tierflowUid: number;
  envoyUid: number;
  /**
   * Primary group of both sidecars: the ext_proc socket is 0660, owned by the tierflow UID and
   * this group, so Envoy can connect and nothing else can. Default: the tierflow UID.
   */
  sharedGid?: number;
  /** Extra environment for the tierflow container (log level...). */
  tierflowEnv?: V1EnvVar[];
}

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

/** Mode of the Secret files: the kubelet writes them root-owned, the tierflow UID reads them as "other". */
export const SECRET_FILE_MODE = 0o444;

export interface InjectionContext {
  /** The namespace of the pod (AdmissionRequest.namespace: pod.metadata.namespace may be empty). */
  namespace: string;
  /** Secret names referenced by the LLMProviders and VirtualKeys of the namespace. */
  referencedSecrets: readonly string[];
  /** The namespace is labelled for injection (tierflow.dev/inject=enabled). */
  namespaceEnabled?: boolean;
}

export type PatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

export interface InjectionResult {
  /** Whether the pod is (now) a TierFlow pod. */
  injected: boolean;
  /** Why nothing was injected, when it was not. */
  skipped?: string;
  patch: PatchOp[];
  warnings: string[];
}

/** `true`: inject; `false`: opt out; otherwise the namespace label decides. */
export function wantsInjection(pod: V1Pod, namespaceEnabled = false): { inject: boolean; reason: string } {
  const value = pod.metadata?.annotations?.[ANNOTATION_INJECT]?.trim().toLowerCase();
  if (value === 'false' || value === 'disabled')
    return { inject: false, reason: `annotation ${ANNOTATION_INJECT}=false` };
  if (value === 'true' || value === 'enabled')
    return { inject: true, reason: `annotation ${ANNOTATION_INJECT}=true` };
  if (namespaceEnabled) return { inject: true, reason: 'namespace label' };
  return { inject: false, reason: `no ${ANNOTATION_INJECT} annotation` };
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function list(s: string | undefined): string[] {
  return (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function secretVolumeName(secret: string): string {
  return `tierflow-secret-${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`;
}

function securityContext(uid: number, gid: number) {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function probe(p: ProbeSpec, kind: 'startup' | 'readiness' | 'liveness') {
  const service = kind === 'readiness' ? p.readinessService : undefined;
  const action = p.path
    ? { httpGet: { path: p.path, port: p.port } }
    : { grpc: { port: p.port, ...(service ? { service } : {}) } };
  if (kind === 'startup') return { ...action, periodSeconds: 1, failureThreshold: 120, timeoutSeconds: 1 };
  if (kind === 'readiness') return { ...action, periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 1 };
  return { ...action, periodSeconds: 10, failureThreshold: 6, timeoutSeconds: 2 };
}

function probes(p: ProbeSpec | undefined) {
  if (!p) return {};
  return {
    startupProbe: probe(p, 'startup'),
    readinessProbe: probe(p, 'readiness'),
    livenessProbe: probe(p, 'liveness'),
  };
}

export function tierflowContainer(cfg: InjectorConfig, policies: string[], secrets: string[]): V1Container {
  const mounts: V1VolumeMount[] = [
    { name: VOL_SOCKET, mountPath: SOCKET_DIR },
    { name: VOL_TMP, mountPath: '/tmp' },
    { name: VOL_TOKEN, mountPath: SA_TOKEN_DIR, readOnly: true },
    ...secrets.map((s) => ({ name: secretVolumeName(s), mountPath: `${SECRETS_DIR}/${s}`, readOnly: true })),
  ];
  const env: V1EnvVar[] = [
    { name: ENV_NAMESPACE, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'TIERFLOW_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: ENV_CONFIG_SOURCE, value: 'kubernetes' },
    { name: ENV_SECRETS_DIR, value: SECRETS_DIR },
    ...(policies.length ? [{ name: ENV_POLICIES, value: policies.join(',') }] : []),
    ...(cfg.tierflowEnv ?? []),
  ];
  return {
    name: TIERFLOW_CONTAINER,
    image: cfg.tierflowImage,
    ...(cfg.imagePullPolicy ? { imagePullPolicy: cfg.imagePullPolicy } : {}),
    args: cfg.tierflowArgs,
    restartPolicy: 'Always',
    env,
    ports: [
      { name: 'tf-health', containerPort: cfg.tierflowProbe.port, protocol: 'TCP' },
      ...(cfg.tierflowMetricsPort
        ? [{ name: 'tf-metrics', containerPort: cfg.tierflowMetricsPort, protocol: 'TCP' }]
        : []),
    ],
    resources: cfg.resources.tierflow,
    securityContext: securityContext(cfg.tierflowUid, sharedGid(cfg)),
    volumeMounts: mounts,
    ...probes(cfg.tierflowProbe),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  } as V1Container;
}

function sharedGid(cfg: InjectorConfig): number {
  return cfg.sharedGid ?? cfg.tierflowUid;
}

export function envoyContainer(cfg: InjectorConfig): V1Container {
  const pullPolicy = cfg.envoyImagePullPolicy ?? cfg.imagePullPolicy;
  return {
    name: ENVOY_CONTAINER,
    image: cfg.envoyImage,
    ...(pullPolicy ? { imagePullPolicy: pullPolicy } : {}),
    args: ['--config-yaml', cfg.envoyBootstrap, ...(cfg.envoyArgs ?? [])],
    restartPolicy: 'Always',
    ...(cfg.envoyProbe
      ? { ports: [{ name: 'tf-envoy-health', containerPort: cfg.envoyProbe.port, protocol: 'TCP' }] }
      : {}),
    resources: cfg.resources.envoy,
    securityContext: securityContext(cfg.envoyUid, sharedGid(cfg)),
    volumeMounts: [
      { name: VOL_SOCKET, mountPath: SOCKET_DIR },
      { name: VOL_ENVOY_TMP, mountPath: '/tmp' },
      // Occupies the token path so the ServiceAccount admission plugin (re-run after webhooks)
      // does not give Envoy the pod's API token: Envoy never talks to the API server.
      { name: VOL_NO_TOKEN, mountPath: SA_TOKEN_DIR, readOnly: true },
    ],
    ...probes(cfg.envoyProbe),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  } as V1Container;
}

function volumes(secrets: string[]): V1Volume[] {
  return [
    { name: VOL_SOCKET, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    { name: VOL_TMP, emptyDir: { sizeLimit: '64Mi' } },
    { name: VOL_ENVOY_TMP, emptyDir: { sizeLimit: '64Mi' } },
    { name: VOL_NO_TOKEN, emptyDir: { medium: 'Memory', sizeLimit: '1Ki' } },
    {
      name: VOL_TOKEN,
      projected: {
        defaultMode: 0o444,
        sources: [
          { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          {
            downwardAPI: {
              items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }],
            },
          },
        ],
      },
    },
    // optional: a Secret created after the pod still appears (the kubelet syncs it), and a missing
    // one does not keep the pod from starting; the provider is reported without credentials.
    ...secrets.map((s) => ({
      name: secretVolumeName(s),
      secret: { secretName: s, optional: true, defaultMode: SECRET_FILE_MODE },
    })),
  ];
}

export function baseUrl(cfg: InjectorConfig): string {
  return `http://127.0.0.1:${cfg.listenerPort}/v1`;
}

/** The JSON patch for one pod (an AdmissionReview's request.object). */
export function injectPod(pod: V1Pod, cfg: InjectorConfig, ctx: InjectionContext): InjectionResult {
  const warnings: string[] = [];
  const decision = wantsInjection(pod, ctx.namespaceEnabled);
  if (!decision.inject) return { injected: false, skipped: decision.reason, patch: [], warnings };
  const spec = pod.spec;
  if (!spec) return { injected: false, skipped: 'pod has no spec', patch: [], warnings };
  if (spec.hostNetwork) {
    warnings.push('tierflow: not injected into a hostNetwork pod (127.0.0.1 would be the node)');
    return { injected: false, skipped: 'hostNetwork', patch: [], warnings };
  }

  const annotations = pod.metadata?.annotations ?? {};
  const patch: PatchOp[] = [];
  const inits = spec.initContainers ?? [];
  const hasTierflow =
    inits.some((c) => c.name === TIERFLOW_CONTAINER) ||
    spec.containers.some((c) => c.name === TIERFLOW_CONTAINER);
  const hasEnvoy =
    inits.some((c) => c.name === ENVOY_CONTAINER) || spec.containers.some((c) => c.name === ENVOY_CONTAINER);

  if (!hasTierflow && !hasEnvoy) {
    const policies = list(annotations[ANNOTATION_POLICY]);
    for (const p of policies)
      if (!DNS_SUBDOMAIN.test(p))
        warnings.push(`tierflow: ${ANNOTATION_POLICY} names an invalid policy '${p}'`);
    const extra = list(annotations[ANNOTATION_SECRETS]);
    const secrets = [
      ...new Set([
        ...(cfg.defaultCredentialsSecret ? [cfg.defaultCredentialsSecret] : []),
        ...ctx.referencedSecrets,
        ...extra,
      ]),
    ]
      .filter((s) => {
        const ok = DNS_SUBDOMAIN.test(s) && s.length <= 253;
        if (!ok) warnings.push(`tierflow: ignoring invalid Secret name '${s}'`);
        return ok;
      })
      .sort();
    const existingVolumes = new Set((spec.volumes ?? []).map((v) => v.name));
    const newVolumes = volumes(secrets).filter((v) => !existingVolumes.has(v.name));
    if (!spec.volumes) patch.push({ op: 'add', path: '/spec/volumes', value: newVolumes });
    else for (const v of newVolumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });

    const sidecars = [tierflowContainer(cfg, policies, secrets), envoyContainer(cfg)];
    if (!spec.initContainers) patch.push({ op: 'add', path: '/spec/initContainers', value: sidecars });
    else {
      // Prepend, in order: the sidecars start before the app's own init containers.
      patch.push({ op: 'add', path: '/spec/initContainers/0', value: sidecars[1] });
      patch.push({ op: 'add', path: '/spec/initContainers/0', value: sidecars[0] });
    }
    if (spec.shareProcessNamespace) {
      warnings.push(
        'tierflow: shareProcessNamespace is true, so app containers can see the tierflow process; provider keys are better protected without it',
      );
    }
  } else if (!(hasTierflow && hasEnvoy)) {
    warnings.push('tierflow: the pod has only one of the two TierFlow sidecars; leaving it as it is');
    return { injected: false, skipped: 'partially injected', patch: [], warnings };
  }

  // OPENAI_BASE_URL on every app container that does not set it. An `env` entry overrides the same
  // variable from `envFrom`, whose ConfigMaps and Secrets the webhook cannot read: containers with
  // envFrom keep theirs unless the pod asks for ours.
  const url = baseUrl(cfg);
  const baseUrlMode = annotations[ANNOTATION_BASE_URL]?.trim().toLowerCase();
  if (baseUrlMode && baseUrlMode !== 'set' && baseUrlMode !== 'skip')
    warnings.push(`tierflow: ${ANNOTATION_BASE_URL} must be "set" or "skip", got '${baseUrlMode}'; ignored`);
  spec.containers.forEach((c, i) => {
    if (c.name === TIERFLOW_CONTAINER || c.name === ENVOY_CONTAINER || baseUrlMode === 'skip') return;
    const env = c.env ?? [];
    if (env.some((e) => e.name === 'OPENAI_BASE_URL')) return;
    if (c.envFrom?.length && baseUrlMode !== 'set') {
      warnings.push(
        `tierflow: container '${c.name}' uses envFrom, so OPENAI_BASE_URL is not set on it (an env entry would override one from envFrom); annotate ${ANNOTATION_BASE_URL}: "set" to route it through TierFlow (${url})`,
      );
      return;
    }
    if (c.envFrom?.length)
      warnings.push(
        `tierflow: container '${c.name}' uses envFrom; OPENAI_BASE_URL=${url} overrides any OPENAI_BASE_URL it brings`,
      );
    const value: V1EnvVar = { name: 'OPENAI_BASE_URL', value: url };
    if (!c.env) patch.push({ op: 'add', path: `/spec/containers/${i}/env`, value: [value] });
    else patch.push({ op: 'add', path: `/spec/containers/${i}/env/-`, value });
  });

  const addAnnotations: Record<string, string> = {};
  if (annotations[ANNOTATION_STATUS] !== INJECTOR_VERSION)
    addAnnotations[ANNOTATION_STATUS] = INJECTOR_VERSION;
  if (cfg.tierflowMetricsPort) {
    // For Prometheus' kubernetes-pods convention, unless the app already uses it for its own metrics.
    const own = Object.keys(annotations).some((k) => k.startsWith('prometheus.io/'));
    if (!own) Object.assign(addAnnotations, prometheusAnnotations(cfg.tierflowMetricsPort));
    else if (annotations['prometheus.io/port'] !== String(cfg.tierflowMetricsPort))
      warnings.push(
        `tierflow: the pod's prometheus.io annotations are its own; scrape the tierflow sidecar on port ${cfg.tierflowMetricsPort} (tf-metrics) with the chart's PodMonitor`,
      );
  }
  addMetadata(patch, 'annotations', pod.metadata?.annotations, addAnnotations);
  if (pod.metadata?.labels?.[LABEL_INJECTED] !== 'true')
    addMetadata(patch, 'labels', pod.metadata?.labels, { [LABEL_INJECTED]: 'true' });
  return { injected: true, patch, warnings };
}

function prometheusAnnotations(port: number): Record<string, string> {
  return {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': String(port),
    'prometheus.io/path': '/metrics',
  };
}

/** Patch ops adding `entries` to the pod's labels or annotations (the map itself when absent). */
function addMetadata(
  patch: PatchOp[],
  field: 'labels' | 'annotations',
  existing: Record<string, string> | undefined,
  entries: Record<string, string>,
): void {
  if (Object.keys(entries).length === 0) return;
  if (!existing) {
    patch.push({ op: 'add', path: `/metadata/${field}`, value: entries });
    return;
  }
  for (const [k, v] of Object.entries(entries))
    patch.push({ op: 'add', path: `/metadata/${field}/${escapePointer(k)}`, value: v });
}
