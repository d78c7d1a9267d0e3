// Gemini embeddings: POST {base}/models/{model}:batchEmbedContents with one EmbedContentRequest
// per input ({model: "models/{model}", content: {parts: [{text}]}, outputDimensionality}); the
// answer is {embeddings: [{values: [...]}]} in input order. The API reports no token count, so
// usage is TierFlow's estimate of the input.
import type { CompiledModel } from '../../config/compiled.js';
import { embeddingsResponse, floatArray } from '../../embeddings/response.js';
import type { ParsedRequest } from '../../parse.js';
import { EmbeddingsTranslator } from '../shared/embeddings.js';
import type { Translator, UpstreamRequest } from '../types.js';
import { geminiAuthHeaders } from './auth.js';
import { createGeminiTranslator } from './chat.js';
import { geminiModelUrl } from './endpoint.js';

class GeminiEmbeddingsTranslator extends EmbeddingsTranslator {
  buildRequest(): UpstreamRequest {
    const p = this.model.provider;
    const name = `models/${this.model.upstreamModel.replace(/^models\//, '')}`;
    const dims = this.embeddings.dimensions;
    const requests = this.texts().map((text) => ({
      model: name,
      content: { parts: [{ text }] },
      ...(dims !== undefined ? { outputDimensionality: dims } : {}),
    }));
    return {
      method: 'POST',
      url: geminiModelUrl(this.model, 'batchEmbedContents'),
      headers: { ...p.headers, 'content-type': 'application/json', ...geminiAuthHeaders(p) },
      body: Buffer.from(JSON.stringify({ requests })),
    };
  }

  protected translate(json: unknown): Buffer {
    const list = (json as { embeddings?: { values?: unknown }[] } | null)?.embeddings;
    const vectors = Array.isArray(list) ? list.map((e) => floatArray(e?.values)) : [];
    if (vectors.length !== this.embeddings.count || vectors.some((v) => !v))
      throw this.unreadable(`did not return the ${this.embeddings.count} embeddings asked for`);
    const tokens = this.setUsage(undefined);
    return embeddingsResponse(vectors as number[][], this.model.name, tokens, this.embeddings.encodingFormat);
  }
}

export function createGeminiEmbeddingsTranslator(request: ParsedRequest, model: CompiledModel): Translator {
  return new GeminiEmbeddingsTranslator(request, model, createGeminiTranslator(request, model));
}
