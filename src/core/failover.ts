// Failover rules shared by both data planes.
import type { FailureKind } from './health/registry.js';

/** 429 and 5xx may be tried elsewhere; other 4xx are the client's problem and are not retried. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** What a provider's response status means for the attempt. */
export type StatusVerdict = 'ok' | 'failover' | 'credentials' | 'client_error';

/**
 * 1xx-3xx: the provider answered. 401/403: it refused TierFlow's credentials (never the client's:
 * the client's key is not sent upstream). 429, 5xx and the policy's extra statuses: try elsewhere.
 * Other 4xx: the request itself is wrong; answered as is, no failover.
 */
export function statusVerdict(status: number, extraFailover: readonly number[] = []): StatusVerdict {
  if (status >= 100 && status < 400) return 'ok';
  if (status === 401 || status === 403) return 'credentials';
  if (isRetryableStatus(status) || status < 100 || extraFailover.includes(status)) return 'failover';
  return 'client_error';
}

/**
 * Failures of the provider as a whole rather than of one model: connection, timeout, reset, its
 * credentials, a 5xx whose error code does not name the model. The next attempt goes to another
 * provider first.
 */
export function isProviderWide(outcome: AttemptOutcome, errorCode?: string | null): boolean {
  switch (outcome) {
    case 'connect_error':
    case 'timeout':
    case 'reset':
    case 'auth_error':
      return true;
    case 'http_5xx':
      return !(errorCode && /model/i.test(errorCode));
    default:
      return false;
  }
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
  /** A 4xx the policy lists in failover.onStatusCodes. */
  | 'http_4xx'
  | 'connect_error'
  | 'timeout'
  | 'reset'
  | 'stream_error'
  /** The provider refused TierFlow's own credentials (401/403). */
  | 'auth_error'
  /** TierFlow itself ran out of a resource (descriptors, memory): nobody's health pays for it. */
  | 'local_error';

export function failureKindOf(outcome: AttemptOutcome): FailureKind | undefined {
  switch (outcome) {
    case 'http_429':
    case 'http_5xx':
    case 'http_4xx':
    case 'connect_error':
    case 'timeout':
    case 'reset':
    case 'stream_error':
    case 'auth_error':
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
