// tierflow envoy-config: prints the Envoy bootstrap YAML for the sidecar (same template as the chart).
import { parseArgs } from 'node:util';
import {
  ENVOY_CONFIG_DEFAULTS,
  type EnvoyConfigOptions,
  renderEnvoyConfig,
} from '../extproc/envoy-config.js';

const d = ENVOY_CONFIG_DEFAULTS;
const HELP = `usage: tierflow envoy-config [options] > envoy.yaml

Prints the Envoy bootstrap for the TierFlow sidecar: a plain-HTTP listener for the app
(OPENAI_BASE_URL=http://127.0.0.1:<port>/v1), filters ext_proc -> dynamic_forward_proxy -> router,
a TLS forward-proxy cluster for public providers and a plain one for in-cluster servers, and the
ext_proc cluster over TierFlow's Unix socket.

options:
      --listener-address ADDR   default ${d.listenerAddress}
      --listener-port PORT      default ${d.listenerPort}
      --socket PATH             TierFlow's Unix socket (default ${d.extProcSocket})
      --ext-proc-tcp HOST:PORT  reach TierFlow over TCP instead of the socket
      --buffer-limit BYTES      largest body (default ${d.bufferLimitBytes}); pass the same --body-limit to the sidecar
      --fail-open               let requests through unprocessed when TierFlow is down (default: fail closed)
      --message-timeout-ms N    per-message ext_proc timeout (default ${d.messageTimeoutMs})
      --max-message-timeout-ms N  longest wait TierFlow may ask for, e.g. failover (default ${d.maxMessageTimeoutMs})
      --stream-idle-timeout-s N default ${d.streamIdleTimeoutS}
      --connect-timeout-ms N    upstream connect timeout (default ${d.connectTimeoutMs})
      --ca-file PATH            CA bundle for provider TLS (default ${d.trustedCaFile})
      --dns-lookup-family F     AUTO, V4_ONLY, V6_ONLY, V4_PREFERRED or ALL (default ${d.dnsLookupFamily})
      --admin-port PORT         Envoy admin on 127.0.0.1, 0 = none (default ${d.adminPort}); any local
                                process can use it, so prefer --admin-socket where others run
      --admin-socket PATH       Envoy admin on a Unix socket (mode 0600) instead of a port
      --no-access-log           no JSON access log on stdout
      --max-concurrent N        Envoy circuit-breaker limits per cluster (default ${d.maxConcurrentRequests})
  -h, --help
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'listener-address': { type: 'string' },
      'listener-port': { type: 'string' },
      socket: { type: 'string' },
      'ext-proc-tcp': { type: 'string' },
      'buffer-limit': { type: 'string' },
      'fail-open': { type: 'boolean' },
      'message-timeout-ms': { type: 'string' },
      'max-message-timeout-ms': { type: 'string' },
      'stream-idle-timeout-s': { type: 'string' },
      'connect-timeout-ms': { type: 'string' },
      'ca-file': { type: 'string' },
      'dns-lookup-family': { type: 'string' },
      'admin-port': { type: 'string' },
      'admin-socket': { type: 'string' },
      'no-access-log': { type: 'boolean' },
      'max-concurrent': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const opts: EnvoyConfigOptions = {
    listenerAddress: values['listener-address'],
    listenerPort: num(values['listener-port']),
    extProcSocket: values.socket,
    bufferLimitBytes: num(values['buffer-limit']),
    failOpen: values['fail-open'] ?? undefined,
    messageTimeoutMs: num(values['message-timeout-ms']),
    maxMessageTimeoutMs: num(values['max-message-timeout-ms']),
    streamIdleTimeoutS: num(values['stream-idle-timeout-s']),
    connectTimeoutMs: num(values['connect-timeout-ms']),
    trustedCaFile: values['ca-file'],
    dnsLookupFamily: values['dns-lookup-family'] as EnvoyConfigOptions['dnsLookupFamily'],
    adminPort: num(values['admin-port']),
    adminSocket: values['admin-socket'],
    accessLog: values['no-access-log'] ? false : undefined,
    maxConcurrentRequests: num(values['max-concurrent']),
  };
  if (values['ext-proc-tcp']) {
    const m = /^(.+):(\d+)$/.exec(values['ext-proc-tcp']);
    if (!m) {
      process.stderr.write(
        `tierflow envoy-config: --ext-proc-tcp wants HOST:PORT, got '${values['ext-proc-tcp']}'\n`,
      );
      return 2;
    }
    opts.extProcTcp = { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  }
  if (
    opts.dnsLookupFamily &&
    !['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'].includes(opts.dnsLookupFamily)
  ) {
    process.stderr.write(`tierflow envoy-config: unknown --dns-lookup-family '${opts.dnsLookupFamily}'\n`);
    return 2;
  }
  // Unset options take the template's defaults.
  for (const k of Object.keys(opts) as (keyof EnvoyConfigOptions)[])
    if (opts[k] === undefined) delete opts[k];
  let yaml: string;
  try {
    yaml = renderEnvoyConfig(opts);
  } catch (err) {
    process.stderr.write(`tierflow envoy-config: ${(err as Error).message}\n`);
    return 2;
  }
  process.stdout.write(yaml);
  return 0;
}
