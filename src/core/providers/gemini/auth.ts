// Gemini API credentials: the API key in the x-goog-api-key header (never in the query string,
// where it would end up in access logs).
import type { CompiledProvider } from '../../config/compiled.js';
import { ApiError } from '../../errors.js';

export function geminiAuthHeaders(p: CompiledProvider): Record<string, string> {
  const key = p.credentials.apiKey;
  if (!key) {
    throw new ApiError(
      500,
      `Provider ${p.name} (gemini) has no API key configured.`,
      'api_error',
      'provider_misconfigured',
    );
  }
  return { 'x-goog-api-key': key.reveal() };
}
