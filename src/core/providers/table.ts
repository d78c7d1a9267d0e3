// The provider table: one entry per provider type, checked by the compiler to cover them all.
// Importing this module brings every translator; nothing registers itself at run time.
import type { CompiledModel, ProviderCredentials } from '../config/compiled.js';
import type { ParsedRequest } from '../parse.js';
import {
  AZURE_REASONING_API_VERSION,
  anthropicFacts,
  bedrockFacts,
  familyIds,
  geminiFacts,
  mergeModelFacts,
  openaiCompatibleFacts,
  openaiFacts,
  type ModelFacts,
  type ModelFactsSpec,
} from '../config/model-facts.js';
import type { ProviderType } from '../config/schema.js';
import { createAnthropicTranslator } from './anthropic/chat.js';
import { ANTHROPIC_DEFAULT_BASE_URL } from './anthropic/endpoint.js';
import { createAzureOpenAITranslator } from './azure-openai/chat.js';
import { createAzureEmbeddingsTranslator } from './azure-openai/embeddings.js';
import { bedrockCredentialsPresent } from './bedrock/auth.js';
import { createBedrockTranslator } from './bedrock/converse.js';
import { createBedrockEmbeddingsTranslator } from './bedrock/embeddings.js';
import { BEDROCK_DEFAULT_REGION, bedrockDefaultBaseUrl } from './bedrock/endpoint.js';
import { createGeminiTranslator } from './gemini/chat.js';
import { createGeminiEmbeddingsTranslator } from './gemini/embeddings.js';
import { GEMINI_DEFAULT_BASE_URL } from './gemini/endpoint.js';
import { OPENAI_FAMILY, openAITranslatorFactory } from './openai/chat.js';
import { openaiEmbeddingsFactory } from './openai/embeddings.js';
import { OPENAI_DEFAULT_BASE_URL } from './openai/endpoint.js';
import { createOpenAIResponsesTranslator } from './openai/responses.js';
import type { ProviderSpec } from './spec.js';
import type { Translator, TranslatorFactory } from './types.js';

const apiKeyPresent = (c: ProviderCredentials): boolean => Boolean(c.apiKey);

export const PROVIDERS = {
  openai: {
    chat: openAITranslatorFactory(OPENAI_FAMILY.openai),
    embeddings: openaiEmbeddingsFactory('openai'),
    // Azure OpenAI has a Responses API too, but only on newer api-versions and not for every
    // deployment; it stays on chat completions, which every deployment serves.
    responses: createOpenAIResponsesTranslator,
    endpoint: { kind: 'fixed', baseUrl: OPENAI_DEFAULT_BASE_URL },
    credentials: { sources: ['secretRef'], undeclared: 'disabled', present: apiKeyPresent },
    modelFacts: (ids) => openaiFacts(ids),
    openaiWire: true,
    genAiProviderName: 'openai',
  },
  'openai-compatible': {
    chat: openAITranslatorFactory(OPENAI_FAMILY['openai-compatible']),
    embeddings: openaiEmbeddingsFactory('openai-compatible'),
    endpoint: { kind: 'baseUrl-required' },
    credentials: { sources: ['secretRef'], undeclared: 'keyless', present: apiKeyPresent },
    modelFacts: openaiCompatibleFacts,
    openaiWire: true,
  },
  anthropic: {
    chat: createAnthropicTranslator,
    endpoint: { kind: 'fixed', baseUrl: ANTHROPIC_DEFAULT_BASE_URL },
    credentials: { sources: ['secretRef'], undeclared: 'disabled', present: apiKeyPresent },
    modelFacts: anthropicFacts,
    openaiWire: false,
    genAiProviderName: 'anthropic',
  },
  gemini: {
    chat: createGeminiTranslator,
    embeddings: createGeminiEmbeddingsTranslator,
    endpoint: { kind: 'fixed', baseUrl: GEMINI_DEFAULT_BASE_URL },
    credentials: { sources: ['secretRef'], undeclared: 'disabled', present: apiKeyPresent },
    modelFacts: geminiFacts,
    openaiWire: false,
    genAiProviderName: 'gcp.gemini',
  },
  'azure-openai': {
    chat: createAzureOpenAITranslator,
    embeddings: createAzureEmbeddingsTranslator,
    endpoint: { kind: 'baseUrl-required' },
    credentials: { sources: ['secretRef', 'entra'], undeclared: 'disabled', present: apiKeyPresent },
    modelFacts: (ids) => openaiFacts(ids, AZURE_REASONING_API_VERSION),
    openaiWire: false,
    genAiProviderName: 'azure.ai.openai',
  },
  bedrock: {
    chat: (request, model) => createBedrockTranslator(request, model),
    embeddings: (request, model) => createBedrockEmbeddingsTranslator(request, model),
    endpoint: { kind: 'regional', defaultRegion: BEDROCK_DEFAULT_REGION, baseUrl: bedrockDefaultBaseUrl },
    credentials: {
      sources: ['awsAccessKeyIdRef'],
      undeclared: 'aws-environment',
      present: bedrockCredentialsPresent,
      missingHint:
        'no AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_BEARER_TOKEN_BEDROCK)',
    },
    modelFacts: bedrockFacts,
    openaiWire: false,
    genAiProviderName: 'aws.bedrock',
  },
  demo: {
    chat: openAITranslatorFactory(OPENAI_FAMILY.demo),
    // Replaced by the gateway's in-process demo server (demoBaseUrl) whenever the demo serves.
    endpoint: { kind: 'fixed', baseUrl: 'http://127.0.0.1:0/v1' },
    credentials: { sources: ['secretRef'], undeclared: 'keyless', present: () => true },
    modelFacts: openaiCompatibleFacts,
    openaiWire: true,
  },
} satisfies Record<ProviderType, ProviderSpec>;

export const PROVIDER_TYPES = Object.keys(PROVIDERS) as ProviderType[];

export function providerSpec(type: ProviderType): ProviderSpec {
  return PROVIDERS[type];
}

/** The Chat Completions translator factory of a provider type. */
export function translatorFor(type: ProviderType): TranslatorFactory {
  return PROVIDERS[type].chat;
}

/** The translator of one attempt: the embeddings one for an embeddings request, else chat. */
export function translatorForRequest(request: ParsedRequest, model: CompiledModel): Translator {
  const spec: ProviderSpec = PROVIDERS[model.provider.type];
  if (!request.embeddings) return spec.chat(request, model);
  if (!spec.embeddings) throw new Error(`provider type ${model.provider.type} has no embeddings translator`);
  return spec.embeddings(request, model);
}

/** The documented facts of a model, from its provider type and model family. */
export function defaultModelFacts(
  type: ProviderType,
  upstreamModel: string,
  name = upstreamModel,
): ModelFacts {
  return PROVIDERS[type].modelFacts(familyIds(upstreamModel, name));
}

/** Catalog facts merged over the defaults of the model's family. */
export function resolveModelFacts(
  type: ProviderType,
  upstreamModel: string,
  name: string,
  spec: ModelFactsSpec | undefined,
): ModelFacts {
  return mergeModelFacts(defaultModelFacts(type, upstreamModel, name), spec);
}
