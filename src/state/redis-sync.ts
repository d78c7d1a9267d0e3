// Shared virtual-key limits through Redis: every replica (gateway or sidecar) adds what it
// counted to per-key totals in Redis and reads back what all replicas counted, on a timer.
// The request path never waits for Redis (see src/core/limits.ts for the accounting model).
//
// Redis layout, per virtual key (identified by a prefix of its sha256, never the key itself):
//   <prefix>rl:<key>:<epoch minute>   hash {r: requests, t: tokens}, expires after 2 minutes
//   <prefix>spend:<key>:<period>      integer nano-USD spent in the budget period ("2026-11",
//                                     "2026-11-25"), expires a few days after the period ends
// One pipelined round trip per sync; INCRBY answers with the new totals.
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import type { CompiledVirtualKey } from '../core/config/compiled.js';
import type { KeyLimits, PendingUsage, SharedTotals } from '../core/limits.js';
import type { Logger } from '../observe/log.js';

export interface RedisSyncOptions {
  /** redis:// or rediss:// URL. A password in it is used, never logged. */
  url: string;
  /** Password when it is not in the URL (for example from a mounted Secret). */
  password?: string;
  /** Prefix of every key TierFlow writes (default "tierflow:"). */
  keyPrefix?: string;
  /** How often to sync (default 500 ms): the bound on how stale another replica's usage is. */
  intervalMs?: number;
  /** The virtual keys configured now: synced once when Redis is (re)reached. */
  configuredKeys: () => Iterable<CompiledVirtualKey>;
  log: Logger;
  /** Called with true/false when Redis becomes reachable/unreachable. */
  onState?: (up: boolean) => void;
  /** Called after each failed sync. */
  onError?: () => void;
}

export const DEFAULT_SYNC_INTERVAL_MS = 500;
/**
 * Keys this replica has not used lately are read this often (and at every (re)connect), so
 * their metrics and first admissions start from recent totals while Redis sees few commands:
 * each sync carries only the keys used in the last two minutes.
 */
const PRIME_INTERVAL_MS = 30_000;
const NANO = 1e9;
const MINUTE_TTL_MS = 120_000;
const DAY_S = 86_400;

/**
 * How TierFlow's Redis clients behave: commands fail at once while disconnected (the usage goes
 * back to the local counters and the next sync retries; a shared response is simply not shared)
 * instead of piling up in a client-side queue; reconnects back off to 3 s. Connect with connect().
 */
export function redisClientOptions(password?: string): RedisOptions {
  const opts: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 3_000),
    lazyConnect: true,
  };
  if (password !== undefined) opts.password = password;
  return opts;
}

/** An error text without the password, whatever the client put in it. */
export function scrubRedisError(message: string, url: string, password?: string): string {
  let out = message;
  let urlPassword = '';
  try {
    urlPassword = decodeURIComponent(new URL(url).password);
  } catch {
    /* no password to hide */
  }
  for (const secret of [password, urlPassword]) {
    if (secret) out = out.replaceAll(secret, '***');
  }
  return out;
}

/** "redis://user:secret@host:6379/0" -> "redis://user:***@host:6379/0", for logs and errors. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable Redis URL)';
  }
}

/** Redis took every part of this usage. */
function complete(u: PendingUsage, answer: SharedTotals | undefined): boolean {
  return answer?.spentUsd !== undefined && (u.minute < 0 || answer.minute !== undefined);
}

/** Seconds a period's spend is kept: its length plus a margin for late syncs and reports. */
function spendTtlSeconds(kind: 'day' | 'month'): number {
  return kind === 'day' ? 3 * DAY_S : 35 * DAY_S;
}

export class RedisLimitSync {
  readonly #limits: KeyLimits;
  readonly #options: RedisSyncOptions;
  readonly #prefix: string;
  #redis: RedisClient | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #up = false;
  /** When every configured key was last read (not only the recently used ones); -Infinity: never since Redis was reached. */
  #primedAt = Number.NEGATIVE_INFINITY;
  /** The current outage has been logged. */
  #reportedDown = false;
  #closed = false;

  constructor(limits: KeyLimits, options: RedisSyncOptions) {
    this.#limits = limits;
    this.#options = options;
    this.#prefix = options.keyPrefix ?? 'tierflow:';
  }

