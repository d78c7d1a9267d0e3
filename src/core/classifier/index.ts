// classify: request -> complexity score in [0,1] plus the features that drove it.
import type { ChatCompletionRequest } from '../openai.js';

export interface Classification {
  /** In [0,1]; high when a lightweight model is likely to fail where the flagship succeeds. */
  score: number;
  /** Names of the features that contributed most, strongest first (for headers and `explain`). */
  reasons: string[];
}

// First scorer: length and a few reasoning markers. Replaced by the learned classifier.
export function classify(req: ChatCompletionRequest): Classification {
  let chars = 0;
  let text = '';
  for (const m of req.messages) {
    if (typeof m.content === 'string') {
      chars += m.content.length;
      if (m.role === 'user') text = m.content;
    }
  }
  const reasons: string[] = [];
  let z = -2 + Math.log1p(chars) / 4;
  if (/\b(prove|derive|step[- ]by[- ]step|algorithm|optimi[sz]e|complexity)\b/i.test(text)) {
    z += 1.5;
    reasons.push('reasoning');
  }
  if (/```|\bfunction\b|\bdef\b|\bclass\b/.test(text)) {
    z += 1;
    reasons.push('code');
  }
  if (req.tools?.length) {
    z += 0.5;
    reasons.push('tools');
  }
  reasons.push('length');
  return { score: 1 / (1 + Math.exp(-z)), reasons };
}
