// Fuzz both planes (the sidecar through the Envoy harness). CI runs a few hundred cases per
// plane; scripts/security-fuzz.ts runs the full size and prints the figures.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canaryConfig, canaryKeys, type Family, type Planes, startFamilies, startPlanes } from './canary.js';
import { fuzzCases, runFuzz, runRawAbuse } from './fuzz.js';

const SEED = Number(process.env.TIERFLOW_FUZZ_SEED ?? 12);
const CASES = 180;
let families: Family[];
let planes: Planes;

beforeAll(async () => {
  const keys = canaryKeys();
  families = await startFamilies(keys);
  planes = await startPlanes(canaryConfig(families, keys));
});
afterAll(async () => {
  await planes?.close();
  await Promise.all((families ?? []).map((f) => f.mock.close()));
});

describe('fuzz', () => {
  for (const plane of ['gateway', 'sidecar'] as const) {
    it(`${plane}: no crash, no 5xx, every error OpenAI-shaped, memory bounded`, async () => {
      const base = plane === 'gateway' ? planes.gatewayUrl : planes.sidecarUrl;
      const report = await runFuzz(base, plane, fuzzCases(SEED, CASES));
      expect(report.serverErrors).toEqual([]);
      expect(report.misshapen).toEqual([]);
      expect(report.requests).toBe(CASES);
      // Some cases are valid requests and some are not: both kinds of answer must show up.
      expect(report.byStatus[200]).toBeGreaterThan(10);
      expect(report.byStatus[400]).toBeGreaterThan(30);
      expect(report.rssMiB.peak - report.rssMiB.before).toBeLessThan(768);
      if (plane === 'sidecar') expect(planes.harness.violations).toEqual([]);
      // Still serving.
      const ok = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'oa-mini', messages: [{ role: 'user', content: 'still there?' }] }),
      });
      expect(ok.status).toBe(200);
    }, 180_000);
  }

  it('gateway: raw HTTP and chunked-encoding abuse get OpenAI-shaped 4xx, never a 5xx', async () => {
    const report = await runRawAbuse(Number(new URL(planes.gatewayUrl).port));
    expect(report.serverErrors).toEqual([]);
    expect(report.misshapen).toEqual([]);
    expect(report.byStatus[400]).toBeGreaterThan(5);
  }, 180_000);
});