  /** Connects (without waiting for Redis to be up) and starts the timer. */
  async start(): Promise<void> {
    const { Redis } = await import('ioredis');
    const o = this.#options;
    const redis = new Redis(o.url, redisClientOptions(o.password));
    this.#redis = redis;
    redis.on('ready', () => this.#setUp(true));
    redis.on('end', () => this.#setUp(false));
    redis.on('error', (err: Error) => {
      // ioredis repeats this on every reconnect attempt: report the transition only.
      if (this.#up || !this.#reportedDown) {
        this.#reportedDown = true;
        this.#options.log.warn('redis_unreachable', {
          url: redactRedisUrl(o.url),
          error: this.#scrub(err.message),
        });
      }
      this.#setUp(false);
    });
    redis.connect().catch(() => {
      /* reported through 'error'; ioredis keeps reconnecting */
    });
    this.#timer = setInterval(() => void this.sync(), o.intervalMs ?? DEFAULT_SYNC_INTERVAL_MS);
    this.#timer.unref();
  }

  #setUp(up: boolean): void {
    if (up === this.#up) return;
    this.#up = up;
    if (up) {
      this.#reportedDown = false;
      this.#primedAt = Number.NEGATIVE_INFINITY;
      this.#options.log.info('redis_connected', { url: redactRedisUrl(this.#options.url) });
      void this.sync();
    }
    this.#options.onState?.(up);
  }

  #scrub(message: string): string {
    return scrubRedisError(message, this.#options.url, this.#options.password);
  }

  get up(): boolean {
    return this.#up;
  }

  /** One sync now (or wait for the one under way). Never throws. */
  sync(): Promise<void> {
    this.#running ??= this.#syncOnce().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #syncOnce(): Promise<void> {
    const redis = this.#redis;
    if (!redis || !this.#up) return;
    const now = Date.now();
    const priming = now - this.#primedAt >= PRIME_INTERVAL_MS;
    const pending = this.#limits.takePending(priming ? this.#options.configuredKeys() : []);
    if (pending.length === 0) {
      if (priming) this.#primedAt = now;
      return;
    }
    let answers: Array<SharedTotals | undefined> = [];
    try {
      answers = await this.#exchange(redis, pending);
    } catch (err) {
      this.#failed(err as Error, pending.length);
    }
    this.#limits.settle(pending, answers);
    if (answers.length === 0) return;
    if (priming) this.#primedAt = now;
    const refused = pending.filter((u, i) => !complete(u, answers[i])).length;
    if (refused > 0) this.#failed(new Error('Redis refused part of the sync'), refused);
  }

  #failed(err: Error, keys: number): void {
    this.#options.onError?.();
    this.#options.log.warn('redis_sync_failed', { error: this.#scrub(err.message), keys });
  }

  /**
   * One pipelined round trip. Each entry's parts are answered on their own: Redis pipelines are
   * not transactions, so a part that failed (say a key of the wrong type) must not make the parts
   * that were applied be sent again. A lost reply (timeout) gives everything back to the next sync:
   * usage is counted at least once, never dropped.
   */
  async #exchange(
    redis: RedisClient,
    pending: readonly PendingUsage[],
  ): Promise<Array<SharedTotals | undefined>> {
    const p = redis.pipeline();
    pending.forEach((u) => {
      const key = u.keyHash.slice(0, 32);
      if (u.minute >= 0) {
        const rl = `${this.#prefix}rl:${key}:${u.minute}`;
        p.hincrby(rl, 'r', u.requests);
        p.hincrby(rl, 't', u.tokens);
        p.pexpire(rl, MINUTE_TTL_MS);
      }
      const spend = `${this.#prefix}spend:${key}:${u.period}`;
      p.incrby(spend, Math.round(u.spentUsd * NANO));
      p.expire(spend, spendTtlSeconds(u.periodKind));
    });
    const replies = await p.exec();
    if (!replies) throw new Error('Redis pipeline was discarded');
    let k = 0;
    const next = (): number | undefined => {
      const [err, value] = replies[k++] ?? [new Error('missing reply')];
      return err ? undefined : Number(value);
    };
    return pending.map((u) => {
      const out: SharedTotals = {};
      if (u.minute >= 0) {
        const requests = next();
        const tokens = next();
        next();
        if (requests !== undefined && tokens !== undefined) out.minute = { requests, tokens };
      }
      const spent = next();
      next();
      if (spent !== undefined) out.spentUsd = spent / NANO;
      return out;
    });
  }

  /** Stops the timer, hands what is still counted locally to Redis, and disconnects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
    await this.sync();
    const redis = this.#redis;
    if (!redis) return;
    if (this.#up) await redis.quit().catch(() => redis.disconnect());
    else redis.disconnect();
  }
}
