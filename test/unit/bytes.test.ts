import { describe, expect, it } from 'vitest';
import { copyBytes } from '../../src/core/bytes.js';

describe('copyBytes', () => {
  it('copies any range, short (by hand) or long (set), and returns the position after it', () => {
    const src = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    for (const [from, to] of [
      [0, 0],
      [3, 9],
      [0, 64],
      [10, 75],
      [0, 65],
      [0, 300],
      [299, 300],
    ] as const) {
      const out = Buffer.alloc(320, 0xee);
      expect(copyBytes(out, 7, src, from, to)).toBe(7 + to - from);
      expect(out.subarray(7, 7 + to - from)).toEqual(src.subarray(from, to));
      expect(out.subarray(0, 7).every((b) => b === 0xee)).toBe(true);
      expect(out.subarray(7 + to - from).every((b) => b === 0xee)).toBe(true);
    }
  });
});
