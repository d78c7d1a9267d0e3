// Translator unit-test fixtures: a CompiledModel with its provider, and a driver that sends a
// translator's request to a (mock) server and feeds the answer back through the translator.
import type { CompiledModel, CompiledProvider } from '../../src/core/config/compiled.js';
import type { Capability } from '../../src/core/config/schema.js';
import type { ModelFactsSpec } from '../../src/core/config/model-facts.js';
import { resolveModelFacts } from '../../src/core/providers/table.js';
import type { ApiError } from '../../src/core/errors.js';
import type { Translator } from '../../src/core/providers/types.js';

type ProviderFixture = Pick<CompiledProvider, 'name' | 'type' | 'baseUrl' | 'credentials'> &
  Partial<CompiledProvider>;

export interface ModelFixture {
  id: string;
  name: string;
  upstreamModel: string;
  tier: string;
  pricing: CompiledModel['pricing'];
  contextWindow: number;
  maxOutputTokens: number;
  capabilities: Capability[];
  /** Catalog facts (merged over the family defaults, as compileConfig does). */
  facts?: ModelFactsSpec;
}

/** A model and its provider, wired both ways as compileConfig would. */
export function compiledModel(provider: ProviderFixture, model: ModelFixture): CompiledModel {
  const p: CompiledProvider = {
    headers: {},
    breaker: {
      errorThresholdPercentage: 50,
      volumeThreshold: 5,
      resetTimeoutMs: 30000,
      rollingWindowMs: 60000,
    },
    models: [],
    enabled: true,
    auth: 'apiKey',
    promptCaching: 'auto',
    ...provider,
  };
  const m: CompiledModel = {
    ...model,
    provider: p,
    capabilities: new Set(model.capabilities),
    facts: resolveModelFacts(p.type, model.upstreamModel, model.name, model.facts),
  };
  p.models.push(m);
  return m;
}

/** Sends the translator's request with fetch and returns what the client would get. */
export async function sendThrough(t: Translator): Promise<{ status: number; out: string; error?: ApiError }> {
  const r = t.buildRequest();
  const res = await fetch(r.url, { method: r.method, headers: r.headers, body: r.body });
  const headers = Object.fromEntries(res.headers);
  if (res.status >= 400) {
    return {
      status: res.status,
      out: '',
      error: t.onError(res.status, headers, Buffer.from(await res.arrayBuffer())),
    };
  }
  const start = t.onResponseHeaders(res.status, headers);
  if (!start.streaming)
    return { status: res.status, out: t.onBody(Buffer.from(await res.arrayBuffer())).toString() };
  const parts: Buffer[] = [];
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>)
    parts.push(t.onStreamChunk(Buffer.from(c), false));
  parts.push(t.onStreamChunk(Buffer.alloc(0), true));
  return { status: res.status, out: Buffer.concat(parts).toString() };
}
