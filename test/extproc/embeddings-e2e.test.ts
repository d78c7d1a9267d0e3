// POST /v1/embeddings through the sidecar: the scenarios of test/helpers/embeddings-suite.ts, the
// official openai SDK -> the Envoy harness (configured from the bootstrap we ship, upstream bodies
// re-cut at arbitrary byte boundaries) -> TierFlow's ext_proc server -> the mocks. Embeddings are
// routed and translated here exactly as on the gateway.
import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { envoyBootstrap } from '../../src/extproc/envoy-config.js';
import { classifyPath, sidecarProcessor } from '../../src/extproc/processor.js';
import { ExtProcServer } from '../../src/extproc/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import { embeddingsSuite } from '../helpers/embeddings-suite.js';
import { EnvoyHarness, harnessOptionsFromBootstrap } from './envoy-harness.js';
import { tempSocket } from './helpers.js';

const PIECES = [7, 1, 5, 3, 11, 2];
let nextPiece = 0;
function rechunk(c: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < c.length;) {
    const n = PIECES[nextPiece++ % PIECES.length]!;
    out.push(c.subarray(i, i + n));
    i += n;
  }
  return out;
}

describe('POST /v1/embeddings through the sidecar', () => {
  embeddingsSuite(async (config) => {
    const health = new HealthRegistry();
    const client = new UpstreamClient();
    const router = new Router({ config, health });
    const deps = { router, metrics: new Metrics({ defaultMetrics: false }), log: silentLogger, client };
    const socketPath = tempSocket();
    const server = new ExtProcServer({ processor: sidecarProcessor(deps), socketPath });
    await server.start();
    const options = harnessOptionsFromBootstrap(
      envoyBootstrap({ extProcSocket: socketPath }),
      `unix:${socketPath}`,
    );
    const harness = new EnvoyHarness({ ...options, rechunk });
    const base = await harness.listen();
    return {
      baseURL: `${base}/v1`,
      router,
      check() {
        expect(harness.violations).toEqual([]);
        expect(harness.grpcErrors).toEqual([]);
      },
      async close() {
        await harness.close();
        await server.shutdown(1000);
        await client.close();
        health.close();
      },
    };
  });
});

describe('the sidecar routes POST /v1/embeddings', () => {
  it.each([
    ['POST', '/v1/embeddings', 'embeddings'],
    ['POST', '/embeddings', 'embeddings'],
  ])('%s %s -> %s', (method, path, kind) => {
    expect(classifyPath(method, path).kind).toBe(kind);
  });

  it('GET /v1/embeddings is a 405', () => {
    expect(classifyPath('GET', '/v1/embeddings').error?.status).toBe(405);
  });
});
