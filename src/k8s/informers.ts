// Informers for the TierFlow custom resources, on @kubernetes/client-node's ListWatch:
// list, then watch from the list's resourceVersion with bookmarks; a 410 Gone (HTTP status or
// ERROR event) relists; a closed watch reconnects from the last resourceVersion; an error (API
// server unreachable, 5xx, 403) stops client-node's informer, so it is restarted here with
// exponential backoff and jitter.
import {
  ADD,
  CoreV1Api,
  CustomObjectsApi,
  DELETE,
  ERROR,
  ListWatch,
  UPDATE,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
} from '@kubernetes/client-node';
import { errorText, silentLogger, type Logger } from './log.js';
import type { TierflowObject } from './namespace-config.js';
import { apiPath, GROUP, VERSION, type ResourceInfo } from './resources.js';

/** What an informer lists and watches: a TierFlow kind, or a core/v1 kind (ConfigMaps). */
export interface WatchedKind {
  plural: string;
  /** '' for the core API group; default: TierFlow's group. */
  group?: string;
  /** Only objects matching this label selector are listed and watched. */
  labelSelector?: string;
}

/** The group-qualified resource name for messages: routingpolicies.tierflow.dev, configmaps. */
export function resourceName(kind: WatchedKind): string {
  const group = kind.group ?? GROUP;
  return group ? `${kind.plural}.${group}` : kind.plural;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

export interface InformerOptions {
  /** Namespace to watch; all namespaces when undefined. */
  namespace?: string;
  /** Called (synchronously) after every add, update or delete, and after each (re)list. */
  onChange: () => void;
  /** Called after a list or watch failed (lastError is set), before the restart. */
  onError?: () => void;
  /** Called with the object of every add, update or delete (before onChange). */
  onObject?: (obj: TierflowObject) => void;
  backoff?: BackoffOptions;
  log?: Logger;
  /** Server-side watch timeout range in seconds; a new watch starts from the last resourceVersion. */
  watchTimeoutSeconds?: [number, number];
}

/** Asks the API server for bookmarks and a bounded watch duration on every watch request. */
class BookmarkWatch extends Watch {
  readonly #timeouts: [number, number];
  constructor(kc: KubeConfig, timeouts: [number, number]) {
    super(kc);
    this.#timeouts = timeouts;
  }
  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const [lo, hi] = this.#timeouts;
    const timeoutSeconds = lo + Math.floor(Math.random() * (hi - lo + 1));
    return super.watch(path, { ...queryParams, allowWatchBookmarks: true, timeoutSeconds }, callback, done);
  }
}

export class ResourceInformer<K extends WatchedKind = ResourceInfo> {
  readonly info: K;
  readonly #options: InformerOptions;
  readonly #log: Logger;
  readonly #backoff: BackoffOptions;
  readonly #lw: ListWatch<TierflowObject>;
  #synced = false;
  #stopped = true;
  #failures = 0;
  #lastError: { text: string; status?: number } | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #syncWaiters: (() => void)[] = [];
  /** Number of lists done (first sync + relists): for tests and metrics. */
  lists = 0;
  restarts = 0;

  constructor(kc: KubeConfig, info: K, options: InformerOptions) {
    this.info = info;
    this.#options = options;
    this.#log = options.log ?? silentLogger;
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF;
    const plural = info.plural;
    const ns = options.namespace;
    const labelSelector = info.labelSelector;
    const core = info.group === '';
    const listPage = core ? coreList(kc, plural) : customList(kc, plural);
    const listFn = async (): Promise<KubernetesListObject<TierflowObject>> => {
      const list = await listPage(ns, labelSelector);
      this.lists++;
      this.#failures = 0;
      this.#lastError = undefined;
      // ListWatch stores the items right after this promise resolves; report once they are in.
      setImmediate(() => {
        if (this.#stopped) return;
        this.#markSynced();
        this.#options.onChange();
      });
      return list;
    };
    const watch = new BookmarkWatch(kc, options.watchTimeoutSeconds ?? [300, 600]);
    const path = core
      ? `/api/v1${ns ? `/namespaces/${encodeURIComponent(ns)}` : ''}/${plural}`
      : apiPath(plural, ns);
    this.#lw = new ListWatch<TierflowObject>(path, watch, listFn, false, labelSelector);
    const changed = (obj: TierflowObject) => {
      this.#failures = 0;
      this.#options.onObject?.(obj);
      if (this.#synced) this.#options.onChange();
    };
    this.#lw.on(ADD, changed);
    this.#lw.on(UPDATE, changed);
    this.#lw.on(DELETE, changed);
    this.#lw.on(ERROR, (err?: unknown) => this.#onError(err));
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** The error of the last failed list or watch, until a list succeeds (HTTP status when known). */
  get lastError(): { text: string; status?: number } | undefined {
    return this.#lastError;
  }

  /** Objects currently known (a snapshot). */
  list(): TierflowObject[] {
    return [...this.#lw.list(this.#options.namespace)];
  }

  get resourceVersion(): string {
    return this.#lw.latestResourceVersion();
  }

  async start(): Promise<void> {
    this.#stopped = false;
    await this.#lw.start();
  }

  /** Resolves once the first list is in (never rejects: failures are retried). */
  waitForSync(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    await this.#lw.stop();
  }

  #markSynced() {
    if (this.#synced) return;
    this.#synced = true;
    for (const w of this.#syncWaiters.splice(0)) w();
  }

  #onError(err: unknown) {
    if (this.#stopped) return;
    const delay = backoffDelay(this.#backoff, this.#failures++);
    const e = err as { code?: unknown; statusCode?: unknown } | undefined;
    const status = typeof e?.code === 'number' ? e.code : e?.statusCode;
    this.#lastError = { text: errorText(err), ...(typeof status === 'number' ? { status } : {}) };
    this.#options.onError?.();
    this.#log.warn('watch failed; restarting', {
      resource: this.info.plural,
      err: errorText(err),
      retryInMs: delay,
    });
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopped) return;
      this.restarts++;
      this.#lw.start().catch((e: unknown) => this.#onError(e));
    }, delay);
    this.#restartTimer.unref?.();
  }
}

type ListPage = (
  namespace: string | undefined,
  labelSelector: string | undefined,
) => Promise<KubernetesListObject<TierflowObject>>;

function customList(kc: KubeConfig, plural: string): ListPage {
  const api = kc.makeApiClient(CustomObjectsApi);
  return async (namespace, labelSelector) => {
    const q = { group: GROUP, version: VERSION, plural, ...(labelSelector ? { labelSelector } : {}) };
    return (
      namespace
        ? await api.listNamespacedCustomObject({ ...q, namespace })
        : await api.listClusterCustomObject(q)
    ) as KubernetesListObject<TierflowObject>;
  };
}

function coreList(kc: KubeConfig, plural: string): ListPage {
  if (plural !== 'configmaps') throw new Error(`no core/v1 informer for ${plural}`);
  const api = kc.makeApiClient(CoreV1Api);
  return async (namespace, labelSelector) => {
    const q = labelSelector ? { labelSelector } : {};
    return (
      namespace
        ? await api.listNamespacedConfigMap({ ...q, namespace })
        : await api.listConfigMapForAllNamespaces(q)
    ) as KubernetesListObject<TierflowObject>;
  };
}

/** Exponential backoff with +-20% jitter. */
export function backoffDelay(b: BackoffOptions, failures: number): number {
  const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(failures, 20));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}
