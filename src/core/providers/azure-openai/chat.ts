// Azure OpenAI translator. Azure speaks OpenAI's chat-completions wire format; only the URL
// (./endpoint.ts) and the auth (./auth.ts) differ, so this reuses the OpenAI translator and
// overrides those two hooks. The developer role is sent as system below api-version
// 2024-12-01-preview, which introduced it.
// Content filtering passes through in OpenAI form: a filtered prompt is a 400 with
// code "content_filter" (kept by onError; not failover-eligible), a filtered completion is
// finish_reason "content_filter"; Azure's extra prompt_filter_results / content_filter_results
// fields are forwarded untouched (the openai SDK ignores them).
import type { CompiledModel } from '../../config/compiled.js';
import { AZURE_REASONING_API_VERSION, compareApiVersions } from '../../config/model-facts.js';
import type { ParsedRequest } from '../../parse.js';
import { OpenAITranslator } from '../openai/chat.js';
import type { Translator } from '../types.js';
import { azureAuthHeaders } from './auth.js';
import { azureApiVersion, azureUrl } from './endpoint.js';

export class AzureOpenAITranslator extends OpenAITranslator {
  constructor(request: ParsedRequest, model: CompiledModel) {
    // Azure honours stream_options.include_usage on every current GA api-version.
    super(request, model, { injectIncludeUsage: true, maxCompletionTokens: true });
  }

  protected override url(): URL {
    return azureUrl(this.model);
  }

  /** The developer role exists from api-version 2024-12-01-preview on (and in the v1 API). */
  protected override developerRoleAccepted(): boolean {
    return (
      this.model.facts.developerRole &&
      compareApiVersions(azureApiVersion(this.model), AZURE_REASONING_API_VERSION) >= 0
    );
  }

  protected override authHeaders(): Record<string, string> {
    return azureAuthHeaders(this.model.provider);
  }
}

export function createAzureOpenAITranslator(request: ParsedRequest, model: CompiledModel): Translator {
  return new AzureOpenAITranslator(request, model);
}
