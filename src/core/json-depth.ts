// How deeply a JSON text nests, measured on the bytes before anything parses or walks it.
// JSON.parse copes with any depth, but JSON.stringify, structured clones and every recursive
// walk after it (validation, translators, the classifier) overflow the stack at a few thousand
// levels. Requests are refused with a 400 above MAX_JSON_DEPTH instead.

/** Deeper than any real request (tool schemas and structured outputs nest a few levels). */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;

/** True when the text opens more than `max` objects/arrays at once (strings are skipped). */
export function exceedsJsonDepth(bytes: Uint8Array, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
  }
  return false;
}
