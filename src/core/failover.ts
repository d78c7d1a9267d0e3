// Failover rules shared by both data planes.

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
