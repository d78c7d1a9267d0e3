// Small pieces every provider's request building shares.
import type { CompiledModel } from '../../config/compiled.js';

/** Join base URL and path; the base may or may not end with '/'. */
export function joinUrl(base: string, path: string): URL {
  return new URL((base.endsWith('/') ? base.slice(0, -1) : base) + path);
}

/** Provider headers with lower-case names. */
export function providerHeaders(model: CompiledModel): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(model.provider.headers ?? {})) out[k.toLowerCase()] = v;
  return out;
}
