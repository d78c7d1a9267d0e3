// POST /v1/embeddings through the gateway: the scenarios of test/helpers/embeddings-suite.ts.
import { describe } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { createGateway } from '../../src/gateway/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import { embeddingsSuite } from '../helpers/embeddings-suite.js';

describe('POST /v1/embeddings through the gateway', () => {
  embeddingsSuite(async (config) => {
    const health = new HealthRegistry();
    const router = new Router({ config, health });
    const client = new UpstreamClient();
    const gateway = createGateway({
      router,
      metrics: new Metrics({ defaultMetrics: false }),
      log: silentLogger,
      client,
    });
    const addr = await gateway.listen(0, '127.0.0.1');
    return {
      baseURL: `http://127.0.0.1:${addr.port}/v1`,
      router,
      async close() {
        await gateway.close(0);
        await client.close();
        health.close();
      },
    };
  });
});
