// POST /v1/embeddings through the sidecar: the scenarios of test/helpers/embeddings-suite.ts, the
// official openai SDK -> the Envoy harness (configured from the bootstrap we ship, upstream bodies
// re-cut at arbitrary byte boundaries) -> TierFlow's ext_proc server -> the mocks. Embeddings are
// routed and translated here exactly as on the gateway.
import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { classifyPath } from '../../src/extproc/processor.js';
import { silentLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import { embeddingsSuite } from '../helpers/embeddings-suite.js';
import { rechunkInto, startSidecar } from './sidecar.js';

describe('POST /v1/embeddings through the sidecar', () => {
  embeddingsSuite(async (config) => {
    const health = new HealthRegistry();
    const client = new UpstreamClient();
    const router = new Router({ config, health });
    const deps = { router, metrics: new Metrics({ defaultMetrics: false }), log: silentLogger, client };
    const sidecar = await startSidecar(deps, { harness: { rechunk: rechunkInto([7, 1, 5, 3, 11, 2]) } });
    return {
      baseURL: `${sidecar.url}/v1`,
      router,
      check() {
        expect(sidecar.harness.violations).toEqual([]);
        expect(sidecar.harness.grpcErrors).toEqual([]);
      },
      async close() {
        await sidecar.close();
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
