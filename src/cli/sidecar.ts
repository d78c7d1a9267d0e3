// tierflow sidecar: Envoy's external processor, running the same pipeline as the gateway.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HealthRegistry } from '../core/health/registry.js';
import { DEFAULT_BODY_LIMIT } from '../core/parse.js';
import { Router } from '../core/router.js';
import { ENVOY_CONFIG_DEFAULTS } from '../extproc/envoy-config.js';
import { sidecarProcessor } from '../extproc/processor.js';
import {
  EXT_PROC_SERVICE,
  ExtProcServer,
  startHealthServer,
  type ProcessorFactory,
} from '../extproc/server.js';
import { unconfiguredProcessor } from '../extproc/unconfigured.js';
import { ENV_NAMESPACE, SOCKET_DIR, SOCKET_FILE } from '../k8s/resources.js';
import { createLogger } from '../observe/log.js';
import { Metrics } from '../observe/metrics.js';
import { tracerFromEnv } from '../observe/tracing.js';
import { metricsTokenFromEnv, startOpsServer } from '../observe/ops-http.js';
import { ConfigLoadError, openFileConfig } from '../runtime/file-config.js';
import {
  SHARED_LIMITS_HELP,
  sharedLimitsSettings,
  startResponseShare,
  startSharedLimits,
  warnOnUnsharedBudgets,
} from '../state/shared-limits.js';
import { UpstreamClient } from '../pipeline/client.js';
import { responseStore } from '../pipeline/responses.js';

