// End to end: the Responses API scenarios (test/helpers/responses-suite.ts) through the sidecar:
// the official openai SDK -> the Envoy harness (configured from the bootstrap we ship, upstream
// bodies re-cut at arbitrary byte boundaries) -> TierFlow's ext_proc server -> the mocks.
import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { classifyPath } from '../../src/extproc/processor.js';
import { silentLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import { responsesSuite } from '../helpers/responses-suite.js';
import { rechunkInto, startSidecar } from './sidecar.js';

describe('POST /v1/responses through the sidecar', () => {
  responsesSuite(async (config) => {
    const health = new HealthRegistry();
    const client = new UpstreamClient();
    const deps = {
      router: new Router({ config, health }),
      metrics: new Metrics({ defaultMetrics: false }),
      log: silentLogger,
      client,
    };
    const sidecar = await startSidecar(deps, {
      harness: { rechunk: rechunkInto([5, 1, 9, 2, 13, 3, 7, 4, 11]) },
    });
    return {
      streamFailover: false,
      baseURL: `${sidecar.url}/v1`,
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

describe('the sidecar routes POST /v1/responses and passes the stored-response paths through', () => {
  it.each([
    ['POST', '/v1/responses', 'responses'],
    ['POST', '/responses', 'responses'],
    ['GET', '/v1/responses/resp_1', 'passthrough'],
    ['DELETE', '/v1/responses/resp_1', 'passthrough'],
    ['GET', '/v1/responses/resp_1/input_items?limit=5', 'passthrough'],
  ])('%s %s -> %s', (method, path, kind) => {
    expect(classifyPath(method, path).kind).toBe(kind);
  });

  it('GET /v1/responses is a 405', () => {
    expect(classifyPath('GET', '/v1/responses').error?.status).toBe(405);
  });
});
