import { afterEach, describe, expect, it, vi } from 'vitest';
import { LARGE_BODY_BYTES, releaseAfterRequest } from '../../src/pipeline/release-memory.js';

describe('releaseAfterRequest', () => {
  const g = globalThis as { gc?: unknown };
  const original = g.gc;
  afterEach(() => {
    vi.useRealTimers();
    g.gc = original;
  });

  it('asks for one asynchronous major GC after large bodies, none after small ones', () => {
    vi.useFakeTimers();
    const calls: unknown[] = [];
    g.gc = (o: unknown) => calls.push(o);
    releaseAfterRequest(LARGE_BODY_BYTES - 1);
    vi.runAllTimers();
    expect(calls).toEqual([]);
    releaseAfterRequest(LARGE_BODY_BYTES);
    releaseAfterRequest(30 * LARGE_BODY_BYTES); // one pending at a time
    expect(calls).toEqual([]);
    vi.runAllTimers();
    expect(calls).toEqual([{ type: 'major', execution: 'async' }]);
    releaseAfterRequest(LARGE_BODY_BYTES);
    vi.runAllTimers();
    expect(calls).toHaveLength(2);
  });

  it('does nothing without --expose-gc', () => {
    vi.useFakeTimers();
    g.gc = undefined;
    expect(() => {
      releaseAfterRequest(LARGE_BODY_BYTES * 4);
      vi.runAllTimers();
    }).not.toThrow();
  });
});
