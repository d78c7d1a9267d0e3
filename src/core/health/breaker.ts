// One opossum circuit breaker per (provider, model). The data planes do not call the provider
// through the breaker (in the sidecar, Envoy makes the call), so each attempt fires the breaker
// with a promise that the attempt settles when its outcome is known.
import CircuitBreaker from 'opossum';
import type { CompiledProvider } from '../config/compiled.js';

export type BreakerState = 'closed' | 'half-open' | 'open';

export interface AttemptSettle {
  succeed(): void;
  fail(): void;
}

const passThrough = (outcome: Promise<void>) => outcome;

export class ModelBreaker {
  readonly #breaker: CircuitBreaker<[Promise<void>], void>;

  constructor(settings: CompiledProvider['breaker'], onStateChange?: (state: BreakerState) => void) {
    this.#breaker = new CircuitBreaker(passThrough, {
      timeout: false,
      errorThresholdPercentage: settings.errorThresholdPercentage,
      volumeThreshold: settings.volumeThreshold,
      resetTimeout: settings.resetTimeoutMs,
      rollingCountTimeout: settings.rollingWindowMs,
      rollingCountBuckets: 10,
      // Only the counts decide the state. opossum's defaults also keep latency percentiles and
      // emit a snapshot every bucket: each second (a 10 s window) it concatenated and sorted the
      // latency of every attempt in the window, per model, a cost that grew with the request rate.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    if (onStateChange) {
      this.#breaker.on('open', () => onStateChange('open'));
      this.#breaker.on('halfOpen', () => onStateChange('half-open'));
      this.#breaker.on('close', () => onStateChange('closed'));
    }
  }

  /** Closed, or half-open with its single probe still free. */
  get available(): boolean {
    return this.#breaker.closed || this.#breaker.pendingClose;
  }

  get state(): BreakerState {
    if (this.#breaker.opened) return 'open';
    return this.#breaker.halfOpen ? 'half-open' : 'closed';
  }

  /**
   * Starts an attempt, or returns undefined when the breaker refuses it (open, or a half-open
   * probe already running). Check and fire happen in one synchronous step, so two requests
   * cannot both take the probe.
   */
  begin(): AttemptSettle | undefined {
    if (!this.available) return undefined;
    const settle = new Settle();
    this.#breaker.fire(settle.promise).catch(ignore);
    return settle;
  }

  shutdown(): void {
    this.#breaker.shutdown();
  }
}

const attemptFailed = new Error('attempt failed');

/** The outcome the breaker waits on, and how the attempt settles it (no closures per attempt). */
class Settle implements AttemptSettle {
  readonly promise: Promise<void>;
  readonly #resolve: () => void;
  readonly #reject: (reason: Error) => void;

  constructor() {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.promise = promise;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  succeed(): void {
    this.#resolve();
  }

  fail(): void {
    this.#reject(attemptFailed);
  }
}
const ignore = () => {};
