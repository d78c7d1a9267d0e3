// What a model accepts on the wire, so translators can make any request acceptable to whichever
// model serves it. The catalog states these facts per model (`facts` in the model spec); what a
// catalog entry leaves out comes from the family defaults built here, which each provider's entry
// in src/core/providers/table.ts picks (`modelFacts`), so a user-written config without facts
// still gets the documented rules.

/**
 * One sampling parameter:
 * - range: accepted within [min, max]; a value outside is clamped (or dropped with outside: drop);
 * - defaultOnly: only `default` is accepted; any other value is dropped (the model then uses it);
 * - none: the parameter is never sent.
 */
export interface ParamFact {
  support: 'range' | 'defaultOnly' | 'none';
  min?: number;
  max?: number;
  default?: number;
  outside?: 'clamp' | 'drop';
}

export interface ModelFacts {
  temperature: ParamFact;
  topP: ParamFact;
  topK: ParamFact;
  frequencyPenalty: ParamFact;
  presencePenalty: ParamFact;
  /** False: temperature and top_p are rejected together; temperature is kept, top_p dropped. */
  temperatureWithTopP: boolean;
  /** The `developer` role is accepted; otherwise developer messages are sent as system messages. */
  developerRole: boolean;
  /** The `system` role is accepted; otherwise system messages become developer (or user) messages. */
  systemRole: boolean;
  /** Longest tool-call id the provider accepts; longer (or non [A-Za-z0-9_-]) ids are shortened. */
  toolCallIdMaxLength: number;
  /** The provider mints tool-call ids and wants them echoed on the call and its result (Gemini 3). */
  toolCallIdEcho: boolean;
  /** Oldest API version that serves the model (Azure OpenAI api-version, YYYY-MM-DD[-preview]). */
  minApiVersion?: string;
  /** Where the facts come from (documentation URL or SDK source). */
  source?: string;
}

/** The facts as a catalog may write them: every field optional, merged over the defaults. */
export type ModelFactsSpec = Partial<Omit<ModelFacts, ParamName>> & Partial<Record<ParamName, ParamFact>>;

export const PARAM_NAMES = ['temperature', 'topP', 'topK', 'frequencyPenalty', 'presencePenalty'] as const;
export type ParamName = (typeof PARAM_NAMES)[number];

const range = (min: number, max: number, dflt?: number): ParamFact => ({
  support: 'range',
  min,
  max,
  ...(dflt === undefined ? {} : { default: dflt }),
});
const defaultOnly = (dflt: number): ParamFact => ({ support: 'defaultOnly', default: dflt });
const NONE: ParamFact = { support: 'none' };

/** Azure OpenAI: reasoning models and the developer role need this api-version or later. */
export const AZURE_REASONING_API_VERSION = '2024-12-01-preview';

/** OpenAI reasoning models (o-series, GPT-5 and later), not their -chat variants. */
const OPENAI_REASONING = /^(o\d+(-|$)|gpt-(5|6|7|8|9)(\.\d+)?(-(?!chat)|$))/;
/** o1-mini and o1-preview predate the developer role and reject system messages. */
const OPENAI_NO_SYSTEM = /^o1-(mini|preview)/;
/** Claude family and version in an Anthropic or Bedrock model id (claude-opus-4-6, anthropic.claude-sonnet-4-5-2025...). */
const CLAUDE = /claude-(?:(opus|sonnet|haiku)-(\d+)(?:-(\d)(?!\d))?|(\d+)(?:-(\d))?-(opus|sonnet|haiku))/;
/** Gemini 1.x / 2.x: no function-call ids. */
const GEMINI_LEGACY = /^(models\/)?gemini-(1|2)(\.|-)/;

/** Claude version as a number (4.6, 5.5), or undefined when the id is not a Claude model. */
export function claudeVersion(upstreamModel: string): number | undefined {
  const m = CLAUDE.exec(upstreamModel);
  if (!m) return undefined;
  const major = Number(m[2] ?? m[4]);
  const minor = Number(m[3] ?? m[5] ?? 0);
  return major + minor / 10;
}

const OPENAI_BASE: ModelFacts = {
  temperature: range(0, 2, 1),
  topP: range(0, 1, 1),
  topK: NONE,
  frequencyPenalty: range(-2, 2, 0),
  presencePenalty: range(-2, 2, 0),
  temperatureWithTopP: true,
  developerRole: true,
  systemRole: true,
  // "Invalid 'messages[i].tool_calls[j].id': string too long. Expected a string with maximum length 40".
  toolCallIdMaxLength: 40,
  toolCallIdEcho: false,
};

const anyMatch = (re: RegExp, ids: readonly string[]): boolean => ids.some((id) => re.test(id));

