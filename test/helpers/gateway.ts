// Starts a real gateway on an ephemeral port from a config object written to a temp YAML file
// (so hot reload can be exercised by rewriting the file).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ChatCompletionRequest } from '../../src/core/openai.js';
import type { Classification } from '../../src/core/classifier/index.js';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/server.js';
import { silentLogger, type Logger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { openFileConfig } from '../../src/runtime/file-config.js';
import { UpstreamClient } from '../../src/pipeline/client.js';

export interface TestGateway {
  url: string;
  baseURL: string;
  router: Router;
  metrics: Metrics;
  configFile: string;
  writeConfig(config: unknown): void;
  close(graceMs?: number): Promise<void>;
}

export async function startTestGateway(
  config: unknown,
  options: {
    env?: Record<string, string>;
    classify?: (req: ChatCompletionRequest) => Classification;
    log?: Logger;
    /** Gateway options besides the pipeline's own (limits, metrics token, a stub client). */
    gateway?: Pick<GatewayOptions, 'limits' | 'metricsToken'> & { client?: UpstreamClient };
  } = {},
): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'tierflow-gw-'));
  const configFile = join(dir, 'tierflow.yaml');
  const writeConfig = (c: unknown) => writeFileSync(configFile, typeof c === 'string' ? c : stringify(c));
  writeConfig(config);
  const metrics = new Metrics({ defaultMetrics: false });
  const health = new HealthRegistry(undefined, metrics.healthEvents());
  const live: { router?: Router } = {};
  const source = openFileConfig(configFile, { env: options.env ?? {} }, options.log ?? silentLogger, (c) =>
    live.router?.setConfig(c),
  );
  const router = new Router({ config: source.initial, health, classify: options.classify });
  live.router = router;
  metrics.trackRouting(() => live.router);
  const client = options.gateway?.client ?? new UpstreamClient();
  const gateway: Gateway = createGateway({
    router,
    metrics,
    log: options.log ?? silentLogger,
    client,
    limits: options.gateway?.limits,
    metricsToken: options.gateway?.metricsToken,
  });
  const addr = await gateway.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${addr.port}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    baseURL: `${url}/v1`,
    router,
    metrics,
    configFile,
    writeConfig,
    close(graceMs = 1000) {
      closed ??= (async () => {
        source.close();
        await gateway.close(graceMs);
        await client.close();
        health.close();
      })();
      return closed;
    },
  };
}
