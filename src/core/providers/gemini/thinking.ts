// OpenAI `reasoning_effort` -> Gemini `generationConfig.thinkingConfig`, the way Google's own
// OpenAI compatibility layer maps it (ai.google.dev/gemini-api/docs/openai, docs/thinking):
//   Gemini 2.5: thinkingBudget low 1024, medium 8192, high 24576; none / minimal 0 (thinking off),
//               except 2.5 Pro, which cannot turn thinking off (its smallest budget is 128)
//   Gemini 3:   thinkingLevel; Pro knows only low and high (minimal -> low, medium -> high)
// The two fields must never come together (Gemini answers 400). Older models do not think: the
// effort is dropped and named in x-tierflow-adjusted.

type Effort = 'none' | 'minimal' | 'low' | 'medium' | 'high';
const EFFORTS: ReadonlySet<string> = new Set(['none', 'minimal', 'low', 'medium', 'high']);
const BUDGET: Record<Effort, number> = { none: 0, minimal: 0, low: 1024, medium: 8192, high: 24576 };

/**
 * The thinkingConfig for `effort` on `upstreamModel`: undefined when the client set none (or a
 * value OpenAI does not define), null when the model cannot take it.
 */
export function geminiThinking(
  effort: unknown,
  upstreamModel: string,
): Record<string, string | number> | null | undefined {
  if (typeof effort !== 'string' || !EFFORTS.has(effort)) return undefined;
  const e = effort as Effort;
  const id = upstreamModel.replace(/^models\//, '');
  if (/^gemini-3/.test(id)) {
    if (/pro/.test(id)) return { thinkingLevel: e === 'medium' || e === 'high' ? 'high' : 'low' };
    return { thinkingLevel: e === 'none' ? 'minimal' : e };
  }
  if (/^gemini-2\.5/.test(id)) {
    const pro = /pro/.test(id);
    return { thinkingBudget: pro ? Math.max(128, BUDGET[e]) : BUDGET[e] };
  }
  return null;
}
