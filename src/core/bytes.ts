// Copying bytes between buffers on the hot path (request bodies, ext_proc answers).

/** Pieces up to this many bytes are copied by hand: a TypedArray#set call costs more than that. */
const BY_HAND = 64;

/**
 * Copies `src[from, to)` into `out` at `pos`; returns the position after it. Longer pieces with
 * Uint8Array#set of a view (Buffer#copy's argument handling cost 4x the copying of a 4 KB body),
 * short ones (a brace, a header name, a model's name) by hand, without making a view.
 */
export function copyBytes(out: Uint8Array, pos: number, src: Uint8Array, from: number, to: number): number {
  const n = to - from;
  if (n > BY_HAND) out.set(from === 0 && to === src.length ? src : src.subarray(from, to), pos);
  else for (let i = 0; i < n; i++) out[pos + i] = src[from + i]!;
  return pos + n;
}
