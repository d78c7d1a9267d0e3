// Azure OpenAI embeddings: OpenAI's wire format at the deployment's /embeddings path
// ({base}/openai/deployments/{deployment}/embeddings?api-version=..., or /openai/v1/embeddings),
// with Azure's auth.
import type { CompiledModel } from '../../config/compiled.js';
import type { ParsedRequest } from '../../parse.js';
import { OpenAIEmbeddingsTranslator } from '../openai/embeddings.js';
import type { Translator } from '../types.js';
import { azureAuthHeaders } from './auth.js';
import { createAzureOpenAITranslator } from './chat.js';
import { azureUrl } from './endpoint.js';

class AzureEmbeddingsTranslator extends OpenAIEmbeddingsTranslator {
  protected override url(): URL {
    return azureUrl(this.model, '/embeddings');
  }

  protected override authHeaders(): Record<string, string> {
    return azureAuthHeaders(this.model.provider);
  }
}

export function createAzureEmbeddingsTranslator(request: ParsedRequest, model: CompiledModel): Translator {
  return new AzureEmbeddingsTranslator(request, model, createAzureOpenAITranslator(request, model));
}
