// Protobuf wire pieces for the hand-written encoders (answer-encoder.ts, the dynamic metadata):
// varints, and a size tape. Each encoder makes two passes over the same objects: the first
// measures every length-delimited part once and records the sizes on the tape in writing order
// (a nested message's size is known only after its content, so its slot is reserved first and
// filled after); the second writes the bytes into one buffer reading the tape back. The tape is
// reused from call to call: encoding allocates nothing but the output buffer.

import { copyBytes } from '../core/bytes.js';

export const varintSize = (n: number) =>
  n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;

/** A length-delimited field of `n` bytes with a one-byte tag (field numbers below 16). */
export const ldSize = (n: number) => 1 + varintSize(n) + n;

export function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/**
 * Writes `s`, `size` bytes of UTF-8 as measured, at `pos`; returns the position after it. Short
 * ASCII strings (size === length says there is nothing else) are copied by hand: Buffer#write's
 * argument handling costs more than the copy of a header name.
 */
export function writeUtf8(buf: Buffer, pos: number, s: string, size: number): number {
  const n = s.length;
  if (n !== size || n > 64) return pos + buf.write(s, pos, 'utf8');
  for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i);
  return pos + n;
}

/** Copies `src` to `pos`; returns the position after it. */
export function writeRaw(buf: Buffer, pos: number, src: Uint8Array): number {
  return copyBytes(buf, pos, src, 0, src.length);
}

/** Sizes recorded by a measuring pass, read back in the same order by the writing pass. */
export class SizeTape {
  #sizes = new Uint32Array(256);
  #length = 0;
  #read = 0;

  /** Starts a measuring pass. Encoding is synchronous, so one tape serves every call. */
  reset(): void {
    this.#length = 0;
    this.#read = 0;
  }

  /** Appends a size; returns its slot. */
  push(size: number): number {
    if (this.#length === this.#sizes.length) {
      const grown = new Uint32Array(this.#length * 2);
      grown.set(this.#sizes);
      this.#sizes = grown;
    }
    this.#sizes[this.#length] = size;
    return this.#length++;
  }

  set(slot: number, size: number): void {
    this.#sizes[slot] = size;
  }

  /** The next size of the writing pass. */
  next(): number {
    return this.#sizes[this.#read++]!;
  }
}
