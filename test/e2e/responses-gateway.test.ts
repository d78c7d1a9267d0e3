// End to end: the Responses API scenarios (test/helpers/responses-suite.ts) through the
// standalone gateway.
import { describe } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { createGateway } from '../../src/gateway/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import { responsesSuite } from '../helpers/responses-suite.js';

describe('POST /v1/responses through the gateway', () => {
  responsesSuite(async (config) => {
    const client = new UpstreamClient();
    const health = new HealthRegistry();
    const gateway = createGateway({
      router: new Router({ config, health }),
      metrics: new Metrics({ defaultMetrics: false }),
      log: silentLogger,
      client,
    });
    const addr = await gateway.listen(0, '127.0.0.1');
    return {
      streamFailover: true,
      baseURL: `http://127.0.0.1:${addr.port}/v1`,
      async close() {
        await gateway.close(0);
        await client.close();
        health.close();
      },
    };
  });
});
