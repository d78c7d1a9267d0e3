// The chart's Envoy bootstrap comes from the same template as `tierflow envoy-config`
// (src/extproc/envoy-config.ts): rendered with sentinel values, which are then swapped for Helm
// expressions, so `helm template` yields exactly envoyBootstrap(options-from-values).
// scripts/gen-chart-files.ts writes charts/tierflow/files/envoy.yaml; a test fails when it is stale
// and another compares `helm template` output with envoyBootstrap() under several value sets.
import { stringify } from 'yaml';
import {
  envoyBootstrap,
  EXT_PROC_MESSAGE_OVERHEAD,
  type EnvoyConfigOptions,
} from '../extproc/envoy-config.js';
import { SOCKET_DIR, SOCKET_FILE } from './resources.js';

export const EXT_PROC_SOCKET = `${SOCKET_DIR}/${SOCKET_FILE}`;
/** Envoy's admin API in the pod: a Unix socket in Envoy's own /tmp volume (no other container mounts it). */
export const ENVOY_ADMIN_SOCKET = '/tmp/envoy-admin.sock';
export const HEALTH_CLUSTER = 'tierflow_envoy_admin';
/** Admin paths the health listener forwards (GET only): readiness and read-only statistics. */
export const HEALTH_PATHS = ['/ready', '/stats', '/stats/prometheus'] as const;

/**
 * Adds a listener on the pod IP (dual-stack by default: "::" with IPv4-mapped addresses) for
 * kubelet probes and metrics scrapers: GET /ready, /stats and /stats/prometheus are forwarded to
 * Envoy's admin socket; every other path and method gets 404, so nothing of the admin API that
 * changes state (log levels, /quitquitquit, /reset_counters...) is reachable from any container.
 */
export function withHealthListener(
  bootstrap: Record<string, unknown>,
  healthPort: number,
  adminSocket = ENVOY_ADMIN_SOCKET,
  address = '::',
): Record<string, unknown> {
  const b = structuredClone(bootstrap) as { static_resources: { listeners: unknown[]; clusters: unknown[] } };
  b.static_resources.listeners.push({
    name: 'tierflow_health',
    address: { socket_address: { address, port_value: healthPort, ipv4_compat: true } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type':
                'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'tierflow_health',
              route_config: {
                name: 'tierflow_health',
                virtual_hosts: [
                  {
                    name: 'health',
                    domains: ['*'],
                    routes: [
                      ...HEALTH_PATHS.map((path) => ({
                        match: { path, headers: [{ name: ':method', string_match: { exact: 'GET' } }] },
                        route: { cluster: HEALTH_CLUSTER },
                      })),
                      { match: { prefix: '/' }, direct_response: { status: 404 } },
                    ],
                  },
                ],
              },
              http_filters: [
                {
                  name: 'envoy.filters.http.router',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  });
  b.static_resources.clusters.push({
    name: HEALTH_CLUSTER,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: HEALTH_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: adminSocket } } } }] }],
    },
  });
  return b;
}

/** What the chart's values decide; the rest of the bootstrap is the template's defaults. */
export interface ChartEnvoyValues {
  listenerPort: number;
  healthPort: number;
  /** Address of the health listener: "::" (dual-stack) or "0.0.0.0" on nodes without IPv6. */
  healthAddress?: string;
  failOpen: boolean;
  bufferLimitBytes: number;
}

/** The bootstrap the chart must produce for given values (what the tests compare helm with). */
export function chartEnvoyBootstrap(v: ChartEnvoyValues): Record<string, unknown> {
  const options: EnvoyConfigOptions = {
    listenerPort: v.listenerPort,
    failOpen: v.failOpen,
    bufferLimitBytes: v.bufferLimitBytes,
    extProcSocket: EXT_PROC_SOCKET,
    adminSocket: ENVOY_ADMIN_SOCKET,
  };
  return withHealthListener(envoyBootstrap(options), v.healthPort, ENVOY_ADMIN_SOCKET, v.healthAddress);
}

// Sentinels: values no real config uses, each expected a known number of times.
const S_LISTENER = 61_001;
const S_HEALTH = 61_002;
const S_BUFFER = 7_340_033;
const S_HEALTH_ADDRESS = 'tierflow-sentinel-health-address';

function replaceExact(text: string, find: string, replacement: string, expected: number): string {
  const parts = text.split(find);
  if (parts.length - 1 !== expected) {
    throw new Error(
      `chart envoy template: expected ${expected} occurrence(s) of ${JSON.stringify(find)}, found ${parts.length - 1}; update src/k8s/chart-files.ts`,
    );
  }
  return parts.join(replacement);
}

export const CHART_ENVOY_HEADER =
  '# Generated by scripts/gen-chart-files.ts from src/extproc/envoy-config.ts (the template of `tierflow envoy-config`).\n' +
  '# Do not edit. templates/configmap-envoy.yaml renders it with `tpl`: its Go template expressions take the chart values.\n';

/** charts/tierflow/files/envoy.yaml: the bootstrap with Helm expressions where values decide. */
export function renderChartEnvoyTemplate(): string {
  const yaml = stringify(
    chartEnvoyBootstrap({
      listenerPort: S_LISTENER,
      healthPort: S_HEALTH,
      healthAddress: S_HEALTH_ADDRESS,
      failOpen: false,
      bufferLimitBytes: S_BUFFER,
    }),
    // YAML 1.1 output (strings such as "off" or "0644" quoted): Envoy's and Helm's readers are 1.1.
    { lineWidth: 0, version: '1.1' },
  );
  let t = yaml;
  t = replaceExact(
    t,
    `port_value: ${S_LISTENER}\n`,
    'port_value: {{ int .Values.sidecar.listenerPort }}\n',
    1,
  );
  t = replaceExact(t, `port_value: ${S_HEALTH}\n`, 'port_value: {{ int .Values.envoy.healthPort }}\n', 1);
  t = replaceExact(
    t,
    `address: ${S_HEALTH_ADDRESS}\n`,
    'address: {{ .Values.envoy.healthAddress | quote }}\n',
    1,
  );
  t = replaceExact(
    t,
    `: ${S_BUFFER + EXT_PROC_MESSAGE_OVERHEAD}\n`,
    `: {{ add (int .Values.sidecar.bufferLimitBytes) ${EXT_PROC_MESSAGE_OVERHEAD} }}\n`,
    2,
  );
  t = replaceExact(t, `: ${S_BUFFER}\n`, ': {{ int .Values.sidecar.bufferLimitBytes }}\n', 3);
  t = replaceExact(
    t,
    'failure_mode_allow: false\n',
    'failure_mode_allow: {{ .Values.sidecar.failOpen }}\n',
    1,
  );
  return CHART_ENVOY_HEADER + t;
}
