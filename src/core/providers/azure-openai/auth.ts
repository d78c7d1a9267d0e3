// Azure OpenAI credentials: auth "apiKey" (default) sends `api-key: <key>`; auth "entra" sends
// `Authorization: Bearer <Microsoft Entra token>` (a token TierFlow fetches itself arrives in the
// same Secret, see src/config/entra.ts).
import type { CompiledProvider } from '../../config/compiled.js';
import { ApiError } from '../../errors.js';

export function azureAuthHeaders(p: CompiledProvider): Record<string, string> {
  const key = p.credentials.apiKey;
  if (!key) {
    throw new ApiError(
      500,
      `Provider '${p.name}' (azure-openai) has no credential configured.`,
      'api_error',
      'provider_misconfigured',
    );
  }
  const value = key.reveal();
  if (!value) {
    // An Entra token TierFlow fetches itself has not arrived yet (or expired and cannot be
    // renewed): nothing is sent, and the next candidate may serve the request.
    throw new ApiError(
      503,
      `Provider '${p.name}' (azure-openai) has no Microsoft Entra token yet.`,
      'api_error',
      'credentials_unavailable',
    );
  }
  return p.auth === 'entra' ? { authorization: `Bearer ${value}` } : { 'api-key': value };
}
