// A request body rewritten on its bytes. An OpenAI-wire translator changes nothing but the
// top-level `model` (and may add `stream_options`) for most requests, so the upstream body is the
// client's bytes with that one value replaced, instead of JSON.stringify of the parsed request: a
// second copy of every message, the largest allocation of a request. Works on text JSON.parse has
// accepted (the caller parsed it first); whatever it cannot rewrite with certainty (an escaped
// top-level key, a non-string model) it leaves to the caller's JSON.stringify.

import { copyBytes } from './bytes.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MODEL_KEY = Buffer.from('"model"');

const isSpace = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Whether `"model"` starts at `at` (a byte loop: Buffer.compare with offsets allocates). */
function isModelKey(b: Buffer, at: number): boolean {
  for (let k = 0; k < MODEL_KEY.length; k++) if (b[at + k] !== MODEL_KEY[k]) return false;
  return true;
}

/** Index after the closing quote of the JSON string whose opening quote is at `start`; -1 if none. */
function stringEnd(b: Buffer, start: number): number {
  let from = start + 1;
  for (;;) {
    const q = b.indexOf(QUOTE, from);
    if (q === -1) return -1;
    let backslashes = 0;
    for (let k = q - 1; b[k] === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/**
 * Where the values of the top-level "model" keys are ([start, end) of each string, quotes
 * included), in order; undefined when the text cannot be rewritten with certainty.
 */
export function topLevelModelSpans(b: Buffer): Array<[number, number]> | undefined {
  const spans: Array<[number, number]> = [];
  let depth = 0;
  let expectKey = false;
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c === QUOTE) {
      const end = stringEnd(b, i);
      if (end === -1) return undefined;
      if (depth === 1 && expectKey) {
        expectKey = false;
        for (let k = i + 1; k < end - 1; k++) if (b[k] === BACKSLASH) return undefined; // "mod\u0065l"
        if (end - i === MODEL_KEY.length && isModelKey(b, i)) {
          let j = end;
          while (isSpace(b[j])) j++;
          if (b[j] !== COLON) return undefined;
          j++;
          while (isSpace(b[j])) j++;
          if (b[j] !== QUOTE) return undefined;
          const valueEnd = stringEnd(b, j);
          if (valueEnd === -1) return undefined;
          spans.push([j, valueEnd]);
          i = valueEnd;
          continue;
        }
      }
      i = end;
      continue;
    }
    if (c === OPEN_OBJECT) {
      if (++depth === 1) expectKey = true;
    } else if (c === OPEN_ARRAY) depth++;
    else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) depth--;
    else if (c === COMMA && depth === 1) expectKey = true;
    i++;
  }
  return spans;
}

// The quoted model names already encoded (a handful: the configured upstream models).
const MODEL_VALUES = new Map<string, Buffer>();
const MAX_MODEL_VALUES = 256;

function modelValue(model: string): Buffer {
  let v = MODEL_VALUES.get(model);
  if (!v) {
    if (MODEL_VALUES.size >= MAX_MODEL_VALUES) MODEL_VALUES.clear();
    MODEL_VALUES.set(model, (v = Buffer.from(JSON.stringify(model))));
  }
  return v;
}

/**
 * A rewritten body kept as pieces: the client's bytes up to the object's opening brace, an
 * inserted first member, then the client's bytes between model values with the new value in each
 * gap. The sidecar writes it straight into its answer, so the rewritten body is never a buffer of
 * its own.
 */
export class SplicedBody {
  /** Size of the rewritten body in bytes. */
  readonly length: number;

  constructor(
    private readonly source: Buffer,
    /** Index of the object's opening brace in `source`. */
    private readonly open: number,
    private readonly insert: Buffer | undefined,
    /** [start, end) of each top-level model value in `source`, in order. */
    private readonly spans: ReadonlyArray<readonly [number, number]>,
    private readonly value: Buffer,
  ) {
    let size = source.length + (insert?.length ?? 0);
    for (const [s, e] of spans) size += value.length - (e - s);
    this.length = size;
  }

  /** Writes the body into `out` at `pos`; returns the position after it. */
  writeInto(out: Uint8Array, pos: number): number {
    const b = this.source;
    let from = this.open + 1;
    pos = copyBytes(out, pos, b, 0, from);
    if (this.insert) pos = copyBytes(out, pos, this.insert, 0, this.insert.length);
    for (const [s, e] of this.spans) {
      pos = copyBytes(out, pos, b, from, s);
      pos = copyBytes(out, pos, this.value, 0, this.value.length);
      from = e;
    }
    return copyBytes(out, pos, b, from, b.length);
  }

  /** The rewritten body as one buffer. */
  bytes(): Buffer {
    const out = Buffer.allocUnsafe(this.length);
    this.writeInto(out, 0);
    return out;
  }
}

/**
 * The body with every top-level "model" set to `model` and, when given, `firstField` (a
 * `"key":value` JSON member) inserted as the first member, as pieces of `b`; undefined when it
 * cannot be done on the bytes (then the caller serializes the parsed request).
 */
export function spliceModel(b: Buffer, model: string, firstField?: string): SplicedBody | undefined {
  const spans = topLevelModelSpans(b);
  if (!spans || spans.length === 0) return undefined;
  let open = 0;
  while (isSpace(b[open])) open++;
  if (b[open] !== OPEN_OBJECT) return undefined;
  const insert = firstField === undefined ? undefined : Buffer.from(firstField + ',');
  return new SplicedBody(b, open, insert, spans, modelValue(model));
}

/** spliceModel's body as one buffer. */
export function rewriteModel(b: Buffer, model: string, firstField?: string): Buffer | undefined {
  return spliceModel(b, model, firstField)?.bytes();
}