/** OpenAI's own models (OpenAI, Azure OpenAI). `reasoningApiVersion`: Azure's minimum for reasoning models. */
export function openaiFacts(ids: readonly string[], reasoningApiVersion?: string): ModelFacts {
  const f: ModelFacts = {
    ...OPENAI_BASE,
    source: 'https://platform.openai.com/docs/guides/reasoning (reasoning models: default sampling only)',
  };
  if (anyMatch(OPENAI_REASONING, ids)) {
    // "Unsupported value: 'temperature' does not support 0.5 with this model. Only the default (1) value is supported."
    f.temperature = defaultOnly(1);
    f.topP = defaultOnly(1);
    f.frequencyPenalty = defaultOnly(0);
    f.presencePenalty = defaultOnly(0);
    if (reasoningApiVersion) f.minApiVersion = reasoningApiVersion;
  }
  if (anyMatch(OPENAI_NO_SYSTEM, ids)) {
    f.systemRole = false;
    f.developerRole = false;
  }
  return f;
}

/** Other servers of the OpenAI wire format. */
export function openaiCompatibleFacts(): ModelFacts {
  // vLLM, Ollama, llama.cpp and most proxies render chat templates that know system, not developer.
  return { ...OPENAI_BASE, developerRole: false, topK: range(-1, 1_000_000) };
}

export function anthropicFacts(ids: readonly string[]): ModelFacts {
  const v = ids.map(claudeVersion).find((x) => x !== undefined);
  const f: ModelFacts = {
    // Messages API: temperature 0..1 (default 1); Bedrock Converse InferenceConfiguration: 0..1.
    temperature: range(0, 1, 1),
    topP: range(0, 1),
    topK: range(0, 1_000_000),
    // No penalties in the Messages API or Converse: 0 (no penalty) passes, anything else is dropped.
    frequencyPenalty: defaultOnly(0),
    presencePenalty: defaultOnly(0),
    // Claude Opus 4.1 and later (Bedrock: Claude 4.5 and later) reject temperature with top_p.
    temperatureWithTopP: v !== undefined && v < 4.1,
    developerRole: false,
    systemRole: true,
    // tool_use.id must match ^[a-zA-Z0-9_-]+$ (Bedrock ToolUseId: the same, 1..64 characters).
    toolCallIdMaxLength: 64,
    toolCallIdEcho: false,
    source:
      'anthropic-sdk-typescript src/resources/messages/messages.ts (temperature, top_p, top_k deprecation notes); bedrock-runtime service-2.json',
  };
  if (v !== undefined && v > 4.6) {
    // "Models released after Claude Opus 4.6 do not support setting temperature. A value of 1.0
    // will be accepted ..."; top_p: "A value >= 0.99 will be accepted"; top_k: "any value will be rejected".
    f.temperature = defaultOnly(1);
    f.topP = { support: 'range', min: 0.99, max: 1, outside: 'drop' };
    f.topK = NONE;
  }
  return f;
}

/** Bedrock Converse: Claude as on Anthropic; other models (Nova, Llama, Mistral...) have no topK. */
export function bedrockFacts(ids: readonly string[]): ModelFacts {
  const f = anthropicFacts(ids);
  if (ids.some((id) => claudeVersion(id) !== undefined)) return f;
  return { ...f, topK: NONE, temperatureWithTopP: true };
}

export function geminiFacts(ids: readonly string[]): ModelFacts {
  const legacy = anyMatch(GEMINI_LEGACY, ids);
  return {
    temperature: range(0, 2, 1),
    topP: range(0, 1),
    topK: range(1, 1_000_000),
    frequencyPenalty: range(-2, 2, 0),
    presencePenalty: range(-2, 2, 0),
    temperatureWithTopP: true,
    developerRole: false,
    systemRole: true,
    toolCallIdMaxLength: 1024,
    // Gemini 3: functionCall.id is unique per call and the functionResponse must carry it;
    // Gemini 1.x / 2.x know no ids.
    toolCallIdEcho: !legacy,
    source: 'googleapis/js-genai src/types.ts (FunctionCall.id, FunctionResponse.id, GenerationConfig)',
  };
}

/** The ids a model's family is read from: the upstream id and the model name (an Azure deployment name often says nothing). */
export const familyIds = (upstreamModel: string, name: string): string[] =>
  name === upstreamModel ? [upstreamModel] : [upstreamModel, name];

/** Catalog facts merged over the defaults of the model's family. */
export function mergeModelFacts(base: ModelFacts, spec: ModelFactsSpec | undefined): ModelFacts {
  if (!spec) return base;
  const out: ModelFacts = { ...base };
  for (const k of Object.keys(spec) as (keyof ModelFacts)[]) {
    if (spec[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = spec[k];
  }
  return out;
}

/** Compares two api-versions (YYYY-MM-DD with an optional -preview suffix); "v1" is the newest. */
export function compareApiVersions(a: string, b: string): number {
  if (a === b) return 0;
  if (a === 'v1') return 1;
  if (b === 'v1') return -1;
  const da = a.slice(0, 10);
  const db = b.slice(0, 10);
  if (da !== db) return da < db ? -1 : 1;
  // Same date: the GA version comes after its preview.
  return a.length < b.length ? 1 : -1;
}
