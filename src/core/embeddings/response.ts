// The OpenAI embeddings response every translated family answers with:
//   {object: "list", data: [{object: "embedding", index, embedding}], model, usage}
// `embedding` is a float array, or with encoding_format "base64" the little-endian float32 bytes
// of the vector in base64 (what the openai SDK asks for by default and decodes itself).
import type { Usage } from '../openai.js';

export function encodeVector(v: readonly number[], format: 'float' | 'base64'): number[] | string {
  if (format === 'float') return v as number[];
  const buf = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i]!, i * 4);
  return buf.toString('base64');
}

export function embeddingsResponse(
  vectors: readonly (readonly number[])[],
  model: string,
  promptTokens: number,
  format: 'float' | 'base64',
): Buffer {
  return Buffer.from(
    JSON.stringify({
      object: 'list',
      data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: encodeVector(v, format) })),
      model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    }),
  );
}

export const inputUsage = (promptTokens: number): Usage => ({
  promptTokens,
  completionTokens: 0,
  cachedPromptTokens: 0,
  cacheWriteTokens: 0,
});

/** A number array of finite numbers, or undefined. */
export function floatArray(v: unknown): number[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
}
