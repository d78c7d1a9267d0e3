// Fault injection through the gateway and the sidecar (Envoy harness): see bench/faults-run.ts.
//   node --experimental-transform-types bench/faults.ts [--requests 10000] [--concurrency 32] [--plane gateway|sidecar|both]
// (src/ and the test mocks use TypeScript parameter properties, which plain type stripping refuses)
// Prints, per data plane: answered, failed with a correct error, lost or hung (must be 0),
// streams switched after their first byte (must be 0), upstream calls per request, p50/p99.
import '../scripts/run-from-source.ts';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    requests: { type: 'string' },
    concurrency: { type: 'string' },
    plane: { type: 'string' },
    'first-byte-timeout-ms': { type: 'string' },
    seed: { type: 'string' },
  },
});
const { runFaults } = await import('./faults-run.ts');
const planes =
  values.plane && values.plane !== 'both'
    ? [values.plane as 'gateway' | 'sidecar']
    : (['gateway', 'sidecar'] as const);
let bad = false;
for (const plane of planes) {
  const r = await runFaults(plane, {
    requests: Number(values.requests ?? 10_000),
    concurrency: Number(values.concurrency ?? 32),
    clientTimeoutMs: 60_000,
    firstByteTimeoutMs: Number(values['first-byte-timeout-ms'] ?? 1000),
    seed: Number(values.seed ?? 11),
  });
  process.stdout.write(
    `${plane}: ${r.requests} requests (half streamed), primary failing 30% 500 / 10% 429 / 5% reset / 5% stall, second provider killed at 1/3 and restarted at 2/3\n` +
      `  answered ${r.answered} (${((100 * r.answered) / r.requests).toFixed(2)}%), failed with a correct error ${r.failedWithError}, lost or hung ${r.lostOrHung}\n` +
      `  switched after first byte ${r.switchedAfterFirstByte}, provider header wrong ${r.wrongProviderHeader}\n` +
      `  upstream calls per request ${r.upstreamCallsPerRequest}, latency p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms\n` +
      `  served by ${JSON.stringify(r.byProvider)}\n`,
  );
  if (r.lostOrHung || r.switchedAfterFirstByte || r.wrongProviderHeader || r.answered !== r.requests)
    bad = true;
}
process.exitCode = bad ? 1 : 0;
