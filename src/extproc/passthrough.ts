// Requests other than chat completions, responses and embeddings (moderations, files, audio...):
// TierFlow does not translate them, it sends them unchanged to an OpenAI-wire provider of the
// config, with that provider's key. Which provider: the one offering the model the body names, else the first
// OpenAI-wire model of the first policy (the `auto` policy's family), else any OpenAI-wire provider.
// Only allowed OpenAI API paths get here (src/core/passthrough-paths.ts).
import type { CompiledConfig, CompiledModel, CompiledProvider } from '../core/config/compiled.js';
import { ApiError } from '../core/errors.js';
import type { HealthRegistry } from '../core/health/registry.js';
import { redact } from '../core/redact.js';
import { openaiAuthHeaders } from '../core/providers/openai/auth.js';
import { bodyExcerpt, clientStatusFor, tryParseJson } from '../core/providers/shared/upstream-error.js';
import { providerSpec } from '../core/providers/table.js';

/** The provider speaks the OpenAI REST API under its base URL (the provider table says which). */
const openaiWire = (p: CompiledProvider): boolean => providerSpec(p.type).openaiWire;

export interface PassthroughTarget {
  provider: CompiledProvider;
  /** The configured model the body named, when it named one. */
  model?: CompiledModel;
  url: URL;
  headers: Record<string, string>;
}

/** `rest` is the path after the API version prefix, e.g. `/moderations?x=1`. */
export function passthroughTarget(
  config: CompiledConfig,
  health: HealthRegistry,
  rest: string,
  requestedModel: string | undefined,
): PassthroughTarget | undefined {
  let model: CompiledModel | undefined;
  let provider: CompiledProvider | undefined;
  if (requestedModel) {
    const named =
      config.models.get(requestedModel) ??
      config.modelsByName.get(requestedModel)?.find((m) => health.available(m));
    const first = named ?? config.modelsByName.get(requestedModel)?.[0];
    if (first && openaiWire(first.provider)) {
      model = first;
      provider = first.provider;
    }
  }
  if (!provider) {
    outer: for (const policy of config.policies.values()) {
      for (const tier of policy.tiers) {
        for (const m of tier.candidates) {
          if (openaiWire(m.provider) && m.provider.enabled) {
            provider = m.provider;
            break outer;
          }
        }
      }
    }
  }
  if (!provider) {
    for (const p of config.providers.values()) {
      if (p.enabled && openaiWire(p)) {
        provider = p;
        break;
      }
    }
  }
  if (!provider) return undefined;
  const base = provider.baseUrl;
  if (!base) return undefined;
  const root = base.endsWith('/') ? base.slice(0, -1) : base;
  const url = new URL(root + rest);
  // `rest` passed the allow-list (isAllowedPassthroughPath); this guards the invariant anyway:
  // the provider's key only ever goes to a path under the provider's base path.
  if (!url.pathname.startsWith(new URL(root).pathname.replace(/\/?$/, '/'))) return undefined;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(provider.headers ?? {})) headers[k.toLowerCase()] = v;
  Object.assign(headers, openaiAuthHeaders(provider));
  return { provider, model, url, headers };
}

/**
 * The client's copy of a provider's error answer to a pass-through request: its own JSON error
 * with every credential redacted when it is OpenAI-shaped, else an OpenAI-style error quoting it.
 */
export function passthroughErrorBody(provider: string, status: number, body: Buffer): Buffer {
  const text = redact(body.toString('utf8'));
  const parsed = tryParseJson(text) as { error?: { message?: unknown } } | undefined;
  if (typeof parsed?.error === 'object' && typeof parsed.error?.message === 'string')
    return Buffer.from(text);
  const excerpt = bodyExcerpt(text);
  const code = clientStatusFor(status);
  return Buffer.from(
    new ApiError(
      code,
      `Provider '${provider}' answered HTTP ${status}${excerpt ? `: ${excerpt}` : '.'}`,
      code >= 500 ? 'upstream_error' : 'invalid_request_error',
      `upstream_${status}`,
    ).toJson(),
  );
}
