// Which provider types speak the Responses API themselves (POST {base}/responses). Their
// Responses requests are forwarded as they are; every other type is reached through its chat
// API (translator.ts). Only OpenAI here: Azure OpenAI has a Responses API too, but only on
// newer api-versions and not for every deployment, so it stays on chat completions, which every
// Azure deployment serves; OpenAI-compatible servers vary (vLLM has one, most others do not).
import type { ProviderType } from '../config/schema.js';

const NATIVE: ReadonlySet<ProviderType> = new Set<ProviderType>(['openai']);

export function speaksResponses(type: ProviderType): boolean {
  return NATIVE.has(type);
}
