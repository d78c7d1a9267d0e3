// tierflow serve: the standalone OpenAI-compatible gateway.
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { HealthRegistry } from '../core/health/registry.js';
import { Router } from '../core/router.js';
import { startDemoProvider, type DemoProvider } from '../gateway/demo-provider.js';
import { DEFAULT_LIMITS, type ServerLimits } from '../gateway/http-hardening.js';
import { createGateway } from '../gateway/server.js';
import { startupNotice } from '../gateway/startup-notice.js';
import { createLogger } from '../observe/log.js';
import { Metrics } from '../observe/metrics.js';
import { metricsTokenFromEnv } from '../observe/ops-http.js';
import { tracerFromEnv } from '../observe/tracing.js';
import { ConfigLoadError, openFileConfig } from '../runtime/file-config.js';
import { UpstreamClient } from '../pipeline/client.js';
import { responseStore } from '../pipeline/responses.js';
import { DEFAULT_BODY_LIMIT } from '../core/parse.js';
import { DEFAULT_FLUSH_MS, SpendFile } from '../state/spend-file.js';
import {
  SHARED_LIMITS_HELP,
  sharedLimitsSettings,
  startResponseShare,
  startSharedLimits,
} from '../state/shared-limits.js';

const HELP = `usage: tierflow serve [options]

Runs the OpenAI-compatible gateway. Point the OpenAI SDK at it:
  base_url = http://127.0.0.1:8080/v1, model = "auto"

options:
  -c, --config FILE     config file (env TIERFLOW_CONFIG; default ./tierflow.yaml)
  -p, --port PORT       port (env PORT; default 8080)
      --host HOST       address to bind (env HOST; default 127.0.0.1)
      --body-limit N    largest request body in bytes (default 33554432)
      --secrets-dir DIR where <secret>/<key> files for secretRef credentials live
      --max-connections N  open client connections at most (env TIERFLOW_MAX_CONNECTIONS;
                        default 3/4 of the descriptor limit)
      --request-timeout S  seconds a client has to send a whole request, headers and body
                        (env TIERFLOW_REQUEST_TIMEOUT; default 120; headers alone: 15)
      --state-file FILE where virtual-key spend is kept across restarts when --redis is not
                        given (env TIERFLOW_STATE_FILE; default tierflow-state.json next to
                        the config file; "none": keep spend in memory only)
${SHARED_LIMITS_HELP}
  -h, --help

/metrics requires 'Authorization: Bearer <token>' when TIERFLOW_METRICS_TOKEN (or
TIERFLOW_METRICS_TOKEN_FILE) is set.
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      'body-limit': { type: 'string' },
      'secrets-dir': { type: 'string' },
      'max-connections': { type: 'string' },
      'request-timeout': { type: 'string' },
      'state-file': { type: 'string' },
      redis: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const log = createLogger();
  const file = resolve(values.config ?? process.env.TIERFLOW_CONFIG ?? 'tierflow.yaml');
  const port = Number(values.port ?? process.env.PORT ?? 8080);
  const host = values.host ?? process.env.HOST ?? '127.0.0.1';
  const bodyLimit = Number(values['body-limit'] ?? DEFAULT_BODY_LIMIT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`tierflow serve: invalid port '${values.port ?? process.env.PORT}'\n`);
    return 2;
  }
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024) {
    process.stderr.write(`tierflow serve: invalid --body-limit '${values['body-limit']}'\n`);
    return 2;
  }
  const maxConnections = values['max-connections'] ?? process.env.TIERFLOW_MAX_CONNECTIONS;
  const requestTimeout = values['request-timeout'] ?? process.env.TIERFLOW_REQUEST_TIMEOUT;
  const limits: Partial<ServerLimits> = {};
  if (maxConnections !== undefined) {
    limits.maxConnections = Number(maxConnections);
    if (!Number.isInteger(limits.maxConnections) || limits.maxConnections < 1) {
      process.stderr.write(`tierflow serve: invalid --max-connections '${maxConnections}'\n`);
      return 2;
    }
  }
  if (requestTimeout !== undefined) {
    const seconds = Number(requestTimeout);
    if (!Number.isFinite(seconds) || seconds < 1) {
      process.stderr.write(`tierflow serve: invalid --request-timeout '${requestTimeout}'\n`);
      return 2;
    }
    limits.requestTimeoutMs = Math.round(seconds * 1000);
    limits.headersTimeoutMs = Math.min(DEFAULT_LIMITS.headersTimeoutMs, limits.requestTimeoutMs);
  }
  let metricsToken;
  try {
    metricsToken = metricsTokenFromEnv();
  } catch (err) {
    process.stderr.write(
      `tierflow serve: cannot read TIERFLOW_METRICS_TOKEN_FILE: ${(err as Error).message}\n`,
    );
    return 2;
  }
  const flushMs = Number(process.env.TIERFLOW_STATE_FLUSH_MS ?? DEFAULT_FLUSH_MS);
  if (!Number.isInteger(flushMs) || flushMs < 10 || flushMs > 600_000) {
    process.stderr.write(
      'tierflow serve: TIERFLOW_STATE_FLUSH_MS must be an integer between 10 and 600000\n',
    );
    return 2;
  }
  let sharedSettings;
  try {
    sharedSettings = sharedLimitsSettings(values.redis);
  } catch (err) {
    process.stderr.write(`tierflow serve: ${(err as Error).message}\n`);
    return 2;
  }

  const metrics = new Metrics();
  const health = new HealthRegistry(undefined, metrics.healthEvents());
  let demo: DemoProvider | undefined;
  if (mentionsDemo(file)) demo = await startDemoProvider();

  const live: { router?: Router } = {};
  let source;
  try {
    source = openFileConfig(
      file,
      { demoBaseUrl: demo?.url, secretsDir: values['secrets-dir'] },
      log,
      (config) => {
        live.router?.setConfig(config);
        metrics.configReloaded('applied');
      },
      () => metrics.configReloaded('rejected'),
    );
  } catch (err) {
    await demo?.close();
    if (err instanceof ConfigLoadError) {
      process.stderr.write(`tierflow serve: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const router = new Router({ config: source.initial, health, bodyLimit });
  live.router = router;
  metrics.trackVirtualKeys(() => live.router?.keyUsage() ?? []);
  metrics.trackResponseStore(() => responseStore);
  metrics.trackRouting(() => live.router);
  const shared = sharedSettings
    ? await startSharedLimits(sharedSettings, { router: () => live.router, metrics, log })
    : undefined;
  const responseShare = sharedSettings
    ? await startResponseShare(sharedSettings, responseStore, log)
    : undefined;
  // Without Redis, spend lives in this process: a state file carries it across restarts.
  const stateFile =
    values['state-file'] ?? process.env.TIERFLOW_STATE_FILE ?? join(dirname(file), STATE_FILE);
  const spendFile =
    shared || stateFile === 'none'
      ? undefined
      : new SpendFile(
          resolve(stateFile),
          router.limits,
          log,
          Number(process.env.TIERFLOW_STATE_FLUSH_MS ?? DEFAULT_FLUSH_MS),
        );
  if (spendFile) {
    const restored = await spendFile.load();
    if (restored > 0) log.info('virtual-key spend restored', { path: spendFile.path, keys: restored });
    spendFile.start();
  }

  const client = new UpstreamClient();
  const tracer = await tracerFromEnv(process.env, log);
  const gateway = createGateway({ router, metrics, log, client, tracer, limits, metricsToken });
  let address;
  try {
    address = await gateway.listen(port, host);
  } catch (err) {
    process.stderr.write(`tierflow serve: cannot listen on ${host}:${port}: ${(err as Error).message}\n`);
    source.close();
    await shared?.close();
    await responseShare?.close();
    await demo?.close();
    return 1;
  }
  const url = `http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}/v1`;
  const providers = [...source.initial.providers.values()];
  log.info('tierflow gateway listening', {
    url,
    config: file,
    revision: source.initial.revision,
    providers: providers.filter((p) => p.enabled).map((p) => p.name),
    disabled: providers
      .filter((p) => !p.enabled)
      .map((p) => ({ provider: p.name, reason: p.disabledReason })),
    virtualModels: [...source.initial.virtualModels.keys()],
  });
  const notice = startupNotice(source.initial, { configFile: file, url, demoRunning: demo !== undefined });
  if (notice) process.stderr.write(notice);

  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      log.info('shutting down', { signal });
      resolveStop();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  source.close();
  await gateway.close(Number(process.env.TIERFLOW_SHUTDOWN_GRACE_MS ?? 10_000));
  await shared?.close();
  await responseShare?.close();
  await spendFile?.close();
  await client.close();
  await tracer?.close();
  health.close();
  await demo?.close();
  return 0;
}

/** Default spend state file, beside the config file. */
const STATE_FILE = 'tierflow-state.json';

function mentionsDemo(file: string): boolean {
  try {
    return /type:\s*["']?demo\b/.test(readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
}
