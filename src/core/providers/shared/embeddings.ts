// What every embeddings translator shares: one JSON answer (never a stream), errors mapped the
// way the family's chat translator maps them, usage known once the body is read.
import type { CompiledModel } from '../../config/compiled.js';
import { ApiError } from '../../errors.js';
import type { EmbeddingsRequest } from '../../embeddings/request.js';
import { inputUsage } from '../../embeddings/response.js';
import type { Usage } from '../../openai.js';
import type { ParsedRequest } from '../../parse.js';
import type { ClientResponseStart, Translator, UpstreamHeaders, UpstreamRequest } from '../types.js';
import { answerObject, unreadableAnswerError } from './upstream-error.js';

export abstract class EmbeddingsTranslator implements Translator {
  readonly model: CompiledModel;
  protected readonly request: ParsedRequest;
  protected readonly embeddings: EmbeddingsRequest;
  /** The family's chat translator, for its mapping of upstream errors. */
  readonly #errors: Translator;
  usage: Usage | undefined;
  readonly adjusted: readonly string[] = [];
  readonly sawFirstToken = false;
  readonly streamError: ApiError | undefined = undefined;

  constructor(request: ParsedRequest, model: CompiledModel, errors: Translator) {
    if (!request.embeddings) throw new Error('an embeddings translator needs an embeddings request');
    this.request = request;
    this.model = model;
    this.embeddings = request.embeddings;
    this.#errors = errors;
  }

  abstract buildRequest(): UpstreamRequest;

  /** The upstream JSON body -> the OpenAI embeddings response; sets `usage`. */
  protected abstract translate(json: unknown, headers: UpstreamHeaders): Buffer;

  #headers: UpstreamHeaders = {};

  onResponseHeaders(status: number, headers: UpstreamHeaders): ClientResponseStart {
    this.#headers = headers;
    return { status, headers: { 'content-type': 'application/json' }, streaming: false };
  }

  onStreamChunk(): Buffer {
    throw unreadableAnswerError(this.model, 'streamed an answer to an embeddings request');
  }

  onBody(body: Buffer): Buffer {
    return this.translate(answerObject(this.model, body), this.#headers);
  }

  onError(status: number, headers: UpstreamHeaders, body: Buffer): ApiError {
    return this.#errors.onError(status, headers, body);
  }

  /** A 502 for an answer without the expected embeddings: the next candidate may serve. */
  protected unreadable(message: string): ApiError {
    return unreadableAnswerError(this.model, message);
  }

  /** A 400: this model cannot take what the client sent (the next candidate may). */
  protected refuse(message: string, param: string): ApiError {
    return new ApiError(400, message, 'invalid_request_error', 'unsupported_parameter', param);
  }

  protected setUsage(promptTokens: number | undefined): number {
    const tokens = promptTokens ?? this.request.promptTokens;
    this.usage = inputUsage(tokens);
    return tokens;
  }

  /** The texts, or a 400 when the client sent token arrays (only OpenAI-wire providers take those). */
  protected texts(): string[] {
    const t = this.embeddings.texts;
    if (!t) {
      throw this.refuse(
        `Model '${this.model.name}' (${this.model.provider.type}) takes text input only, not token arrays.`,
        'input',
      );
    }
    return t;
  }
}
