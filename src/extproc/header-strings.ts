// Header names and values as strings, straight from the bytes of an ext_proc message (the hand
// decoder, request-decoder.ts). The same names and most of the same values (":path",
// "content-type", "user-agent"...) arrive request after request: the string made last time is
// handed out again when the bytes are equal, instead of a new string (and, for a name, V8
// internalizing it again as a property key). Strings are immutable, so sharing one is safe.
// Bounded: a direct-mapped table of SLOTS names (ASCII, lower-case, as Envoy sends them), each
// with the last value seen for it.

/** Buffer's own slicers (what Buffer#toString calls after checking its arguments). */
type Slicing = Uint8Array & {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
};

const SLOTS = 512;
/** Longer values are made every time: comparing them costs more than it saves. */
const MAX_REUSED_VALUE = 256;

/**
 * Names whose values are never kept past the request: a credential must not outlive it in a
 * cache. Any name that looks like it may carry one counts.
 */
const CREDENTIAL_NAME = /auth|key|token|secret|cookie|session|passw|signature|credential/;

const names: (string | undefined)[] = new Array<string | undefined>(SLOTS).fill(undefined);
const values: (string | undefined)[] = new Array<string | undefined>(SLOTS).fill(undefined);
const reusable = new Uint8Array(SLOTS);
/** The slot of the name last returned by headerName; -1 when it is not in the table. */
let current = -1;

/**
 * The lower-cased name in `b[start, end)` read as UTF-8 (what protobufjs's string field and
 * headersToRecord's toLowerCase make of it).
 */
export function headerName(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n === 0) {
    current = -1;
    return '';
  }
  // Length and three bytes: names that arrive together differ in them.
  const slot = (((n * 31 + b[start]!) * 31 + b[start + (n >> 1)]!) * 31 + b[end - 1]!) & (SLOTS - 1);
  const known = names[slot];
  if (known !== undefined && known.length === n) {
    let i = 0;
    while (i < n && known.charCodeAt(i) === b[start + i]) i++;
    if (i === n) {
      current = slot;
      return known;
    }
  }
  return newName(b, start, end, slot);
}

function newName(b: Uint8Array, start: number, end: number, slot: number): string {
  current = -1;
  for (let i = start; i < end; i++)
    if (b[i]! >= 0x80) return (b as Slicing).utf8Slice(start, end).toLowerCase();
  const raw = (b as Slicing).latin1Slice(start, end);
  const name = raw.toLowerCase();
  if (name !== raw) return name; // Envoy sends names lower-cased: others are not kept
  names[slot] = name;
  values[slot] = undefined;
  reusable[slot] = CREDENTIAL_NAME.test(name) ? 0 : 1;
  current = slot;
  return name;
}

/** The value in `b[start, end)` read as latin1, for the name headerName returned last. */
export function headerValue(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  const slot = current;
  if (slot < 0 || reusable[slot] === 0 || n > MAX_REUSED_VALUE) return (b as Slicing).latin1Slice(start, end);
  const last = values[slot];
  if (last !== undefined && last.length === n) {
    let i = 0;
    while (i < n && last.charCodeAt(i) === b[start + i]) i++;
    if (i === n) return last;
  }
  const value = (b as Slicing).latin1Slice(start, end);
  values[slot] = value;
  return value;
}

/** The values the table holds (tests: never a credential's). */
export function heldHeaderValues(): string[] {
  return values.filter((v) => v !== undefined);
}
