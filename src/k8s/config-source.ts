// The sidecar's configuration from Kubernetes: informers on the LLMProviders, RoutingPolicies and
// VirtualKeys of its namespace, and on its ConfigMaps labelled tierflow.dev/router (the routers
// policies name in classifier.configMapRef) -> one FileConfig -> compileConfig() (the code the file config
// uses) -> onConfig(compiled). Changes are debounced briefly (default 50 ms) and applied as one
// atomic swap; an invalid object never replaces the last good config (see namespace-config.ts).
//
// Use from `tierflow sidecar`:
//   const source = await startKubernetesConfigSource({ namespace, onConfig: (c) => router.setConfig(c) });
//   ... await source.stop();
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CompileOptions } from '../core/config/compile.js';
import type { CompiledConfig } from '../core/config/compiled.js';
import { ResourceInformer, resourceName, type BackoffOptions, type WatchedKind } from './informers.js';
import { EntraTokens } from '../config/entra.js';
import { errorText, jsonLogger, type Logger } from './log.js';
import {
  buildNamespaceConfig,
  fieldPath,
  LastGoodStore,
  type NamespaceBuild,
  type NamespaceObjects,
} from './namespace-config.js';
import {
  ENV_NAMESPACE,
  ENV_POLICIES,
  ENV_SECRETS_DIR,
  RESOURCE_BY_KEY,
  RESOURCES,
  SA_TOKEN_DIR,
  SECRETS_DIR,
  type ResourceKey,
} from './resources.js';
import {
  forbiddenRouters,
  ROUTER_CONFIGMAPS,
  RouterCache,
  routerMapsForbidden,
  type ConfigMapObject,
} from './routers.js';
import { mountedSecretResolvers, referencedSecretNames, secretsFingerprint } from './secrets.js';

export interface KubernetesConfigSourceOptions {
  /** Namespace whose objects configure this sidecar. Default: $TIERFLOW_NAMESPACE, then the service account's namespace. */
  namespace?: string;
  /** Called with every new compiled config (the first one included). Swap it in; do not mutate it. */
  onConfig: (config: CompiledConfig, build: NamespaceBuild) => void;
  /** Called after every build, applied or not (for logs, metrics, tests). */
  onBuild?: (build: NamespaceBuild, applied: boolean) => void;
  /** Default: in-cluster config (service account), else ~/.kube/config. */
  kubeConfig?: KubeConfig;
  /** Where the webhook mounts Secrets. Default: $TIERFLOW_SECRETS_DIR or /var/run/tierflow/secrets. */
  secretsDir?: string;
  /** Only these RoutingPolicies are served. Default: $TIERFLOW_POLICIES (comma-separated), else all. */
  policies?: readonly string[];
  /** Extra compile options (demo provider URL). */
  compile?: Partial<Omit<CompileOptions, 'resolveCredentials' | 'resolveVirtualKey'>>;
  debounceMs?: number;
  /** How often mounted Secrets are checked for rotation. */
  secretsPollMs?: number;
  backoff?: BackoffOptions;
  /** Default: JSON lines with component=k8s-config. */
  log?: Logger;
  /** Registers tierflow_k8s_config_* metrics. */
  registry?: Registry;
}

export class KubernetesConfigSource {
  readonly namespace: string;
  readonly #options: KubernetesConfigSourceOptions;
  readonly #informers: ResourceInformer[];
  /** The namespace's router ConfigMaps. */
  readonly #routerMaps: ResourceInformer<WatchedKind>;
  readonly #routers = new RouterCache();
  readonly #lastGood = new LastGoodStore();
  readonly #log: Logger;
  /** Entra tokens of the namespace's providers, kept across rebuilds. */
  readonly #entraTokens: EntraTokens;
  readonly #secretsDir: string;
  #timer: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #fingerprint = '';
  #appliedKey = '';
  #current: CompiledConfig | undefined;
  #lastBuild: NamespaceBuild | undefined;
  #firstConfig: Promise<CompiledConfig>;
  #resolveFirst!: (c: CompiledConfig) => void;
  #stopped = false;
  #metrics?: { builds: Counter<'result'>; objects: Gauge<'kind' | 'state'> };

