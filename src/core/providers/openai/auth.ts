// OpenAI-wire credentials (openai, openai-compatible, demo): `Authorization: Bearer <key>`, or
// nothing for a keyless openai-compatible server.
import type { CompiledProvider } from '../../config/compiled.js';

export function openaiAuthHeaders(p: CompiledProvider): Record<string, string> {
  const key = p.credentials.apiKey;
  return key ? { authorization: `Bearer ${key.reveal()}` } : {};
}
