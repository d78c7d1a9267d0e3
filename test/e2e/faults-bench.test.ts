// The fault-injection benchmark (bench/faults.ts) at a small size, through both data planes: a
// healthy provider always exists, so every request must be answered, none lost or hung, and no
// stream may switch providers after its first byte.
import { describe, expect, it } from 'vitest';
import { runFaults } from '../../bench/faults-run.js';

const small = { requests: 120, concurrency: 8, clientTimeoutMs: 20_000, firstByteTimeoutMs: 500, seed: 7 };

describe('fault injection (small)', () => {
  for (const plane of ['gateway', 'sidecar'] as const) {
    it(`${plane}: every request answered, none lost, no stream switched after its first byte`, async () => {
      const r = await runFaults(plane, small);
      expect(r).toMatchObject({ lostOrHung: 0, switchedAfterFirstByte: 0, wrongProviderHeader: 0 });
      expect(r.answered).toBe(small.requests);
      // The faults really happened: more upstream calls than requests, and fallbacks served some.
      expect(r.upstreamCallsPerRequest).toBeGreaterThan(1.02);
      expect((r.byProvider.p2 ?? 0) + (r.byProvider.p3 ?? 0)).toBeGreaterThan(0);
    }, 120_000);
  }
});
