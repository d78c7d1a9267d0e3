// What the mock providers answer to embeddings requests: a deterministic vector per text (the
// same text always gets the same vector, different texts different ones), so tests can check
// that each input's vector came back at its index, through any translation.
import { createHash } from 'node:crypto';

/** Vector length when the request names none. */
export const MOCK_DIMENSIONS = 8;

export function mockVector(text: string, dimensions = MOCK_DIMENSIONS): number[] {
  const out: number[] = [];
  for (let i = 0; out.length < dimensions; i++) {
    const h = createHash('sha256').update(`${i}:${text}`).digest();
    for (let j = 0; j + 4 <= h.length && out.length < dimensions; j += 4) {
      // Values that survive a float32 round trip exactly (multiples of 1/1024 in [-1, 1)).
      out.push((h.readUInt16BE(j) % 2048) / 1024 - 1);
    }
  }
  return out;
}

/** Rough tokens of a text, the way the mocks count them. */
export const mockTokens = (text: string): number => Math.max(1, Math.ceil(text.length / 4));

/** An OpenAI embeddings answer (also Azure's) for the request body `b`. */
export function openAIEmbeddings(b: Record<string, unknown>, model: string): Record<string, unknown> {
  const input = b.input;
  const texts =
    typeof input === 'string'
      ? [input]
      : (input as unknown[]).map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  const dims = typeof b.dimensions === 'number' ? b.dimensions : MOCK_DIMENSIONS;
  const tokens = texts.reduce((n, t) => n + mockTokens(t), 0);
  return {
    object: 'list',
    data: texts.map((t, index) => {
      const v = mockVector(t, dims);
      return {
        object: 'embedding',
        index,
        embedding: b.encoding_format === 'base64' ? float32Base64(v) : v,
      };
    }),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

export function float32Base64(v: readonly number[]): string {
  const buf = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => buf.writeFloatLE(x, i * 4));
  return buf.toString('base64');
}

/** An OpenAI embeddings body's problem, as OpenAI words it, or undefined. */
export function openAIEmbeddingsProblem(b: unknown): string | undefined {
  if (typeof b !== 'object' || b === null) return 'We could not parse the JSON body of your request.';
  const r = b as Record<string, unknown>;
  if (typeof r.model !== 'string') return 'you must provide a model parameter';
  if (r.input === undefined) return "'input' is a required property";
  if (r.encoding_format !== undefined && r.encoding_format !== 'float' && r.encoding_format !== 'base64')
    return "Invalid value for 'encoding_format'";
  return undefined;
}
