// What `tierflow serve` tells a person at start-up about what can be served: the DEMO banner only
// while the local demo provider really answers; otherwise, when nothing can be served, which
// providers are disabled and why.
import type { CompiledConfig } from '../core/config/compiled.js';

/** The text for stderr, or undefined when real providers serve and nothing needs saying. */
export function startupNotice(
  config: CompiledConfig,
  options: { configFile: string; url: string; demoRunning: boolean },
): string | undefined {
  const providers = [...config.providers.values()];
  const demoServes = options.demoRunning && providers.some((p) => p.type === 'demo' && p.enabled);
  const disabled = providers
    .filter((p) => !p.enabled && p.type !== 'demo')
    .map((p) => `  - ${p.name} (${p.type}): ${p.disabledReason ?? 'disabled'}\n`)
    .join('');
  if (demoServes) {
    return (
      `\nTierFlow is running in DEMO mode: no provider has an API key, so answers come from a local demo provider.\n` +
      (disabled ? `Disabled providers:\n${disabled}` : '') +
      `Add keys with e.g. \`export OPENAI_API_KEY=sk-...\` (or ANTHROPIC_API_KEY, GEMINI_API_KEY; see ${options.configFile}) and restart.\n` +
      `Try it: curl ${options.url}/chat/completions -H 'content-type: application/json' -d '{"model":"${tryModel(config)}","messages":[{"role":"user","content":"Hello"}]}'\n\n`
    );
  }
  if (config.models.size > 0) return undefined;
  return (
    `\nTierFlow has no usable provider: every request will be answered 503 and /readyz says not ready.\n` +
    (disabled
      ? `Disabled providers:\n${disabled}`
      : providers.length === 0
        ? `${options.configFile} configures no provider.\n`
        : `The configured providers offer no model.\n`) +
    `Set the missing credentials and restart, or edit ${options.configFile} (reloaded within a second).\n\n`
  );
}

function tryModel(config: CompiledConfig): string {
  return config.virtualModels.keys().next().value ?? config.modelsByName.keys().next().value ?? 'auto';
}
