// What a virtual key has left, as answer headers: OpenAI's x-ratelimit-* names and formats (so
// clients that read OpenAI's headers read TierFlow's), plus the budget, which OpenAI has no
// header for.
import type { KeyStatus, WindowStatus } from './limits.js';

export const BUDGET_REMAINING_HEADER = 'x-tierflow-budget-remaining-usd';

/** Headers for any answer to a request made with the key; empty when the key has no limits. */
export function limitHeaders(status: KeyStatus): Record<string, string> {
  const h: Record<string, string> = {};
  if (status.requests) window(h, 'requests', status.requests);
  if (status.tokens) window(h, 'tokens', status.tokens);
  if (status.budget) h[BUDGET_REMAINING_HEADER] = status.budget.remainingUsd.toFixed(6);
  return h;
}

/**
 * Headers of a 429 the key's own limits gave: Retry-After (whole seconds) and retry-after-ms
 * (read by the official SDKs). When waiting cannot help within reason (a spent budget), the
 * SDKs are told not to retry at all (`x-should-retry: false`) instead of sleeping until the
 * budget period ends.
 */
export function limitErrorHeaders(
  status: KeyStatus,
  retryAfterMs: number,
  retry: boolean,
): Record<string, string> {
  const h = limitHeaders(status);
  h['retry-after'] = String(Math.ceil(retryAfterMs / 1000));
  if (retry) h['retry-after-ms'] = String(retryAfterMs);
  else h['x-should-retry'] = 'false';
  return h;
}

function window(h: Record<string, string>, kind: 'requests' | 'tokens', w: WindowStatus): void {
  h[`x-ratelimit-limit-${kind}`] = String(w.limit);
  h[`x-ratelimit-remaining-${kind}`] = String(w.remaining);
  h[`x-ratelimit-reset-${kind}`] = formatDuration(w.resetMs);
}

/** A duration the way OpenAI writes its reset headers: "20ms", "1.5s", "6m0s", "1h2m3s". */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const s = (total % 60_000) / 1000;
  const sec = `${Number(s.toFixed(3))}s`;
  if (h > 0) return `${h}h${m}m${sec}`;
  if (m > 0) return `${m}m${sec}`;
  return sec;
}
