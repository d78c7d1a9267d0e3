// OpenAI embeddings (openai, openai-compatible): POST {base}/embeddings, the client's body with
// `model` set to the upstream id; the answer passes through, its usage read. A server that answers
// float arrays to a base64 request (some OpenAI-compatible servers ignore encoding_format) gets its
// vectors re-encoded, so the client always receives the format it asked for.
import type { CompiledModel } from '../../config/compiled.js';
import { encodeVector, floatArray } from '../../embeddings/response.js';
import type { ParsedRequest } from '../../parse.js';
import { EmbeddingsTranslator } from '../shared/embeddings.js';
import { joinUrl, providerHeaders } from '../shared/request.js';
import type { Translator, UpstreamRequest } from '../types.js';
import { openaiAuthHeaders } from './auth.js';
import { OPENAI_FAMILY, openAITranslatorFactory } from './chat.js';

export class OpenAIEmbeddingsTranslator extends EmbeddingsTranslator {
  buildRequest(): UpstreamRequest {
    const body = { ...this.embeddings.body, model: this.model.upstreamModel };
    return {
      method: 'POST',
      url: this.url(),
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'accept-encoding': 'identity',
        ...providerHeaders(this.model),
        ...this.authHeaders(),
      },
      body: Buffer.from(JSON.stringify(body)),
    };
  }

  protected url(): URL {
    return joinUrl(this.model.provider.baseUrl, '/embeddings');
  }

  protected authHeaders(): Record<string, string> {
    return openaiAuthHeaders(this.model.provider);
  }

  protected translate(json: unknown): Buffer {
    const j = json as { data?: unknown; usage?: { prompt_tokens?: unknown } } | null;
    if (!j || !Array.isArray(j.data)) throw this.unreadable('returned no embeddings (no data array)');
    const tokens = j.usage?.prompt_tokens;
    this.setUsage(typeof tokens === 'number' ? tokens : undefined);
    if (this.embeddings.encodingFormat === 'base64') {
      for (const item of j.data as { embedding?: unknown }[]) {
        const floats = floatArray(item?.embedding);
        if (floats) item.embedding = encodeVector(floats, 'base64');
      }
    }
    return Buffer.from(JSON.stringify(j));
  }
}

const errorsOf = (family: keyof typeof OPENAI_FAMILY) => openAITranslatorFactory(OPENAI_FAMILY[family]);

export function openaiEmbeddingsFactory(family: 'openai' | 'openai-compatible') {
  const errors = errorsOf(family);
  return (request: ParsedRequest, model: CompiledModel): Translator =>
    new OpenAIEmbeddingsTranslator(request, model, errors(request, model));
}
