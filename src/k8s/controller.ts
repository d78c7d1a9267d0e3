// `tierflow controller`: watches the TierFlow objects of every namespace, compiles each namespace
// with the code the sidecars use and writes the result into status (leader only), serves the
// mutating admission webhook (every replica), and exposes health and metrics.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CompileOptions } from '../core/config/compile.js';
import { Secret } from '../core/secret.js';
import { serveOps } from '../observe/ops-http.js';
import type { InjectorConfig } from './inject.js';
import { fileStamp } from './injector-config.js';
import { ResourceInformer, type BackoffOptions, type WatchedKind } from './informers.js';
import { LeaderElector } from './leader.js';
import { errorText, silentLogger, type Logger } from './log.js';
import {
  buildNamespaceConfig,
  LastGoodStore,
  type NamespaceBuild,
  type NamespaceObjects,
  type TierflowObject,
} from './namespace-config.js';
import { RESOURCES, type ResourceKey } from './resources.js';
import {
  forbiddenRouters,
  ROUTER_CONFIGMAPS,
  RouterCache,
  routerMapsForbidden,
  type ConfigMapObject,
} from './routers.js';
import { referencedSecretNames } from './secrets.js';
import { conditionsFor, KubeStatusPatcher, writeStatuses, type StatusPatcher } from './status.js';
import { webhookHandler } from './webhook.js';

export interface WebhookServerOptions {
  port: number;
  host?: string;
  /** PEM files (a mounted Secret: reloaded when they change). Plain HTTP when omitted (tests only). */
  certFile?: string;
  keyFile?: string;
  injector: () => InjectorConfig;
  failClosed: boolean;
}

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  /** The controller's own namespace (its Lease lives there). */
  namespace: string;
  identity: string;
  leaderElection?:
    | { leaseName: string; leaseDurationSeconds?: number; renewDeadlineMs?: number; retryPeriodMs?: number }
    | false;
  webhook?: WebhookServerOptions;
  /** Health (/healthz, /readyz) and /metrics. */
  metrics?: { port: number; host?: string };
  /** Full status recomputation period. */
  resyncMs?: number;
  debounceMs?: number;
  backoff?: BackoffOptions;
  log?: Logger;
  registry?: Registry;
  statusPatcher?: StatusPatcher;
}

/** The controller compiles structure, not keys: every reference gets a stand-in credential. */
const PLACEHOLDER: Pick<CompileOptions, 'resolveCredentials' | 'resolveVirtualKey'> = {
  resolveCredentials: (provider) => ({
    apiKey: new Secret(`placeholder:${provider}`),
    awsAccessKeyId: new Secret('placeholder'),
    awsSecretAccessKey: new Secret('placeholder'),
  }),
  resolveVirtualKey: (name) => new Secret(`placeholder:${name}`),
};

/** Days before expiry from which the controller warns about its webhook certificate. */
const CERT_WARN_DAYS = 30;

