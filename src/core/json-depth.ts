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
  // Strings (most of a chat request's bytes) are skipped with indexOf, which is native.
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let depth = 0;
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i]!;
    if (b === QUOTE) {
      i = closingQuote(buf, i);
      if (i === -1) return false; // unterminated: JSON.parse says what is wrong
    } else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
  }
  return false;
}

/** Index of the quote closing the string opened at `open`; -1 if there is none. */
function closingQuote(buf: Buffer, open: number): number {
  let from = open + 1;
  for (;;) {
    const q = buf.indexOf(QUOTE, from);
    if (q === -1) return -1;
    let backslashes = 0;
    for (let k = q - 1; buf[k] === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return q;
    from = q + 1;
  }
}
