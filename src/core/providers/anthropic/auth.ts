// Anthropic credentials: the API key in the x-api-key header, with the API version every request
// must name.
import type { CompiledProvider } from '../../config/compiled.js';

export const ANTHROPIC_VERSION = '2023-06-01';

export function anthropicAuthHeaders(p: CompiledProvider): Record<string, string> {
  const key = p.credentials.apiKey;
  return key ? { 'x-api-key': key.reveal() } : {};
}
