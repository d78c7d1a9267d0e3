// `tierflow controller`: CRD status, mutating admission webhook, health and metrics.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { Controller } from '../k8s/controller.js';
import { injectorConfigLoader } from '../k8s/injector-config.js';
import { jsonLogger } from '../k8s/log.js';

const HELP = `usage: tierflow controller [options]

Watches LLMProviders, RoutingPolicies and VirtualKeys in every namespace (and the ConfigMaps
labelled tierflow.dev/router that policies name as their router), writes their status
conditions (Accepted, ResolvedRefs, Ready), and serves the sidecar injection webhook.

options:
  --namespace NAME          namespace of the controller (its Lease); default $POD_NAMESPACE
  --identity NAME           leader-election identity; default $POD_NAME or the hostname
  --leader-elect BOOL       elect one status writer among replicas (default true)
  --lease-name NAME         Lease name (default tierflow-controller)
  --webhook-port N          HTTPS port of the webhook (default 9443; 0 disables the webhook)
  --tls-cert-file PATH      webhook certificate (default /etc/tierflow/tls/tls.crt)
  --tls-key-file PATH       webhook key (default /etc/tierflow/tls/tls.key)
  --injector-config PATH    injector settings YAML (default /etc/tierflow/injector/injector.yaml)
  --fail-closed             refuse pods whose injection fails (default: admit them without sidecars)
  --metrics-port N          health and metrics HTTP port (default 8080)
  --resync SECONDS          full status recomputation period (default 300)
  --log-level LEVEL         debug, info, warn, error (default info)
  --kubeconfig PATH         use a kubeconfig file instead of the in-cluster service account
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      namespace: { type: 'string' },
      identity: { type: 'string' },
      'leader-elect': { type: 'string', default: 'true' },
      'lease-name': { type: 'string', default: 'tierflow-controller' },
      'webhook-port': { type: 'string', default: '9443' },
      'tls-cert-file': { type: 'string', default: '/etc/tierflow/tls/tls.crt' },
      'tls-key-file': { type: 'string', default: '/etc/tierflow/tls/tls.key' },
      'injector-config': { type: 'string', default: '/etc/tierflow/injector/injector.yaml' },
      'fail-closed': { type: 'boolean', default: false },
      'metrics-port': { type: 'string', default: '8080' },
      resync: { type: 'string', default: '300' },
      'log-level': { type: 'string', default: 'info' },
      kubeconfig: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const level = values['log-level'] as 'debug' | 'info' | 'warn' | 'error';
  if (!['debug', 'info', 'warn', 'error'].includes(level))
    throw new Error(`--log-level: unknown level '${level}'`);
  const log = jsonLogger('controller', level);
  const namespace = values.namespace ?? process.env.POD_NAMESPACE;
  if (!namespace) throw new Error('--namespace (or $POD_NAMESPACE) is required');
  const port = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name}: not a port number: ${v}`);
    return n;
  };
  const webhookPort = port('webhook-port', values['webhook-port']);
  const metricsPort = port('metrics-port', values['metrics-port']);
  const resync = Number(values.resync);
  if (!Number.isFinite(resync) || resync < 10) throw new Error('--resync: at least 10 seconds');

  const kc = new KubeConfig();
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let injector: (() => ReturnType<ReturnType<typeof injectorConfigLoader>>) | undefined;
  if (webhookPort) {
    const load = injectorConfigLoader(values['injector-config']);
    load(); // fail at start on a broken file, not on the first pod
    injector = load;
  }
  const leaderElect = values['leader-elect'] !== 'false';
  const controller = new Controller({
    kubeConfig: kc,
    namespace,
    identity: values.identity ?? process.env.POD_NAME ?? hostname(),
    leaderElection: leaderElect ? { leaseName: values['lease-name'] } : false,
    ...(injector
      ? {
          webhook: {
            port: webhookPort,
            certFile: values['tls-cert-file'],
            keyFile: values['tls-key-file'],
            injector,
            failClosed: values['fail-closed'],
          },
        }
      : {}),
    metrics: { port: metricsPort },
    resyncMs: resync * 1000,
    log,
    registry,
  });
  await controller.start();
  log.info('controller started', { namespace, webhookPort, metricsPort, leaderElect });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  log.info('stopping');
  await controller.stop();
  return 0;
}
