// A configuration that compiles can still serve nothing: no provider with a usable model (every
// key missing, `providers: []`), or no routing policy with a usable model (`policies: []`, so
// `model: "auto"` is unknown). Applied, it would turn every request into an error; the file
// loader refuses it like an invalid config, so the last good one keeps serving.
import type { CompiledConfig } from './compiled.js';

/** Why `config` can serve no request, or undefined when it can. */
export function unservableReason(config: CompiledConfig): string | undefined {
  if (config.models.size === 0) {
    return 'no provider has a usable model (none configured, or every provider is disabled for missing credentials): every request would fail';
  }
  for (const policy of config.policies.values()) {
    if (policy.tiers.some((t) => t.candidates.length > 0)) return undefined;
  }
  return 'no routing policy has a usable model: virtual models such as "auto" would not exist';
}
