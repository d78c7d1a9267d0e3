// POST /v1/embeddings: bytes of an OpenAI embeddings request -> a validated EmbeddingsRequest, or
// an ApiError. The translators (src/core/providers/<family>/embeddings.ts) read it from the plan.
import { badRequest } from '../errors.js';
import { readJsonObjectBody } from '../json-body.js';
import { DEFAULT_BODY_LIMIT, type ParsedRequest } from '../parse.js';

export interface EmbeddingsRequest {
  /** The client's body as sent (unknown fields kept for OpenAI-wire providers). */
  body: Record<string, unknown>;
  model: string;
  /** The inputs as text; undefined when the client sent token arrays (OpenAI-wire providers only). */
  texts: string[] | undefined;
  /** How many inputs (texts or token arrays). */
  count: number;
  encodingFormat: 'float' | 'base64';
  dimensions: number | undefined;
}

/** Most inputs one request may carry (OpenAI: 2048). */
export const MAX_INPUTS = 2048;

export function parseEmbeddingsRequest(raw: Buffer, bodyLimit = DEFAULT_BODY_LIMIT): EmbeddingsRequest {
  const b = readJsonObjectBody(raw, bodyLimit, 'a JSON embeddings request');
  if (b.model === undefined)
    throw badRequest("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
  if (typeof b.model !== 'string' || b.model.length === 0)
    throw badRequest("Invalid type for 'model': expected a non-empty string.", 'model', 'invalid_type');
  const { texts, count } = readInput(b.input);
  const format = b.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') {
    throw badRequest(
      "Invalid value for 'encoding_format': expected 'float' or 'base64'.",
      'encoding_format',
      'invalid_value',
    );
  }
  const dims = b.dimensions;
  if (dims !== undefined && (typeof dims !== 'number' || !Number.isInteger(dims) || dims < 1)) {
    throw badRequest("Invalid 'dimensions': expected a positive integer.", 'dimensions', 'invalid_value');
  }
  return { body: b, model: b.model, texts, count, encodingFormat: format, dimensions: dims };
}

function readInput(input: unknown): { texts: string[] | undefined; count: number } {
  if (input === undefined)
    throw badRequest("Missing required parameter: 'input'.", 'input', 'missing_required_parameter');
  if (typeof input === 'string') return { texts: [input], count: 1 };
  const invalid = () =>
    badRequest(
      "Invalid 'input': expected a string, an array of strings, an array of tokens or an array of token arrays.",
      'input',
      'invalid_type',
    );
  if (!Array.isArray(input)) throw invalid();
  if (input.length === 0) throw badRequest("'input' must not be empty.", 'input', 'empty_array');
  if (input.length > MAX_INPUTS) {
    throw badRequest(`'input' has ${input.length} items; at most ${MAX_INPUTS} are allowed.`, 'input');
  }
  if (input.every((x) => typeof x === 'string')) return { texts: input as string[], count: input.length };
  const isTokens = (x: unknown) => Array.isArray(x) && x.length > 0 && x.every(Number.isInteger);
  if (input.every(Number.isInteger)) return { texts: undefined, count: 1 };
  if (input.every(isTokens)) return { texts: undefined, count: input.length };
  throw invalid();
}

/** Rough input tokens, for the budget reservation and for providers that report none. */
export function estimateInputTokens(req: EmbeddingsRequest): number {
  if (req.texts) return req.texts.reduce((n, t) => n + Math.max(1, Math.ceil(t.length / 4)), 0);
  const input = req.body.input as unknown[];
  return input.every(Number.isInteger)
    ? input.length
    : (input as unknown[][]).reduce((n, a) => n + a.length, 0);
}

/**
 * The request as the shared pipeline carries it: a ParsedRequest with no messages (nothing to
 * classify or adapt), its prompt tokens estimated, and the embeddings request alongside.
 */
export function embeddingsParsedRequest(req: EmbeddingsRequest): ParsedRequest {
  return {
    body: { model: req.model, messages: [] },
    model: req.model,
    stream: false,
    clientWantsUsage: false,
    needs: { tools: false, vision: false, jsonSchema: false },
    promptTokens: estimateInputTokens(req),
    maxOutputTokens: 0,
    embeddings: req,
  };
}
