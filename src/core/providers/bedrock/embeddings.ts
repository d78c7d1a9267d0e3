// Bedrock embeddings through InvokeModel: POST {base}/model/{modelId}/invoke, the body in the
// model's own format (picked by the model id):
//   Amazon Titan Text Embeddings (amazon.titan-embed-text-*): {inputText, dimensions?} ->
//     {embedding: [...], inputTextTokenCount}; one input per request.
//   Cohere Embed (cohere.embed-*): {texts, input_type} -> {embeddings: [[...]]} (or, with
//     embedding_types, {embeddings: {float: [[...]]}}); input_type defaults to search_document,
//     a client may set it with an extra `input_type` field; `dimensions` becomes Embed v4's
//     output_dimension (v3 models have none: a 400).
// The input token count comes from inputTextTokenCount or the X-Amzn-Bedrock-Input-Token-Count
// response header. Signing is the provider's (./auth.ts).
import type { CompiledModel } from '../../config/compiled.js';
import { embeddingsResponse, floatArray } from '../../embeddings/response.js';
import type { ParsedRequest } from '../../parse.js';
import { EmbeddingsTranslator } from '../shared/embeddings.js';
import { uriEscape } from '../shared/sigv4.js';
import type { Translator, UpstreamHeaders, UpstreamRequest } from '../types.js';
import { bedrockAuthHeaders } from './auth.js';
import { createBedrockTranslator, type BedrockOptions } from './converse.js';
import { bedrockBase } from './endpoint.js';

type Family = 'titan' | 'cohere';

function familyOf(modelId: string): Family | undefined {
  // Cross-region inference profiles prefix the id with a geography (us., eu., apac., global.).
  const id = modelId.replace(/^(us|eu|apac|global|us-gov|jp|au)\./, '');
  if (id.startsWith('amazon.titan-embed-text')) return 'titan';
  if (id.startsWith('cohere.embed')) return 'cohere';
  return undefined;
}

class BedrockEmbeddingsTranslator extends EmbeddingsTranslator {
  readonly #now: (() => Date) | undefined;

  constructor(request: ParsedRequest, model: CompiledModel, opts: BedrockOptions) {
    super(request, model, createBedrockTranslator(request, model, opts));
    this.#now = opts.now;
  }

  buildRequest(): UpstreamRequest {
    const family = familyOf(this.model.upstreamModel);
    if (!family) {
      throw this.refuse(
        `Model '${this.model.name}': TierFlow translates Bedrock embeddings for Amazon Titan Text Embeddings and Cohere Embed models.`,
        'model',
      );
    }
    const url = new URL(`${bedrockBase(this.model)}/model/${uriEscape(this.model.upstreamModel)}/invoke`);
    const body = Buffer.from(JSON.stringify(family === 'titan' ? this.titanBody() : this.cohereBody()));
    const headers: Record<string, string> = {
      ...this.model.provider.headers,
      'content-type': 'application/json',
      accept: 'application/json',
    };
    Object.assign(headers, bedrockAuthHeaders(this.model, { method: 'POST', url, headers, body }, this.#now));
    return { method: 'POST', url, headers, body };
  }

  private titanBody(): Record<string, unknown> {
    const texts = this.texts();
    if (texts.length !== 1) {
      throw this.refuse(
        `Model '${this.model.name}' (Amazon Titan) embeds one input per request; this one has ${texts.length}.`,
        'input',
      );
    }
    const dims = this.embeddings.dimensions;
    return { inputText: texts[0], ...(dims !== undefined ? { dimensions: dims } : {}) };
  }

  private cohereBody(): Record<string, unknown> {
    const dims = this.embeddings.dimensions;
    // Embed v4 takes output_dimension (256, 512, 1024 or 1536); v3 models have a fixed size.
    if (dims !== undefined && !/cohere\.embed-v4/.test(this.model.upstreamModel)) {
      throw this.refuse(
        `Model '${this.model.name}' (Cohere Embed v3) has no 'dimensions' parameter.`,
        'dimensions',
      );
    }
    const inputType = this.embeddings.body.input_type;
    return {
      texts: this.texts(),
      input_type: typeof inputType === 'string' ? inputType : 'search_document',
      ...(dims !== undefined ? { output_dimension: dims } : {}),
    };
  }

  protected translate(json: unknown, headers: UpstreamHeaders): Buffer {
    const j = (json ?? {}) as {
      embedding?: unknown;
      inputTextTokenCount?: unknown;
      embeddings?: unknown;
    };
    let vectors: (number[] | undefined)[];
    if (j.embedding !== undefined) vectors = [floatArray(j.embedding)];
    else {
      const e = j.embeddings;
      const list = Array.isArray(e) ? e : (e as { float?: unknown } | undefined)?.float;
      vectors = Array.isArray(list) ? list.map(floatArray) : [];
    }
    if (vectors.length !== this.embeddings.count || vectors.some((v) => !v))
      throw this.unreadable(`did not return the ${this.embeddings.count} embeddings asked for`);
    const header = Number(headerOf(headers, 'x-amzn-bedrock-input-token-count'));
    const counted =
      typeof j.inputTextTokenCount === 'number'
        ? j.inputTextTokenCount
        : Number.isFinite(header) && header > 0
          ? header
          : undefined;
    const tokens = this.setUsage(counted);
    return embeddingsResponse(vectors as number[][], this.model.name, tokens, this.embeddings.encodingFormat);
  }
}

function headerOf(headers: UpstreamHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function createBedrockEmbeddingsTranslator(
  request: ParsedRequest,
  model: CompiledModel,
  opts: BedrockOptions = {},
): Translator {
  return new BedrockEmbeddingsTranslator(request, model, opts);
}
