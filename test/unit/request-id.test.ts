import { describe, expect, it } from 'vitest';
import { newRequestId } from '../../src/gateway/request-id.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newRequestId', () => {
  it('makes version 4 UUIDs (RFC 9562 variant), all distinct across several pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const id = newRequestId();
      expect(id).toMatch(UUID_V4);
      seen.add(id);
    }
    expect(seen.size).toBe(2000);
  });

  it('an id already handed out does not change when the next one is made', () => {
    const first = newRequestId();
    const copy = `${first}`;
    for (let i = 0; i < 600; i++) newRequestId();
    expect(first).toBe(copy);
  });

  it('uses every hex digit in every free position (random, not a fixed pattern)', () => {
    const digits = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 3000; i++) {
      const id = newRequestId();
      for (let c = 0; c < 36; c++) digits[c]!.add(id[c]!);
    }
    for (let c = 0; c < 36; c++) {
      if (c === 8 || c === 13 || c === 18 || c === 23) expect([...digits[c]!]).toEqual(['-']);
      else if (c === 14) expect([...digits[c]!]).toEqual(['4']);
      else if (c === 19) expect(digits[c]!.size).toBe(4);
      else expect(digits[c]!.size).toBe(16);
    }
  });
});
