// The request rules OpenAI's Chat Completions API enforces, per model generation, shared by the
// OpenAI and Azure OpenAI mocks. They are written from the providers' documents and the errors the
// real API returns, never from what TierFlow sends, so a translator that drifts fails a test:
// - sampling: temperature in [0, 2], top_p in [0, 1], penalties in [-2, 2] (API reference,
//   openai-node src/resources/chat/completions/completions.ts parameter docs);
// - reasoning models (o-series, GPT-5 and later except -chat): only the default temperature /
//   top_p (1) and penalties (0) ("Unsupported value: 'temperature' does not support 0.5 with this
//   model. Only the default (1) value is supported."), no max_tokens ("Use 'max_completion_tokens'
//   instead."); o1-mini / o1-preview also reject the system and developer roles;
// - tool calls: ids at most 40 characters ("string too long. Expected a string with maximum length
//   40"); every assistant tool_calls message is followed by tool messages answering each id, and a
//   tool message answers a call of the preceding assistant message.

type Body = Record<string, any>;

export interface OpenAIError {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

export const REASONING_MODEL = /^(o\d+(-|$)|gpt-(5|6|7|8|9)(\.\d+)?(-(?!chat)|$))/;
const NO_SYSTEM_MODEL = /^o1-(mini|preview)/;
export const TOOL_CALL_ID_MAX = 40;

const invalid = (message: string, param: string | null, code: string | null): OpenAIError => ({
  message,
  type: 'invalid_request_error',
  param,
  code,
});

const RANGES: [field: string, min: number, max: number, dflt: number][] = [
  ['temperature', 0, 2, 1],
  ['top_p', 0, 1, 1],
  ['frequency_penalty', -2, 2, 0],
  ['presence_penalty', -2, 2, 0],
];

/** The first rule `body` breaks for `model` (the model id the API resolves), or undefined. */
export function openAIRuleViolation(b: Body, model: string): OpenAIError | undefined {
  const reasoning = REASONING_MODEL.test(model);
  for (const [field, min, max, dflt] of RANGES) {
    const v = b[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number')
      return invalid(`Invalid type for '${field}': expected a decimal.`, field, 'invalid_type');
    if (v > max)
      return invalid(
        `Invalid '${field}': decimal above maximum value. Expected a value <= ${max}, but got ${v} instead.`,
        field,
        'decimal_above_max_value',
      );
    if (v < min)
      return invalid(
        `Invalid '${field}': decimal below minimum value. Expected a value >= ${min}, but got ${v} instead.`,
        field,
        'decimal_below_min_value',
      );
    if (reasoning && v !== dflt)
      return invalid(
        `Unsupported value: '${field}' does not support ${v} with this model. Only the default (${dflt}) value is supported.`,
        field,
        'unsupported_value',
      );
  }
  if (reasoning && b.max_tokens !== undefined && b.max_tokens !== null)
    return invalid(
      "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
      'max_tokens',
      'unsupported_parameter',
    );
  const msgs: Body[] = Array.isArray(b.messages) ? b.messages : [];
  let open: Set<string> | undefined; // tool_call ids of the last assistant message still unanswered
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i]!;
    if (!['system', 'developer', 'user', 'assistant', 'tool', 'function'].includes(m.role))
      return invalid(
        `Invalid value: '${String(m.role)}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`,
        `messages[${i}].role`,
        'invalid_value',
      );
    if ((m.role === 'system' || m.role === 'developer') && NO_SYSTEM_MODEL.test(model))
      return invalid(
        `Unsupported value: 'messages[${i}].role' does not support '${m.role}' with this model.`,
        `messages[${i}].role`,
        'unsupported_value',
      );
    if (m.role === 'tool') {
      if (!open || !open.has(String(m.tool_call_id)))
        return invalid(
          "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
          `messages.[${i}].role`,
          null,
        );
      open.delete(String(m.tool_call_id));
      continue;
    }
    if (open && open.size > 0)
      return invalid(
        `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open].join(', ')}`,
        `messages.[${i}].role`,
        null,
      );
    open = undefined;
    if (m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length > 0) {
      open = new Set();
      for (const [k, tc] of (m.tool_calls as Body[]).entries()) {
        const id = tc?.id;
        if (typeof id !== 'string')
          return invalid(
            `Missing required parameter: 'messages[${i}].tool_calls[${k}].id'.`,
            `messages[${i}].tool_calls[${k}].id`,
            'missing_required_parameter',
          );
        if (id.length > TOOL_CALL_ID_MAX)
          return invalid(
            `Invalid 'messages[${i}].tool_calls[${k}].id': string too long. Expected a string with maximum length ${TOOL_CALL_ID_MAX}, but got a string with length ${id.length} instead.`,
            `messages[${i}].tool_calls[${k}].id`,
            'string_above_max_length',
          );
        open.add(id);
      }
    }
  }
  if (open && open.size > 0)
    return invalid(
      `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open].join(', ')}`,
      'messages',
      null,
    );
  return undefined;
}
