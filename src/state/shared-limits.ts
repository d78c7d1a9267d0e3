// Process-level wiring of shared virtual-key limits: reads the settings (flag or environment),
// starts the Redis sync on the router's limits and reports its state as metrics.
import type { CompiledConfig } from '../core/config/compiled.js';
import type { Router } from '../core/router.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { ResponseStore } from '../core/responses/store.js';
import { RedisResponseShare } from './redis-responses.js';
import { DEFAULT_SYNC_INTERVAL_MS, RedisLimitSync, redactRedisUrl } from './redis-sync.js';

export const SHARED_LIMITS_HELP = `      --redis URL       share virtual-key budgets and rate limits with other replicas through
                        Redis (env TIERFLOW_REDIS_URL; redis:// or rediss://). Password: in the
                        URL or env TIERFLOW_REDIS_PASSWORD. Sync interval: env
                        TIERFLOW_REDIS_SYNC_MS (default ${DEFAULT_SYNC_INTERVAL_MS}); key prefix: env
                        TIERFLOW_REDIS_PREFIX (default tierflow:, in an injected sidecar
                        tierflow:<namespace>:). Responses API conversations are shared
                        too, so previous_response_id works on every replica (env
                        TIERFLOW_REDIS_RESPONSES=off keeps them in each process)`;

export interface SharedLimitsSettings {
  url: string;
  password?: string;
  intervalMs: number;
  keyPrefix: string;
  /** Share stored Responses API conversations between replicas (default on). */
  shareResponses: boolean;
}

/** Settings from the --redis flag and the environment; undefined when not configured. Throws on bad values. */
export function sharedLimitsSettings(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): SharedLimitsSettings | undefined {
  const url = flag ?? env.TIERFLOW_REDIS_URL;
  if (!url) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('--redis is not a URL (expected redis://host:6379 or rediss://host:6380)');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    // the value is not echoed: whatever it is, it may hold a password
    throw new Error(`--redis must start with redis:// or rediss:// (got ${parsed.protocol}//...)`);
  }
  const intervalMs = Number(env.TIERFLOW_REDIS_SYNC_MS ?? DEFAULT_SYNC_INTERVAL_MS);
  if (!Number.isInteger(intervalMs) || intervalMs < 10 || intervalMs > 60_000) {
    throw new Error('TIERFLOW_REDIS_SYNC_MS must be an integer between 10 and 60000');
  }
  const responses = (env.TIERFLOW_REDIS_RESPONSES ?? 'on').toLowerCase();
  if (!['on', 'off', 'true', 'false', '1', '0'].includes(responses)) {
    throw new Error('TIERFLOW_REDIS_RESPONSES must be on or off');
  }
  const settings: SharedLimitsSettings = {
    url,
    intervalMs,
    keyPrefix: env.TIERFLOW_REDIS_PREFIX ?? 'tierflow:',
    shareResponses: ['on', 'true', '1'].includes(responses),
  };
  if (env.TIERFLOW_REDIS_PASSWORD) settings.password = env.TIERFLOW_REDIS_PASSWORD;
  return settings;
}

export async function startSharedLimits(
  settings: SharedLimitsSettings,
  deps: { router: () => Router | undefined; metrics: Metrics; log: Logger },
): Promise<RedisLimitSync | undefined> {
  const router = deps.router();
  if (!router) return undefined;
  const gauges = deps.metrics.sharedState();
  const sync = new RedisLimitSync(router.limits, {
    ...settings,
    configuredKeys: () => deps.router()?.config.virtualKeys.values() ?? [],
    log: deps.log,
    onState: (up) => gauges.up.set(up ? 1 : 0),
    onError: () => gauges.syncErrors.inc(),
  });
  await sync.start();
  deps.log.info('sharing virtual-key limits through Redis', {
    url: redactRedisUrl(settings.url),
    intervalMs: settings.intervalMs,
  });
  return sync;
}

/** Shares the process's stored Responses conversations with the other replicas, when the settings say so. */
export async function startResponseShare(
  settings: SharedLimitsSettings,
  store: ResponseStore,
  log: Logger,
): Promise<RedisResponseShare | undefined> {
  if (!settings.shareResponses) return undefined;
  const share = new RedisResponseShare(store, {
    url: settings.url,
    keyPrefix: settings.keyPrefix,
    log,
    ...(settings.password !== undefined ? { password: settings.password } : {}),
  });
  await share.start();
  log.info('sharing Responses API conversations through Redis', { url: redactRedisUrl(settings.url) });
  return share;
}

/**
 * For a process that keeps virtual-key usage in memory only (a sidecar without --redis): warns,
 * once, as soon as a configuration has budgets, because that spend is gone when the pod
 * restarts and every replica counts on its own.
 */
export function warnOnUnsharedBudgets(log: Logger): (config: CompiledConfig) => void {
  let warned = false;
  return (config) => {
    if (warned) return;
    const keys = [...config.virtualKeys.values()].filter((k) => k.budget).map((k) => k.name);
    if (keys.length === 0) return;
    warned = true;
    log.warn(
      'virtual-key budgets are kept in this process only: spend is lost when the pod restarts and each replica counts alone; start the sidecars with --redis to keep and share it',
      { keys },
    );
  };
}