const HELP = `usage: tierflow sidecar [options]

Runs Envoy's ext_proc server (envoy.service.ext_proc.v3.ExternalProcessor): Envoy asks it for
every request and it routes, translates, fails over and accounts exactly like \`tierflow serve\`.
Generate the matching Envoy bootstrap with \`tierflow envoy-config\`.

options:
  -c, --config FILE        config file with hot reload, or "kubernetes" to read the namespace's
                           LLMProviders, RoutingPolicies and VirtualKeys, and the router
                           ConfigMaps (label tierflow.dev/router) policies name (env
                           TIERFLOW_CONFIG_SOURCE, then TIERFLOW_CONFIG; default ./tierflow.yaml)
      --socket PATH        Unix socket for Envoy (env TIERFLOW_EXTPROC_SOCKET;
                           default ${SOCKET_DIR}/${SOCKET_FILE}); "none" to listen on TCP only
      --port PORT          also listen on TCP (ext_proc + health), on --host
      --host HOST          address of the TCP listener (default 127.0.0.1: answers carry provider keys)
      --health-port PORT   gRPC health only (grpc.health.v1) on all addresses (IPv6 and IPv4), for
                           kubelet probes (env TIERFLOW_HEALTH_PORT). Service "" is SERVING while
                           the process runs; the ext_proc service only once a configuration is loaded
      --metrics-port PORT  HTTP /metrics, /healthz, /readyz on all addresses (env TIERFLOW_METRICS_PORT);
                           /metrics needs Bearer $TIERFLOW_METRICS_TOKEN (or _FILE) when set
      --body-limit N       largest request body in bytes; must match Envoy's buffer limit (default ${DEFAULT_BODY_LIMIT})
      --max-message-timeout-ms N
                           Envoy's max_message_timeout (default ${ENVOY_CONFIG_DEFAULTS.maxMessageTimeoutMs})
      --secrets-dir DIR    where <secret>/<key> files for secretRef credentials live
${SHARED_LIMITS_HELP}
  -h, --help

The Unix socket is made mode 0660 after binding: Envoy must run with the same group.
With "kubernetes", the sidecar listens at once; until the namespace's objects can be read and
compile, every request gets an OpenAI-style 503 saying why (also in the log and /readyz).

On SIGTERM/SIGINT: health turns NOT_SERVING, open streams finish (up to TIERFLOW_SHUTDOWN_GRACE_MS,
default 30000), then the process exits.
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      socket: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'health-port': { type: 'string' },
      'metrics-port': { type: 'string' },
      'body-limit': { type: 'string' },
      'max-message-timeout-ms': { type: 'string' },
      'secrets-dir': { type: 'string' },
      redis: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const fail = (msg: string) => {
    process.stderr.write(`tierflow sidecar: ${msg}\n`);
    return 2;
  };
  const intOpt = (
    name: string,
    v: string | undefined,
    min: number,
    max: number,
  ): number | undefined | Error => {
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    return Number.isInteger(n) && n >= min && n <= max ? n : new Error(`invalid ${name} '${v}'`);
  };
  const port = intOpt('--port', values.port, 0, 65535);
  const healthPort = intOpt(
    '--health-port',
    values['health-port'] ?? process.env.TIERFLOW_HEALTH_PORT,
    0,
    65535,
  );
  const metricsPort = intOpt(
    '--metrics-port',
    values['metrics-port'] ?? process.env.TIERFLOW_METRICS_PORT,
    0,
    65535,
  );
  const bodyLimit = intOpt('--body-limit', values['body-limit'], 1024, 2 ** 31) ?? DEFAULT_BODY_LIMIT;
  const maxWait =
    intOpt('--max-message-timeout-ms', values['max-message-timeout-ms'], 0, 3_600_000) ??
    ENVOY_CONFIG_DEFAULTS.maxMessageTimeoutMs;
  for (const v of [port, healthPort, metricsPort, bodyLimit, maxWait])
    if (v instanceof Error) return fail(v.message);
  const socketOpt = values.socket ?? process.env.TIERFLOW_EXTPROC_SOCKET ?? `${SOCKET_DIR}/${SOCKET_FILE}`;
  const socketPath = socketOpt === 'none' ? undefined : socketOpt;
  if (!socketPath && port === undefined) return fail('nothing to listen on: give --socket and/or --port');
  let sharedSettings;
  try {
    sharedSettings = sharedLimitsSettings(values.redis);
  } catch (err) {
    return fail((err as Error).message);
  }
  // VirtualKeys are namespaced: sidecars of different namespaces keep separate counters.
  const namespace = process.env[ENV_NAMESPACE];
  if (sharedSettings && namespace && !process.env.TIERFLOW_REDIS_PREFIX) {
    sharedSettings.keyPrefix = `tierflow:${namespace}:`;
  }

  const log = createLogger().child({ component: 'sidecar' });
  const checkBudgets = sharedSettings ? () => undefined : warnOnUnsharedBudgets(log);
  const metrics = new Metrics();
  const health = new HealthRegistry(undefined, metrics.healthEvents());
  const sourceName =
    values.config ?? process.env.TIERFLOW_CONFIG_SOURCE ?? process.env.TIERFLOW_CONFIG ?? 'tierflow.yaml';

  let router: Router | undefined;
  let closeSource: (() => Promise<void> | void) | undefined;
  /** Starts watching the Kubernetes objects (after the listeners are up); undefined for a file. */
  let startWatching: (() => Promise<void>) | undefined;
  /** Why there is no configuration yet (undefined once there is one). */
  let waitingReason: () => string | undefined = () => undefined;
  const onFirstConfig: (() => void)[] = [];
  try {
    if (sourceName === 'kubernetes') {
      const { KubernetesConfigSource } = await import('../k8s/config-source.js');
      let first = true;
      const source = new KubernetesConfigSource({
        onConfig: (config) => {
          if (router) router.setConfig(config);
          else {
            router = new Router({ config, health, bodyLimit: bodyLimit as number });
            for (const f of onFirstConfig) f();
          }
          checkBudgets(config);
          if (!first) metrics.configReloaded('applied');
          first = false;
        },
        registry: metrics.registry,
        ...(values['secrets-dir'] ? { secretsDir: values['secrets-dir'] } : {}),
      });
      waitingReason = () => source.waitingReason();
      startWatching = () => source.startWatching();
      closeSource = () => source.stop();
    } else {
      const file = resolve(sourceName);
      const source = openFileConfig(
        file,
        { secretsDir: values['secrets-dir'] },
        log,
        (config) => {
          router?.setConfig(config);
          checkBudgets(config);
          metrics.configReloaded('applied');
        },
        () => metrics.configReloaded('rejected'),
      );
      router = new Router({ config: source.initial, health, bodyLimit: bodyLimit as number });
      checkBudgets(source.initial);
      closeSource = () => source.close();
    }
  } catch (err) {
    if (err instanceof ConfigLoadError) {
      process.stderr.write(`tierflow sidecar: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const shared = sharedSettings
    ? await startSharedLimits(sharedSettings, { router: () => router, metrics, log })
    : undefined;
  const responseShare = sharedSettings
    ? await startResponseShare(sharedSettings, responseStore, log)
    : undefined;

  // Until a configuration exists (the namespace's objects cannot be read yet, or do not compile),
  // the sidecar still listens and stays live, so the pod starts; requests get an OpenAI-style 503
  // saying why, and readiness (the ext_proc health service) reports NOT_SERVING.
  const client = new UpstreamClient();
  const tracer = await tracerFromEnv(process.env, log);
  const reason = () => waitingReason() ?? 'starting';
  const unconfigured = unconfiguredProcessor(reason);
  let configured: ProcessorFactory | undefined;
  const server = new ExtProcServer({
    processor: () => {
      if (!configured && router)
        configured = sidecarProcessor(
          { router, metrics, log, client, tracer },
          { bodyLimit: bodyLimit as number, maxMessageTimeoutMs: maxWait as number },
        );
      return (configured ?? unconfigured)();
    },
    socketPath,
    tcp: port === undefined ? undefined : { host: values.host ?? '127.0.0.1', port: port as number },
    bodyLimit: bodyLimit as number,
    onInternalError: (err) =>
      log.error('ext_proc internal error', { error: err instanceof Error ? err.message : String(err) }),
  });
  metrics.trackOpenStreams(() => server.activeStreams);
  metrics.trackVirtualKeys(() => router?.keyUsage() ?? []);
  metrics.trackResponseStore(() => responseStore);
  metrics.trackRouting(() => router);
  if (!router) server.health.setService(EXT_PROC_SERVICE, false);
  let bound;
  try {
    bound = await server.start();
  } catch (err) {
    await closeSource?.();
    await shared?.close();
    await responseShare?.close();
    return fail(`cannot listen: ${(err as Error).message}`);
  }
  const healthServer =
    healthPort === undefined ? undefined : await startHealthServer(server.health, healthPort as number);
  let draining = false;
  const metricsServer =
    metricsPort === undefined
      ? undefined
      : await startOpsServer(
          {
            registry: metrics.registry,
            ready: () => (draining ? 'shutting down' : router ? true : `not configured: ${reason()}`),
            metricsToken: metricsTokenFromEnv(),
          },
          metricsPort as number,
        );
  log.info('tierflow sidecar listening', {
    socket: bound.socketPath,
    tcpPort: bound.tcpPort,
    healthPort: healthServer?.port,
    metricsPort: metricsServer ? (metricsServer.address() as { port: number }).port : undefined,
    ...(router
      ? { revision: router.config.revision, virtualModels: [...router.config.virtualModels.keys()] }
      : { configured: false }),
  });

  let reasonTimer: NodeJS.Timeout | undefined;
  if (!router) {
    // Say why there is no configuration, once per change of reason.
    let said = '';
    const tell = () => {
      const r = waitingReason();
      if (r && r !== said)
        log.warn('no configuration yet; requests get 503 until there is one', { reason: r });
      said = r ?? said;
    };
    reasonTimer = setInterval(tell, 1000);
    onFirstConfig.push(() => {
      clearInterval(reasonTimer);
      server.health.setService(EXT_PROC_SERVICE, true);
      log.info('configuration loaded; serving', {
        revision: router?.config.revision,
        virtualModels: [...(router?.config.virtualModels.keys() ?? [])],
      });
    });
  }
  try {
    await startWatching?.();
  } catch (err) {
    log.error('cannot watch the TierFlow objects', { err: (err as Error).message });
  }

  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      log.info('shutting down', { signal, openStreams: server.activeStreams });
      resolveStop();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  draining = true;
  clearInterval(reasonTimer);
  await server.shutdown(Number(process.env.TIERFLOW_SHUTDOWN_GRACE_MS ?? 30_000));
  await healthServer?.close();
  metricsServer?.close();
  await closeSource?.();
  await shared?.close();
  await responseShare?.close();
  await client.close();
  await tracer?.close();
  health.close();
  return 0;
}
