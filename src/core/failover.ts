// Failover rules shared by both data planes.
import type { FailureKind } from './health/registry.js';

/** 429 and 5xx may be tried elsewhere; other 4xx are the client's problem and are not retried. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** Retry-After (seconds or an HTTP date) in milliseconds from `nowEpochMs`, if present and sane. */
export function retryAfterMs(value: string | string[] | undefined, nowEpochMs: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const trimmed = v.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowEpochMs);
}

/** What became of one attempt: metric label, log field and the failover decision's input. */
export type AttemptOutcome =
  | 'success'
  | 'client_error'
  | 'http_429'
  | 'http_5xx'
  | 'connect_error'
  | 'timeout'
  | 'reset'
  | 'stream_error'
  /** TierFlow itself ran out of a resource (descriptors, memory): nobody's health pays for it. */
  | 'local_error';

export function failureKindOf(outcome: AttemptOutcome): FailureKind | undefined {
  switch (outcome) {
    case 'http_429':
    case 'http_5xx':
    case 'connect_error':
    case 'timeout':
    case 'reset':
    case 'stream_error':
      return outcome;
    default:
      return undefined;
  }
}

export function outcomeOfStatus(status: number): AttemptOutcome {
  if (status === 429) return 'http_429';
  if (status >= 500) return 'http_5xx';
  if (status >= 400) return 'client_error';
  return 'success';
}
