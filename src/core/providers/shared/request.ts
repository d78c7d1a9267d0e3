// Small pieces every provider's request building shares.
import type { CompiledModel } from '../../config/compiled.js';

/** Join base URL and path; the base may or may not end with '/'. */
export function joinUrl(base: string, path: string): URL {
  return new URL((base.endsWith('/') ? base.slice(0, -1) : base) + path);
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
/** Lower-cased copies of configured header maps (compiled configs are not mutated). */
const LOWER_CASED = new WeakMap<object, Readonly<Record<string, string>>>();

/** Provider headers with lower-case names, read-only (callers spread them into their own headers). */
export function providerHeaders(model: CompiledModel): Readonly<Record<string, string>> {
  const headers = model.provider.headers;
  if (!headers) return NO_HEADERS;
  let out = LOWER_CASED.get(headers);
  if (!out) {
    const lower: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
    LOWER_CASED.set(headers, (out = Object.freeze(lower)));
  }
  return out;
}
