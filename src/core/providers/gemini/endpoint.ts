// Where a Gemini provider's requests go: {base}/models/{model}:{method}.
import type { CompiledModel } from '../../config/compiled.js';

export const GEMINI_DEFAULT_BASE_URL = 'https://generativelanguage.googleapis.com/v1beta';

/** `method` is e.g. `generateContent` or `streamGenerateContent?alt=sse`. */
export function geminiModelUrl(model: CompiledModel, method: string): URL {
  const base = (model.provider.baseUrl || GEMINI_DEFAULT_BASE_URL).replace(/\/+$/, '');
  const modelId = model.upstreamModel.replace(/^models\//, '');
  return new URL(`${base}/models/${encodeURIComponent(modelId)}:${method}`);
}
