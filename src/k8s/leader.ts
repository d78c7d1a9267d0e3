// Leader election on a coordination.k8s.io/v1 Lease, so that only one controller replica writes
// status. Follows the client-go rules: a lease is expired when its record has not changed for
// leaseDurationSeconds of *local* time (no clock comparison with other replicas); updates carry the
// resourceVersion they read, so two candidates cannot both win; a leader that cannot renew within
// renewDeadline steps down before anyone else can take over.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { errorText, silentLogger, type Logger } from './log.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  log?: Logger;
  /** For tests. */
  now?: () => number;
}

function codeOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  return typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
}

export class LeaderElector {
  readonly #api: CoordinationV1Api;
  readonly #o: Required<Omit<LeaderElectionOptions, 'onStartedLeading' | 'onStoppedLeading' | 'log' | 'now'>>;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #onStarted?: () => void;
  readonly #onStopped?: () => void;
  #leader = false;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #lastRenew = 0;
  #observed = '';
  #observedAt = 0;
  #loop: Promise<void> | undefined;

  constructor(kc: KubeConfig, options: LeaderElectionOptions) {
    this.#api = kc.makeApiClient(CoordinationV1Api);
    this.#o = {
      namespace: options.namespace,
      name: options.name,
      identity: options.identity,
      leaseDurationSeconds: options.leaseDurationSeconds ?? 15,
      renewDeadlineMs: options.renewDeadlineMs ?? 10_000,
      retryPeriodMs: options.retryPeriodMs ?? 2_000,
    };
    this.#log = options.log ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#onStarted = options.onStartedLeading;
    this.#onStopped = options.onStoppedLeading;
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#tick();
  }

  /** Stops; a leader releases the lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    await this.#loop;
    if (this.#leader) {
      try {
        const lease = await this.#read();
        if (lease?.spec?.holderIdentity === this.#o.identity) {
          lease.spec.holderIdentity = undefined;
          lease.spec.leaseDurationSeconds = 1;
          lease.spec.renewTime = new V1MicroTime(this.#now());
          await this.#api.replaceNamespacedLease({
            namespace: this.#o.namespace,
            name: this.#o.name,
            body: lease,
          });
        }
      } catch (err) {
        this.#log.warn('could not release the lease', { err: errorText(err) });
      }
      this.#setLeader(false);
    }
  }

  #tick() {
    if (!this.#running) return;
    this.#loop = this.tryAcquireOrRenew()
      .then((ok) => {
        if (ok) {
          this.#lastRenew = this.#now();
          this.#setLeader(true);
        } else if (this.#leader && this.#now() - this.#lastRenew > this.#o.renewDeadlineMs) {
          this.#log.warn('lost the lease (renew deadline passed)', { lease: this.#o.name });
          this.#setLeader(false);
        }
      })
      .finally(() => {
        if (!this.#running) return;
        this.#timer = setTimeout(() => this.#tick(), this.#o.retryPeriodMs);
        this.#timer.unref?.();
      });
  }

  #setLeader(v: boolean) {
    if (this.#leader === v) return;
    this.#leader = v;
    this.#log.info(v ? 'became leader' : 'stopped leading', {
      lease: this.#o.name,
      identity: this.#o.identity,
    });
    try {
      (v ? this.#onStarted : this.#onStopped)?.();
    } catch (err) {
      this.#log.error('leader callback failed', { err: errorText(err) });
    }
  }

  async #read(): Promise<V1Lease | undefined> {
    try {
      return await this.#api.readNamespacedLease({ namespace: this.#o.namespace, name: this.#o.name });
    } catch (err) {
      if (codeOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** One election round; true when this replica holds the lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.#now();
    const { namespace, name, identity, leaseDurationSeconds } = this.#o;
    try {
      const lease = await this.#read();
      if (!lease) {
        await this.#api.createNamespacedLease({
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds,
              acquireTime: new V1MicroTime(now),
              renewTime: new V1MicroTime(now),
              leaseTransitions: 0,
            },
          },
        });
        return true;
      }
      const spec = lease.spec ?? {};
      const record = `${spec.holderIdentity ?? ''}|${spec.renewTime ? new Date(spec.renewTime).getTime() : ''}|${spec.leaseDurationSeconds ?? ''}`;
      if (record !== this.#observed) {
        this.#observed = record;
        this.#observedAt = now;
      }
      const holder = spec.holderIdentity;
      const duration = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
      if (holder && holder !== identity && this.#observedAt + duration > now) return false;
      const transitions = (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
      lease.spec = {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: new V1MicroTime(
          holder === identity && spec.acquireTime ? new Date(spec.acquireTime).getTime() : now,
        ),
        renewTime: new V1MicroTime(now),
        leaseTransitions: transitions,
      };
      await this.#api.replaceNamespacedLease({ namespace, name, body: lease });
      return true;
    } catch (err) {
      const code = codeOf(err);
      if (code !== 409) this.#log.warn('lease update failed', { lease: name, err: errorText(err) });
      return false;
    }
  }
}