export class Controller {
  readonly #o: ControllerOptions;
  readonly #log: Logger;
  readonly #informers: ResourceInformer[];
  /** ConfigMaps labelled tierflow.dev/router, in every namespace: the routers policies name. */
  readonly #routerMaps: ResourceInformer<WatchedKind>;
  readonly #routers = new RouterCache();
  /** The router ConfigMaps could not be listed (HTTP 403) last time: re-check every namespace once they can. */
  #routersForbidden = false;
  readonly #lastGood = new Map<string, LastGoodStore>();
  readonly #dirty = new Set<string>();
  readonly #patcher: StatusPatcher;
  readonly registry: Registry;
  readonly #elector?: LeaderElector;
  #allDirty = true;
  #timer: NodeJS.Timeout | undefined;
  #resync: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;
  #webhookServer?: Server | HttpsServer;
  #metricsServer?: Server;
  #certStamp = '';
  #certTimer: NodeJS.Timeout | undefined;
  readonly #m: {
    webhook: Counter<'result'>;
    statusWrites: Counter<'result'>;
    reconciles: Counter<'result'>;
    leader: Gauge;
    certExpiry: Gauge;
    objects: Gauge<'kind' | 'ready'>;
  };
  /** Latest build per namespace (diagnostics and tests). */
  readonly builds = new Map<string, NamespaceBuild>();

  constructor(options: ControllerOptions) {
    this.#o = options;
    this.#log = options.log ?? silentLogger;
    this.#patcher = options.statusPatcher ?? new KubeStatusPatcher(options.kubeConfig);
    this.registry = options.registry ?? new Registry();
    const reg = [this.registry];
    this.#m = {
      webhook: new Counter({
        name: 'tierflow_controller_webhook_requests_total',
        help: 'Admission reviews handled, by result (injected, skipped, error).',
        labelNames: ['result'],
        registers: reg,
      }),
      statusWrites: new Counter({
        name: 'tierflow_controller_status_writes_total',
        help: 'Status subresource writes, by result (written, unchanged, conflict, failed).',
        labelNames: ['result'],
        registers: reg,
      }),
      reconciles: new Counter({
        name: 'tierflow_controller_reconciles_total',
        help: 'Namespace reconciliations, by result (compiled, invalid).',
        labelNames: ['result'],
        registers: reg,
      }),
      leader: new Gauge({
        name: 'tierflow_controller_leader',
        help: '1 while this replica holds the lease.',
        registers: reg,
      }),
      certExpiry: new Gauge({
        name: 'tierflow_controller_webhook_certificate_expiry_timestamp_seconds',
        help: 'When the webhook serving certificate in use expires (Unix time). The chart renews its own certificate on a helm upgrade within webhook.generatedCertRenewDays; cert-manager renews by itself.',
        registers: reg,
      }),
      objects: new Gauge({
        name: 'tierflow_controller_objects',
        help: 'TierFlow objects by kind and Ready status.',
        labelNames: ['kind', 'ready'],
        registers: reg,
      }),
    };
    this.#informers = RESOURCES.map(
      (info) =>
        new ResourceInformer(options.kubeConfig, info, {
          onChange: () => this.#schedule(),
          onObject: (obj) => {
            if (obj.metadata?.namespace) this.#dirty.add(obj.metadata.namespace);
          },
          log: this.#log,
          ...(options.backoff ? { backoff: options.backoff } : {}),
        }),
    );
    this.#routerMaps = new ResourceInformer<WatchedKind>(options.kubeConfig, ROUTER_CONFIGMAPS, {
      onChange: () => {
        if (this.#routersForbidden && this.#routerMaps.synced) {
          this.#routersForbidden = false;
          this.#allDirty = true;
        }
        this.#schedule();
      },
      // A 403 does not hold status back (see routerMapsForbidden): policies naming a router say why.
      onError: () => {
        if (routerMapsForbidden(this.#routerMaps)) this.#routersForbidden = true;
        this.#allDirty = true;
        this.#schedule();
      },
      onObject: (obj) => {
        if (obj.metadata?.namespace) this.#dirty.add(obj.metadata.namespace);
      },
      log: this.#log,
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
    if (options.leaderElection) {
      const le = options.leaderElection;
      this.#elector = new LeaderElector(options.kubeConfig, {
        namespace: options.namespace,
        name: le.leaseName,
        identity: options.identity,
        ...(le.leaseDurationSeconds ? { leaseDurationSeconds: le.leaseDurationSeconds } : {}),
        ...(le.renewDeadlineMs ? { renewDeadlineMs: le.renewDeadlineMs } : {}),
        ...(le.retryPeriodMs ? { retryPeriodMs: le.retryPeriodMs } : {}),
        log: this.#log,
        onStartedLeading: () => {
          this.#m.leader.set(1);
          this.#allDirty = true;
          this.#schedule();
        },
        onStoppedLeading: () => this.#m.leader.set(0),
      });
    } else {
      this.#m.leader.set(1);
    }
  }

  get isLeader(): boolean {
    return this.#elector ? this.#elector.isLeader : true;
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

  get webhookAddress(): AddressInfo | undefined {
    return this.#webhookServer?.address() as AddressInfo | undefined;
  }

  get metricsAddress(): AddressInfo | undefined {
    return this.#metricsServer?.address() as AddressInfo | undefined;
  }

  async start(): Promise<void> {
    if (this.#o.metrics)
      this.#metricsServer = await this.#listen(
        createHttpServer((q, s) => this.#serveOps(q, s)),
        this.#o.metrics,
      );
    if (this.#o.webhook) await this.#startWebhook(this.#o.webhook);
    await Promise.all(this.#allInformers().map((i) => i.start()));
    this.#elector?.start();
    this.#resync = setInterval(() => {
      this.#allDirty = true;
      this.#schedule();
    }, this.#o.resyncMs ?? 300_000);
    this.#resync.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#resync);
    clearInterval(this.#certTimer);
    await this.#running;
    await this.#elector?.stop();
    await Promise.all(this.#allInformers().map((i) => i.stop()));
    await Promise.all(
      [this.#webhookServer, this.#metricsServer].map(
        (s) =>
          s &&
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections?.();
          }),
      ),
    );
  }

  /** Secret names the TierFlow objects of a namespace reference (the webhook mounts them). */
  referencedSecrets(namespace: string): string[] {
    const specs: unknown[] = [];
    for (const inf of this.#informers) {
      if (inf.info.key === 'policies') continue;
      for (const o of inf.list()) if (o.metadata?.namespace === namespace) specs.push(o.spec);
    }
    return referencedSecretNames(specs);
  }

  /** Waits until pending reconciliations are done (tests). */
  async idle(): Promise<void> {
    while (this.#timer || this.#dirty.size || this.#allDirty) {
      if (!this.synced) await Promise.all(this.#informers.map((i) => i.waitForSync()));
      await new Promise((r) => setTimeout(r, 10));
      await this.#running;
      if (!this.#timer && (this.#dirty.size || this.#allDirty)) this.#schedule();
    }
    await this.#running;
  }

  #schedule(delayMs = this.#o.debounceMs ?? 100) {
    if (this.#stopped || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#running
        .then(() => this.#reconcileDirty())
        .catch((err: unknown) => {
          this.#log.error('reconcile failed', { err: errorText(err) });
        });
    }, delayMs);
    this.#timer.unref?.();
  }

  #objectsByNamespace(): Map<string, NamespaceObjects> {
    const out = new Map<string, NamespaceObjects>();
    for (const inf of this.#informers) {
      for (const o of inf.list()) {
        const ns = o.metadata?.namespace ?? '';
        let entry = out.get(ns);
        if (!entry) {
          entry = { providers: [], policies: [], virtualKeys: [] };
          out.set(ns, entry);
        }
        (entry[inf.info.key] as TierflowObject[]).push(o);
      }
    }
    return out;
  }

  async #reconcileDirty(): Promise<void> {
    if (!this.synced || this.#stopped) return;
    const byNs = this.#objectsByNamespace();
    const namespaces = this.#allDirty ? new Set([...byNs.keys(), ...this.#dirty]) : new Set(this.#dirty);
    this.#allDirty = false;
    this.#dirty.clear();
    this.#routers.retain(this.#routerMaps.list() as ConfigMapObject[]);
    for (const ns of namespaces) {
      const objects = byNs.get(ns);
      if (!objects) {
        this.#lastGood.delete(ns);
        this.builds.delete(ns);
        continue;
      }
      await this.reconcileNamespace(ns, objects);
    }
    this.#updateObjectGauge();
    // Failed or conflicting writes: try again soon even if no watch event comes.
    if (this.#dirty.size) this.#schedule(1000);
  }

  async reconcileNamespace(namespace: string, objects: NamespaceObjects): Promise<NamespaceBuild> {
    let store = this.#lastGood.get(namespace);
    if (!store) this.#lastGood.set(namespace, (store = new LastGoodStore()));
    const configMaps = (this.#routerMaps.list() as ConfigMapObject[]).filter(
      (c) => c.metadata?.namespace === namespace,
    );
    const build = buildNamespaceConfig(objects, {
      lastGood: store,
      compile: PLACEHOLDER,
      resolveRouter: (ref) =>
        routerMapsForbidden(this.#routerMaps)
          ? forbiddenRouters('the TierFlow controller')
          : this.#routers.resolve(configMaps, namespace, ref),
    });
    this.builds.set(namespace, build);
    this.#m.reconciles.inc({ result: build.config ? 'compiled' : 'invalid' });
    if (!this.isLeader) return build;
    const byName = new Map<string, TierflowObject>();
    for (const { key } of RESOURCES)
      for (const o of objects[key]) byName.set(`${key}/${o.metadata?.name}`, o);
    const r = await writeStatuses(this.#patcher, namespace, byName, build);
    this.#m.statusWrites.inc({ result: 'written' }, r.written);
    this.#m.statusWrites.inc({ result: 'unchanged' }, r.unchanged);
    this.#m.statusWrites.inc({ result: 'conflict' }, r.conflicts);
    this.#m.statusWrites.inc({ result: 'failed' }, r.failed);
    if (r.conflicts || r.failed) {
      // a conflict means a newer object is on its way through the watch; a failure is retried
      this.#dirty.add(namespace);
      if (r.failed) this.#log.warn('status writes failed', { namespace, failed: r.failed });
    }
    return build;
  }

  #updateObjectGauge() {
    const counts = new Map<string, number>();
    for (const build of this.builds.values()) {
      for (const o of build.outcomes) {
        // As the Ready condition says: a policy scoring with a stand-in router is not ready.
        const ready = conditionsFor(o, build).some((c) => c.type === 'Ready' && c.status === 'True')
          ? 'true'
          : 'false';
        counts.set(`${o.key}|${ready}`, (counts.get(`${o.key}|${ready}`) ?? 0) + 1);
      }
    }
    for (const { key } of RESOURCES as readonly { key: ResourceKey }[]) {
      for (const ready of ['true', 'false'])
        this.#m.objects.set({ kind: key, ready }, counts.get(`${key}|${ready}`) ?? 0);
    }
  }

  async #listen<S extends Server | HttpsServer>(server: S, at: { port: number; host?: string }): Promise<S> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // No host given: Node listens on "::" (IPv6 and IPv4) where the host has IPv6, else 0.0.0.0.
      const done = () => {
        server.off('error', reject);
        resolve();
      };
      if (at.host === undefined) server.listen(at.port, done);
      else server.listen(at.port, at.host, done);
    });
    return server;
  }

  async #startWebhook(w: WebhookServerOptions) {
    const handle = webhookHandler({
      injector: w.injector,
      referencedSecrets: (ns) => this.referencedSecrets(ns),
      failClosed: w.failClosed,
      log: this.#log,
      onResult: (result) => this.#m.webhook.inc({ result }),
    });
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      if (!handle(req, res)) {
        if (req.url === '/healthz') res.writeHead(200).end('ok');
        else res.writeHead(404).end();
      }
    };
    if (w.certFile && w.keyFile) {
      const { certFile, keyFile } = w;
      const server = createHttpsServer(
        { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' },
        listener,
      );
      this.#certStamp = fileStamp(certFile, keyFile);
      this.#noteCertificate(certFile);
      // cert-manager (or a chart upgrade) rotates the mounted Secret: swap the context in place.
      this.#certTimer = setInterval(() => {
        const now = fileStamp(certFile, keyFile);
        if (now === this.#certStamp) return;
        try {
          server.setSecureContext({
            cert: readFileSync(certFile),
            key: readFileSync(keyFile),
            minVersion: 'TLSv1.2',
          });
          this.#certStamp = now;
          this.#log.info('webhook certificate reloaded');
          this.#noteCertificate(certFile);
        } catch (err) {
          this.#log.warn('webhook certificate reload failed', { err: errorText(err) });
        }
      }, 10_000);
      this.#certTimer.unref();
      this.#webhookServer = await this.#listen(server, w);
    } else {
      this.#webhookServer = await this.#listen(createHttpServer(listener), w);
    }
  }

  /** Exports the serving certificate's expiry, and warns when it is close. */
  #noteCertificate(certFile: string) {
    try {
      const expires = Date.parse(new X509Certificate(readFileSync(certFile)).validTo);
      this.#m.certExpiry.set(Math.round(expires / 1000));
      const days = Math.floor((expires - Date.now()) / 86_400_000);
      if (days < CERT_WARN_DAYS)
        this.#log.warn('webhook certificate expires soon', {
          days,
          hint: 'helm upgrade renews the chart-generated certificate (webhook.generatedCertRenewDays); with cert-manager, check the Certificate',
        });
    } catch (err) {
      this.#log.warn('cannot read the webhook certificate expiry', { err: errorText(err) });
    }
  }

  #serveOps(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '').split('?')[0]!;
    const ops = {
      registry: this.registry,
      ready: () =>
        !this.synced
          ? 'informers not synced'
          : this.#o.webhook && !this.#webhookServer?.listening
            ? 'webhook not listening'
            : (true as const),
    };
    if (!serveOps(req, res, path, ops)) res.writeHead(404).end();
  }
}

export { collectDefaultMetrics };