  constructor(options: KubernetesConfigSourceOptions) {
    this.#options = options;
    this.#log = options.log ?? jsonLogger('k8s-config');
    this.#entraTokens = new EntraTokens(this.#log);
    this.namespace = options.namespace ?? defaultNamespace();
    this.#secretsDir = options.secretsDir ?? process.env[ENV_SECRETS_DIR] ?? SECRETS_DIR;
    const kc = options.kubeConfig ?? defaultKubeConfig();
    this.#firstConfig = new Promise((resolve) => (this.#resolveFirst = resolve));
    this.#informers = RESOURCES.map(
      (info) =>
        new ResourceInformer(kc, info, {
          namespace: this.namespace,
          onChange: () => this.#schedule(),
          log: this.#log,
          ...(options.backoff ? { backoff: options.backoff } : {}),
        }),
    );
    this.#routerMaps = new ResourceInformer<WatchedKind>(kc, ROUTER_CONFIGMAPS, {
      namespace: this.namespace,
      onChange: () => this.#schedule(),
      // A 403 does not hold the config back (see routerMapsForbidden): build without routers.
      onError: () => this.#schedule(),
      log: this.#log,
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
    if (options.registry) {
      this.#metrics = {
        builds: new Counter({
          name: 'tierflow_k8s_config_builds_total',
          help: 'Config builds from the namespace objects: applied (swapped in), unchanged (same objects and keys), kept (nothing compiled: the last good config stays).',
          labelNames: ['result'],
          registers: [options.registry],
        }),
        objects: new Gauge({
          name: 'tierflow_k8s_config_objects',
          help: 'TierFlow objects of the namespace by kind and state (current, lastGood, excluded).',
          labelNames: ['kind', 'state'],
          registers: [options.registry],
        }),
      };
    }
  }

  /** Starts the informers; resolves when the first config is compiled. */
  async start(): Promise<CompiledConfig> {
    await this.startWatching();
    return this.#firstConfig;
  }

  /** Starts the informers without waiting for a config (onConfig delivers it when there is one). */
  async startWatching(): Promise<void> {
    await Promise.all(this.#allInformers().map((i) => i.start()));
    this.#poll = setInterval(() => this.#checkSecrets(), this.#options.secretsPollMs ?? 2000);
    this.#poll.unref();
  }

  /** The config in use (undefined until the first one compiled). */
  get current(): CompiledConfig | undefined {
    return this.#current;
  }

  get lastBuild(): NamespaceBuild | undefined {
    return this.#lastBuild;
  }

  get synced(): boolean {
    return (
      this.#informers.every((i) => i.synced) &&
      (this.#routerMaps.synced || routerMapsForbidden(this.#routerMaps))
    );
  }

  #allInformers(): ResourceInformer<WatchedKind>[] {
    return [...this.#informers, this.#routerMaps];
  }

  /**
   * Why there is no configuration yet, in words an operator can act on; undefined once one is in
   * use. Served in every request's error while the sidecar waits, in its log and /readyz.
   */
  waitingReason(): string | undefined {
    if (this.#current) return undefined;
    const ns = this.namespace;
    for (const inf of this.#allInformers()) {
      const err = inf.lastError;
      if (!err) continue;
      const what = resourceName(inf.info);
      if (err.status === 403)
        return (
          `this pod's service account may not list ${what} in namespace ${ns} (HTTP 403): add ${ns} to the ` +
          `TierFlow chart's sidecar.namespaces, or create a RoleBinding to the ClusterRole <release>-tierflow-config-reader ` +
          `for the group system:serviceaccounts:${ns}`
        );
      if (err.status === 401)
        return `the API server refused this pod's service-account token (HTTP 401) listing ${what}`;
      if (err.status === 404)
        return `the API server does not serve ${what} (HTTP 404): are the TierFlow CRDs installed?`;
      return `cannot list ${what} in namespace ${ns} (${err.text}); retrying`;
    }
    const pending = this.#allInformers()
      .filter((i) => !i.synced)
      .map((i) => i.info.plural);
    if (pending.length) return `waiting for the API server to list ${pending.join(', ')} in namespace ${ns}`;
    const build = this.#lastBuild;
    if (!build) return `reading the TierFlow objects of namespace ${ns}`;
    const problems = [
      ...build.issues.map((i) => `${i.path}: ${i.message}`),
      ...build.outcomes.flatMap((o) =>
        o.issues.map((i) => `${RESOURCE_BY_KEY[o.key].kind} ${o.name}: ${fieldPath(i.path)}: ${i.message}`),
      ),
    ];
    if (build.outcomes.length === 0)
      return `namespace ${ns} has no LLMProvider or RoutingPolicy yet (kubectl -n ${ns} get tierflow)`;
    return `the TierFlow objects of namespace ${ns} do not compile${problems.length ? `: ${problems.slice(0, 3).join('; ')}` : ''} (kubectl -n ${ns} get tierflow)`;
  }

  /** For tests and diagnostics. */
  get informers(): readonly ResourceInformer<WatchedKind>[] {
    return this.#allInformers();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#poll);
    await Promise.all(this.#allInformers().map((i) => i.stop()));
  }

  /** Rebuilds now (normally driven by watch events and the secrets poll). */
  rebuild(): NamespaceBuild | undefined {
    if (this.#stopped || !this.synced) return undefined;
    const objects = {} as Record<ResourceKey, ReturnType<ResourceInformer['list']>>;
    for (const inf of this.#informers) objects[inf.info.key] = inf.list();
    const configMaps = this.#routerMaps.list() as ConfigMapObject[];
    this.#routers.retain(configMaps);
    const forbidden = routerMapsForbidden(this.#routerMaps);
    const build = buildNamespaceConfig(objects as NamespaceObjects, {
      lastGood: this.#lastGood,
      resolveRouter: (ref) =>
        forbidden
          ? forbiddenRouters("this pod's service account", this.namespace)
          : this.#routers.resolve(configMaps, this.namespace, ref),
      ...(this.#policies() ? { policies: this.#policies()! } : {}),
      compile: { ...this.#options.compile, ...mountedSecretResolvers(this.#secretsDir, this.#entraTokens) },
    });
    this.#fingerprint = secretsFingerprint(this.#secretsDir, this.#secretNames(objects as NamespaceObjects));
    this.#lastBuild = build;
    this.#report(build);
    // Same objects, routers and mounted secrets -> same config: nothing to swap.
    const key = build.config ? `${build.config.revision}|${build.routers}|${this.#fingerprint}` : '';
    const applied = Boolean(build.config) && key !== this.#appliedKey;
    if (build.config && applied) {
      this.#current = build.config;
      this.#appliedKey = key;
      try {
        this.#options.onConfig(build.config, build);
      } catch (err) {
        this.#log.error('onConfig failed', { err: errorText(err) });
      }
      this.#resolveFirst(build.config);
    }
    this.#metrics?.builds.inc({ result: applied ? 'applied' : build.config ? 'unchanged' : 'kept' });
    this.#options.onBuild?.(build, applied);
    return build;
  }

  #policies(): readonly string[] | undefined {
    if (this.#options.policies) return this.#options.policies;
    const env = process.env[ENV_POLICIES];
    return env
      ? env
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : undefined;
  }

  #secretNames(objects: NamespaceObjects): string[] {
    return referencedSecretNames([...objects.providers, ...objects.virtualKeys].map((o) => o.spec));
  }

  #schedule() {
    if (this.#stopped || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.rebuild();
      } catch (err) {
        this.#log.error('config build failed', { namespace: this.namespace, err: errorText(err) });
      }
    }, this.#options.debounceMs ?? 50);
    this.#timer.unref?.();
  }

  #checkSecrets() {
    if (!this.synced) return;
    const objects = {} as Record<ResourceKey, ReturnType<ResourceInformer['list']>>;
    for (const inf of this.#informers) objects[inf.info.key] = inf.list();
    const fp = secretsFingerprint(this.#secretsDir, this.#secretNames(objects as NamespaceObjects));
    if (fp !== this.#fingerprint) {
      this.#log.info('mounted secrets changed; rebuilding', { namespace: this.namespace });
      this.#schedule();
    }
  }

  #report(build: NamespaceBuild) {
    const counts = new Map<string, number>();
    for (const o of build.outcomes) {
      const k = `${o.key}|${o.state}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
      if (o.state !== 'current' || o.issues.length || o.lastGoodRouter || o.shippedRouter) {
        this.#log.warn('object not served as written', {
          namespace: this.namespace,
          kind: o.key,
          name: o.name,
          generation: o.generation,
          state: o.state,
          issues: o.issues.slice(0, 10).map((i) => `${fieldPath(i.path)}: ${i.message}`),
          ...(o.lastGoodRouter || o.shippedRouter
            ? {
                router: o.lastGoodRouter
                  ? `serving the last router that loaded (${o.lastGoodRouter})`
                  : 'serving the model shipped with TierFlow: no router of this policy has loaded in this sidecar',
                refs: o.refs.slice(0, 10).map((r) => `${fieldPath(r.path)}: ${r.message}`),
              }
            : {}),
        });
      }
    }
    if (build.config) {
      this.#log.info('config built', {
        namespace: this.namespace,
        revision: build.config.revision,
        providers: build.config.providers.size,
        policies: build.config.policies.size,
        virtualKeys: build.config.virtualKeys.size,
      });
    } else {
      this.#log.warn('namespace config does not compile; keeping the last good config', {
        namespace: this.namespace,
        issues: build.issues.slice(0, 10).map((i) => `${i.path}: ${i.message}`),
      });
    }
    if (this.#metrics) {
      this.#metrics.objects.reset();
      for (const { key } of RESOURCES)
        for (const state of ['current', 'lastGood', 'excluded'])
          this.#metrics.objects.set({ kind: key, state }, counts.get(`${key}|${state}`) ?? 0);
    }
  }
}

/** Starts a config source and waits for its first config. */
export async function startKubernetesConfigSource(
  options: KubernetesConfigSourceOptions,
): Promise<KubernetesConfigSource> {
  const source = new KubernetesConfigSource(options);
  await source.start();
  return source;
}

function defaultNamespace(): string {
  const env = process.env[ENV_NAMESPACE];
  if (env) return env;
  try {
    return readFileSync(`${SA_TOKEN_DIR}/namespace`, 'utf8').trim();
  } catch {
    throw new Error(`no namespace: set ${ENV_NAMESPACE} or run in a pod with a service account token`);
  }
}

export function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}
